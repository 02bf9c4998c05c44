"""An LRU cache and an LRU cache with per-entry expiry (TTL), both on OrderedDict."""

from __future__ import annotations

import time
from collections import OrderedDict
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
        # OrderedDict is a dict plus a doubly linked list: move_to_end and popitem(last=False)
        # are O(1), which is exactly the hash map + linked list an interviewer asks you to build.
        self._entries: OrderedDict[K, V] = OrderedDict()

    def get(self, key: K, default: V | None = None) -> V | None:
        """The value for `key` (now the most recently used), or `default`."""
        if key not in self._entries:
            return default
        self._entries.move_to_end(key)  # a read is a use: without this it is a FIFO cache
        return self._entries[key]

    def put(self, key: K, value: V) -> None:
        """Insert or update `key` (now the most recently used); evict if over capacity."""
        if key in self._entries:
            # An update doesn't grow the cache, so it must not evict anything.
            self._entries[key] = value
            self._entries.move_to_end(key)
            return
        self._entries[key] = value
        if len(self._entries) > self.capacity:
            # last=False pops the oldest end; plain popitem() would drop the entry just added.
            old_key, old_value = self._entries.popitem(last=False)
            if self.on_evict is not None:
                self.on_evict(old_key, old_value)

    def __contains__(self, key: object) -> bool:
        return key in self._entries  # a peek: leaves the order alone

    def __len__(self) -> int:
        return len(self._entries)


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
        # Looked up now, not as a default argument: `clock=time.monotonic` in the signature would
        # capture the real function at import, out of freezegun's reach. monotonic, not time():
        # the wall clock jumps (NTP, DST, an admin), and a cache must not expire or revive then.
        self._clock = clock if clock is not None else time.monotonic
        self._entries: OrderedDict[K, V] = OrderedDict()  # recency order, least recent first
        # Every entry lives exactly ttl after its last put, so expiry order is put order: a second
        # OrderedDict in that order lets expired entries be dropped from the front in O(1) each,
        # instead of scanning everything.
        self._expires: OrderedDict[K, float] = OrderedDict()

    def _drop_expired(self) -> None:
        now = self._clock()
        while self._expires:
            key, expires_at = next(iter(self._expires.items()))
            if now < expires_at:  # alive until expires_at, gone at it
                break
            del self._expires[key]
            del self._entries[key]

    def get(self, key: K, default: V | None = None) -> V | None:
        """The value if present and not expired (now the most recently used), else `default`."""
        self._drop_expired()
        if key not in self._entries:
            return default
        self._entries.move_to_end(key)  # a use, but the expiry stays where put() set it
        return self._entries[key]

    def put(self, key: K, value: V) -> None:
        """Insert or update `key` with a fresh expiry, most recently used; make room if needed."""
        self._drop_expired()  # expired entries go first, so they never push out live ones
        if key not in self._entries and len(self._entries) >= self.capacity:
            old_key, _ = self._entries.popitem(last=False)
            del self._expires[old_key]
        self._entries[key] = value
        self._entries.move_to_end(key)
        self._expires[key] = self._clock() + self.ttl
        self._expires.move_to_end(key)  # a fresh expiry: the latest of all

    def __contains__(self, key: object) -> bool:
        self._drop_expired()
        return key in self._entries

    def __len__(self) -> int:
        self._drop_expired()
        return len(self._entries)
