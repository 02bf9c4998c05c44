"""A tiny lockdep: locks that learn their acquisition order and refuse a cycle before it deadlocks.

Alternative: breadth-first search with parent links under a reentrant lock; each OrderedLock is
an owner field guarded by a Condition (wait_for with the timeout); philosophers hand their
errors to the caller through a queue.Queue, in the order they happened.
"""

from __future__ import annotations

import queue
import threading
from collections import deque
from collections.abc import Callable, Sequence
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
        self._guard = threading.RLock()
        self._edges: set[tuple[str, str]] = set()
        self._out: dict[str, list[str]] = {}
        self._local = threading.local()

    def lock(self, name: str) -> OrderedLock:
        return OrderedLock(name, self)

    def edges(self) -> set[tuple[str, str]]:
        with self._guard:
            return set(self._edges)

    def _mine(self) -> list[str]:
        try:
            return self._local.names  # type: ignore[no-any-return]
        except AttributeError:
            self._local.names = []
            return self._local.names  # type: ignore[no-any-return]

    def held(self) -> list[str]:
        return self._mine()[:]

    def _bfs(self, start: str, goals: set[str]) -> list[str] | None:
        parent: dict[str, str | None] = {start: None}
        frontier = deque([start])
        while frontier:
            node = frontier.popleft()
            if node in goals:
                path = [node]
                while (up := parent[path[-1]]) is not None:
                    path.append(up)
                return path[::-1]
            for nxt in self._out.get(node, []):
                if nxt not in parent:
                    parent[nxt] = node
                    frontier.append(nxt)
        return None

    def before_acquire(self, name: str) -> None:
        mine = self._mine()
        with self._guard:
            path = self._bfs(name, set(mine))  # one search for all held locks at once
            if path is not None:
                raise LockOrderViolation([path[-1], *path])
            for h in mine:
                if (h, name) not in self._edges:
                    self._edges.add((h, name))
                    self._out.setdefault(h, []).append(name)

    def acquired(self, name: str) -> None:
        self._mine().append(name)

    def released(self, name: str) -> None:
        mine = self._mine()
        for i in range(len(mine) - 1, -1, -1):
            if mine[i] == name:
                del mine[i]
                return
        raise RuntimeError(f"release of {name}: not held here")


class OrderedLock:
    """A non-reentrant lock made of an owner field and a Condition."""

    def __init__(self, name: str, checker: LockOrderChecker) -> None:
        self.name = name
        self._checker = checker
        self._cond = threading.Condition(threading.Lock())
        self._taken = False

    def acquire(self, timeout: float | None = None) -> bool:
        self._checker.before_acquire(self.name)
        with self._cond:
            if not self._cond.wait_for(lambda: not self._taken, timeout):
                return False
            self._taken = True
        self._checker.acquired(self.name)
        return True

    def release(self) -> None:
        self._checker.released(self.name)
        with self._cond:
            self._taken = False
            self._cond.notify()

    def locked(self) -> bool:
        with self._cond:
            return self._taken

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
    errors: queue.Queue[BaseException] = queue.Queue()

    def philosopher(i: int) -> None:
        a, b = i, (i + 1) % n
        if b < a:  # only the last philosopher: right fork first
            a, b = b, a
        try:
            for _ in range(meals):
                forks[a].acquire()
                try:
                    forks[b].acquire()
                    try:
                        eat(i)
                    finally:
                        forks[b].release()
                finally:
                    forks[a].release()
        except BaseException as exc:
            errors.put(exc)

    threads = [threading.Thread(target=philosopher, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if not errors.empty():
        raise errors.get()
