"""A readers-writer lock: many readers or one writer, and a waiting writer is never starved.

Alternative design: direct hand-off. A thread that can't go in queues a ticket with a
`threading.Event` of its own and sleeps on it; whoever changes the state (a release, a writer
giving up) runs `_grant()`, which decides who goes next and hands them the lock: the first
waiting writer once the lock is free, else every waiting reader. No one re-checks a condition
after waking: being woken means being let in.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["RWLock"]


class _Ticket:
    """One waiting thread: what it wants, who it is, and the event set when it is let in."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.ident = threading.get_ident()
        self.granted = threading.Event()


class RWLock:
    """Shared (read) or exclusive (write) access, with writer preference."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._waiting: deque[_Ticket] = deque()  # in arrival order
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

    def _grant(self) -> None:
        """With the lock held: let in whoever may go now (writers first)."""
        if self._writer is not None:
            return
        if self._writers_waiting:
            if self._readers == 0:
                ticket = next(t for t in self._waiting if t.kind == "write")
                self._waiting.remove(ticket)
                self._writers_waiting -= 1
                self._writer = ticket.ident
                ticket.granted.set()
            return  # readers wait behind a waiting writer
        while self._waiting:  # no writer waits: only readers are queued, and all may go
            ticket = self._waiting.popleft()
            self._readers += 1
            ticket.granted.set()

    def _wait(self, ticket: _Ticket, timeout: float | None) -> bool:
        if ticket.granted.wait(timeout):
            return True
        with self._lock:
            if ticket.granted.is_set():
                return True  # let in just as the time ran out: it holds the lock now
            self._waiting.remove(ticket)
            if ticket.kind == "write":
                self._writers_waiting -= 1
                self._grant()  # the readers it held back may go
            return False

    def acquire_read(self, timeout: float | None = None) -> bool:
        with self._lock:
            if self._writer is None and self._writers_waiting == 0:
                self._readers += 1
                return True
            ticket = _Ticket("read")
            self._waiting.append(ticket)
        return self._wait(ticket, timeout)

    def release_read(self) -> None:
        with self._lock:
            if self._readers == 0:
                raise RuntimeError("release_read() but no reader holds the lock")
            self._readers -= 1
            if self._readers == 0:
                self._grant()

    def acquire_write(self, timeout: float | None = None) -> bool:
        with self._lock:
            if self._writer is None and self._readers == 0 and self._writers_waiting == 0:
                self._writer = threading.get_ident()
                return True
            ticket = _Ticket("write")
            self._waiting.append(ticket)
            self._writers_waiting += 1
        return self._wait(ticket, timeout)

    def release_write(self) -> None:
        with self._lock:
            if self._writer != threading.get_ident():
                raise RuntimeError("release_write() by a thread that does not hold the write lock")
            self._writer = None
            self._grant()

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
