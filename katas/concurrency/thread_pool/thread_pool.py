"""A fixed-size thread pool that hands back futures: submit, map, shutdown, exceptions included."""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import CancelledError
from typing import Any, Generic, TypeVar

T = TypeVar("T")

__all__ = ["CancelledError", "Future", "ThreadPool"]


class Future(Generic[T]):
    """The result of a call that runs later, on another thread: a value, an exception, or cancelled.

    States: pending -> running -> finished, or pending -> cancelled. Whoever waits on a future
    (result(), exception()) sleeps until it is finished or cancelled: no polling, no spinning.
    Build it on threading.Condition (concurrent.futures.Future is the answer, so don't use it).

    >>> f = Future[int]()
    >>> f.set_running()
    True
    >>> f.set_result(42)
    >>> f.done(), f.result()
    (True, 42)
    """

    def __init__(self) -> None:
        # TODO: the state, the result or exception, and a Condition that waiters sleep on.
        pass

    # -- the waiting side ------------------------------------------------------------------

    def result(self, timeout: float | None = None) -> T:
        """The call's return value, waiting up to `timeout` seconds (None: forever).

        Raises the call's own exception if it raised one, CancelledError if the future was
        cancelled, TimeoutError if it is still not done after `timeout` seconds.
        """
        # TODO: sleep until done (a wait in a loop, one deadline), then return or raise.
        raise NotImplementedError("Future.result")

    def exception(self, timeout: float | None = None) -> BaseException | None:
        """The exception the call raised (None if it returned); waits like result()."""
        # TODO: same wait as result(), but return the exception instead of raising it.
        raise NotImplementedError("Future.exception")

    def cancel(self) -> bool:
        """Cancel the call if it has not started; True if the future is (now) cancelled.

        A running or finished call can't be cancelled: return False and change nothing.
        """
        # TODO: only a pending future becomes cancelled; wake everyone waiting on it.
        raise NotImplementedError("Future.cancel")

    def cancelled(self) -> bool:
        # TODO
        raise NotImplementedError("Future.cancelled")

    def running(self) -> bool:
        # TODO
        raise NotImplementedError("Future.running")

    def done(self) -> bool:
        """True once the future is finished (value or exception) or cancelled."""
        # TODO
        raise NotImplementedError("Future.done")

    # -- the pool's side -------------------------------------------------------------------

    def set_running(self) -> bool:
        """Mark the call as started; False (and nothing changes) if it was cancelled first."""
        # TODO: the worker calls this just before running the call, and skips it on False.
        raise NotImplementedError("Future.set_running")

    def set_result(self, value: T) -> None:
        """Finish with a value and wake every waiter."""
        # TODO
        raise NotImplementedError("Future.set_result")

    def set_exception(self, exc: BaseException) -> None:
        """Finish with an exception (result() re-raises it) and wake every waiter."""
        # TODO
        raise NotImplementedError("Future.set_exception")


class ThreadPool:
    """`workers` threads that run submitted calls from one shared queue of work.

    ValueError if workers < 1. The workers are daemon threads, so a program that never calls
    shutdown() can still exit. Queued calls start in the order they were submitted.

    >>> with ThreadPool(2) as pool:
    ...     f = pool.submit(pow, 2, 10)
    ...     f.result(), list(pool.map(abs, [-1, -2]))
    (1024, [1, 2])
    """

    def __init__(self, workers: int) -> None:
        if workers < 1:
            raise ValueError(f"workers must be at least 1, got {workers}")
        self.workers = workers
        self._work: deque[tuple[Future[Any], Callable[..., Any], tuple[Any, ...], dict[str, Any]]]
        self._work = deque()
        # TODO: a lock and condition for the queue, a shutdown flag, and exactly `workers`
        # threads (daemon=True) that each run self._worker.

    def _worker(self) -> None:
        """One worker thread: take work, run it, report through its future; repeat."""
        # TODO: sleep while there is no work (no polling), leave once shut down and drained,
        # skip cancelled futures, and survive calls that raise.
        raise NotImplementedError("ThreadPool._worker")

    def submit(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> Future[T]:
        """Queue `fn(*args, **kwargs)` and return its future at once.

        Raises RuntimeError after shutdown().
        """
        # TODO: refuse after shutdown, queue the call, wake one idle worker.
        raise NotImplementedError("ThreadPool.submit")

    def map(self, fn: Callable[..., T], *iterables: Iterable[Any]) -> Iterator[T]:
        """Like map(fn, *iterables), run on the pool: results come back in input order.

        It stops at the shortest iterable, as map() does. Every call is submitted when map() is
        called, before the first result is awaited, so they run in parallel.
        If a call raised, iterating up to its result raises that exception.
        """
        # TODO: submit them all first, then yield each future's result in order.
        raise NotImplementedError("ThreadPool.map")

    def shutdown(self, wait: bool = True, *, cancel_pending: bool = False) -> None:
        """Accept no more work; calling it again is harmless.

        cancel_pending=True cancels every call that has not started (their futures become
        cancelled); calls already running always finish. wait=True returns only once every
        worker thread has finished (with cancel_pending=False: after all queued work ran).
        """
        # TODO: set the flag, optionally cancel what is still queued, wake all workers, join.
        raise NotImplementedError("ThreadPool.shutdown")

    def __enter__(self) -> ThreadPool:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.shutdown(wait=True)
