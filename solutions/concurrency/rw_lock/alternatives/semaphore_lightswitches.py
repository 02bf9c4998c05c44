"""A readers-writer lock: many readers or one writer, and a waiting writer is never starved.

Alternative design: the writer-priority solution from "The Little Book of Semaphores", with
deadlines. Two binary semaphores are turnstiles: `_room_empty` is held by the readers as a group
(the first in takes it, the last out gives it back: a "lightswitch") or by the one writer
inside; `_no_readers` is held by the waiting and active writers as a group, so a writer that
arrives closes the door to new readers at once.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["RWLock"]


def _left(deadline: float | None) -> float | None:
    return None if deadline is None else max(0.0, deadline - time.monotonic())


def _take(semaphore: threading.Semaphore, deadline: float | None) -> bool:
    return semaphore.acquire(timeout=_left(deadline))


class _Lightswitch:
    """The first one in takes `room`, the last one out gives it back; `count` says how many are in."""

    def __init__(self) -> None:
        self.mutex = threading.Semaphore(1)
        self.count = 0

    def enter(self, room: threading.Semaphore, deadline: float | None) -> bool:
        if not _take(self.mutex, deadline):
            return False
        try:
            if self.count == 0 and not _take(room, deadline):
                return False
            self.count += 1
            return True
        finally:
            self.mutex.release()

    def leave(self, room: threading.Semaphore) -> None:
        with self.mutex:
            self.count -= 1
            if self.count == 0:
                room.release()


class RWLock:
    """Shared (read) or exclusive (write) access, with writer preference."""

    def __init__(self) -> None:
        self._room_empty = threading.Semaphore(1)  # held by the readers inside, or the writer
        self._no_readers = threading.Semaphore(1)  # held while any writer waits or writes
        self._reading = _Lightswitch()  # readers inside
        self._writing = _Lightswitch()  # writers waiting or inside
        self._counts = threading.Lock()  # guards the two numbers below and the owner
        self._readers = 0
        self._writers_waiting = 0
        self._writer: int | None = None

    @property
    def readers(self) -> int:
        with self._counts:
            return self._readers

    @property
    def writers_waiting(self) -> int:
        with self._counts:
            return self._writers_waiting

    def acquire_read(self, timeout: float | None = None) -> bool:
        deadline = None if timeout is None else time.monotonic() + timeout
        if not _take(self._no_readers, deadline):  # shut while a writer waits or writes
            return False
        try:
            if not self._reading.enter(self._room_empty, deadline):
                return False
            with self._counts:
                self._readers += 1
            return True
        finally:
            self._no_readers.release()  # the next reader (or writer) through the turnstile

    def release_read(self) -> None:
        with self._counts:
            if self._readers == 0:
                raise RuntimeError("release_read() but no reader holds the lock")
            self._readers -= 1
        self._reading.leave(self._room_empty)

    def acquire_write(self, timeout: float | None = None) -> bool:
        deadline = None if timeout is None else time.monotonic() + timeout
        if not self._writing.enter(self._no_readers, deadline):  # the door to readers is shut
            return False
        with self._counts:
            self._writers_waiting += 1  # counted once the door is shut: new readers wait now
        try:
            if not _take(self._room_empty, deadline):
                self._writing.leave(self._no_readers)  # the last writer to leave reopens the door
                return False
            with self._counts:
                self._writer = threading.get_ident()
            return True
        finally:
            with self._counts:
                self._writers_waiting -= 1

    def release_write(self) -> None:
        with self._counts:
            if self._writer != threading.get_ident():
                raise RuntimeError("release_write() by a thread that does not hold the write lock")
            self._writer = None
        self._room_empty.release()
        self._writing.leave(self._no_readers)

    @contextmanager
    def read_locked(self) -> Iterator[None]:
        self.acquire_read()
        try:
            yield
        finally:
            self.release_read()

    @contextmanager
    def write_locked(self) -> Iterator[None]:
        self.acquire_write()
        try:
            yield
        finally:
            self.release_write()
