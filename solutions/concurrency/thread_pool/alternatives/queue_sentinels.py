"""A fixed-size thread pool that hands back futures: submit, map, shutdown, exceptions included.

Alternative design: the work travels through a `queue.SimpleQueue` and shutdown() puts one `None`
sentinel per worker behind the queued calls; a future is a `threading.Event` (done) plus a
`threading.Lock` that guards its state changes.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import CancelledError
from typing import Any, Generic, TypeVar

T = TypeVar("T")

__all__ = ["CancelledError", "Future", "ThreadPool"]

PENDING, RUNNING, FINISHED, CANCELLED = "pending", "running", "finished", "cancelled"


class Future(Generic[T]):
    """The result of a call that runs later, on another thread: a value, an exception, or cancelled."""

    def __init__(self) -> None:
        self._lock = threading.Lock()  # guards the state changes
        self._done = threading.Event()  # set once finished or cancelled; waiters sleep on it
        self._state = PENDING
        self._value: T | None = None
        self._error: BaseException | None = None

    def _wait_done(self, timeout: float | None) -> None:
        if not self._done.wait(timeout):
            raise TimeoutError(f"future still {self._state} after {timeout} s")
        if self._state == CANCELLED:
            raise CancelledError()

    def result(self, timeout: float | None = None) -> T:
        self._wait_done(timeout)
        if self._error is not None:
            raise self._error
        return self._value  # type: ignore[return-value]

    def exception(self, timeout: float | None = None) -> BaseException | None:
        self._wait_done(timeout)
        return self._error

    def cancel(self) -> bool:
        with self._lock:
            if self._state in (RUNNING, FINISHED):
                return False
            self._state = CANCELLED
        self._done.set()  # Event.set wakes every waiter
        return True

    def cancelled(self) -> bool:
        return self._state == CANCELLED

    def running(self) -> bool:
        return self._state == RUNNING

    def done(self) -> bool:
        return self._done.is_set()

    def set_running(self) -> bool:
        with self._lock:
            if self._state == CANCELLED:
                return False
            self._state = RUNNING
            return True

    def _finish(self, value: T | None, error: BaseException | None) -> None:
        with self._lock:
            self._value, self._error, self._state = value, error, FINISHED
        self._done.set()

    def set_result(self, value: T) -> None:
        self._finish(value, None)

    def set_exception(self, exc: BaseException) -> None:
        self._finish(None, exc)


_Work = tuple[Future[Any], Callable[..., Any], tuple[Any, ...], dict[str, Any]]


class ThreadPool:
    """`workers` threads that run submitted calls from one shared queue of work."""

    def __init__(self, workers: int) -> None:
        if workers < 1:
            raise ValueError(f"workers must be at least 1, got {workers}")
        self.workers = workers
        self._queue: queue.SimpleQueue[_Work | None] = queue.SimpleQueue()
        self._lock = threading.Lock()  # orders submit() against shutdown()'s sentinels
        self._shutdown = False
        self._threads = [threading.Thread(target=self._worker, daemon=True) for _ in range(workers)]
        for thread in self._threads:
            thread.start()

    def _worker(self) -> None:
        while True:
            work = self._queue.get()  # blocks in C: no CPU while idle
            if work is None:
                return  # a sentinel: every call queued before it has been taken
            future, fn, args, kwargs = work
            if not future.set_running():
                continue
            try:
                value = fn(*args, **kwargs)
            except BaseException as exc:
                future.set_exception(exc)
            else:
                future.set_result(value)

    def submit(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> Future[T]:
        future: Future[T] = Future()
        with self._lock:
            if self._shutdown:
                raise RuntimeError("submit() after shutdown()")
            self._queue.put((future, fn, args, kwargs))
        return future

    def map(self, fn: Callable[..., T], *iterables: Iterable[Any]) -> Iterator[T]:
        futures = [self.submit(fn, *args) for args in zip(*iterables, strict=False)]
        return (future.result() for future in futures)

    def _cancel_queued(self) -> None:
        """Cancel every call still queued; sentinels already queued go back in."""
        sentinels = 0
        while True:
            try:
                work = self._queue.get_nowait()
            except queue.Empty:
                break
            if work is None:
                sentinels += 1
            else:
                work[0].cancel()
        for _ in range(sentinels):
            self._queue.put(None)

    def shutdown(self, wait: bool = True, *, cancel_pending: bool = False) -> None:
        with self._lock:
            if cancel_pending:
                self._cancel_queued()
            if not self._shutdown:
                self._shutdown = True
                for _ in self._threads:
                    self._queue.put(None)  # one sentinel per worker, behind the queued calls
        if wait:
            for thread in self._threads:
                if thread is not threading.current_thread():
                    thread.join()

    def __enter__(self) -> ThreadPool:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.shutdown(wait=True)
