"""A bounded blocking FIFO queue built on threading.Condition, with timeouts and close()."""

from __future__ import annotations

import threading
from collections import deque
from typing import Generic, TypeVar

T = TypeVar("T")


class Closed(Exception):
    """The queue was closed: no more puts, and gets fail once it is drained."""


class BoundedQueue(Generic[T]):
    """A FIFO queue holding at most `capacity` items, safe to share between threads.

    >>> q = BoundedQueue[int](2)
    >>> q.put(1); q.put(2)
    >>> q.get(), len(q)
    (1, 1)
    """

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be at least 1, got {capacity}")
        self.capacity = capacity
        self._items: deque[T] = deque()
        self._closed = False
        # Two conditions over one lock: putters wait for room, getters wait for items, and each
        # side wakes only the other side.
        self._lock = threading.Lock()
        self._not_full = threading.Condition(self._lock)
        self._not_empty = threading.Condition(self._lock)

    def put(self, item: T, timeout: float | None = None) -> None:
        """Append `item`, waiting while the queue is full.

        Raises TimeoutError if there is still no room after `timeout` seconds (None: wait
        forever), and Closed if the queue is closed before or while waiting.
        """
        with self._not_full:
            # `wait_for` loops: a wake-up is only a hint that the state may have changed
            # (another putter may have taken the room first, or the wake-up was spurious), and
            # it counts the timeout as one deadline for the whole wait.
            ready = self._not_full.wait_for(
                lambda: self._closed or len(self._items) < self.capacity, timeout
            )
            if self._closed:
                raise Closed("put() on a closed queue")
            if not ready:
                raise TimeoutError(f"queue still full after {timeout} s")
            self._items.append(item)
            self._not_empty.notify()

    def get(self, timeout: float | None = None) -> T:
        """Remove and return the oldest item, waiting while the queue is empty.

        Raises TimeoutError if nothing arrives within `timeout` seconds, and Closed once the
        queue is closed and drained (items put before close() are still delivered).
        """
        with self._not_empty:
            ready = self._not_empty.wait_for(lambda: self._closed or self._items, timeout)
            if self._items:
                item = self._items.popleft()
                self._not_full.notify()
                return item
            if self._closed:
                raise Closed("get() on a closed, drained queue")
            assert not ready
            raise TimeoutError(f"queue still empty after {timeout} s")

    def close(self) -> None:
        """Refuse further puts and wake every waiter; calling it again does nothing."""
        with self._lock:
            self._closed = True
            # notify_all: every waiter on either side must see the new state, not just one.
            self._not_full.notify()
            self._not_empty.notify()

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)

