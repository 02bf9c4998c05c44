"""A fixed-size thread pool that hands back futures: submit, map, shutdown, exceptions included.

Alternative design: a `threading.Semaphore` counts tokens, one per queued call and, after
shutdown(), one "leave" token per worker; a worker takes a token, then a call from the deque if
there is one, else it leaves. A future keeps its own list of parked waiters, each blocked on a
`threading.Lock` of its own that finishing the future releases (a wait queue built by hand).
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import CancelledError
from typing import Any, Generic, TypeVar

T = TypeVar("T")

__all__ = ["CancelledError", "Future", "ThreadPool"]

PENDING, RUNNING, FINISHED, CANCELLED = "pending", "running", "finished", "cancelled"


class Future(Generic[T]):
    """The result of a call that runs later, on another thread: a value, an exception, or cancelled."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._waiters: list[threading.Lock] = []  # each held: its owner blocks acquiring it again
        self._state = PENDING
        self._value: T | None = None
        self._error: BaseException | None = None

    def _wait_done(self, timeout: float | None) -> None:
        with self._lock:
            parked = None
            if self._state not in (FINISHED, CANCELLED):
                parked = threading.Lock()
                parked.acquire()
                self._waiters.append(parked)
        if parked is not None:
            if timeout is None:
                parked.acquire()
            elif timeout > 0:
                parked.acquire(timeout=timeout)
        with self._lock:
            if parked in self._waiters:
                self._waiters.remove(parked)  # timed out: nobody will release it
            if self._state not in (FINISHED, CANCELLED):
                raise TimeoutError(f"future still {self._state} after {timeout} s")
            if self._state == CANCELLED:
                raise CancelledError()

    def _end(self, state: str) -> None:
        """Called with the lock held: move to a final state and release every parked waiter."""
        self._state = state
        for parked in self._waiters:
            parked.release()
        self._waiters.clear()

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
            if self._state != CANCELLED:
                self._end(CANCELLED)
            return True

    def cancelled(self) -> bool:
        with self._lock:
            return self._state == CANCELLED

    def running(self) -> bool:
        with self._lock:
            return self._state == RUNNING

    def done(self) -> bool:
        with self._lock:
            return self._state in (FINISHED, CANCELLED)

    def set_running(self) -> bool:
        with self._lock:
            if self._state == CANCELLED:
                return False
            self._state = RUNNING
            return True

    def set_result(self, value: T) -> None:
        with self._lock:
            self._value = value
            self._end(FINISHED)

    def set_exception(self, exc: BaseException) -> None:
        with self._lock:
            self._error = exc
            self._end(FINISHED)


class ThreadPool:
    """`workers` threads that run submitted calls from one shared queue of work."""

    def __init__(self, workers: int) -> None:
        if workers < 1:
            raise ValueError(f"workers must be at least 1, got {workers}")
        self.workers = workers
        self._work: deque[tuple[Future[Any], Callable[..., Any], tuple[Any, ...], dict[str, Any]]]
        self._work = deque()
        self._lock = threading.Lock()
        self._tokens = threading.Semaphore(0)  # queued calls + leave tokens after shutdown
        self._shutdown = False
        self._threads = [threading.Thread(target=self._worker, daemon=True) for _ in range(workers)]
        for thread in self._threads:
            thread.start()

    def _worker(self) -> None:
        while True:
            self._tokens.acquire()  # sleeps until a call or a leave token is there
            with self._lock:
                if not self._work:
                    return  # a leave token (or the token of a call shutdown cancelled)
                future, fn, args, kwargs = self._work.popleft()
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
            self._work.append((future, fn, args, kwargs))
        self._tokens.release()
        return future

    def map(self, fn: Callable[..., T], *iterables: Iterable[Any]) -> Iterator[T]:
        futures = [self.submit(fn, *args) for args in zip(*iterables, strict=False)]

        def results() -> Iterator[T]:
            for future in futures:
                yield future.result()

        return results()

    def shutdown(self, wait: bool = True, *, cancel_pending: bool = False) -> None:
        with self._lock:
            first = not self._shutdown
            self._shutdown = True
            if cancel_pending:
                while self._work:
                    self._work.popleft()[0].cancel()
        if first:
            self._tokens.release(len(self._threads))  # one leave token per worker
        if wait:
            for thread in self._threads:
                if thread is not threading.current_thread():
                    thread.join()

    def __enter__(self) -> ThreadPool:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.shutdown(wait=True)
