"""A bounded blocking FIFO queue on two counting semaphores: free slots and queued items."""

from __future__ import annotations

import threading
from collections import deque
from typing import Generic, TypeVar

T = TypeVar("T")


class Closed(Exception):
    """The queue was closed: no more puts, and gets fail once it is drained."""


class BoundedQueue(Generic[T]):
    """Dijkstra's producer/consumer: `slots` counts room, `items` counts what can be taken; a
    plain lock guards the deque. Semaphore.acquire(timeout=...) keeps one deadline itself;
    close() hands one permit to each thread that may be asleep in acquire()."""

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be at least 1, got {capacity}")
        self.capacity = capacity
        self._items: deque[T] = deque()
        self._closed = False
        self._lock = threading.Lock()
        self._slots = threading.Semaphore(capacity)
        self._available = threading.Semaphore(0)
        self._putters = 0  # threads inside put()/get() that may be asleep in acquire()
        self._getters = 0

    def put(self, item: T, timeout: float | None = None) -> None:
        with self._lock:
            if self._closed:
                raise Closed("put() on a closed queue")
            self._putters += 1
        got_slot = self._slots.acquire(timeout=timeout)
        with self._lock:
            self._putters -= 1
            if self._closed:  # closed while we waited (or close() handed us its permit)
                raise Closed("put() on a closed queue")
            if not got_slot:
                raise TimeoutError(f"queue still full after {timeout} s")
            self._items.append(item)
        self._available.release()

    def get(self, timeout: float | None = None) -> T:
        with self._lock:
            if self._closed and not self._items:
                raise Closed("get() on a closed, drained queue")
            self._getters += 1
        got_item = self._available.acquire(timeout=timeout)
        with self._lock:
            self._getters -= 1
            if self._items and (got_item or self._closed):
                # after close() the permits no longer match the items one to one: the deque decides
                item = self._items.popleft()
                self._slots.release()
                return item
            if self._closed:
                raise Closed("get() on a closed, drained queue")
            raise TimeoutError(f"queue still empty after {timeout} s")

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            # one permit for each thread asleep in acquire(): every waiter wakes and sees `closed`
            putters, getters = self._putters, self._getters
        if putters:
            self._slots.release(putters)
        if getters:
            self._available.release(getters)

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)
