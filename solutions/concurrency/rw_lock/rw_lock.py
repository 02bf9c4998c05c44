"""A readers-writer lock: many readers or one writer, and a waiting writer is never starved."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["RWLock"]


class RWLock:
    """Shared (read) or exclusive (write) access, with writer preference.

    - Any number of threads may hold the read lock at once, while no thread holds the write lock.
    - One thread at a time may hold the write lock, while no thread holds the read lock.
    - Writer preference: once a writer is waiting, new readers wait too (behind it), so a
      steady stream of overlapping readers can't keep a writer out forever.
    - When a writer releases, a waiting writer goes next; if none waits, every reader
      waiting at that moment may enter together.
    - `timeout` is one deadline for the whole wait, however often the thread is woken;
      0 or less: don't wait (a free lock is still acquired); None: wait forever.
    - Not reentrant: a thread that holds the lock must not acquire it again.

    >>> lock = RWLock()
    >>> with lock.read_locked():
    ...     lock.readers
    1
    >>> with lock.write_locked():
    ...     pass
    """

    def __init__(self) -> None:
        # One condition for both kinds of waiter: every state change that can let someone in
        # (last reader out, writer out, writer gives up) calls notify_all(), and each waiter
        # re-checks its own predicate. Two conditions would wake fewer threads, at the price of
        # more places to get wrong.
        self._cond = threading.Condition(threading.Lock())
        self._readers = 0
        self._writer: int | None = None  # ident of the thread holding the write lock
        self._writers_waiting = 0

    @property
    def readers(self) -> int:
        """How many threads hold the read lock right now."""
        with self._cond:
            return self._readers

    @property
    def writers_waiting(self) -> int:
        """How many threads are blocked in acquire_write() right now."""
        with self._cond:
            return self._writers_waiting

    def acquire_read(self, timeout: float | None = None) -> bool:
        """Wait until no writer holds or waits for the lock, then hold it for reading.

        True once acquired; False if `timeout` seconds (None: forever) passed first.
        """
        with self._cond:
            # Writer preference: a waiting writer also keeps new readers out. Without that
            # second half, readers that keep overlapping never let the count reach zero and the
            # writer starves. wait_for loops over wake-ups and keeps one deadline.
            if not self._cond.wait_for(
                lambda: self._writer is None and self._writers_waiting == 0, timeout
            ):
                return False
            self._readers += 1
            return True

    def release_read(self) -> None:
        """Give back one read hold; RuntimeError if no reader holds the lock."""
        with self._cond:
            if self._readers == 0:
                # Like threading.Lock: releasing what isn't held is a bug in the caller, and
                # going negative would let a writer in beside the real readers later.
                raise RuntimeError("release_read() but no reader holds the lock")
            self._readers -= 1
            if self._readers == 0:
                self._cond.notify_all()  # the last reader out lets a writer in

    def acquire_write(self, timeout: float | None = None) -> bool:
        """Wait until no one holds the lock, then hold it alone. True, or False after `timeout`.

        While it waits, it counts as a waiting writer (new readers queue behind it); a writer
        that gives up stops counting, and the readers it held back may go.
        """
        with self._cond:
            self._writers_waiting += 1
            try:
                acquired = self._cond.wait_for(
                    lambda: self._writer is None and self._readers == 0, timeout
                )
            finally:
                # On every path (acquired, timed out, interrupted): we no longer wait.
                self._writers_waiting -= 1
            if not acquired:
                # Readers may be sleeping only because we were waiting: tell them we left.
                self._cond.notify_all()
                return False
            self._writer = threading.get_ident()
            return True

    def release_write(self) -> None:
        """Release the write lock; RuntimeError if the calling thread does not hold it."""
        with self._cond:
            if self._writer != threading.get_ident():
                raise RuntimeError("release_write() by a thread that does not hold the write lock")
            self._writer = None
            # notify_all, not notify: every waiting reader may enter at once, and a waiting
            # writer must get its chance too; each re-checks its own condition.
            self._cond.notify_all()

    @contextmanager
    def read_locked(self) -> Iterator[None]:
        """`with lock.read_locked():` holds the read lock for the block, however it exits."""
        self.acquire_read()
        try:
            yield
        finally:
            # finally: an exception in the block must not leave the lock held forever.
            self.release_read()

    @contextmanager
    def write_locked(self) -> Iterator[None]:
        """`with lock.write_locked():` holds the write lock for the block, however it exits."""
        self.acquire_write()
        try:
            yield
        finally:
            self.release_write()
