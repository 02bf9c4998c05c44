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

    Build it on threading.Condition (not queue.Queue, which is this very thing).

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
        # TODO: a lock, the condition(s) waiters sleep on, and a closed flag.

    def put(self, item: T, timeout: float | None = None) -> None:
        """Append `item`, waiting while the queue is full.

        Raises TimeoutError if there is still no room after `timeout` seconds (None: wait
        forever), and Closed if the queue is closed before or while waiting.
        """
        # TODO: wait for room (or close), append, wake a getter.
        raise NotImplementedError("BoundedQueue.put")

    def get(self, timeout: float | None = None) -> T:
        """Remove and return the oldest item, waiting while the queue is empty.

        Raises TimeoutError if nothing arrives within `timeout` seconds, and Closed once the
        queue is closed and drained (items put before close() are still delivered).
        """
        # TODO: wait for an item (or close), pop the oldest, wake a putter.
        raise NotImplementedError("BoundedQueue.get")

    def close(self) -> None:
        """Refuse further puts and wake every waiter; calling it again does nothing."""
        # TODO: set the flag and wake everyone waiting, on both sides.
        raise NotImplementedError("BoundedQueue.close")

    def __len__(self) -> int:
        # TODO: the number of items, read under the lock.
        raise NotImplementedError("BoundedQueue.__len__")
