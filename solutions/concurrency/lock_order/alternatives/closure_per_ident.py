"""A tiny lockdep: locks that learn their acquisition order and refuse a cycle before it deadlocks.

Alternative: keep the transitive closure (everything reachable from each lock) up to date on
every new edge, so the check is a set look-up; what each thread holds lives in one dict keyed
by thread id, under the checker's lock; forks are bounded semaphores; philosophers run on a
ThreadPoolExecutor.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from types import TracebackType

__all__ = ["LockOrderChecker", "LockOrderViolation", "OrderedLock", "dine"]


class LockOrderViolation(RuntimeError):
    """Acquiring a lock would close a cycle in the lock order: a deadlock waiting to happen."""

    def __init__(self, cycle: list[str]) -> None:
        super().__init__("lock order cycle: " + " -> ".join(cycle))
        self.cycle = cycle


class LockOrderChecker:
    """Remembers, across all threads, which lock was acquired while which other lock was held."""

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._after: dict[str, set[str]] = {}
        self._reach: dict[str, set[str]] = {}  # every lock reachable from the key
        self._held: dict[int, list[str]] = {}

    def lock(self, name: str) -> OrderedLock:
        return OrderedLock(name, self)

    def edges(self) -> set[tuple[str, str]]:
        with self._guard:
            return {(a, b) for a in self._after for b in self._after[a]}

    def held(self) -> list[str]:
        with self._guard:
            return list(self._held.get(threading.get_ident(), []))

    def _path(self, start: str, goal: str) -> list[str]:
        """A path start -> ... -> goal, known to exist: follow the closure greedily."""
        path = [start]
        while path[-1] != goal:
            path.append(next(n for n in self._after[path[-1]] if n == goal or goal in self._reach[n]))
        return path

    def before_acquire(self, name: str) -> None:
        me = threading.get_ident()
        with self._guard:
            held = self._held.get(me, [])
            for h in held:
                if h == name or h in self._reach.get(name, ()):
                    raise LockOrderViolation([h, *self._path(name, h)])
            for h in held:
                if name in self._after.setdefault(h, set()):
                    continue
                self._after[h].add(name)
                gained = {name} | self._reach.get(name, set())
                for reach in list(self._reach.values()):
                    if h in reach:
                        reach |= gained
                self._reach.setdefault(h, set()).update(gained)
                self._reach.setdefault(name, set())

    def acquired(self, name: str) -> None:
        with self._guard:
            self._held.setdefault(threading.get_ident(), []).append(name)

    def released(self, name: str) -> None:
        with self._guard:
            held = self._held.get(threading.get_ident(), [])
            if name not in held:
                raise RuntimeError(f"{name} is not held by this thread")
            held.remove(name)


class OrderedLock:
    """A non-reentrant lock (a bounded semaphore of one) that reports to its checker."""

    def __init__(self, name: str, checker: LockOrderChecker) -> None:
        self.name = name
        self._checker = checker
        self._permit = threading.BoundedSemaphore(1)

    def acquire(self, timeout: float | None = None) -> bool:
        self._checker.before_acquire(self.name)
        if not self._permit.acquire(timeout=timeout):
            return False
        self._checker.acquired(self.name)
        return True

    def release(self) -> None:
        self._checker.released(self.name)
        self._permit.release()

    def locked(self) -> bool:
        if self._permit.acquire(blocking=False):
            self._permit.release()
            return False
        return True

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
    n = len(forks)

    def philosopher(i: int) -> None:
        low, high = min(i, (i + 1) % n), max(i, (i + 1) % n)
        for _ in range(meals):
            with forks[low], forks[high]:
                eat(i)

    with ThreadPoolExecutor(max_workers=max(n, 1)) as pool:
        futures = [pool.submit(philosopher, i) for i in range(n)]
    for future in futures:  # the pool caught BaseException too and kept it in the future
        error = future.exception()
        if error is not None:
            raise error
