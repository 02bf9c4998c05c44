"""An LRU cache and an LRU cache with per-entry expiry (TTL), both on OrderedDict."""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


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
        # TODO: an OrderedDict kept in recency order (least recent first).

    def get(self, key: K, default: V | None = None) -> V | None:
        """The value for `key` (now the most recently used), or `default`."""
        # TODO
        raise NotImplementedError("LRUCache.get")

    def put(self, key: K, value: V) -> None:
        """Insert or update `key` (now the most recently used); evict if over capacity."""
        # TODO: an update never evicts anything.
        raise NotImplementedError("LRUCache.put")

    def __contains__(self, key: object) -> bool:
        # TODO: a peek: it must not change the recency order.
        raise NotImplementedError("LRUCache.__contains__")

    def __len__(self) -> int:
        # TODO
        raise NotImplementedError("LRUCache.__len__")


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
        # TODO: the clock (see the docstring about the default), an OrderedDict of the entries
        #       in recency order, and a way to find the expired ones without looking at every
        #       entry on every call (O(1): see "Complexity" in the README).

    def get(self, key: K, default: V | None = None) -> V | None:
        """The value if present and not expired (now the most recently used), else `default`."""
        # TODO
        raise NotImplementedError("TTLCache.get")

    def put(self, key: K, value: V) -> None:
        """Insert or update `key` with a fresh expiry, most recently used; make room if needed."""
        # TODO
        raise NotImplementedError("TTLCache.put")

    def __contains__(self, key: object) -> bool:
        # TODO: present and not expired; does not change the recency order.
        raise NotImplementedError("TTLCache.__contains__")

    def __len__(self) -> int:
        # TODO: unexpired entries only.
        raise NotImplementedError("TTLCache.__len__")
