"""A bounded blocking FIFO queue on two Conditions, with hand-written deadline loops."""

from __future__ import annotations

import threading
import time
from collections import deque
from typing import Generic, TypeVar

T = TypeVar("T")


class Closed(Exception):
    """The queue was closed: no more puts, and gets fail once it is drained."""


class BoundedQueue(Generic[T]):
    """What Condition.wait_for does, written out: a `while` loop and one deadline per call. Each
    side counts its sleepers and notifies only when someone is waiting."""

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be at least 1, got {capacity}")
        self.capacity = capacity
        self._items: deque[T] = deque()
        self._closed = False
        self._mutex = threading.RLock()
        self._room = threading.Condition(self._mutex)
        self._nonempty = threading.Condition(self._mutex)
        self._putters_waiting = 0
        self._getters_waiting = 0

    def put(self, item: T, timeout: float | None = None) -> None:
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._mutex:
            while not self._closed and len(self._items) >= self.capacity:
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    raise TimeoutError(f"queue still full after {timeout} s")
                self._putters_waiting += 1
                try:
                    self._room.wait(remaining)
                finally:
                    self._putters_waiting -= 1
            if self._closed:
                raise Closed("put() on a closed queue")
            self._items.append(item)
            if self._getters_waiting:
                self._nonempty.notify()

    def get(self, timeout: float | None = None) -> T:
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._mutex:
            while not self._items:
                if self._closed:
                    raise Closed("get() on a closed, drained queue")
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    raise TimeoutError(f"queue still empty after {timeout} s")
                self._getters_waiting += 1
                try:
                    self._nonempty.wait(remaining)
                finally:
                    self._getters_waiting -= 1
            item = self._items.popleft()
            if self._putters_waiting:
                self._room.notify()
            return item

    def close(self) -> None:
        with self._mutex:
            self._closed = True
            self._room.notify_all()
            self._nonempty.notify_all()

    def __len__(self) -> int:
        with self._mutex:
            return len(self._items)
