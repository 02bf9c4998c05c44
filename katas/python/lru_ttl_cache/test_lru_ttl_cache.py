"""Tests for the LRU and TTL caches: scenarios, freezegun, cachetools as the oracle, and scale."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any

import cachetools
import pytest
from freezegun import freeze_time
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    rule,
    run_state_machine_as_test,
)

from dojo.testing import ManualClock

from .lru_ttl_cache import LRUCache, TTLCache

PROPERTY = settings(
    max_examples=100, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow]
)


def refused(error: type[Exception], action: Callable[[], object], because: str) -> None:
    """`action()` must raise `error`; else fail, saying `because`."""
    try:
        action()
    except error:
        return
    except Exception as exc:  # any other exception is the wrong answer
        pytest.fail(f"raised {exc!r} instead: {because}")
    pytest.fail(f"accepted: {because}")


def evicting_lru(capacity: int) -> tuple[LRUCache[str, int], list[tuple[str, int]]]:
    evicted: list[tuple[str, int]] = []
    cache = LRUCache[str, int](capacity, on_evict=lambda k, v: evicted.append((k, v)))
    return cache, evicted


def present(cache: LRUCache[str, int] | TTLCache[str, int], keys: str) -> str:
    """The keys of `keys` that `in` finds, a peek that changes no order."""
    return "".join(k for k in keys if k in cache)


# --- LRU ---------------------------------------------------------------------------------------


@pytest.mark.stage(1, "the lru cache")
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


@pytest.mark.stage(1, "the lru cache")
def test_the_oldest_entry_is_evicted_not_the_newest() -> None:
    cache, evicted = evicting_lru(2)
    for i, key in enumerate("abc"):
        cache.put(key, i)
    assert evicted == [("a", 0)], (
        f"evicted {evicted}, expected [('a', 0)]: OrderedDict.popitem() pops the *newest* entry; "
        "the least recently used one is popitem(last=False)"
    )
    assert "c" in cache and len(cache) == 2


@pytest.mark.stage(1, "the lru cache")
def test_updating_a_key_never_evicts_and_counts_as_a_use() -> None:
    cache, evicted = evicting_lru(2)
    cache.put("a", 1)
    cache.put("b", 2)
    cache.put("a", 10)  # an update of a full cache
    assert evicted == [], (
        f"evicted {evicted} on an update: put() of an existing key doesn't grow the cache, so "
        "it must not evict; check `key in entries` before making room"
    )
    assert len(cache) == 2
    cache.put("c", 3)  # nothing read 'a' since its update: only the update made it recent
    assert evicted == [("b", 2)], (
        f"evicted {evicted}, expected [('b', 2)]: put('a', 10) is a use, so it must move 'a' to "
        "the most recent end (move_to_end after the update), leaving 'b' the least recently used"
    )
    assert cache.get("a") == 10, "put() of an existing key replaces its value"


@pytest.mark.stage(1, "the lru cache")
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


@pytest.mark.stage(1, "the lru cache")
def test_get_returns_the_default_on_a_miss_and_capacity_must_be_positive() -> None:
    cache = LRUCache[str, int](1)
    assert cache.get("nope") is None
    assert cache.get("nope", -1) == -1
    assert len(cache) == 0
    for capacity in (0, -3):
        refused(ValueError, lambda c=capacity: LRUCache[str, int](c),  # type: ignore[misc]
                f"LRUCache({capacity}): a capacity below 1 is a ValueError")


@pytest.mark.stage(1, "the lru cache")
def test_capacity_one_without_on_evict_keeps_the_newest() -> None:
    cache = LRUCache[str, int](1)  # no on_evict: evicting must still work
    cache.put("a", 1)
    cache.put("b", 2)
    assert present(cache, "ab") == "b" and len(cache) == 1, (
        f"capacity 1 holds {present(cache, 'ab')!r} after put a, put b: the new key stays and the "
        "old one goes, also when no on_evict callback was given (on_evict=None is the default)"
    )
    assert cache.get("b") == 2 and cache.get("a", 0) == 0


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


@pytest.mark.stage(1, "the lru cache")
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


@pytest.mark.stage(2, "expiry")
def test_an_entry_lives_until_exactly_put_time_plus_ttl() -> None:
    clock = ManualClock()
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


@pytest.mark.stage(2, "expiry")
@pytest.mark.parametrize("ask", ["in", "len"])
def test_in_and_len_see_the_expiry_without_a_get_first(ask: str) -> None:
    clock = ManualClock()
    cache = TTLCache[str, int](capacity=4, ttl=10, clock=clock)
    cache.put("a", 1)
    clock.now = 9.0
    cache.put("b", 2)
    clock.now = 10.0  # a is gone, b lives until 19
    answer = ("a" in cache, "b" in cache) if ask == "in" else len(cache)
    expected = (False, True) if ask == "in" else 1
    assert answer == expected, (
        f"at t=10, a (put at 0, ttl 10) has expired and b (put at 9) has not; `{ask}` answered "
        f"{answer}, expected {expected}: `in` and len() must drop (or skip) expired entries "
        "themselves, not rely on an earlier get() or put() to have done it"
    )


@pytest.mark.stage(2, "expiry")
def test_ttl_follows_the_injected_clock() -> None:
    clock = ManualClock()
    cache = TTLCache[str, int](capacity=4, ttl=0.5, clock=clock)
    cache.put("a", 1)
    clock.now = 3600.0
    assert cache.get("a") is None, (
        "an hour passed on the injected clock and the entry is still there: read the time from "
        "the clock passed to __init__, not from time.monotonic() directly"
    )


@pytest.mark.stage(2, "expiry")
def test_get_returns_the_default_on_a_miss_and_after_the_expiry() -> None:
    clock = ManualClock()
    cache = TTLCache[str, int](capacity=2, ttl=5, clock=clock)
    assert cache.get("never", -1) == -1, "get(key, default) returns default for a key never put"
    cache.put("a", 1)
    assert cache.get("a", -1) == 1
    clock.now = 5.0
    assert cache.get("a", -1) == -1, (
        "get('a', -1) after a expired must return the default -1, as for any other miss"
    )


@pytest.mark.stage(2, "expiry")
def test_get_does_not_extend_the_expiry_but_put_does() -> None:
    clock = ManualClock()
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


@pytest.mark.stage(3, "expiry meets recency")
def test_a_re_put_moves_the_key_behind_every_other_in_expiry_order() -> None:
    clock = ManualClock()
    cache = TTLCache[str, int](capacity=4, ttl=10, clock=clock)
    cache.put("a", 1)  # expires at 10 ...
    clock.now = 1.0
    cache.put("b", 2)  # expires at 11
    clock.now = 2.0
    cache.put("a", 3)  # ... now at 12: a expires after b
    clock.now = 11.0
    assert present(cache, "ab") == "a" and len(cache) == 1, (
        f"at t=11 b (put at 1, ttl 10) has expired and a (re-put at 2) lives until 12, but `in` "
        f"finds {present(cache, 'ab')!r} and len() is {len(cache)}: a re-put gives the key the "
        "latest expiry of all, so it must move to the END of the expiry order (move_to_end on the "
        "expiry OrderedDict too); left at its old place, it stops the scan from the front before "
        "the expired entries behind it"
    )
    assert cache.get("b") is None and cache.get("a") == 3
    clock.now = 12.0
    assert present(cache, "ab") == "" and len(cache) == 0, "a, re-put at 2, expires at 12"


@pytest.mark.stage(3, "expiry meets recency")
def test_get_is_a_use_in_the_ttl_cache_too() -> None:
    clock = ManualClock()
    cache = TTLCache[str, int](capacity=2, ttl=100, clock=clock)
    cache.put("a", 1)
    cache.put("b", 2)
    assert cache.get("a") == 1
    cache.put("c", 3)  # nothing has expired: the least recently used live entry goes
    assert present(cache, "abc") == "ac", (
        f"the cache holds {present(cache, 'abc')!r} after put a, put b, get a, put c (capacity 2, "
        "nothing expired): get('a') made a the most recently used, so b must be evicted. The TTL "
        "cache is an LRU cache too: get() moves the key to the recent end (but keeps its expiry)"
    )


@pytest.mark.stage(3, "expiry meets recency")
def test_the_ttl_cache_evicts_its_least_recently_used_live_entry() -> None:
    clock = ManualClock()
    cache = TTLCache[str, int](capacity=2, ttl=100, clock=clock)
    for i, key in enumerate("abc"):
        clock.now = float(i)
        cache.put(key, i)
    assert present(cache, "abc") == "bc", (
        f"the cache holds {present(cache, 'abc')!r} after putting a, b, c into capacity 2: the new "
        "key stays and the least recently used (a) goes; OrderedDict.popitem() would pop the "
        "newest end, the least recently used is popitem(last=False)"
    )


@pytest.mark.stage(3, "expiry meets recency")
def test_a_ttl_update_never_evicts_and_counts_as_a_use() -> None:
    clock = ManualClock()
    cache = TTLCache[str, int](capacity=2, ttl=100, clock=clock)
    cache.put("a", 1)
    cache.put("b", 2)
    cache.put("a", 10)  # an update of a full cache
    assert present(cache, "ab") == "ab", (
        f"the cache holds {present(cache, 'ab')!r} after updating 'a' in a full cache: an update "
        "doesn't grow the cache, so it must not evict"
    )
    cache.put("c", 3)
    assert present(cache, "abc") == "ac", (
        f"the cache holds {present(cache, 'abc')!r} after put a, put b, put a again, put c: the "
        "update made a the most recently used (move_to_end in the recency order), so b goes"
    )
    assert cache.get("a") == 10


@pytest.mark.stage(3, "expiry meets recency")
def test_expired_entries_make_room_before_a_live_one_is_evicted() -> None:
    clock = ManualClock()
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


@pytest.mark.stage(2, "expiry")
def test_capacity_and_ttl_must_be_positive() -> None:
    clock = ManualClock()
    for capacity, ttl in [(0, 1.0), (-1, 1.0), (1, 0.0), (1, -0.5), (0, 0.0)]:
        refused(ValueError,
                lambda c=capacity, t=ttl: TTLCache[str, int](capacity=c, ttl=t, clock=clock),  # type: ignore[misc]
                f"TTLCache(capacity={capacity}, ttl={ttl}): a capacity below 1 or a ttl of 0 or "
                "less is a ValueError")
    cache = TTLCache[str, int](capacity=1, ttl=0.001, clock=clock)  # the smallest legal sizes
    cache.put("a", 1)
    assert cache.get("a") == 1, "capacity 1 and a tiny positive ttl are legal and hold one entry"
    clock.now = 0.001
    assert cache.get("a") is None


@pytest.mark.stage(2, "expiry")
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


TTL = 4.0
KEYS = "abcd"
# How far the clock moves before a step's call: not at all, a little, or to exactly when the
# next live entry expires (or just before or after), where off-by-one and ordering bugs show.
WAITS = [0.0, 0.0, 0.0, 0.5, 1.0, 2.0, "to the next expiry", "to just before it", "to just past it"]
Wait = float | str


class TTLCacheMachine(RuleBasedStateMachine):
    """The TTL cache and cachetools' TTLCache driven side by side by the same calls: puts (many
    of them re-puts of a few keys), gets and peeks, each after the clock moved on (or not).
    After every step, a peek at everything. Moving the clock and calling in one step matters:
    that peek drops the expired entries, so get() and put() meet them only within a step."""

    @initialize(capacity=st.sampled_from([2, 3, 1]))
    def create(self, capacity: int) -> None:
        self.clock = ManualClock()
        self.cache = TTLCache[str, int](capacity=capacity, ttl=TTL, clock=self.clock)
        self.oracle: cachetools.TTLCache[str, int] = cachetools.TTLCache(
            maxsize=capacity, ttl=TTL, timer=self.clock
        )
        self.puts: list[tuple[float, str]] = []  # (time, key) of every put
        self.history: list[str] = [f"TTLCache(capacity={capacity}, ttl={TTL:g})"]

    # -- what the test knows ----------------------------------------------------------------------

    def last_put(self, key: str) -> float:
        return max((t for t, k in self.puts if k == key), default=-TTL)

    def live_by_expiry(self) -> list[str]:
        """The keys cachetools holds unexpired, the next to expire first."""
        return sorted((key for key in KEYS if key in self.oracle), key=self.last_put)

    def where(self) -> str:
        return f"at t={self.clock.now:g}, after " + ", ".join(self.history)

    def cause(self, key: str, ours: bool) -> str:
        """Why the cache holds `key` (ours=True) where cachetools doesn't, or the reverse."""
        last = self.last_put(key)
        if ours and self.clock.now >= last + TTL:
            overtaken = sorted({k for t, k in self.puts if k != key and t <= last < self.last_put(k)})
            if overtaken:
                return (f"{key!r} expired at t={last + TTL:g} (last put at {last:g}) but is still "
                        f"there, and {', '.join(map(repr, overtaken))} was put before it and re-put "
                        "after it: a re-put must move the key to the END of the expiry order, or "
                        "dropping expired entries from the front stops at its old place, before "
                        "the expired entries behind it")
            return (f"{key!r} expired at t={last + TTL:g} (last put at {last:g}, ttl {TTL:g}) but is "
                    "still there: an entry is alive only while now < put-time + ttl, and get(), "
                    "`in` and len() must each drop (or skip) expired entries themselves")
        if ours:
            return (f"{key!r} should have been evicted: a new key in a full cache first drops the "
                    "expired entries, then evicts the least recently used live one (get and put "
                    "are uses, `in` is not)")
        return (f"{key!r} (last put at t={last:g}) should still be there: either it expired early "
                "(a put gives a fresh expiry now + ttl; get() does not change it) or it was evicted "
                "in another's place (only a NEW key evicts; expired entries go first, then the "
                "least recently used live one; get and put are uses, `in` is not)")

    # -- one step: move the clock, then call -------------------------------------------------------

    def wait(self, wait: Wait) -> None:
        if isinstance(wait, str):
            upcoming = [self.last_put(k) + TTL for k in self.live_by_expiry()]
            if not upcoming:
                return
            target = upcoming[0] + {"to the next expiry": 0.0, "to just before it": -0.5,
                                    "to just past it": 0.5}[wait]
        else:
            target = self.clock.now + wait
        if target > self.clock.now:
            self.clock.now = target
            self.history.append(f"clock to {target:g}")

    def put(self, key: str) -> None:
        value = len(self.puts)  # a new value for each put: an update must replace the old one
        self.history.append(f"put({key!r}, {value})")
        self.puts.append((self.clock.now, key))
        self.cache.put(key, value)
        self.oracle[key] = value

    def get(self, key: str) -> None:
        self.history.append(f"get({key!r}, -1)")
        got, expected = self.cache.get(key, -1), self.oracle.get(key, -1)
        assert got == expected, (
            f"get({key!r}, -1) returned {got}, cachetools {expected}: "
            f"{self.cause(key, got != -1)}. {self.where()}"
        )

    def peek(self, len_first: bool) -> None:
        """len() and `in` for every key: peeks, which change no order."""
        self.history.append("len() and `in` for each key" if len_first else "`in` for each key, len()")
        if len_first:
            self.check_len()
        for key in KEYS:
            ours, theirs = key in self.cache, key in self.oracle
            assert ours == theirs, (
                f"`{key!r} in cache` is {ours}, cachetools says {theirs}: {self.cause(key, ours)}. "
                f"{self.where()}"
            )
        self.check_len()

    def check_len(self) -> None:
        assert len(self.cache) == len(self.oracle), (
            f"len() is {len(self.cache)}, cachetools says {len(self.oracle)}: len() counts the "
            f"unexpired entries only. {self.where()}"
        )

    @rule(wait=st.sampled_from(WAITS), key=st.sampled_from(KEYS))
    def put_a_key(self, wait: Wait, key: str) -> None:
        self.wait(wait)
        self.put(key)

    @rule(wait=st.sampled_from(WAITS), near=st.sampled_from(KEYS))
    def put_a_new_key(self, wait: Wait, near: str) -> None:
        """A key the cache doesn't hold (alive), the first from `near` on: into a full cache, it
        must make room."""
        self.wait(wait)
        start = KEYS.index(near)
        absent = [key for key in KEYS[start:] + KEYS[:start] if key not in self.oracle]
        self.put(absent[0])

    @rule(wait=st.sampled_from(WAITS))
    def re_put_the_next_to_expire(self, wait: Wait) -> None:
        """The front of the expiry order, re-put: it must move to the back, behind the entries
        that now expire before it."""
        self.wait(wait)
        if self.live_by_expiry():
            self.put(self.live_by_expiry()[0])

    @rule(wait=st.sampled_from(WAITS), key=st.sampled_from(KEYS))
    def get_a_key(self, wait: Wait, key: str) -> None:
        self.wait(wait)
        self.get(key)

    @rule(wait=st.sampled_from(WAITS))
    def get_the_next_to_expire(self, wait: Wait) -> None:
        """The front of the expiry order, read: now the most recently used, so the recency
        order and the expiry order differ."""
        self.wait(wait)
        if self.live_by_expiry():
            self.get(self.live_by_expiry()[0])

    @invariant()
    def agrees_after_every_step(self) -> None:
        """A peek at everything after each step, len() first every other step: whichever runs
        first meets the expired entries, so each must drop (or skip) them itself."""
        self.steps = getattr(self, "steps", 0) + 1
        self.peek(len_first=self.steps % 2 == 0)


@pytest.mark.stage(3, "expiry meets recency")
def test_ttl_behaves_like_cachetools_step_by_step() -> None:
    run_state_machine_as_test(
        TTLCacheMachine, settings=settings(PROPERTY, max_examples=100, stateful_step_count=20)
    )


# --- scale: O(1) per call, counted, not timed ---------------------------------------------------


class Counted:
    """What the cache did, counted: lines run in its module and comparisons of keys and times."""

    lines = 0
    comparisons = 0

    @classmethod
    def total(cls) -> int:
        return cls.lines + cls.comparisons


class Key:
    """A cache key that counts equality checks: a list scan (list.remove, `in` a list) makes them."""

    __slots__ = ("n",)

    def __init__(self, n: int) -> None:
        self.n = n

    def __hash__(self) -> int:
        return hash(self.n)

    def __eq__(self, other: object) -> bool:
        Counted.comparisons += 1
        return isinstance(other, Key) and other.n == self.n

    def __lt__(self, other: Key) -> bool:  # for a design that orders (time, key) pairs
        Counted.comparisons += 1
        return self.n < other.n


def _counting(name: str) -> Callable[[float, Any], Any]:
    compare = getattr(float, name)

    def method(self: float, other: Any) -> Any:
        Counted.comparisons += 1
        return compare(self, other)

    return method


class Time(float):
    """A clock reading that counts comparisons, so does every expiry time computed from it:
    min(), sorted(), a heap or a loop over the entries all compare them."""

    __hash__ = float.__hash__
    __lt__, __le__ = _counting("__lt__"), _counting("__le__")
    __gt__, __ge__ = _counting("__gt__"), _counting("__ge__")
    __eq__, __ne__ = _counting("__eq__"), _counting("__ne__")  # type: ignore[assignment]

    def __add__(self, other: Any) -> Time:
        return Time(float(self) + float(other))

    __radd__ = __add__

    def __sub__(self, other: Any) -> Time:
        return Time(float(self) - float(other))

    def __rsub__(self, other: Any) -> Time:
        return Time(float(other) - float(self))


@contextmanager
def counting_work(cls: type) -> Iterator[None]:
    """Count the lines the cache's module runs (sys.settrace, in that file only) and comparisons."""
    module_file = cls.get.__code__.co_filename  # what the frames of its methods report

    def line_counter(frame: FrameType, event: str, arg: object) -> Any:
        if event == "line":
            Counted.lines += 1
        return line_counter

    def on_call(frame: FrameType, event: str, arg: object) -> Any:
        return line_counter if frame.f_code.co_filename == module_file else None

    Counted.lines = Counted.comparisons = 0
    previous = sys.gettrace()
    sys.settrace(on_call)
    try:
        yield
    finally:
        sys.settrace(previous)


ROUNDS = 100


def lru_work(n: int) -> int:
    """Work for ROUNDS rounds of get (hit, miss), `in`, len, update, and a new key (an eviction)
    on a full LRU cache of n entries."""
    keys = [Key(i) for i in range(n + ROUNDS)]
    cache = LRUCache[Key, int](n)
    for key in keys[:n]:
        cache.put(key, 0)
    missing = Key(-1)
    with counting_work(LRUCache):
        for r in range(ROUNDS):
            oldest, newest = keys[r], keys[n + r - 1]
            cache.get(oldest)  # a hit at the far end of the recency order
            cache.get(missing)
            _ = newest in cache
            len(cache)
            cache.put(newest, r)  # an update
            cache.put(keys[n + r], r)  # a new key into a full cache: evicts
    return Counted.total()


def ttl_work(n: int) -> int:
    """Work for ROUNDS rounds on a full TTL cache of n entries, put one per second with ttl n,
    so each round the clock moves one second and exactly one entry expires."""
    keys = [Key(i) for i in range(n + ROUNDS)]
    clock = ManualClock(Time(0))
    cache = TTLCache[Key, int](capacity=n, ttl=n, clock=clock)
    for i, key in enumerate(keys[:n]):
        clock.now = Time(i)
        cache.put(key, 0)
    missing = Key(-1)
    with counting_work(TTLCache):
        for r in range(ROUNDS):
            clock.now = Time(n + r)  # keys[r] expires now
            newest = keys[n + r - 1]
            cache.get(keys[r + 1])  # a hit, the next to expire
            cache.get(missing)
            _ = newest in cache
            len(cache)
            cache.put(newest, r)  # an update: a fresh expiry
            cache.put(keys[n + r], r)  # a new key into a full cache
    return Counted.total()


SMALL = 100


SCANS = {
    "LRUCache": "a list for the recency order (list.remove and list.pop(0) are O(n); "
                "OrderedDict.move_to_end and popitem(last=False) are O(1))",
    "TTLCache": "scanning every entry for expired ones (entries expire in the order of their "
                "last put: keep them in a second OrderedDict in that order and drop expired ones "
                "from its front until the first live one)",
}


@pytest.mark.stage(4, "constant work per call")
@pytest.mark.parametrize("work, name", [(lru_work, "LRUCache"), (ttl_work, "TTLCache")])
def test_each_call_does_the_same_work_in_a_cache_8_times_larger(
    work: Callable[[int], int], name: str
) -> None:
    small, large = work(SMALL), work(8 * SMALL)
    ratio = large / max(small, 1)
    assert small > 0, f"counted no work at all in {name}: is it defined in lru_ttl_cache.py?"
    assert ratio < 3, (
        f"the same {6 * ROUNDS} calls did {small} units of work (lines run in the cache's module, "
        f"comparisons of keys and expiry times) on a {name} of {SMALL} entries and {large} on one "
        f"of {8 * SMALL}: {ratio:.1f} times as much, where O(1) per call does the same work at any "
        f"size. Something visits every entry on every call: {SCANS[name]}"
    )
