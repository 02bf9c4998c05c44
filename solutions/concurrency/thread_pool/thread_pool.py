"""A fixed-size thread pool that hands back futures: submit, map, shutdown, exceptions included."""

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
    """The result of a call that runs later, on another thread: a value, an exception, or cancelled.

    States: pending -> running -> finished, or pending -> cancelled. Whoever waits on a future
    (result(), exception()) sleeps until it is finished or cancelled: no polling, no spinning.

    >>> f = Future[int]()
    >>> f.set_running()
    True
    >>> f.set_result(42)
    >>> f.done(), f.result()
    (True, 42)
    """

    def __init__(self) -> None:
        # One Condition guards the state and is what waiters sleep on: wait() releases the lock
        # and blocks in the kernel, so a thread waiting for a result costs no CPU.
        self._cond = threading.Condition()
        self._state = PENDING
        self._value: T | None = None
        self._error: BaseException | None = None

    # -- the waiting side ------------------------------------------------------------------

    def _wait_done(self, timeout: float | None) -> None:
        """Sleep until finished or cancelled; called with the condition held."""
        # wait_for loops over wake-ups and keeps one deadline for the whole timeout.
        if not self._cond.wait_for(lambda: self._state in (FINISHED, CANCELLED), timeout):
            raise TimeoutError(f"future still {self._state} after {timeout} s")
        if self._state == CANCELLED:
            raise CancelledError()

    def result(self, timeout: float | None = None) -> T:
        """The call's return value, waiting up to `timeout` seconds (None: forever).

        Raises the call's own exception if it raised one, CancelledError if the future was
        cancelled, TimeoutError if it is still not done after `timeout` seconds.
        """
        with self._cond:
            self._wait_done(timeout)
            if self._error is not None:
                # The caller sees the very exception the call raised, traceback included.
                raise self._error
            return self._value  # type: ignore[return-value]

    def exception(self, timeout: float | None = None) -> BaseException | None:
        """The exception the call raised (None if it returned); waits like result()."""
        with self._cond:
            self._wait_done(timeout)
            return self._error

    def cancel(self) -> bool:
        """Cancel the call if it has not started; True if the future is (now) cancelled.

        A running or finished call can't be cancelled: return False and change nothing.
        """
        with self._cond:
            if self._state in (RUNNING, FINISHED):
                return False
            self._state = CANCELLED
            # Everyone blocked in result() must wake up and see CancelledError.
            self._cond.notify_all()
            return True

    def cancelled(self) -> bool:
        with self._cond:
            return self._state == CANCELLED

    def running(self) -> bool:
        with self._cond:
            return self._state == RUNNING

    def done(self) -> bool:
        """True once the future is finished (value or exception) or cancelled."""
        with self._cond:
            return self._state in (FINISHED, CANCELLED)

    # -- the pool's side -------------------------------------------------------------------

    def set_running(self) -> bool:
        """Mark the call as started; False (and nothing changes) if it was cancelled first."""
        # Checking and switching under the lock closes the race with cancel(): either the
        # cancel wins (the worker skips the call) or the start wins (cancel returns False).
        with self._cond:
            if self._state == CANCELLED:
                return False
            self._state = RUNNING
            return True

    def set_result(self, value: T) -> None:
        """Finish with a value and wake every waiter."""
        with self._cond:
            self._value, self._state = value, FINISHED
            self._cond.notify_all()  # any number of threads may be waiting on one future

    def set_exception(self, exc: BaseException) -> None:
        """Finish with an exception (result() re-raises it) and wake every waiter."""
        with self._cond:
            self._error, self._state = exc, FINISHED
            self._cond.notify_all()


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
        # Idle workers sleep on this condition; submit() wakes one, shutdown() wakes all.
        self._cond = threading.Condition()
        self._shutdown = False
        # A fixed set of threads, started once and reused: creating a thread per call costs
        # far more than the small calls a pool is for, and would not bound the parallelism.
        # daemon=True: a stuck call can't keep the interpreter alive at exit.
        self._threads = [
            threading.Thread(target=self._worker, name=f"pool-worker-{i}", daemon=True)
            for i in range(workers)
        ]
        for thread in self._threads:
            thread.start()

    def _worker(self) -> None:
        """One worker thread: take work, run it, report through its future; repeat."""
        while True:
            with self._cond:
                # Blocks in the kernel until submit() or shutdown() notifies: zero CPU while idle.
                self._cond.wait_for(lambda: self._work or self._shutdown)
                if not self._work:
                    return  # shut down and nothing left to do
                future, fn, args, kwargs = self._work.popleft()
            # Run the call outside the lock, or the workers would take turns instead of
            # running in parallel.
            if not future.set_running():
                continue  # cancelled while it was queued
            try:
                value = fn(*args, **kwargs)
            except BaseException as exc:  # any exception: it is delivered through the future
                # The exception belongs to whoever submitted the call, not to this thread: an
                # uncaught one would kill the worker and leave the future pending forever.
                future.set_exception(exc)
            else:
                future.set_result(value)

    def submit(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> Future[T]:
        """Queue `fn(*args, **kwargs)` and return its future at once.

        Raises RuntimeError after shutdown().
        """
        future: Future[T] = Future()
        with self._cond:
            if self._shutdown:
                raise RuntimeError("submit() after shutdown()")
            self._work.append((future, fn, args, kwargs))
            self._cond.notify()  # one item of work needs one worker
        return future

    def map(self, fn: Callable[..., T], *iterables: Iterable[Any]) -> Iterator[T]:
        """Like map(fn, *iterables), run on the pool: results come back in input order.

        It stops at the shortest iterable, as map() does. Every call is submitted when map() is
        called, before the first result is awaited, so they run in parallel.
        If a call raised, iterating up to its result raises that exception.
        """
        # Submitting here, not inside a generator, starts the work now rather than at the
        # first next(); waiting on the futures in input order keeps the order.
        futures = [self.submit(fn, *args) for args in zip(*iterables, strict=False)]

        def results() -> Iterator[T]:
            for future in futures:
                yield future.result()

        return results()

    def shutdown(self, wait: bool = True, *, cancel_pending: bool = False) -> None:
        """Accept no more work; calling it again is harmless.

        cancel_pending=True cancels every call that has not started (their futures become
        cancelled); calls already running always finish. wait=True returns only once every
        worker thread has finished (with cancel_pending=False: after all queued work ran).
        """
        with self._cond:
            self._shutdown = True
            if cancel_pending:
                while self._work:
                    self._work.popleft()[0].cancel()
            # Every idle worker must wake to see the flag and leave: notify_all, not notify.
            self._cond.notify_all()
        if wait:
            for thread in self._threads:
                if thread is not threading.current_thread():  # a call may shut its own pool
                    thread.join()

    def __enter__(self) -> ThreadPool:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.shutdown(wait=True)
