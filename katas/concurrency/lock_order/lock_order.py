"""A tiny lockdep: locks that learn their acquisition order and refuse a cycle before it deadlocks."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from types import TracebackType

__all__ = ["LockOrderChecker", "LockOrderViolation", "OrderedLock", "dine"]


class LockOrderViolation(RuntimeError):
    """Acquiring a lock would close a cycle in the lock order: a deadlock waiting to happen.

    `cycle` lists lock names from a held lock through the order graph back to itself,
    e.g. ["B", "A", "B"]: A was once taken while holding B... and now B is wanted while
    holding A.
    """

    def __init__(self, cycle: list[str]) -> None:
        super().__init__("lock order cycle: " + " -> ".join(cycle))
        self.cycle = cycle


class LockOrderChecker:
    """Remembers, across all threads, which lock was acquired while which other lock was held.

    An edge (a, b) means "some thread acquired b while it held a". Acquiring `new` while
    holding `h` is refused (LockOrderViolation, raised *before* blocking) if the graph already
    has a path new -> ... -> h: one thread may then wait for `new` while holding `h` and
    another wait for `h` while holding `new`, and neither ever wakes.

    >>> checker = LockOrderChecker()
    >>> a, b = checker.lock("A"), checker.lock("B")
    >>> with a, b:
    ...     checker.held()
    ['A', 'B']
    >>> sorted(checker.edges())
    [('A', 'B')]
    """

    def __init__(self) -> None:
        # TODO: the order graph shared by all threads (and a lock guarding it), and what each
        # thread holds (private to that thread).
        pass

    def lock(self, name: str) -> OrderedLock:
        """A new OrderedLock called `name`, checked by this checker."""
        return OrderedLock(name, self)

    def edges(self) -> set[tuple[str, str]]:
        """Every (first, then) order seen so far, across all threads."""
        # TODO
        raise NotImplementedError("LockOrderChecker.edges")

    def held(self) -> list[str]:
        """Names of the OrderedLocks the calling thread holds, oldest first."""
        # TODO
        raise NotImplementedError("LockOrderChecker.held")

    def before_acquire(self, name: str) -> None:
        """Check, then record, the orders that acquiring `name` now would create.

        Raises LockOrderViolation (recording nothing) if it closes a cycle, or if the
        calling thread already holds `name` (a non-reentrant lock waits for itself forever).
        Otherwise records held -> name for EVERY lock the caller holds. Checking and recording
        are one step under the checker's lock (two threads must not both pass, then both
        record); the search visits each lock once.
        """
        # TODO: for each lock the caller holds, is there a path name -> ... -> held? Then raise.
        # Otherwise record held -> name for each.
        raise NotImplementedError("LockOrderChecker.before_acquire")

    def acquired(self, name: str) -> None:
        """The calling thread now holds `name`."""
        # TODO
        raise NotImplementedError("LockOrderChecker.acquired")

    def released(self, name: str) -> None:
        """The calling thread no longer holds `name` (locks may be released in any order).

        RuntimeError if the calling thread does not hold it.
        """
        # TODO
        raise NotImplementedError("LockOrderChecker.released")


class OrderedLock:
    """A non-reentrant lock that reports every acquire and release to its checker.

    acquire() checks the order *before* it blocks, so a cycle raises LockOrderViolation
    even in a run where the other thread is long gone and no deadlock would have happened.
    """

    def __init__(self, name: str, checker: LockOrderChecker) -> None:
        self.name = name
        self._checker = checker
        self._lock = threading.Lock()

    def acquire(self, timeout: float | None = None) -> bool:
        """Check the order, then wait for the lock. True once held; False after `timeout` s.

        timeout=0 does not wait at all; timeout=None waits as long as it takes.
        """
        # TODO: tell the checker before you block, and again once you hold it.
        raise NotImplementedError("OrderedLock.acquire")

    def release(self) -> None:
        """Release the lock (RuntimeError if it isn't held, as threading.Lock does)."""
        # TODO
        raise NotImplementedError("OrderedLock.release")

    def locked(self) -> bool:
        """True while some thread holds the lock."""
        return self._lock.locked()

    def __enter__(self) -> OrderedLock:
        self.acquire()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()


def dine(forks: Sequence[OrderedLock], meals: int, eat: Callable[[int], None]) -> None:
    """The dining philosophers, without deadlock: len(forks) philosophers, one thread each.

    Philosopher i needs forks[i] and forks[(i + 1) % n]; it calls eat(i) while holding both,
    `meals` times. dine() returns when every philosopher has eaten `meals` times, and
    re-raises the first exception a philosopher hit (a LockOrderViolation, say; a
    BaseException such as KeyboardInterrupt too).
    """
    # TODO: one thread per philosopher; in which order does each pick up its two forks?
    raise NotImplementedError("dine")
