"""Tests for the LRU and TTL caches: fixed scenarios, freezegun, and cachetools as the oracle."""

from __future__ import annotations

import cachetools
import pytest
from freezegun import freeze_time
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from .lru_ttl_cache import LRUCache, TTLCache

PROPERTY = settings(
    max_examples=100, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow]
)


class Clock:
    """A clock the test moves by hand: injected into TTLCache instead of time.monotonic."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def evicting_lru(capacity: int) -> tuple[LRUCache[str, int], list[tuple[str, int]]]:
    evicted: list[tuple[str, int]] = []
    cache = LRUCache[str, int](capacity, on_evict=lambda k, v: evicted.append((k, v)))
    return cache, evicted


# --- LRU ---------------------------------------------------------------------------------------


def test_get_counts_as_a_use() -> None:
    cache, evicted = evicting_lru(2)
    cache.put("a", 1)
    cache.put("b", 2)
    assert cache.get("a") == 1
    cache.put("c", 3)
    assert evicted == [("b", 2)], (
        f"evicted {evicted}: after get('a'), 'b' is the least recently used entry. A get() must "
        "move its key to the most recent end (OrderedDict.move_to_end), or this is a FIFO cache"
    )
    assert cache.get("a") == 1 and cache.get("c") == 3 and cache.get("b") is None


def test_the_oldest_entry_is_evicted_not_the_newest() -> None:
    cache, evicted = evicting_lru(2)
    for i, key in enumerate("abc"):
        cache.put(key, i)
    assert evicted == [("a", 0)], (
        f"evicted {evicted}, expected [('a', 0)]: OrderedDict.popitem() pops the *newest* entry; "
        "the least recently used one is popitem(last=False)"
    )
    assert "c" in cache and len(cache) == 2


def test_updating_a_key_never_evicts_and_counts_as_a_use() -> None:
    cache, evicted = evicting_lru(2)
    cache.put("a", 1)
    cache.put("b", 2)
    cache.put("a", 10)  # an update of a full cache
    assert evicted == [], (
        f"evicted {evicted} on an update: put() of an existing key doesn't grow the cache, so "
        "it must not evict; check `key in entries` before making room"
    )
    assert cache.get("a") == 10 and len(cache) == 2
    cache.put("c", 3)
    assert evicted == [("b", 2)], "the update made 'a' the most recently used"


def test_in_is_a_peek_that_leaves_the_order_alone() -> None:
    cache, evicted = evicting_lru(2)
    cache.put("a", 1)
    cache.put("b", 2)
    assert "a" in cache and "zzz" not in cache
    cache.put("c", 3)
    assert evicted == [("a", 1)], (
        f"evicted {evicted}: `key in cache` is a peek and must not count as a use, so 'a' was "
        "still the least recently used"
    )


def test_get_returns_the_default_on_a_miss_and_capacity_must_be_positive() -> None:
    cache = LRUCache[str, int](1)
    assert cache.get("nope") is None
    assert cache.get("nope", -1) == -1
    assert len(cache) == 0
    with pytest.raises(ValueError):
        LRUCache[str, int](0)


lru_ops = st.lists(
    st.one_of(
        st.tuples(st.just("put"), st.sampled_from("abcde"), st.integers(0, 9)),
        st.tuples(st.just("get"), st.sampled_from("abcde"), st.just(0)),
        st.tuples(st.just("in"), st.sampled_from("abcde"), st.just(0)),
    ),
    max_size=30,
)


class RecordingLRU(cachetools.LRUCache):  # type: ignore[type-arg]
    """cachetools' LRUCache, recording evictions (the extension point its docs describe)."""

    def __init__(self, maxsize: int) -> None:
        super().__init__(maxsize)
        self.evicted: list[tuple[str, int]] = []

    def popitem(self) -> tuple[str, int]:
        item = super().popitem()
        self.evicted.append(item)
        return item


@PROPERTY
@given(st.integers(1, 4), lru_ops)
def test_lru_behaves_like_cachetools(capacity: int, ops: list[tuple[str, str, int]]) -> None:
    cache, evicted = evicting_lru(capacity)
    oracle = RecordingLRU(capacity)
    for step, (op, key, value) in enumerate(ops):
        where = f"capacity {capacity}, step {step} of {ops[: step + 1]}"
        if op == "put":
            cache.put(key, value)
            oracle[key] = value
        elif op == "get":
            assert cache.get(key) == oracle.get(key), f"get({key!r}) disagrees with cachetools: {where}"
        else:
            assert (key in cache) == (key in oracle), f"{key!r} in cache disagrees: {where}"
        assert evicted == oracle.evicted, (
            f"evictions {evicted} vs cachetools' {oracle.evicted} (least recently used first): {where}"
        )
        assert len(cache) == len(oracle), f"len {len(cache)} vs {len(oracle)}: {where}"


# --- TTL ---------------------------------------------------------------------------------------


def test_an_entry_lives_until_exactly_put_time_plus_ttl() -> None:
    clock = Clock()
    cache = TTLCache[str, int](capacity=4, ttl=10, clock=clock)
    clock.now = 100.0
    cache.put("a", 1)
    clock.now = 109.5
    assert cache.get("a") == 1 and "a" in cache and len(cache) == 1
    clock.now = 110.0
    assert cache.get("a") is None, (
        "an entry put at t=100 with ttl=10 must be gone at t=110 (put-time + ttl), "
        "alive while now < expires_at"
    )
    assert "a" not in cache and len(cache) == 0


def test_ttl_follows_the_injected_clock() -> None:
    clock = Clock()
    cache = TTLCache[str, int](capacity=4, ttl=0.5, clock=clock)
    cache.put("a", 1)
    clock.now = 3600.0
    assert cache.get("a") is None, (
        "an hour passed on the injected clock and the entry is still there: read the time from "
        "the clock passed to __init__, not from time.monotonic() directly"
    )


def test_get_does_not_extend_the_expiry_but_put_does() -> None:
    clock = Clock()
    cache = TTLCache[str, int](capacity=4, ttl=10, clock=clock)
    cache.put("a", 1)
    cache.put("b", 2)
    clock.now = 6.0
    assert cache.get("a") == 1
    cache.put("b", 20)  # a fresh expiry for b: 16
    clock.now = 10.0
    assert cache.get("a") is None, (
        "a was put at 0 with ttl 10 and read at 6: get() must not extend the expiry, only put()"
    )
    clock.now = 15.9
    assert cache.get("b") == 20, "put() of an existing key gives it a fresh ttl"
    clock.now = 16.0
    assert cache.get("b") is None


def test_expired_entries_make_room_before_a_live_one_is_evicted() -> None:
    clock = Clock()
    cache = TTLCache[str, int](capacity=2, ttl=10, clock=clock)
    cache.put("a", 1)  # expires at 10
    clock.now = 5.0
    cache.put("b", 2)  # expires at 15
    clock.now = 6.0
    cache.get("a")  # now b is the least recently used, but a is the one about to expire
    clock.now = 10.5
    cache.put("c", 3)
    assert cache.get("b") == 2, (
        "b (alive until 15) was evicted to make room while a had expired at 10: drop the "
        "expired entries first, evict the least recently used only if the cache is still full"
    )
    assert cache.get("c") == 3 and len(cache) == 2


def test_the_default_clock_is_the_one_freezegun_controls() -> None:
    with freeze_time("2024-03-01 12:00:00") as frozen:
        cache = TTLCache[str, int](capacity=4, ttl=60)
        cache.put("session", 42)
        frozen.tick(59)
        assert cache.get("session") == 42
        frozen.tick(1)
        assert cache.get("session") is None, (
            "60 s passed under freezegun and the entry did not expire: the default clock must be "
            "time.monotonic looked up when the cache is created (clock=None in the signature); "
            "`clock=time.monotonic` as a default argument captures the real function at import, "
            "where freezegun can't replace it"
        )


ttl_ops = st.lists(
    st.one_of(
        st.tuples(st.just("put"), st.sampled_from("abcd"), st.integers(0, 9)),
        st.tuples(st.just("get"), st.sampled_from("abcd"), st.just(0)),
        st.tuples(st.just("in"), st.sampled_from("abcd"), st.just(0)),
        st.tuples(st.just("tick"), st.just(""), st.sampled_from([0, 1, 2, 3, 5])),
    ),
    max_size=30,
)


@PROPERTY
@given(st.integers(1, 3), ttl_ops)
def test_ttl_behaves_like_cachetools(capacity: int, ops: list[tuple[str, str, int]]) -> None:
    clock = Clock()
    cache = TTLCache[str, int](capacity=capacity, ttl=4, clock=clock)
    oracle = cachetools.TTLCache(maxsize=capacity, ttl=4, timer=clock)  # type: ignore[var-annotated]
    for step, (op, key, value) in enumerate(ops):
        where = f"capacity {capacity}, ttl 4, t={clock.now:g}, step {step} of {ops[: step + 1]}"
        if op == "tick":
            clock.now += value
        elif op == "put":
            cache.put(key, value)
            oracle[key] = value
        elif op == "get":
            assert cache.get(key) == oracle.get(key), f"get({key!r}) disagrees with cachetools: {where}"
        else:
            assert (key in cache) == (key in oracle), f"{key!r} in cache disagrees: {where}"
        assert len(cache) == len(oracle), f"len {len(cache)} vs cachetools' {len(oracle)}: {where}"
