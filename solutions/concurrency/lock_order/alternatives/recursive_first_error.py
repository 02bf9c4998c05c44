"""A tiny lockdep: locks that learn their acquisition order and refuse a cycle before it deadlocks.

Alternative: recursive depth-first search with a visited set; the held stack is a tuple rebuilt
on every change and kept in a contextvars.ContextVar (each thread starts with its own context);
the forks are plain locks; the first philosopher to fail claims a one-slot "first error" under a
lock, and everyone is joined through a Barrier-free countdown (a Semaphore the caller drains).
"""

from __future__ import annotations

import contextvars
import threading
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
        self._guard = threading.Lock()
        self._after: dict[str, set[str]] = {}
        self._stack: contextvars.ContextVar[tuple[str, ...]] = contextvars.ContextVar("held", default=())

    def lock(self, name: str) -> OrderedLock:
        return OrderedLock(name, self)

    def edges(self) -> set[tuple[str, str]]:
        with self._guard:
            return {(a, b) for a, bs in self._after.items() for b in bs}

    def held(self) -> list[str]:
        return list(self._stack.get())

    def _find(self, node: str, goal: str, seen: set[str]) -> list[str] | None:
        if node == goal:
            return [node]
        seen.add(node)
        for nxt in self._after.get(node, ()):
            if nxt not in seen:
                rest = self._find(nxt, goal, seen)
                if rest is not None:
                    return [node, *rest]
        return None

    def before_acquire(self, name: str) -> None:
        held = self._stack.get()
        with self._guard:
            for h in reversed(held):  # newest first: any held lock will do for the report
                path = self._find(name, h, set())
                if path:
                    raise LockOrderViolation([h, *path])
            for h in held:
                self._after.setdefault(h, set()).add(name)

    def acquired(self, name: str) -> None:
        self._stack.set((*self._stack.get(), name))

    def released(self, name: str) -> None:
        held = list(self._stack.get())
        if name not in held:
            raise RuntimeError(f"{name} is not held")
        held.remove(name)
        self._stack.set(tuple(held))


class OrderedLock:
    """A non-reentrant lock that reports every acquire and release to its checker."""

    def __init__(self, name: str, checker: LockOrderChecker) -> None:
        self.name = name
        self._checker = checker
        self._lock = threading.Lock()

    def acquire(self, timeout: float | None = None) -> bool:
        self._checker.before_acquire(self.name)
        got = self._lock.acquire() if timeout is None else self._lock.acquire(timeout=timeout)
        if got:
            self._checker.acquired(self.name)
        return got

    def release(self) -> None:
        self._checker.released(self.name)
        self._lock.release()

    def locked(self) -> bool:
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
    n = len(forks)
    finished = threading.Semaphore(0)
    first: list[BaseException] = []
    claim = threading.Lock()

    def philosopher(i: int) -> None:
        order = sorted({i, (i + 1) % n}, key=lambda f: f)
        try:
            for _ in range(meals):
                with forks[order[0]], forks[order[-1]]:
                    eat(i)
        except BaseException as exc:
            with claim:
                if not first:
                    first.append(exc)
        finally:
            finished.release()

    for i in range(n):
        threading.Thread(target=philosopher, args=(i,), daemon=True).start()
    for _ in range(n):
        finished.acquire()
    if first:
        raise first[0]
