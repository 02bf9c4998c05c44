"""Tests for the cache-aside cache, against a real Redis (Redis itself is the oracle).

The loader is the test's: it counts calls and can read the source, then block on an event, or
raise. Races are forced, not hoped for: the test holds the load lock in its own connection, holds
a loader while 50 reader threads arrive, or runs another reader's code between two round trips of
your client (`SlowLink`). Waiting is observed through an injected clock and sleep, never timed.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
import redis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test

from dojo.testing import Background, wait_until
from fixtures.redis_link import SlowLink

from .redis_cache_aside import Cache

SOFT, HARD = 1000, 60_000  # ms
ONE_LOAD = ("look and lock in ONE atomic step (a Lua script: the entry, else SET lock NX PX), or look again "
            "once you hold the lock: a reader that took the lock after another stored a fresh value must "
            "return that value, not load again")
STALE_SET = ("a get that looked at the cache before invalidate() must not store what it loaded: bump a "
             "generation in invalidate and compare it (read BEFORE the load) in the same Lua script that "
             "stores, or revoke the reader's lease (its lock token)")
OWN_LOCK = ("release the lock only if it still holds YOUR token, compare and delete in one step (Lua): a "
            "load that outlived lock_ttl_ms finds another reader's lock")


def entry(key: str) -> str:
    return f"cache:{key}"  # the README fixes the key names


def lock(key: str) -> str:
    return f"lock:cache:{key}"


class SourceDown(Exception):
    """The loader's failure: the source of truth did not answer."""


class Cancelled(BaseException):
    """A cancellation (as asyncio.CancelledError, SystemExit): a BaseException, not an Exception."""


class Loader:
    """The source of truth: a dict. Each call is recorded; it reads the source FIRST (a slow reader
    holds the old row while it is paused), then waits for `gate` if one is set, then raises if
    `failures` says so, else returns what it read (None: no such record)."""

    def __init__(self, source: dict[str, str | None] | None = None) -> None:
        self.source: dict[str, str | None] = dict(source or {})
        self.calls: list[str] = []
        self.guard = threading.Lock()
        self.gate: threading.Event | None = None
        self.entered = threading.Event()
        self.failures = 0
        self.error: type[BaseException] = SourceDown

    def __call__(self, key: str) -> str | None:
        with self.guard:
            self.calls.append(key)
            fail = self.failures > 0
            self.failures -= fail
        value = self.source.get(key)
        self.entered.set()
        if self.gate is not None and not self.gate.wait(15):
            raise AssertionError("the test never opened the loader's gate")
        if fail:
            raise self.error(key)
        return value


class FakeTime:
    """An injected clock and sleep: time moves only when the test or the cache's sleep moves it;
    `on_sleep(n)` runs after the n-th sleep. A cache that looks again without sleeping is stopped."""

    def __init__(self, on_sleep: Callable[[int], None] | None = None) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []
        self.idle = 0
        self.on_sleep = on_sleep

    def clock(self) -> float:
        self.idle += 1
        if self.idle > 300:
            raise AssertionError("get read the clock 300 times without calling the injected sleep: it spins, "
                                 "hammering Redis while it waits. sleep(retry_ms / 1000) between looks")
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
        self.idle = 0
        if self.on_sleep is not None:
            self.on_sleep(len(self.sleeps))


class Waits:
    """For many threads: a clock that stands still and a sleep that records who slept (1 ms, real)."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleepers: set[str] = set()
        self.guard = threading.Lock()

    def clock(self) -> float:
        return self.now

    def sleep(self, _seconds: float) -> None:
        with self.guard:
            self.sleepers.add(threading.current_thread().name)
        time.sleep(0.001)


def make(client: redis.Redis, loader: Loader, fake: FakeTime | Waits | None = None, **options: Any) -> Cache:
    fake = fake or FakeTime()
    options = {"soft_ttl_ms": SOFT, "hard_ttl_ms": HARD, **options}
    return Cache(client, loader, clock=fake.clock, sleep=fake.sleep, **options)


def redis_now_ms(client: redis.Redis) -> float:
    """Redis' own clock (TIME), in milliseconds."""
    seconds, micros = client.time()
    return seconds * 1000 + micros / 1000


def ttl_set_between(client: redis.Redis, key: str, since_ms: float) -> tuple[int, float]:
    """The TTLs (ms) `key` can have been given if it was set after Redis' clock read `since_ms`: at
    least its PTTL now, at most that plus the time since (both read in one MULTI, on Redis' clock,
    so a slow machine widens the range but never makes a right TTL fall outside it)."""
    with client.pipeline(transaction=True) as pipe:
        pipe.pttl(key)
        pipe.time()
        pttl, (seconds, micros) = pipe.execute()
    return pttl, pttl + seconds * 1000 + micros / 1000 - since_ms


def ttl_was(client: redis.Redis, key: str, since_ms: float, ttl_ms: int) -> bool:
    """True if `key` was set after `since_ms` with an expiry of exactly ttl_ms (to Redis' 1 ms clock)."""
    low, high = ttl_set_between(client, key, since_ms)
    return low >= 0 and low - 2 <= ttl_ms <= high + 2


def pttl_near(client: redis.Redis, key: str, ttl_ms: int) -> bool:
    """True if `key` expires within ttl_ms and was set at most 1 s ago."""
    return ttl_ms - 1000 <= client.pttl(key) <= ttl_ms


def hold_lock(client: redis.Redis, key: str) -> None:
    """The test's own connection holds the load lock: "another reader is loading"."""
    client.set(lock(key), "another reader", px=60_000)


def lock_untouched(client: redis.Redis, key: str) -> bool:
    return client.get(lock(key)) == "another reader" and pttl_near(client, lock(key), 60_000)


def warm_up(client: redis.Redis) -> None:
    """One whole get and invalidate on another key, so that scripts are cached in Redis and the
    round trips counted later are the cache's own, not a NOSCRIPT and a SCRIPT LOAD."""
    cache = make(client, Loader({"warm": "up"}))
    cache.get("warm")
    cache.invalidate("warm")


# Strings a learner might pick to mark None (or an entry's parts) in Redis: each is a value.
MARKERS = ["None", "none", "null", "nil", "NULL", "n", "v", "0", "-1", "false", "", " ", "[]", "{}", '""', "null\n",
           '{"value": null}', '{"value": "x", "fresh_until": 0}', "[null]", "[]:0", ":", "0:n", "n:", "\x00", "\\N"]
JSON_TEXT = st.builds(json.dumps, st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=5),
                                               lambda inner: st.lists(inner, max_size=3)
                                               | st.dictionaries(st.text(max_size=5), inner, max_size=3),
                                               max_leaves=6))
NOT_A_MARKER = ("any str is a value and comes back as itself; only the loader's None means 'no record'. Store "
                "None so that no str can be mistaken for it (a hash without the value field, a prefix on every "
                "value, a JSON null), not as a string such as 'None', 'null' or ''")
UNIQUE = itertools.count()


# -- stage 1: read-through ----------------------------------------------------------------------

@pytest.mark.stage(1, "read-through")
class TestReadThrough:
    def test_a_miss_loads_once_and_stores_with_the_hard_ttl(self, redis_client: redis.Redis) -> None:
        loader = Loader({"user:1": "Ada"})
        cache = make(redis_client, loader, hard_ttl_ms=45_250)
        since = redis_now_ms(redis_client)
        assert cache.get("user:1") == "Ada", "get must return what the loader returned"
        assert loader.calls == ["user:1"], f"a miss must call loader(key) once; calls: {loader.calls}"
        low, high = ttl_set_between(redis_client, entry("user:1"), since)
        assert ttl_was(redis_client, entry("user:1"), since, 45_250), (
            f"after a load, {entry('user:1')!r} has PTTL {low} (-2: no such key, -1: no expiry), so it was set to "
            f"expire in {low}..{high:.0f} ms; it must expire hard_ttl_ms=45250 after it was stored: SET/HSET it, "
            "then PX/PEXPIRE in milliseconds (not EX/EXPIRE: seconds, rounded)"
        )
        assert [cache.get("user:1") for _ in range(3)] == ["Ada"] * 3
        assert loader.calls == ["user:1"], f"a fresh entry was loaded again: calls {loader.calls}"
        assert not redis_client.exists(lock("user:1")), f"{lock('user:1')!r} is left after the load"

    def test_the_lock_is_held_while_the_loader_runs_with_a_token_per_get(self, redis_client: redis.Redis) -> None:
        seen: list[tuple[str | None, tuple[int, float]]] = []
        since: list[float] = []

        def loader(key: str) -> str:
            seen.append((redis_client.get(lock(key)), ttl_set_between(redis_client, lock(key), since[-1])))
            return "v"

        fake = FakeTime()
        cache = Cache(redis_client, loader, soft_ttl_ms=SOFT, hard_ttl_ms=HARD, lock_ttl_ms=7250,
                      clock=fake.clock, sleep=fake.sleep)
        since.append(redis_now_ms(redis_client))
        cache.get("k")
        fake.now += 5  # stale: the second get refreshes
        since.append(redis_now_ms(redis_client))
        cache.get("k")
        assert len(seen) == 2 and all(value is not None for value, _ in seen), (
            f"while the loader ran, {lock('k')!r} was {seen}: take the load lock (SET NX PX) before loading"
        )
        ttls = [f"PTTL {low}, so set to {low}..{high:.0f} ms" for _, (low, high) in seen]
        assert all(low >= 0 and low - 2 <= 7250 <= high + 2 for _, (low, high) in seen), (
            f"the lock while loading: {ttls} (-1: no expiry): SET it with NX and PX lock_ttl_ms=7250 in ONE "
            "command, in milliseconds (not EX: seconds, rounded), so a loader that dies does not lock the key "
            "forever, nor longer than lock_ttl_ms"
        )
        assert seen[0][0] != seen[1][0], (
            f"two gets took the lock with the same value {seen[0][0]!r}: the lock holds a token unique to "
            f"the get that took it, or one reader's release frees another's lock. {OWN_LOCK}"
        )
        assert not redis_client.exists(lock("k")), "the lock is left after the load: release it"

    def test_none_empty_and_unicode_are_values_and_cached(self, redis_client: redis.Redis) -> None:
        source: dict[str, str | None] = {"missing": None, "empty": "", "uni": "naïve ☃ 🚀 \n\x00 x"}
        source |= {f"looks like a marker {i}": marker for i, marker in enumerate(MARKERS)}
        loader = Loader(source)
        cache = make(redis_client, loader)
        for _ in range(3):
            got = {key: cache.get(key) for key in source}
            assert got == source, (
                f"get returned {got}, the source holds {source}: '' is a value, not None (test `is None`, "
                "not truthiness), a cached None comes back as None, and any str is a value, even one that "
                f"looks like your encoding of None: {NOT_A_MARKER}"
            )
        assert sorted(loader.calls) == sorted(source), (
            f"three rounds of gets loaded {loader.calls}: each key must load once. A loader's None means "
            "'no such record' and is cached too (negative caching), or every get of a missing record goes "
            "to the source; '' is a value, not None"
        )

    def test_keys_are_independent(self, redis_client: redis.Redis) -> None:
        loader = Loader({"a": "1", "b": "2"})
        cache = make(redis_client, loader)
        hold_lock(redis_client, "b")
        with pytest.raises(TimeoutError):
            make(redis_client, loader, wait_ms=0).get("b")
        assert cache.get("a") == "1", "key a was not served while b's lock was held: one lock per key"
        redis_client.delete(lock("b"))
        assert (cache.get("a"), cache.get("b")) == ("1", "2")
        cache.invalidate("a")
        assert cache.get("b") == "2" and loader.calls == ["a", "b"], (
            f"invalidate('a') made b load again: calls {loader.calls}"
        )

    def test_invalidate_makes_the_next_get_load(self, redis_client: redis.Redis) -> None:
        loader = Loader({"k": "old"})
        cache = make(redis_client, loader)
        cache.invalidate("never-cached")  # nothing to drop: no error
        assert cache.get("k") == "old"
        loader.source["k"] = "new"
        cache.invalidate("k")
        assert cache.get("k") == "new", "after the source was written and invalidate(k), get returned the old value"
        assert cache.get("k") == "new" and loader.calls == ["k", "k"], f"calls: {loader.calls}"
        assert pttl_near(redis_client, entry("k"), HARD), "the value loaded after an invalidation is stored"

    def test_the_times_must_be_in_range(self, redis_client: redis.Redis) -> None:
        loader = Loader({"k": "v"})
        bad = [{"soft_ttl_ms": 0, "hard_ttl_ms": 10}, {"soft_ttl_ms": 11, "hard_ttl_ms": 10},
               {"lock_ttl_ms": 0}, {"retry_ms": 0}, {"wait_ms": -1}]
        for options in bad:
            with pytest.raises(ValueError):
                make(redis_client, loader, **options)
        ok = [{"soft_ttl_ms": 1, "hard_ttl_ms": 1}, {"soft_ttl_ms": 10, "hard_ttl_ms": 10},
              {"lock_ttl_ms": 1, "retry_ms": 1, "wait_ms": 0}]
        for options in ok:
            make(redis_client, loader, **options)
        assert not redis_client.keys("*"), "building a Cache wrote to Redis"


@pytest.mark.stage(1, "read-through")
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(value=st.none() | st.sampled_from(MARKERS) | st.text() | JSON_TEXT)
def test_any_str_comes_back_as_itself_and_only_none_as_none(
    redis_client: redis.Redis, value: str | None,
) -> None:
    key = f"value-{next(UNIQUE)}"
    loader = Loader({key: value})
    got = [make(redis_client, loader).get(key), make(redis_client, loader).get(key)]
    assert got[0] == value and type(got[0]) is type(value), (
        f"the loader returned {value!r}; the get that loaded it returned {got[0]!r}: return what the loader "
        "returned"
    )
    assert got[1] == value and type(got[1]) is type(value) and loader.calls == [key], (
        f"the loader returned {value!r}; read back from the cache by another Cache it is {got[1]!r} "
        f"(loads: {len(loader.calls)}): {NOT_A_MARKER}"
    )


# -- stage 2: soft and hard TTL -----------------------------------------------------------------

@pytest.mark.stage(2, "soft and hard TTL")
class TestSoftAndHardTTL:
    def test_fresh_until_exactly_the_soft_ttl_then_refreshed(self, redis_client: redis.Redis) -> None:
        loader = Loader({"k": "v1"})
        fake = FakeTime()
        cache = make(redis_client, loader, fake, soft_ttl_ms=500)
        cache.get("k")  # stored at 1000.0: fresh while clock() < 1000.5
        loader.source["k"] = "v2"
        fake.now = 1000.499
        assert cache.get("k") == "v1" and len(loader.calls) == 1, (
            "at 499 ms of a 500 ms soft TTL the entry is fresh: serve it without loading"
        )
        fake.now = 1000.5
        assert cache.get("k") == "v2" and len(loader.calls) == 2, (
            f"at exactly 500 ms of a 500 ms soft TTL the entry is stale and the lock free: get must "
            f"refresh it (calls {loader.calls}). Fresh while clock() < stored + soft_ttl_ms / 1000 (<, not <=; "
            "the injected clock, in seconds)"
        )
        long = make(redis_client, loader, fake, soft_ttl_ms=60_000)
        long.get("m")  # stored at 1000.5: fresh while clock() < 1060.5
        fake.now = 1060.499
        long.get("m")
        assert len(loader.calls) == 3, "at 59.999 s of a 60 s soft TTL the entry is fresh: serve it"
        fake.now = 1060.5
        long.get("m")
        assert len(loader.calls) == 4, (
            "at exactly 60 s of a 60 s soft TTL the entry is stale: clock() is in seconds, soft_ttl_ms in "
            "milliseconds (x 1000, exactly)"
        )

    def test_a_refresh_resets_both_ttls(self, redis_client: redis.Redis) -> None:
        loader = Loader({"k": "v1"})
        fake = FakeTime()
        cache = make(redis_client, loader, fake, soft_ttl_ms=500)
        cache.get("k")
        redis_client.pexpire(entry("k"), 5000)
        fake.now = 1002.0
        loader.source["k"] = "v2"
        assert cache.get("k") == "v2"
        assert pttl_near(redis_client, entry("k"), HARD), (
            f"a refresh stored a new value but left PTTL {redis_client.pttl(entry('k'))}: store with PX "
            f"hard_ttl_ms={HARD} again"
        )
        fake.now = 1002.499
        assert cache.get("k") == "v2" and len(loader.calls) == 2, (
            "the soft TTL counts from the refresh (clock() when storing), not from the first load"
        )

    def test_the_soft_ttl_counts_from_when_the_value_is_stored_not_from_the_look(
        self, redis_client: redis.Redis,
    ) -> None:
        fake = FakeTime()
        source, calls = {"k": "v1"}, []

        def slow_loader(key: str) -> str:
            calls.append(fake.now)
            fake.now += 0.875  # the load takes 875 ms of the injected clock
            return source[key]

        cache = Cache(redis_client, slow_loader, soft_ttl_ms=1000, hard_ttl_ms=HARD, clock=fake.clock,
                      sleep=fake.sleep)
        for looked_at in (1000.0, 1001.875):  # a miss, then a refresh of the stale entry
            fake.now = looked_at
            cache.get("k")  # stored at looked_at + 0.875: fresh until looked_at + 1.875
            fake.now = looked_at + 1.5
            loads = len(calls)
            cache.get("k")
            assert len(calls) == loads, (
                f"get looked at {looked_at}, the loader took 0.875 s and the value was stored at "
                f"{looked_at + 0.875}; with soft_ttl_ms=1000 it is fresh until {looked_at + 1.875}, yet a get "
                f"at {looked_at + 1.5} loaded again: an entry stored when clock() read t is fresh while "
                "clock() < t + soft_ttl_ms / 1000, t read when storing (after the loader returned), not when "
                "the get looked"
            )
            fake.now = looked_at + 1.875
            source["k"] = f"after {looked_at}"
        assert cache.get("k") == "after 1001.875" and len(calls) == 3, (
            f"at stored + soft_ttl_ms the entry is stale and the lock free: get refreshes it (loads at {calls})"
        )

    def test_stale_with_the_lock_held_is_served_at_once(self, redis_client: redis.Redis) -> None:
        loader = Loader({"k": "v1"})
        fake = FakeTime()
        cache = make(redis_client, loader, fake)
        cache.get("k")
        loader.source["k"] = "v2"
        fake.now += 3600
        hold_lock(redis_client, "k")
        try:
            got = cache.get("k")
        except TimeoutError:
            pytest.fail("a stale entry, while another reader held the lock, made get wait until it timed out: "
                        "stale-while-revalidate returns the stale value at once")
        assert got == "v1", f"stale with the lock held: get returned {got!r}, not the stale value 'v1'"
        assert fake.sleeps == [] and len(loader.calls) == 1, (
            f"stale with the lock held: get slept {fake.sleeps} and loaded {len(loader.calls) - 1} more "
            "time(s): stale-while-revalidate returns the stale value at once, no wait, no load"
        )
        assert lock_untouched(redis_client, "k"), "get changed another reader's lock"

    def test_a_hard_expired_entry_is_never_served(self, redis_client: redis.Redis) -> None:
        loader = Loader({"k": "v1"})
        fake = FakeTime()
        cache = make(redis_client, loader, fake, wait_ms=0)
        cache.get("k")
        fake.now += 3600
        redis_client.pexpire(entry("k"), 1)
        wait_until(lambda: not redis_client.exists(entry("k")), what="the entry to expire")
        hold_lock(redis_client, "k")
        try:
            got = cache.get("k")
        except TimeoutError:
            pass
        else:
            pytest.fail(f"the entry's hard TTL had passed and another reader held the lock; get returned "
                        f"{got!r}: past hard_ttl_ms nothing stale is served (keep stale values only in Redis, "
                        "under cache:{key}, whose expiry is the hard TTL)")
        redis_client.delete(lock("k"))
        loader.source["k"] = "v2"
        assert cache.get("k") == "v2" and len(loader.calls) == 2

    def test_every_sequence_of_calls_agrees_with_a_model(self, redis_client: redis.Redis) -> None:
        run_state_machine_as_test(
            lambda: CacheModel(redis_client),
            settings=settings(max_examples=30, stateful_step_count=20, deadline=None),
        )


KEYS = st.sampled_from(["a", "b"])
VALUES = st.sampled_from(["x", "", "ü☃", None])


class CacheModel(RuleBasedStateMachine):
    """Two keys; the model knows each entry (value, fresh until) and whether the test holds the lock.
    Times are multiples of 1/8 s, exact in binary, and cross the soft TTL (1 s) exactly."""

    def __init__(self, client: redis.Redis) -> None:
        super().__init__()
        client.flushdb()
        self.client = client
        self.loader = Loader({"a": "x", "b": None})
        self.fake = FakeTime()
        self.cache = make(client, self.loader, self.fake, wait_ms=100, retry_ms=50)
        self.entries: dict[str, tuple[str | None, float]] = {}
        self.held: set[str] = set()

    @rule(dt=st.sampled_from([0.125, 0.5, 0.875, 1.0, 2.5]))
    def time_passes(self, dt: float) -> None:
        self.fake.now += dt

    @rule(key=KEYS)
    def get(self, key: str) -> None:
        calls, now, cached = len(self.loader.calls), self.fake.now, self.entries.get(key)
        fresh = cached is not None and now < cached[1]
        must_load = not fresh and key not in self.held
        failing = must_load and self.loader.failures > 0
        try:
            got = self.cache.get(key)
        except SourceDown:
            assert failing, "get raised the loader's error, but the loader did not fail"
        except TimeoutError:
            assert cached is None and key in self.held, (
                f"get timed out; the entry was {cached} at {now}, lock held by another: {key in self.held}")
        else:
            assert not failing, "the loader raised, but get returned: let the error out"
            if fresh or key in self.held:
                assert cached is not None and got == cached[0], (
                    f"get({key!r}) at {now} returned {got!r}; the entry is {cached} (value, fresh until), "
                    f"the lock {'held by another reader' if key in self.held else 'free'}")
            else:
                assert got == self.loader.source.get(key), f"get({key!r}) returned {got!r} after a load"
                self.entries[key] = (got, now + SOFT / 1000)
        loaded = len(self.loader.calls) - calls
        assert loaded == must_load, (
            f"get({key!r}) at {now} loaded {loaded} time(s); entry {cached} (value, fresh until), lock "
            f"{'held by another reader' if key in self.held else 'free'}: load only when the entry is stale "
            "or gone and you took the lock")
        self.loader.failures = 0

    @rule(key=KEYS, value=VALUES)
    def write_then_invalidate(self, key: str, value: str | None) -> None:
        self.loader.source[key] = value
        self.cache.invalidate(key)
        self.entries.pop(key, None)
        if not self.client.exists(lock(key)):  # the README allows it: the lock as a lease, revoked
            self.held.discard(key)

    @rule(key=KEYS)
    def hard_ttl_passes(self, key: str) -> None:
        self.client.pexpire(entry(key), 1)
        wait_until(lambda: not self.client.exists(entry(key)), what="the entry to expire")
        self.entries.pop(key, None)

    @rule()
    def next_load_fails(self) -> None:
        self.loader.failures = 1

    @rule(key=KEYS)
    def another_reader_takes_or_drops_the_lock(self, key: str) -> None:
        if key in self.held:
            self.client.delete(lock(key))
            self.held.discard(key)
        else:
            hold_lock(self.client, key)
            self.held.add(key)

    @invariant()
    def locks_agree(self) -> None:
        for key in ("a", "b"):
            want = "another reader" if key in self.held else None
            assert self.client.get(lock(key)) == want, (
                f"{lock(key)!r} holds {self.client.get(lock(key))!r} after the call, expected {want!r}: "
                f"release your own lock after loading (or failing), never another reader's. {OWN_LOCK}")


# -- stage 3: waiting and failures --------------------------------------------------------------

@pytest.mark.stage(3, "waiting and failures")
class TestWaitingAndFailures:
    def test_wait_ms_zero_looks_once_and_never_sleeps(self, redis_client: redis.Redis) -> None:
        loader = Loader({"k": "v"})
        fake = FakeTime()
        hold_lock(redis_client, "k")
        with pytest.raises(TimeoutError):
            make(redis_client, loader, fake, wait_ms=0).get("k")
        assert fake.sleeps == [] and loader.calls == [], (
            f"wait_ms=0 with the lock held: get slept {fake.sleeps} and loaded {loader.calls}: one look, "
            "then TimeoutError; a reader that does not hold the lock never loads"
        )
        assert lock_untouched(redis_client, "k"), "a waiting get changed the holder's lock"

    def test_a_wait_is_a_deadline_on_the_injected_clock_with_sleeps_of_retry_ms(
        self, redis_client: redis.Redis,
    ) -> None:
        hold_lock(redis_client, "k")
        fake = FakeTime()
        with pytest.raises(TimeoutError):
            make(redis_client, Loader(), fake, wait_ms=1000, retry_ms=250).get("k")
        assert fake.sleeps and all(0 < s <= 0.25 for s in fake.sleeps), (
            f"with retry_ms=250 get slept {fake.sleeps} (seconds): sleep(retry_ms / 1000) between looks, "
            "the last one shortened to the deadline"
        )
        assert sum(fake.sleeps) == pytest.approx(1.0, abs=1e-6), (
            f"wait_ms=1000: get gave up after sleeping {sum(fake.sleeps)} s of the injected clock: wait "
            "until clock() reaches the start + wait_ms / 1000, the last sleep shortened to that deadline"
        )
        fake = FakeTime()
        with pytest.raises(TimeoutError):
            make(redis_client, Loader(), fake).get("k")
        assert fake.sleeps[0] == 0.05 and max(fake.sleeps) == 0.05, (
            f"the default retry_ms is 50: get slept {sorted(set(fake.sleeps))} s")
        assert sum(fake.sleeps) == pytest.approx(5.0, abs=1e-6), (
            f"the default wait_ms is 5000: get gave up after sleeping {sum(fake.sleeps)} s")

    def test_a_value_stored_while_waiting_is_returned_after_that_sleep(self, redis_client: redis.Redis) -> None:
        hold_lock(redis_client, "k")
        other = Loader({"k": "by the other reader"})

        def the_holder_stores(n: int) -> None:
            if n == 3:
                redis_client.delete(lock("k"))
                make(redis_client, other).get("k")
                hold_lock(redis_client, "k")

        own = Loader({"k": "mine"})
        fake = FakeTime(on_sleep=the_holder_stores)
        got = make(redis_client, own, fake, retry_ms=100).get("k")
        assert (got, len(fake.sleeps), own.calls) == ("by the other reader", 3, []), (
            f"another reader stored the value during the 3rd sleep; get returned {got!r} after "
            f"{len(fake.sleeps)} sleeps and loaded {own.calls}: look at the entry again after every sleep"
        )

    @pytest.mark.parametrize("event", ["stores the value", "frees the lock"])
    def test_the_sleep_that_reaches_the_deadline_is_followed_by_one_more_look(
        self, redis_client: redis.Redis, event: str,
    ) -> None:
        hold_lock(redis_client, "k")
        other = Loader({"k": "by the other reader"})
        fake = FakeTime()
        deadline = fake.now + 1.0  # wait_ms=1000; sleeps of 0.375, 0.375, then 0.25 to the deadline

        def during_the_last_sleep(_n: int) -> None:
            if fake.now >= deadline:
                redis_client.delete(lock("k"))
                if event == "stores the value":
                    make(redis_client, other).get("k")
                    hold_lock(redis_client, "k")

        fake.on_sleep = during_the_last_sleep
        own = Loader({"k": "mine"})
        try:
            got = make(redis_client, own, fake, wait_ms=1000, retry_ms=375).get("k")
        except TimeoutError:
            pytest.fail(f"the holder {event} during the sleep that reached the deadline (sleeps {fake.sleeps}); "
                        "get raised TimeoutError without looking again: sleep, then look again, and give up "
                        "only when a look at or past the deadline still finds no entry and the lock held")
        want = ("by the other reader", []) if event == "stores the value" else ("mine", ["k"])
        assert (got, own.calls) == want and fake.sleeps == [0.375, 0.375, 0.25], (
            f"the holder {event} during the last sleep before the deadline; get slept {fake.sleeps}, returned "
            f"{got!r} and loaded {own.calls}: sleep(retry_ms / 1000), the last one shortened to the deadline, "
            "then look again"
        )

    def test_a_lock_freed_without_a_value_is_taken_after_that_sleep(self, redis_client: redis.Redis) -> None:
        hold_lock(redis_client, "k")
        own = Loader({"k": "mine"})
        fake = FakeTime(on_sleep=lambda n: redis_client.delete(lock("k")) if n == 3 else None)
        got = make(redis_client, own, fake, retry_ms=100).get("k")
        assert (got, len(fake.sleeps), own.calls) == ("mine", 3, ["k"]), (
            f"the holder gave up (its load failed) during the 3rd sleep; get returned {got!r} after "
            f"{len(fake.sleeps)} sleeps, loading {own.calls}: a waiter whose holder is gone takes the lock "
            "and loads"
        )

    @pytest.mark.parametrize("error", [SourceDown, Cancelled])
    def test_a_failed_load_stores_nothing_and_frees_the_lock_at_once(
        self, redis_client: redis.Redis, error: type[BaseException],
    ) -> None:
        loader = Loader({"k": "v"})
        loader.failures, loader.error = 1, error
        cache = make(redis_client, loader)
        with pytest.raises(error):
            cache.get("k")
        assert not redis_client.exists(lock("k")), (
            f"the loader raised {error.__name__} ({error.__mro__[1].__name__}) and {lock('k')!r} is still held "
            f"(PTTL {redis_client.pttl(lock('k'))}): every reader waits for it to expire. Release it when the "
            "loader raises anything (except BaseException, or finally), then re-raise"
        )
        assert not redis_client.exists(entry("k")), "the loader raised and something was stored under cache:k"
        assert cache.get("k") == "v" and loader.calls == ["k", "k"], (
            f"after a failed load the next get must load again: calls {loader.calls}"
        )

    def test_a_failed_refresh_keeps_the_stale_entry(self, redis_client: redis.Redis) -> None:
        loader = Loader({"k": "v1"})
        fake = FakeTime()
        cache = make(redis_client, loader, fake, wait_ms=0)
        cache.get("k")
        fake.now += 5
        loader.source["k"] = "v2"
        loader.failures = 1
        try:
            got = cache.get("k")
        except SourceDown:
            pass
        else:
            pytest.fail(f"the loader raised during a refresh of a stale entry and get returned {got!r}: the "
                        "exception comes out of the get whose loader raised (the stale value is served to the "
                        "other readers while the lock is held, not to the one that refreshed); release the "
                        "lock, leave the entry as it was, and re-raise")
        assert not redis_client.exists(lock("k")), "a failed refresh left the lock held: release it, then re-raise"
        hold_lock(redis_client, "k")
        try:
            got = cache.get("k")
        except TimeoutError:
            pytest.fail("a failed refresh dropped the stale entry: a reader that then found the lock held had "
                        "nothing to serve. Leave the cache as it was when the loader raises")
        assert got == "v1", f"after a failed refresh the stale entry must stay as it was; get returned {got!r}"
        redis_client.delete(lock("k"))
        assert cache.get("k") == "v2" and len(loader.calls) == 3

    @pytest.mark.parametrize("outcome", ["returns", "raises"])
    def test_a_loader_paused_past_its_lock_ttl_is_taken_over_and_frees_only_its_own_lock(
        self, redis_client: redis.Redis, redis_clients: Callable[..., Any], outcome: str,
    ) -> None:
        """The paused loader then returns, or raises: either way its get releases only its own lock."""
        paused, taker = Loader({"k": "v"}), Loader({"k": "v"})
        paused.gate, taker.gate = threading.Event(), threading.Event()
        paused.failures = int(outcome == "raises")
        first = Background(make(redis_client, paused).get, "k", name="paused-reader")
        assert paused.entered.wait(5), "the first get never called the loader"
        redis_client.pexpire(lock("k"), 1)  # the pause outlives the lock
        wait_until(lambda: not redis_client.exists(lock("k")), what="the paused reader's lock to expire")
        second = Background(make(redis_clients(), taker).get, "k", name="second-reader")
        assert taker.entered.wait(5), (
            "the first reader's lock expired, yet a second get did not load: an expired lock is free"
        )
        token = redis_client.get(lock("k"))
        paused.gate.set()
        if outcome == "raises":
            with pytest.raises(SourceDown):
                first.result(timeout=5)
        else:
            assert first.result(timeout=5) == "v"
        assert token is not None and redis_client.get(lock("k")) == token, (
            f"the paused reader's loader {outcome} after its lock expired and another reader took it ({token!r}); "
            f"now the lock is {redis_client.get(lock('k'))!r}: {OWN_LOCK}, on the path where the loader raises "
            "as on the one where it returns"
        )
        taker.gate.set()
        assert second.result(timeout=5) == "v"
        assert not redis_client.exists(lock("k"))

    @pytest.mark.parametrize("n", [1, 2, 3, 4, 5])
    def test_a_lock_taken_over_between_two_round_trips_is_never_released_by_the_old_holder(
        self, redis_client: redis.Redis, redis_clients: Callable[..., Any], n: int,
    ) -> None:
        """After the n-th round trip of A's get, if A holds the lock, its lease runs out and another
        reader takes the lock."""
        warm_up(redis_client)
        slow: SlowLink = redis_clients(SlowLink)
        taken: list[int] = []

        def lease_lost() -> None:
            if redis_client.exists(lock("k")):
                hold_lock(redis_client, "k")
                taken.append(n)

        slow.at(n, lease_lost)
        make(slow, Loader({"k": "v"})).get("k")
        if not taken:  # A did not hold the lock then: nothing to take over
            return
        assert lock_untouched(redis_client, "k"), (
            f"A's lock expired after its round trip #{n} and another reader took it; after A's get the lock "
            f"is {redis_client.get(lock('k'))!r} (PTTL {redis_client.pttl(lock('k'))}): A released another "
            f"reader's lock. A GET then a DEL are two round trips: {OWN_LOCK}"
        )

    @pytest.mark.parametrize("n", [1, 2, 3, 4, 5])
    def test_a_reader_that_dies_mid_get_leaves_nothing_without_an_expiry(
        self, redis_client: redis.Redis, redis_clients: Callable[..., Any], n: int,
    ) -> None:
        warm_up(redis_client)
        dying: SlowLink = redis_clients(SlowLink)
        dying.at(n, dying.die)
        with contextlib.suppress(redis.RedisError):
            make(dying, Loader({"k": "v"})).get("k")
        left = {key: redis_client.pttl(key) for key in (entry("k"), lock("k"))}
        assert -1 not in left.values(), (
            f"the reader died after its round trip #{n} inside get; PTTLs now {left} (-1: no expiry): an entry "
            "without an expiry is served stale forever, a lock without one blocks the key forever. Store the "
            "entry and its PX in ONE step (one script, or SET ... PX), and take the lock with SET NX PX"
        )


# -- stage 4: the stampede ----------------------------------------------------------------------

@pytest.mark.stage(4, "the stampede")
class TestStampede:
    def test_fifty_readers_of_a_missing_key_cause_one_load(self, redis_client: redis.Redis) -> None:
        loader = Loader({"hot": "v"})
        loader.gate = threading.Event()
        waits = Waits()
        cache = make(redis_client, loader, waits, retry_ms=1, wait_ms=60_000)
        readers = [Background(cache.get, "hot", name=f"reader-{i}") for i in range(50)]
        try:
            wait_until(lambda: len(loader.calls) > 1 or len(waits.sleepers) >= 49 or any(r.done for r in readers),
                       timeout=10, what="49 readers to wait (sleep) while one loads")
            assert len(loader.calls) == 1, (
                f"50 readers missed at once and {len(loader.calls)} of them called the loader: the stampede. "
                "Only the reader that takes the lock (SET NX PX) loads; the others wait for its value"
            )
            assert not any(r.done for r in readers), (
                "a reader returned while the only load was still running: a waiter returns the value, once stored"
            )
        finally:
            loader.gate.set()
        got = [r.result(timeout=10) for r in readers]
        assert got == ["v"] * 50 and len(loader.calls) == 1, (
            f"after the one load: {len(loader.calls)} loads, values {set(got)}: {ONE_LOAD}"
        )

    def test_fifty_readers_of_a_stale_key_get_it_at_once_while_one_refreshes(self, redis_client: redis.Redis) -> None:
        loader = Loader({"hot": "v1"})
        waits = Waits()
        cache = make(redis_client, loader, waits)
        cache.get("hot")
        waits.now += 5
        loader.source["hot"], loader.gate = "v2", threading.Event()
        readers = [Background(cache.get, "hot", name=f"reader-{i}") for i in range(50)]
        try:
            wait_until(lambda: len(loader.calls) > 2 or sum(r.done for r in readers) >= 49,
                       timeout=10, what="49 readers to return the stale value while one refreshes")
            assert len(loader.calls) == 2, (
                f"50 readers found the entry stale and {len(loader.calls) - 1} refreshed it: only the one that "
                "takes the lock refreshes; the others are served the stale value"
            )
            done = [r.result() for r in readers if r.done]
            assert done == ["v1"] * 49 and not waits.sleepers, (
                f"while one reader refreshed, the others returned {set(done)} and {len(waits.sleepers)} slept: "
                "stale-while-revalidate serves the stale value at once"
            )
        finally:
            loader.gate.set()
        assert sorted(r.result(timeout=10) for r in readers) == ["v1"] * 49 + ["v2"]
        assert cache.get("hot") == "v2" and len(loader.calls) == 2

    def test_a_failed_load_under_waiters_is_retried_once_not_by_each(self, redis_client: redis.Redis) -> None:
        loader = Loader({"hot": "v"})
        loader.gate, loader.failures = threading.Event(), 1
        waits = Waits()
        cache = make(redis_client, loader, waits, retry_ms=1, wait_ms=60_000)
        first = Background(cache.get, "hot", name="first")
        assert loader.entered.wait(5), "the first get never called the loader"
        readers = [Background(cache.get, "hot", name=f"reader-{i}") for i in range(20)]
        wait_until(lambda: len(waits.sleepers) >= 20 or len(loader.calls) > 1, what="20 readers to wait")
        loader.gate.set()
        with pytest.raises(SourceDown):
            first.result(timeout=10)
        got = [r.result(timeout=10) for r in readers]
        assert got == ["v"] * 20 and len(loader.calls) == 2, (
            f"the first load failed under 20 waiters; then {len(loader.calls) - 1} more loads, values "
            f"{set(got)}: one waiter takes the freed lock and loads, the others wait for it"
        )

    @pytest.mark.parametrize("state", ["missing", "stale"])
    @pytest.mark.parametrize("n", [1, 2, 3, 4])
    def test_another_readers_whole_get_between_two_round_trips_causes_no_second_load(
        self, redis_client: redis.Redis, redis_clients: Callable[..., Any], n: int, state: str,
    ) -> None:
        """Reader A runs a whole get between reader B's n-th and next round trip."""
        warm_up(redis_client)
        loader = Loader({"k": "v1"})
        fake = FakeTime()
        if state == "stale":
            make(redis_client, loader, fake).get("k")
            fake.now += 5
        loader.source["k"] = "v2"
        slow: SlowLink = redis_clients(SlowLink)
        outcome: dict[str, Any] = {}

        def a_gets() -> None:
            try:
                outcome["A"] = make(redis_clients(), loader, fake, wait_ms=0).get("k")
            except TimeoutError:
                outcome["A"] = "timed out: B held the lock"

        calls = len(loader.calls)
        slow.at(n, a_gets)
        outcome["B"] = make(slow, loader, fake, wait_ms=0).get("k")
        assert len(loader.calls) - calls == 1, (
            f"the entry was {state}; reader A ran a whole get after B's round trip #{n}: {outcome}, with "
            f"{len(loader.calls) - calls} loads: {ONE_LOAD}"
        )


# -- stage 5: invalidation races ----------------------------------------------------------------

@pytest.mark.stage(5, "invalidation races")
class TestInvalidationRaces:
    def test_a_slow_reader_does_not_write_back_what_it_read_before_the_invalidation(
        self, redis_client: redis.Redis,
    ) -> None:
        loader = Loader({"k": "old"})
        loader.gate = threading.Event()
        cache = make(redis_client, loader)
        slow = Background(cache.get, "k", name="slow-reader")
        assert loader.entered.wait(5), "get never called the loader"
        loader.source["k"] = "new"  # the writer: the source first, then the cache
        cache.invalidate("k")
        loader.gate.set()
        assert slow.result(timeout=5) == "old", "the slow reader returns what it loaded to its own caller"
        got = cache.get("k")
        assert got == "new", (
            f"the slow reader read 'old', then the source was written and invalidated, then the reader "
            f"finished; now get returns {got!r} until the hard TTL: {STALE_SET}"
        )
        assert len(loader.calls) == 2

    def test_a_reader_paused_past_its_lock_ttl_does_not_write_back_after_the_invalidation(
        self, redis_client: redis.Redis,
    ) -> None:
        """The slow reader stays paused until every key with an expiry (the lock, and anything else with
        a TTL of any length) has expired: a load can take longer than any TTL."""
        loader = Loader({"k": "old"})
        loader.gate = threading.Event()
        cache = make(redis_client, loader, lock_ttl_ms=5000)
        slow = Background(cache.get, "k", name="slow-reader")
        assert loader.entered.wait(5), "get never called the loader"
        loader.source["k"] = "new"
        cache.invalidate("k")
        short = [key for key in redis_client.keys("*") if redis_client.pttl(key) > 0]
        for key in short:
            redis_client.pexpire(key, 1)
        wait_until(lambda: not any(redis_client.exists(key) for key in short), what="the keys with a TTL to expire")
        loader.gate.set()
        slow.result(timeout=5)
        got = cache.get("k")
        assert got == "new", (
            f"the slow reader read 'old', the source was written and invalidated, then the reader stayed paused "
            f"until every key with a TTL had expired (gone: {short}) and stored; now get returns {got!r}: what "
            f"tells the store that an invalidation came in must outlive any load, however long (a generation "
            f"without an expiry, or the lease itself: no lock, no store). {STALE_SET}"
        )

    def test_waiters_on_an_invalidated_load_get_the_new_value(self, redis_client: redis.Redis) -> None:
        loader = Loader({"k": "old"})
        loader.gate = threading.Event()
        waits = Waits()
        cache = make(redis_client, loader, waits, retry_ms=1, wait_ms=60_000)
        first = Background(cache.get, "k", name="first")
        assert loader.entered.wait(5), "get never called the loader"
        readers = [Background(cache.get, "k", name=f"reader-{i}") for i in range(10)]
        wait_until(lambda: len(waits.sleepers) >= 10 or len(loader.calls) > 1, what="10 readers to wait")
        loader.source["k"] = "new"
        cache.invalidate("k")
        loader.gate.set()
        assert first.result(timeout=5) == "old"
        got = [r.result(timeout=10) for r in readers]
        assert got == ["new"] * 10 and len(loader.calls) == 2, (
            f"the first load was invalidated while 10 readers waited for it; they got {got} after "
            f"{len(loader.calls)} loads: {STALE_SET}"
        )

    @pytest.mark.parametrize("n", [1, 2, 3])
    def test_a_store_between_the_round_trips_of_invalidate_does_not_survive_it(
        self, redis_client: redis.Redis, redis_clients: Callable[..., Any], n: int,
    ) -> None:
        """The slow reader stores between invalidate's n-th and next round trip."""
        warm_up(redis_client)
        loader = Loader({"k": "old"})
        loader.gate = threading.Event()
        reader = Background(make(redis_client, loader).get, "k", name="slow-reader")
        assert loader.entered.wait(5), "get never called the loader"
        loader.source["k"] = "new"
        slow: SlowLink = redis_clients(SlowLink)

        def reader_stores() -> None:
            loader.gate.set()
            reader.result(timeout=5)

        slow.at(n, reader_stores)
        make(slow, loader).invalidate("k")
        loader.gate.set()
        reader.result(timeout=5)
        got = make(redis_client, loader).get("k")
        assert got == "new", (
            f"the slow reader (which read 'old') stored after invalidate's round trip #{n}; then get returned "
            f"{got!r}: invalidate in one step (one Lua script or MULTI/EXEC: bump the generation AND delete "
            f"the entry). {STALE_SET}"
        )
