"""A bounded blocking FIFO queue on one Condition: every change wakes everyone, who re-check."""

from __future__ import annotations

import threading
import time
from collections import deque
from typing import Generic, TypeVar

T = TypeVar("T")


class Closed(Exception):
    """The queue was closed: no more puts, and gets fail once it is drained."""


class BoundedQueue(Generic[T]):
    """One condition for both sides: simpler, and notify_all makes it correct at the cost of
    waking putters when only getters can proceed (a thundering herd on big pools)."""

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be at least 1, got {capacity}")
        self.capacity = capacity
        self._items: deque[T] = deque()
        self._closed = False
        self._changed = threading.Condition()

    def _wait(self, ready: object, deadline: float | None) -> None:
        """Wait until `ready()` holds, or raise TimeoutError at the deadline."""
        while not ready():  # type: ignore[operator]
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                raise TimeoutError("timed out")
            self._changed.wait(remaining)

    def put(self, item: T, timeout: float | None = None) -> None:
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._changed:
            self._wait(lambda: self._closed or len(self._items) < self.capacity, deadline)
            if self._closed:
                raise Closed("put() on a closed queue")
            self._items.append(item)
            self._changed.notify_all()

    def get(self, timeout: float | None = None) -> T:
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._changed:
            self._wait(lambda: self._closed or self._items, deadline)
            if not self._items:
                raise Closed("get() on a closed, drained queue")
            item = self._items.popleft()
            self._changed.notify_all()
            return item

    def close(self) -> None:
        with self._changed:
            self._closed = True
            self._changed.notify_all()

    def __len__(self) -> int:
        with self._changed:
            return len(self._items)
