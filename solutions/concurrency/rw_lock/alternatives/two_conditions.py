"""A readers-writer lock: many readers or one writer, and a waiting writer is never starved.

Alternative design: two conditions on one lock, so each change wakes only the side it can let
in: readers sleep on `_readers_ok`, writers on `_writer_ok`. The last reader out and a leaving
writer wake one writer when writers wait; a leaving writer with none waiting, or the last
waiting writer giving up, wakes every reader.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["RWLock"]


class RWLock:
    """Shared (read) or exclusive (write) access, with writer preference."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._readers_ok = threading.Condition(self._lock)
        self._writer_ok = threading.Condition(self._lock)
        self._readers = 0
        self._writer: int | None = None
        self._writers_waiting = 0

    @property
    def readers(self) -> int:
        with self._lock:
            return self._readers

    @property
    def writers_waiting(self) -> int:
        with self._lock:
            return self._writers_waiting

    def acquire_read(self, timeout: float | None = None) -> bool:
        with self._lock:
            if not self._readers_ok.wait_for(
                lambda: self._writer is None and self._writers_waiting == 0, timeout
            ):
                return False
            self._readers += 1
            return True

    def release_read(self) -> None:
        with self._lock:
            if self._readers == 0:
                raise RuntimeError("release_read() but no reader holds the lock")
            self._readers -= 1
            if self._readers == 0 and self._writers_waiting:
                # only a writer can be waiting for the readers to drain, and only one may go;
                # a woken writer re-checks after a timed-out wait too (wait_for), so a wake-up
                # that reaches a writer whose timeout just ran out still lets it in
                self._writer_ok.notify()

    def acquire_write(self, timeout: float | None = None) -> bool:
        with self._lock:
            self._writers_waiting += 1
            try:
                acquired = self._writer_ok.wait_for(
                    lambda: self._writer is None and self._readers == 0, timeout
                )
            finally:
                self._writers_waiting -= 1
            if not acquired:
                if self._writers_waiting == 0:
                    self._readers_ok.notify_all()  # we were the last writer holding them back
                return False
            self._writer = threading.get_ident()
            return True

    def release_write(self) -> None:
        with self._lock:
            if self._writer != threading.get_ident():
                raise RuntimeError("release_write() by a thread that does not hold the write lock")
            self._writer = None
            if self._writers_waiting:
                self._writer_ok.notify()  # writer preference: the next writer, readers wait on
            else:
                self._readers_ok.notify_all()  # every waiting reader may enter at once

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
