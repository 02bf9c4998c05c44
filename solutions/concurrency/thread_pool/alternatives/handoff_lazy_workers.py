"""A fixed-size thread pool that hands back futures: submit, map, shutdown, exceptions included.

Alternative design: workers are started lazily, one per submit() until there are `workers` of
them, and a call is handed straight to an idle worker, each parked on a `threading.Semaphore` of
its own; only when none is idle does it wait in a backlog, which a worker drains before it parks
again. A future is a Condition waited on in a loop against a `time.monotonic()` deadline.
"""

from __future__ import annotations

import threading
import time
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
        self._cond = threading.Condition(threading.Lock())
        self._state = PENDING
        self._outcome: tuple[T | None, BaseException | None] = (None, None)

    def _wait_done(self, timeout: float | None) -> tuple[T | None, BaseException | None]:
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while self._state not in (FINISHED, CANCELLED):
                if deadline is None:
                    self._cond.wait()
                    continue
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"future still {self._state} after {timeout} s")
                self._cond.wait(left)
            if self._state == CANCELLED:
                raise CancelledError()
            return self._outcome

    def result(self, timeout: float | None = None) -> T:
        value, error = self._wait_done(timeout)
        if error is not None:
            raise error
        return value  # type: ignore[return-value]

    def exception(self, timeout: float | None = None) -> BaseException | None:
        return self._wait_done(timeout)[1]

    def cancel(self) -> bool:
        with self._cond:
            if self._state == PENDING:
                self._state = CANCELLED
                self._cond.notify_all()
            return self._state == CANCELLED

    def cancelled(self) -> bool:
        with self._cond:
            return self._state == CANCELLED

    def running(self) -> bool:
        with self._cond:
            return self._state == RUNNING

    def done(self) -> bool:
        with self._cond:
            return self._state in (FINISHED, CANCELLED)

    def set_running(self) -> bool:
        with self._cond:
            if self._state != PENDING:
                return False
            self._state = RUNNING
            return True

    def _finish(self, value: T | None, error: BaseException | None) -> None:
        with self._cond:
            self._outcome, self._state = (value, error), FINISHED
            self._cond.notify_all()

    def set_result(self, value: T) -> None:
        self._finish(value, None)

    def set_exception(self, exc: BaseException) -> None:
        self._finish(None, exc)


_Work = tuple[Future[Any], Callable[..., Any], tuple[Any, ...], dict[str, Any]]


class _Worker:
    """A worker's mailbox: the call handed to it, and the semaphore it sleeps on while idle."""

    def __init__(self, first: _Work) -> None:
        self.work: _Work | None = first
        self.wake = threading.Semaphore(0)


class _InOrder(Iterator[T]):
    """map()'s results: each future's result, waited for in input order."""

    def __init__(self, futures: list[Future[T]]) -> None:
        self._futures = deque(futures)

    def __iter__(self) -> _InOrder[T]:
        return self

    def __next__(self) -> T:
        if not self._futures:
            raise StopIteration
        return self._futures.popleft().result()


class ThreadPool:
    """`workers` threads that run submitted calls from one shared queue of work."""

    def __init__(self, workers: int) -> None:
        if workers < 1:
            raise ValueError(f"workers must be at least 1, got {workers}")
        self.workers = workers
        self._lock = threading.Lock()
        self._backlog: deque[_Work] = deque()  # calls no idle worker could take, in order
        self._idle: list[_Worker] = []  # parked workers; non-empty only while the backlog is empty
        self._threads: list[threading.Thread] = []
        self._shutdown = False

    def _run(self, me: _Worker) -> None:
        while True:
            work, me.work = me.work, None
            if work is None:
                return  # woken with nothing: the pool shut down
            future, fn, args, kwargs = work
            if future.set_running():
                try:
                    value = fn(*args, **kwargs)
                except BaseException as exc:
                    future.set_exception(exc)
                else:
                    future.set_result(value)
            with self._lock:
                if self._backlog:
                    me.work = self._backlog.popleft()
                    continue
                if self._shutdown:
                    return
                self._idle.append(me)
            me.wake.acquire()  # sleeps until submit() hands it a call or shutdown() wakes it

    def submit(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> Future[T]:
        future: Future[T] = Future()
        work: _Work = (future, fn, args, kwargs)
        with self._lock:
            if self._shutdown:
                raise RuntimeError("submit() after shutdown()")
            if self._idle:
                worker = self._idle.pop()
                worker.work = work
                worker.wake.release()
            elif len(self._threads) < self.workers:
                thread = threading.Thread(target=self._run, args=(_Worker(work),), daemon=True)
                self._threads.append(thread)
                thread.start()
            else:
                self._backlog.append(work)
        return future

    def map(self, fn: Callable[..., T], *iterables: Iterable[Any]) -> Iterator[T]:
        futures = [self.submit(fn, *args) for args in zip(*iterables, strict=False)]
        return _InOrder(futures)

    def shutdown(self, wait: bool = True, *, cancel_pending: bool = False) -> None:
        with self._lock:
            self._shutdown = True
            if cancel_pending:
                while self._backlog:
                    self._backlog.popleft()[0].cancel()
            for worker in self._idle:
                worker.wake.release()  # wakes with no work: leaves
            self._idle.clear()
            threads = list(self._threads)
        if wait:
            for thread in threads:
                if thread is not threading.current_thread():
                    thread.join()

    def __enter__(self) -> ThreadPool:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.shutdown(wait=True)
