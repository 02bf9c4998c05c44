"""An LRU cache and an LRU cache with per-entry expiry (TTL), on linked lists built by hand."""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable
from typing import Any, Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class Node:
    """An entry in one or two doubly linked lists: recency order, and expiry order for TTL."""

    __slots__ = ("expires_at", "key", "next", "next_exp", "prev", "prev_exp", "value")

    def __init__(self, key: Any = None, value: Any = None, expires_at: float = 0.0) -> None:
        self.key, self.value, self.expires_at = key, value, expires_at
        self.prev: Node = self
        self.next: Node = self
        self.prev_exp: Node = self
        self.next_exp: Node = self


def unlink(node: Node) -> None:
    node.prev.next, node.next.prev = node.next, node.prev


def append(sentinel: Node, node: Node) -> None:
    """Link `node` just before the sentinel: the most recent end."""
    last = sentinel.prev
    last.next, node.prev, node.next, sentinel.prev = node, last, sentinel, node


def unlink_exp(node: Node) -> None:
    node.prev_exp.next_exp, node.next_exp.prev_exp = node.next_exp, node.prev_exp


def append_exp(sentinel: Node, node: Node) -> None:
    last = sentinel.prev_exp
    last.next_exp, node.prev_exp, node.next_exp, sentinel.prev_exp = node, last, sentinel, node


class LRUCache(Generic[K, V]):
    """At most `capacity` entries; when a new key would exceed it, the least recently used entry
    goes (and `on_evict(key, value)` is called, if given). get() and put() both count as a use;
    `key in cache` does not. capacity < 1 raises ValueError. Every operation O(1).

    >>> cache = LRUCache[str, int](2)
    >>> cache.put("a", 1); cache.put("b", 2); cache.get("a")
    1
    >>> cache.put("c", 3)  # evicts "b": "a" was used more recently
    >>> "b" in cache, len(cache)
    (False, 2)
    """

    def __init__(self, capacity: int, on_evict: Callable[[K, V], None] | None = None) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be at least 1, got {capacity}")
        self.capacity = capacity
        self.on_evict = on_evict
        # No OrderedDict: a dict of nodes and a circular list through a sentinel, whose next is
        # the least recently used node and whose prev the most recently used.
        self._nodes: dict[K, Node] = {}
        self._order = Node()

    def get(self, key: K, default: V | None = None) -> V | None:
        node = self._nodes.get(key)
        if node is None:
            return default
        unlink(node)
        append(self._order, node)
        return node.value  # type: ignore[no-any-return]

    def put(self, key: K, value: V) -> None:
        node = self._nodes.get(key)
        if node is not None:
            node.value = value
            unlink(node)
            append(self._order, node)
            return
        if len(self._nodes) == self.capacity:
            oldest = self._order.next
            unlink(oldest)
            del self._nodes[oldest.key]
            if self.on_evict is not None:
                self.on_evict(oldest.key, oldest.value)
        node = Node(key, value)
        self._nodes[key] = node
        append(self._order, node)

    def __contains__(self, key: object) -> bool:
        return key in self._nodes

    def __len__(self) -> int:
        return len(self._nodes)


class TTLCache(Generic[K, V]):
    """An LRU cache whose entries also expire `ttl` seconds after their last put(): at
    put-time + ttl an entry is gone (get() misses, `in` is False, len() doesn't count it).
    A put() of a new key into a full cache first drops expired entries, then, if still full,
    the least recently used one. get() counts as a use but does not extend the expiry.
    capacity < 1 or ttl <= 0 raises ValueError. Every call O(1) (amortized: each expired entry
    is dropped once).

    Time comes from `clock()` (seconds, never going backwards); by default time.monotonic,
    looked up when the cache is created, so freezegun's freeze_time can stand in for it.

    >>> now = [0.0]
    >>> cache = TTLCache[str, int](capacity=10, ttl=5, clock=lambda: now[0])
    >>> cache.put("a", 1); now[0] = 4.9; cache.get("a")
    1
    >>> now[0] = 5.0; cache.get("a") is None
    True
    """

    def __init__(
        self, capacity: int, ttl: float, clock: Callable[[], float] | None = None
    ) -> None:
        if capacity < 1 or ttl <= 0:
            raise ValueError(f"need capacity >= 1 and ttl > 0, got {capacity}, {ttl}")
        self.capacity = capacity
        self.ttl = ttl
        self._clock = clock if clock is not None else time.monotonic
        # Each node is in two circular lists: recency (prev/next) and expiry (prev_exp/next_exp).
        self._nodes: dict[K, Node] = {}
        self._order = Node()

    def _remove(self, node: Node) -> None:
        unlink(node)
        unlink_exp(node)
        del self._nodes[node.key]

    def _drop_expired(self) -> None:
        now = self._clock()
        while self._order.next_exp is not self._order and self._order.next_exp.expires_at <= now:
            self._remove(self._order.next_exp)

    def get(self, key: K, default: V | None = None) -> V | None:
        self._drop_expired()
        node = self._nodes.get(key)
        if node is None:
            return default
        unlink(node)
        append(self._order, node)  # a use; its place in the expiry list stays
        return node.value  # type: ignore[no-any-return]

    def put(self, key: K, value: V) -> None:
        self._drop_expired()
        node = self._nodes.get(key)
        if node is None:
            if len(self._nodes) == self.capacity:
                self._remove(self._order.next)
            node = Node(key)
            self._nodes[key] = node
        else:
            unlink(node)
            unlink_exp(node)
        node.value, node.expires_at = value, self._clock() + self.ttl
        append(self._order, node)
        append_exp(self._order, node)

    def __contains__(self, key: object) -> bool:
        self._drop_expired()
        return key in self._nodes

    def __len__(self) -> int:
        self._drop_expired()
        return len(self._nodes)
