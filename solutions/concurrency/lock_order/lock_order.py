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
        # The graph is shared by every thread (that is the point: the A->B of one thread and
        # the B->A of another only meet here), so it has its own small lock. What a thread
        # holds is private to that thread: threading.local, never one shared list.
        self._guard = threading.Lock()
        self._after: dict[str, set[str]] = {}
        self._local = threading.local()

    def lock(self, name: str) -> OrderedLock:
        """A new OrderedLock called `name`, checked by this checker."""
        return OrderedLock(name, self)

    def edges(self) -> set[tuple[str, str]]:
        """Every (first, then) order seen so far, across all threads."""
        with self._guard:
            return {(a, b) for a, afters in self._after.items() for b in afters}

    def held(self) -> list[str]:
        """Names of the OrderedLocks the calling thread holds, oldest first."""
        return list(self._stack())

    def _stack(self) -> list[str]:
        if not hasattr(self._local, "held"):
            self._local.held = []
        stack: list[str] = self._local.held
        return stack

    def _path(self, start: str, goal: str) -> list[str] | None:
        """A path start -> ... -> goal in the order graph (depth-first), or None."""
        seen = {start}
        todo: list[list[str]] = [[start]]
        while todo:
            path = todo.pop()
            if path[-1] == goal:
                return path
            for nxt in self._after.get(path[-1], ()):
                if nxt not in seen:
                    seen.add(nxt)
                    todo.append([*path, nxt])
        return None

    def before_acquire(self, name: str) -> None:
        """Check, then record, the orders that acquiring `name` now would create.

        Raises LockOrderViolation (recording nothing) if it closes a cycle, or if the
        calling thread already holds `name` (a non-reentrant lock waits for itself forever).
        """
        held = self._stack()
        with self._guard:
            # Check every held lock first, record only if all pass: a refused acquire must
            # leave the graph as it was, or the next innocent acquire would be blamed.
            # Transitive paths count: A->B and B->C in two threads, then C->A in a third, is
            # the same deadlock with three parties. A lock we already hold is the shortest
            # cycle of all: _path(name, name) is [name], so it raises [name, name].
            for h in held:
                path = self._path(name, h)
                if path is not None:
                    raise LockOrderViolation([h, *path])
            for h in held:
                self._after.setdefault(h, set()).add(name)

    def acquired(self, name: str) -> None:
        """The calling thread now holds `name`."""
        self._stack().append(name)

    def released(self, name: str) -> None:
        """The calling thread no longer holds `name` (locks may be released in any order).

        RuntimeError if the calling thread does not hold it.
        """
        held = self._stack()
        if name not in held:
            raise RuntimeError(f"release of {name}, which this thread does not hold")
        held.remove(name)


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
        """Check the order, then wait for the lock. True once held; False after `timeout` s."""
        # Check first: once we block on a deadlock there is no one left to raise.
        self._checker.before_acquire(self.name)
        if not self._lock.acquire(timeout=-1 if timeout is None else timeout):
            return False
        self._checker.acquired(self.name)
        return True

    def release(self) -> None:
        """Release the lock (RuntimeError if it isn't held, as threading.Lock does)."""
        # Forget it first: after the real release another thread may take it at once.
        self._checker.released(self.name)
        self._lock.release()

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
    re-raises the first exception a philosopher hit (a LockOrderViolation, say).
    """
    n = len(forks)
    errors: list[BaseException] = []

    def philosopher(i: int) -> None:
        # Resource ordering: every philosopher takes the lower-numbered fork first. The last
        # philosopher therefore reaches "right" before "left", which breaks the circle of
        # waits (and gives the checker a graph with no cycle). Left-then-right for everyone
        # is the classic deadlock: all pick up their left fork, all wait for the right one.
        first, second = sorted((i, (i + 1) % n))
        try:
            for _ in range(meals):
                with forks[first], forks[second]:
                    eat(i)
        except BaseException as exc:  # handed to the caller below
            errors.append(exc)

    threads = [threading.Thread(target=philosopher, args=(i,), name=f"philosopher-{i}", daemon=True) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
