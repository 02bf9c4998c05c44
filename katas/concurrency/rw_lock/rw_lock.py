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

    Build it on threading.Condition.

    >>> lock = RWLock()
    >>> with lock.read_locked():
    ...     lock.readers
    1
    >>> with lock.write_locked():
    ...     pass
    """

    def __init__(self) -> None:
        # TODO: a Condition, the number of readers holding the lock, which thread (if any) holds
        # it for writing, and how many writers are waiting.
        pass

    @property
    def readers(self) -> int:
        """How many threads hold the read lock right now."""
        # TODO
        raise NotImplementedError("RWLock.readers")

    @property
    def writers_waiting(self) -> int:
        """How many threads are blocked in acquire_write() right now."""
        # TODO
        raise NotImplementedError("RWLock.writers_waiting")

    def acquire_read(self, timeout: float | None = None) -> bool:
        """Wait until no writer holds or waits for the lock, then hold it for reading.

        True once acquired; False if `timeout` seconds (None: forever) passed first.
        """
        # TODO: wait (in a loop, one deadline) while a writer holds it or is waiting.
        raise NotImplementedError("RWLock.acquire_read")

    def release_read(self) -> None:
        """Give back one read hold; RuntimeError if no reader holds the lock."""
        # TODO: the last reader out must wake the waiting writer(s).
        raise NotImplementedError("RWLock.release_read")

    def acquire_write(self, timeout: float | None = None) -> bool:
        """Wait until no one holds the lock, then hold it alone. True, or False after `timeout`.

        While it waits, it counts as a waiting writer (new readers queue behind it); a writer
        that gives up stops counting, and the readers it held back may go.
        """
        # TODO: count yourself as waiting, wait for no readers and no writer, stop counting.
        raise NotImplementedError("RWLock.acquire_write")

    def release_write(self) -> None:
        """Release the write lock; RuntimeError if the calling thread does not hold it."""
        # TODO: clear the owner and wake everyone: all the waiting readers may enter together.
        raise NotImplementedError("RWLock.release_write")

    @contextmanager
    def read_locked(self) -> Iterator[None]:
        """`with lock.read_locked():` holds the read lock for the block, however it exits."""
        # TODO
        raise NotImplementedError("RWLock.read_locked")
        yield

    @contextmanager
    def write_locked(self) -> Iterator[None]:
        """`with lock.write_locked():` holds the write lock for the block, however it exits."""
        # TODO
        raise NotImplementedError("RWLock.write_locked")
        yield
