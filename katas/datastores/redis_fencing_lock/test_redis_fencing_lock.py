"""Tests for the fencing lock and the fenced store, against a real Redis (Redis itself is the oracle).

Races are forced, not hoped for: `SlowLink` is a redis-py client that runs the test's own code
between two of its round trips (another client takes the lock, the lock expires, the client dies),
so a check and an action sent as two commands lose every time. Waiting is observed through an
injected clock and sleep, never timed.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from typing import Any

import pytest
import redis
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule, run_state_machine_as_test

from dojo.testing import Background, is_blocked, wait_until
from fixtures.redis_link import SlowLink

from .redis_fencing_lock import FencedStore, FencingLock, LockNotHeld, StaleToken

NAME = "invoices"
LOCK, FENCE = f"lock:{NAME}", f"lock:{NAME}:fence"  # the README fixes the key names
STORE, STORE_FENCE = f"store:{NAME}", f"store:{NAME}:fence"

CAS_RELEASE = ("release must compare and delete in ONE atomic step (a Lua script: GET, compare, DEL): "
               "a plain DEL, or a GET then a DEL in two round trips, deletes another holder's lock")
CAS_EXTEND = ("extend must compare and PEXPIRE in ONE atomic step (a Lua script): an unchecked SET/PEXPIRE, "
              "or a GET then a PEXPIRE in two round trips, revives a lost lock or extends another holder's")
ONE_STEP_ACQUIRE = ("take the lock and draw its token in one atomic step (a Lua script: EXISTS, INCR, "
                    "SET PX), or draw the token only once you hold the lock")
NUMBERS = "compare tokens as numbers (tonumber() in Lua): as strings '10' < '9'"


class FakeTime:
    """An injected clock and sleep: time moves only when the lock sleeps; `on_sleep(n)` runs after
    the n-th sleep. A lock that tries again without sleeping is stopped with the cause."""

    def __init__(self, on_sleep: Callable[[int], None] | None = None) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []
        self.idle = 0  # clock reads and commands since the last sleep
        self.on_sleep = on_sleep

    def spin_check(self) -> None:
        self.idle += 1
        if self.idle > 200:
            raise AssertionError(
                "acquire tried 200 times without calling the injected sleep: it spins, hammering Redis "
                "for the whole wait. Call sleep(retry_ms / 1000) between attempts."
            )

    def clock(self) -> float:
        self.spin_check()
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
        self.idle = 0
        if self.on_sleep is not None:
            self.on_sleep(len(self.sleeps))

    def client(self, redis_clients: Callable[..., Any]) -> SlowLink:
        """A client whose every command counts towards the spin check."""
        client: SlowLink = redis_clients(SlowLink)
        client.after = lambda _count: self.spin_check()
        return client


def refused(error: type[Exception], call: Callable[[], object], why: str) -> None:
    """`call()` must raise `error`; if it returns, fail with `why` (the cause, not "DID NOT RAISE")."""
    try:
        call()
    except error:
        return
    pytest.fail(f"expected {error.__name__}: {why}")


def pttl_in(client: redis.Redis, key: str, ttl_ms: int) -> bool:
    """True if `key` expires within ttl_ms and was set at most 1 s ago."""
    return ttl_ms - 1000 <= client.pttl(key) <= ttl_ms


# -- stage 1: acquire and release ---------------------------------------------------------------

@pytest.mark.stage(1, "acquire and release")
class TestAcquireAndRelease:
    def test_acquire_stores_the_token_under_the_lock_key_with_an_expiry_in_milliseconds(
        self, redis_client: redis.Redis,
    ) -> None:
        token = FencingLock(redis_client, NAME, ttl_ms=2500).acquire(timeout=0)
        assert isinstance(token, int) and not isinstance(token, bool), f"acquire returned {token!r}, not an int"
        assert redis_client.get(LOCK) == str(token), (
            f"after acquire() -> {token}, the key {LOCK!r} holds {redis_client.get(LOCK)!r} (keys: "
            f"{sorted(redis_client.keys('*'))}): the lock is that key, holding the token as a decimal string"
        )
        pttl = redis_client.pttl(LOCK)
        assert pttl != -1, (f"{LOCK!r} has no expiry: a holder that crashes keeps the lock forever. "
                            "SET it with NX and PX in one command")
        assert pttl_in(redis_client, LOCK, 2500), (
            f"ttl_ms=2500 but {LOCK!r} expires in {pttl} ms: PX takes milliseconds, EX seconds"
        )

    def test_the_token_is_the_next_value_of_the_counter_that_never_expires(self, redis_client: redis.Redis) -> None:
        """Another app server drew tokens up to 41 yesterday: the next token must be above it."""
        redis_client.set(FENCE, 41)
        token = FencingLock(redis_client, NAME, ttl_ms=10_000).acquire(timeout=0)
        assert token > 41 and redis_client.get(FENCE) == str(token), (
            f"the counter {FENCE!r} stood at 41; acquire returned {token} and left the counter at "
            f"{redis_client.get(FENCE)!r}. The token must be INCR {FENCE}: a token from the time or "
            "from random numbers does not increase from one holder to the next (clocks differ per "
            "machine and jump)"
        )
        assert redis_client.pttl(FENCE) == -1, (
            f"the counter {FENCE!r} has an expiry ({redis_client.pttl(FENCE)} ms): when it expires "
            "tokens start again at 1, below the ones the store has already seen"
        )

    def test_a_held_lock_is_refused_and_left_as_it_is(
        self, redis_client: redis.Redis, redis_clients: Callable[..., Any],
    ) -> None:
        first = FencingLock(redis_client, NAME, ttl_ms=60_000)
        token = first.acquire(timeout=0)
        other = FencingLock(redis_clients(), NAME, ttl_ms=10_000)
        why = (f"acquire(timeout=0) returned while token {token} held the lock: take the lock with SET NX "
               "(only if absent); a handle is not an owner (not re-entrant)")
        refused(TimeoutError, lambda: other.acquire(timeout=0), why)
        refused(TimeoutError, lambda: first.acquire(timeout=0), why)
        assert redis_client.get(LOCK) == str(token) and pttl_in(redis_client, LOCK, 60_000), (
            f"a refused acquire changed the lock: {LOCK!r} = {redis_client.get(LOCK)!r}, PTTL "
            f"{redis_client.pttl(LOCK)} (the holder's token is {token}, ttl 60000): take the lock with "
            "SET NX (only if absent), never a plain SET after a check"
        )

    def test_release_frees_the_lock_and_the_next_holder_gets_a_larger_token(
        self, redis_client: redis.Redis, redis_clients: Callable[..., Any],
    ) -> None:
        lock = FencingLock(redis_client, NAME, ttl_ms=60_000)
        first = lock.acquire(timeout=0)
        lock.release(first)
        assert not redis_client.exists(LOCK), f"release({first}) left {LOCK!r} = {redis_client.get(LOCK)!r}"
        second = FencingLock(redis_clients(), NAME, ttl_ms=60_000).acquire(timeout=0)
        assert second > first, f"tokens must increase from one holder to the next: {first}, then {second}"

    def test_release_with_a_token_that_does_not_hold_the_lock_is_refused(self, redis_client: redis.Redis) -> None:
        lock = FencingLock(redis_client, NAME, ttl_ms=60_000)
        refused(LockNotHeld, lambda: lock.release(1), f"release(1) of a free lock returned: {CAS_RELEASE}")
        assert not redis_client.exists(LOCK), "release of a free lock created the key"
        token = lock.acquire(timeout=0)
        for wrong in (token + 1, token - 1):
            refused(LockNotHeld, lambda: lock.release(wrong),  # noqa: B023 (called at once)
                    f"release({wrong}) returned while token {token} holds the lock: {CAS_RELEASE}")
            assert redis_client.get(LOCK) == str(token), (
                f"release({wrong}) while token {token} holds the lock deleted it: {CAS_RELEASE}"
            )
        lock.release(token)

    def test_locks_with_different_names_are_independent(self, redis_client: redis.Redis) -> None:
        a = FencingLock(redis_client, "a", ttl_ms=60_000)
        b = FencingLock(redis_client, "b", ttl_ms=60_000)
        token_a, token_b = a.acquire(timeout=0), b.acquire(timeout=0)
        assert (redis_client.get("lock:a"), redis_client.get("lock:b")) == (str(token_a), str(token_b))
        assert (redis_client.get("lock:a:fence"), redis_client.get("lock:b:fence")) == ("1", "1"), (
            "each lock name has its own counter, lock:{name}:fence, starting from nothing (INCR -> 1)"
        )

    def test_ttl_retry_and_timeout_must_be_in_range(self, redis_client: redis.Redis) -> None:
        for bad in ({"ttl_ms": 0}, {"ttl_ms": 1000, "retry_ms": 0}):
            with pytest.raises(ValueError):
                FencingLock(redis_client, NAME, **bad)
        lock = FencingLock(redis_client, NAME, ttl_ms=1, retry_ms=1)  # 1 ms is allowed
        with pytest.raises(ValueError):
            lock.acquire(timeout=-0.001)
        assert not redis_client.exists(LOCK, FENCE), "a refused acquire(timeout=-0.001) touched Redis"


# -- stage 2: expiry and extend -----------------------------------------------------------------

@pytest.mark.stage(2, "expiry and extend")
class TestExpiryAndExtend:
    def test_an_expired_lock_is_free_and_tokens_keep_increasing(
        self, redis_client: redis.Redis, redis_clients: Callable[..., Any],
    ) -> None:
        first = FencingLock(redis_client, NAME, ttl_ms=50).acquire(timeout=0)
        wait_until(lambda: not redis_client.exists(LOCK), what=f"{LOCK!r} to expire (ttl_ms=50)")
        second = FencingLock(redis_clients(), NAME, ttl_ms=50).acquire(timeout=0)
        assert second > first, (
            f"the lock expired with token {first}; the next holder got {second}: tokens must keep "
            f"increasing across an expired lock, so the counter ({FENCE!r}) must outlive the lock"
        )

    def test_extend_sets_the_expiry_from_now(self, redis_client: redis.Redis) -> None:
        lock = FencingLock(redis_client, NAME, ttl_ms=2500)
        token = lock.acquire(timeout=0)
        lock.extend(token, 60_000)
        assert redis_client.get(LOCK) == str(token) and pttl_in(redis_client, LOCK, 60_000), (
            f"after extend({token}, 60000): {LOCK!r} = {redis_client.get(LOCK)!r}, PTTL "
            f"{redis_client.pttl(LOCK)}: PEXPIRE the lock (milliseconds) and keep its value"
        )
        lock.extend(token)
        assert pttl_in(redis_client, LOCK, 2500), (
            f"extend({token}) without ttl_ms must use the lock's ttl_ms=2500; PTTL is {redis_client.pttl(LOCK)}"
        )
        lock.extend(token, 1)
        wait_until(lambda: not redis_client.exists(LOCK), what="the lock extended by 1 ms to expire")
        for bad in (0, -5):
            with pytest.raises(ValueError):
                lock.extend(token, bad)

    def test_extend_with_a_token_that_does_not_hold_the_lock_is_refused(self, redis_client: redis.Redis) -> None:
        lock = FencingLock(redis_client, NAME, ttl_ms=60_000)
        token = lock.acquire(timeout=0)
        for wrong in (token + 1, token - 1):
            refused(LockNotHeld, lambda: lock.extend(wrong, 1000),  # noqa: B023 (called at once)
                    f"extend({wrong}, 1000) returned while token {token} holds the lock: {CAS_EXTEND}")
            assert redis_client.get(LOCK) == str(token) and pttl_in(redis_client, LOCK, 60_000), (
                f"extend({wrong}, 1000) while token {token} holds the lock changed it: {LOCK!r} = "
                f"{redis_client.get(LOCK)!r}, PTTL {redis_client.pttl(LOCK)}: {CAS_EXTEND}"
            )

    def test_a_lost_lock_is_neither_revived_nor_released_nor_extended(
        self, redis_client: redis.Redis, redis_clients: Callable[..., Any],
    ) -> None:
        late = FencingLock(redis_client, NAME, ttl_ms=50)
        old = late.acquire(timeout=0)
        wait_until(lambda: not redis_client.exists(LOCK), what=f"{LOCK!r} to expire (ttl_ms=50)")
        refused(LockNotHeld, lambda: late.extend(old, 60_000),
                f"extend({old}) returned after the lock expired: {CAS_EXTEND}")
        assert not redis_client.exists(LOCK), (
            f"extend({old}) after the lock expired brought it back ({LOCK!r} = {redis_client.get(LOCK)!r}): "
            f"{CAS_EXTEND}"
        )
        new = FencingLock(redis_clients(), NAME, ttl_ms=60_000).acquire(timeout=0)
        refused(LockNotHeld, lambda: late.extend(old, 1000),
                f"extend({old}) returned after the lock expired and token {new} took it: {CAS_EXTEND}")
        refused(LockNotHeld, lambda: late.release(old),
                f"release({old}) returned after the lock expired and token {new} took it: {CAS_RELEASE}")
        assert redis_client.get(LOCK) == str(new) and pttl_in(redis_client, LOCK, 60_000), (
            f"the lock expired and token {new} took it; then extend/release by the old token {old} left "
            f"{LOCK!r} = {redis_client.get(LOCK)!r} with PTTL {redis_client.pttl(LOCK)}: they deleted or "
            f"extended another holder's lock. {CAS_RELEASE}; {CAS_EXTEND}"
        )


# -- stage 3: waiting ---------------------------------------------------------------------------

def held(redis_client: redis.Redis) -> tuple[FencingLock, int]:
    holder = FencingLock(redis_client, NAME, ttl_ms=60_000)
    return holder, holder.acquire(timeout=0)


@pytest.mark.stage(3, "waiting: timeout=0, a deadline, forever")
class TestWaiting:
    def test_timeout_zero_makes_one_attempt_and_never_sleeps(
        self, redis_client: redis.Redis, redis_clients: Callable[..., Any],
    ) -> None:
        held(redis_client)

        def no_sleep(_n: int) -> None:
            pytest.fail("acquire(timeout=0) called sleep: timeout=0 means do not wait (one attempt), "
                        "only None waits forever; test `timeout is None`, not `not timeout`")

        fake = FakeTime(on_sleep=no_sleep)
        waiter = FencingLock(fake.client(redis_clients), NAME, ttl_ms=1000, clock=fake.clock, sleep=fake.sleep)
        refused(TimeoutError, lambda: waiter.acquire(timeout=0), "acquire(timeout=0) returned a held lock")
        assert fake.sleeps == [], (
            f"acquire(timeout=0) slept {fake.sleeps}: timeout=0 means do not wait (one attempt), only "
            "None waits forever; test `timeout is None`, not `not timeout`"
        )

    def test_a_timeout_is_a_deadline_on_the_injected_clock_with_sleeps_of_retry_ms(
        self, redis_client: redis.Redis, redis_clients: Callable[..., Any],
    ) -> None:
        held(redis_client)
        fake = FakeTime()
        waiter = FencingLock(fake.client(redis_clients), NAME, ttl_ms=1000, retry_ms=250,
                             clock=fake.clock, sleep=fake.sleep)
        with pytest.raises(TimeoutError):
            waiter.acquire(timeout=1.0)
        assert fake.sleeps and all(0 < s <= 0.25 for s in fake.sleeps), (
            f"with retry_ms=250 acquire slept {fake.sleeps} (seconds): sleep() takes seconds, "
            "so sleep retry_ms / 1000 between attempts (or less: what is left of the timeout)"
        )
        assert 1.0 <= sum(fake.sleeps) <= 1.25, (
            f"acquire(timeout=1.0) gave up after sleeping {sum(fake.sleeps)} s of the injected clock: "
            "wait until clock() reaches start + timeout, using the injected clock and sleep"
        )

    def test_each_sleep_is_followed_by_another_attempt(
        self, redis_client: redis.Redis, redis_clients: Callable[..., Any],
    ) -> None:
        holder, token = held(redis_client)
        fake = FakeTime(on_sleep=lambda n: holder.release(token) if n == 3 else None)
        waiter = FencingLock(fake.client(redis_clients), NAME, ttl_ms=1000, retry_ms=100,
                             clock=fake.clock, sleep=fake.sleep)
        got = waiter.acquire(timeout=10)
        assert len(fake.sleeps) == 3 and got > token, (
            f"the holder released the lock during the 3rd sleep; acquire returned {got} after "
            f"{len(fake.sleeps)} sleeps ({fake.sleeps}): try again after every sleep of retry_ms"
        )

    def test_timeout_none_waits_for_as_long_as_it_takes(
        self, redis_client: redis.Redis, redis_clients: Callable[..., Any],
    ) -> None:
        holder, token = held(redis_client)
        fake = FakeTime(on_sleep=lambda n: holder.release(token) if n == 300 else None)
        waiter = FencingLock(fake.client(redis_clients), NAME, ttl_ms=1000, clock=fake.clock, sleep=fake.sleep)
        try:
            got = waiter.acquire(timeout=None)
        except TimeoutError:
            pytest.fail(f"acquire(timeout=None) gave up after {len(fake.sleeps)} sleeps "
                        f"({sum(fake.sleeps):.1f} s): None means wait forever")
        assert len(fake.sleeps) == 300 and got > token, (
            f"released during the 300th sleep: acquire(timeout=None) returned {got} after {len(fake.sleeps)} sleeps"
        )
        assert set(fake.sleeps) == {0.05}, (
            f"with the default retry_ms (50, the README fixes it) acquire slept {sorted(set(fake.sleeps))} s: "
            "sleep() takes seconds, retry_ms / 1000"
        )

    def test_a_waiting_client_gets_the_lock_when_it_is_released_or_expires(
        self, redis_client: redis.Redis, redis_clients: Callable[..., Any],
    ) -> None:
        """Real clock and sleep (the defaults), real threads."""
        holder, token = held(redis_client)
        waiter = FencingLock(redis_clients(), NAME, ttl_ms=60_000, retry_ms=5)
        waiting = Background(waiter.acquire, None, name="waiter")
        assert is_blocked(waiting.thread), f"acquire() returned while token {token} held the lock"
        holder.release(token)
        second = waiting.result(timeout=5)
        assert second > token
        expiring = FencingLock(redis_clients(), NAME, ttl_ms=50, retry_ms=5)
        redis_client.pexpire(LOCK, 100)
        third = expiring.acquire(timeout=5)
        assert third > second and redis_client.get(LOCK) == str(third)


# -- stage 4: the fenced store ------------------------------------------------------------------

@pytest.mark.stage(4, "the fenced store")
class TestFencedStore:
    def test_accepts_equal_and_higher_tokens_and_refuses_lower_ones(self, redis_client: redis.Redis) -> None:
        store = FencedStore(redis_client, NAME)
        assert store.read("a") is None
        store.write("a", "1", 5)
        try:
            store.write("a", "2", 5)
        except StaleToken:
            pytest.fail("a second write with the same token 5 was refused: the holder writes many times "
                        "with its token; refuse only tokens LOWER than the highest accepted (<, not <=)")
        refused(StaleToken, lambda: store.write("b", "x", 4), "token 4 was accepted after token 5")
        store.write("a", "3", 6)
        refused(StaleToken, lambda: store.write("a", "4", 5), "token 5 was accepted after token 6")
        assert (store.read("a"), store.read("b")) == ("3", None)
        assert redis_client.hgetall(STORE) == {"a": "3"} and redis_client.get(STORE_FENCE) == "6", (
            f"the store keeps its data in the hash {STORE!r} and the highest accepted token in "
            f"{STORE_FENCE!r}; found {redis_client.hgetall(STORE)} and {redis_client.get(STORE_FENCE)!r}"
        )

    @pytest.mark.parametrize(("low", "high"), [(9, 10), (99, 100), (1, 1_000_000_007)])
    def test_tokens_compare_as_numbers(self, redis_client: redis.Redis, low: int, high: int) -> None:
        store = FencedStore(redis_client, NAME)
        store.write("k", "low", low)
        try:
            store.write("k", "high", high)
        except StaleToken:
            pytest.fail(f"token {high} was refused after {low}: {NUMBERS}")
        refused(StaleToken, lambda: store.write("k", "stale", low), f"token {low} was accepted after {high}: {NUMBERS}")
        assert store.read("k") == "high", f"the write with the stale token {low} landed after {high}: {NUMBERS}"

    def test_a_refused_write_changes_nothing(self, redis_client: redis.Redis) -> None:
        store = FencedStore(redis_client, NAME)
        store.write("k", "v", 7)
        refused(StaleToken, lambda: store.write("other", "w", 3), "token 3 was accepted after token 7")
        assert redis_client.hgetall(STORE) == {"k": "v"} and redis_client.get(STORE_FENCE) == "7", (
            f"a refused write changed the store: {redis_client.hgetall(STORE)}, highest "
            f"{redis_client.get(STORE_FENCE)!r}: check the token before writing anything"
        )

    def test_a_holder_paused_past_its_ttl_is_fenced_off(
        self, redis_client: redis.Redis, redis_clients: Callable[..., Any],
    ) -> None:
        """Kleppmann's story: client 1 takes the lock, stops (a GC pause) past its TTL, client 2
        takes the lock and writes; client 1 wakes up, still believing it holds the lock, and writes."""
        paused, resume = threading.Event(), threading.Event()
        one = redis_clients()

        def client_1() -> list[str]:
            lock, store = FencingLock(one, NAME, ttl_ms=100), FencedStore(one, NAME)
            token = lock.acquire(timeout=0)
            store.write("file", "written by 1", token)
            paused.set()
            resume.wait(10)  # the pause: the lease runs out meanwhile
            outcome = []
            try:
                store.write("file", "late write by 1", token)
                outcome.append("late write accepted")
            except StaleToken:
                outcome.append("late write refused")
            try:
                lock.release(token)
                outcome.append("release accepted")
            except LockNotHeld:
                outcome.append("release refused")
            return outcome

        first = Background(client_1, name="client-1")
        wait_until(lambda: paused.is_set() or first.done, what="client 1 to take the lock and write")
        if first.done:
            first.result()  # client 1 failed before its pause: show why
        wait_until(lambda: not redis_client.exists(LOCK), what="client 1's lock to expire (ttl_ms=100)")
        two = redis_clients()
        token_2 = FencingLock(two, NAME, ttl_ms=60_000).acquire(timeout=0)
        FencedStore(two, NAME).write("file", "written by 2", token_2)
        resume.set()
        outcome = first.result(timeout=5)
        assert outcome == ["late write refused", "release refused"], (
            f"client 1 woke after its lock expired and client 2 (token {token_2}) wrote: {outcome}. "
            "The store must refuse a token lower than one it has accepted, and release must not touch "
            "a lock it no longer holds"
        )
        assert FencedStore(redis_client, NAME).read("file") == "written by 2"
        assert redis_client.get(LOCK) == str(token_2), f"client 2's lock is gone: {CAS_RELEASE}"

    def test_every_sequence_of_calls_agrees_with_a_model(self, redis_client: redis.Redis) -> None:
        run_state_machine_as_test(
            lambda: LockAndStoreModel(redis_client),
            settings=settings(max_examples=40, stateful_step_count=15, deadline=None),
        )


CLIENTS = st.integers(0, 2)


class LockAndStoreModel(RuleBasedStateMachine):
    """Three clients share one lock and one store; the model says what each call must do."""

    def __init__(self, client: redis.Redis) -> None:
        super().__init__()
        client.flushdb()
        self.client = client
        self.locks = [FencingLock(client, NAME, ttl_ms=60_000) for _ in range(3)]
        self.store = FencedStore(client, NAME)
        self.holder: int | None = None  # the token that holds the lock
        self.issued = 0  # the highest token handed out so far
        self.tokens = [0, 0, 0]  # each client's last token (0: never had one)
        self.data: dict[str, str] = {}
        self.highest: int | None = None  # the highest token the store accepted

    @initialize(start=st.sampled_from([0, 7, 98]))
    def counter_from(self, start: int) -> None:
        if start:  # tokens cross 9 -> 10 and 99 -> 100: compared as strings, they go wrong there
            self.client.set(FENCE, start)
            self.issued = start

    @rule(i=CLIENTS)
    def acquire(self, i: int) -> None:
        try:
            token = self.locks[i].acquire(timeout=0)
        except TimeoutError:
            assert self.holder is not None, "acquire(timeout=0) was refused while nobody held the lock"
            return
        assert self.holder is None, f"acquire returned {token} while token {self.holder} held the lock"
        assert token > self.issued, f"token {token} after {self.issued} was handed out: tokens must increase"
        self.holder = self.issued = self.tokens[i] = token

    @rule(i=CLIENTS)
    def release(self, i: int) -> None:
        token = self.tokens[i]
        try:
            self.locks[i].release(token)
        except LockNotHeld:
            assert token != self.holder, f"release({token}) by the holder was refused"
            return
        assert token == self.holder, f"release({token}) was accepted while token {self.holder} held the lock"
        self.holder = None

    @rule(i=CLIENTS, ttl_ms=st.sampled_from([30_000, 90_000]))
    def extend(self, i: int, ttl_ms: int) -> None:
        token = self.tokens[i]
        try:
            self.locks[i].extend(token, ttl_ms)
        except LockNotHeld:
            assert token != self.holder, f"extend({token}) by the holder was refused"
            return
        assert token == self.holder, f"extend({token}) was accepted while token {self.holder} held the lock"
        assert pttl_in(self.client, LOCK, ttl_ms), f"extend(..., {ttl_ms}) left PTTL {self.client.pttl(LOCK)}"

    @rule()
    def expire(self) -> None:
        if self.holder is not None:
            self.client.pexpire(LOCK, 1)
            wait_until(lambda: not self.client.exists(LOCK), what="the lock to expire")
            self.holder = None

    @rule(i=CLIENTS, key=st.sampled_from("ab"), value=st.sampled_from(["x", "y", "z"]))
    def write_with_my_token(self, i: int, key: str, value: str) -> None:
        if self.tokens[i]:
            self.write(key, value, self.tokens[i])

    @rule(token=st.integers(1, 120), key=st.sampled_from("ab"), value=st.sampled_from(["x", "y", "z"]))
    def write_with_any_token(self, token: int, key: str, value: str) -> None:
        self.write(key, value, token)

    def write(self, key: str, value: str, token: int) -> None:
        accept = self.highest is None or token >= self.highest
        try:
            self.store.write(key, value, token)
        except StaleToken:
            assert not accept, f"write with token {token} refused; the highest accepted is {self.highest}: {NUMBERS}"
            return
        assert accept, f"write with token {token} accepted after token {self.highest}: {NUMBERS}"
        self.data[key] = value
        self.highest = token

    @invariant()
    def redis_agrees(self) -> None:
        expected = None if self.holder is None else str(self.holder)
        assert self.client.get(LOCK) == expected, f"{LOCK!r} holds {self.client.get(LOCK)!r}, expected {expected}"
        assert {k: self.store.read(k) for k in "ab"} == {k: self.data.get(k) for k in "ab"}


# -- stage 5: races: a slow or dying client -----------------------------------------------------

@pytest.mark.stage(5, "races: a slow or dying client")
class TestRaces:
    @pytest.mark.parametrize("n", [1, 2, 3])
    def test_two_clients_never_both_hold_the_lock(
        self, redis_client: redis.Redis, redis_clients: Callable[..., Any], n: int,
    ) -> None:
        """Client B tries to take the lock between client A's n-th and next round trip."""
        slow: SlowLink = redis_clients(SlowLink)
        other = FencingLock(redis_clients(), NAME, ttl_ms=60_000)
        got: dict[str, int] = {}

        def b_tries() -> None:
            with contextlib.suppress(TimeoutError):
                got["B"] = other.acquire(timeout=0)

        slow.at(n, b_tries)
        with contextlib.suppress(TimeoutError):
            got["A"] = FencingLock(slow, NAME, ttl_ms=60_000).acquire(timeout=0)
        assert len(got) == 1 and redis_client.get(LOCK) == str(next(iter(got.values()))), (
            f"B tried to take the lock after A's command #{n}: the holders are {got}, the lock holds "
            f"{redis_client.get(LOCK)!r}. A checked that the lock was free, then took it in another round "
            f"trip (B got in between): {ONE_STEP_ACQUIRE}"
        )

    @pytest.mark.parametrize("n", [1, 2, 3])
    def test_acquire_never_overwrites_a_lock_another_client_took(
        self, redis_client: redis.Redis, redis_clients: Callable[..., Any], n: int,
    ) -> None:
        """After A's n-th round trip, A is paused past its TTL: whatever A wrote expires, B takes the lock."""
        slow: SlowLink = redis_clients(SlowLink)
        other = FencingLock(redis_clients(), NAME, ttl_ms=60_000)
        got: dict[str, int] = {}

        def a_pauses_b_takes() -> None:
            redis_client.pexpire(LOCK, 1)
            wait_until(lambda: not redis_client.exists(LOCK), what="A's lock to expire")
            got["B"] = other.acquire(timeout=0)

        slow.at(n, a_pauses_b_takes)
        with contextlib.suppress(TimeoutError):
            got["A"] = FencingLock(slow, NAME, ttl_ms=60_000).acquire(timeout=0)
        if "B" not in got:  # acquire made fewer than n round trips: nothing to race
            return
        assert redis_client.get(LOCK) == str(got["B"]), (
            f"B took the lock (token {got['B']}) after A's command #{n}, then A's acquire went on and left "
            f"{LOCK!r} = {redis_client.get(LOCK)!r}: acquire overwrote a lock another client holds (a "
            f"placeholder SET NX, then the token SET XX in another round trip?): {ONE_STEP_ACQUIRE}"
        )

    @pytest.mark.parametrize("n", [1, 2, 3])
    def test_a_holders_token_is_higher_than_every_earlier_holders(
        self, redis_client: redis.Redis, redis_clients: Callable[..., Any], n: int,
    ) -> None:
        """Between A's n-th and next round trip, B takes the lock, writes with its token, releases."""
        slow: SlowLink = redis_clients(SlowLink)
        b_client = redis_clients()
        other, store_b = FencingLock(b_client, NAME, ttl_ms=60_000), FencedStore(b_client, NAME)
        tokens: list[int] = []

        def b_cycle() -> None:
            with contextlib.suppress(TimeoutError):
                token = other.acquire(timeout=0)
                store_b.write("doc", "B", token)
                other.release(token)
                tokens.append(token)

        slow.at(n, b_cycle)
        token_a = FencingLock(slow, NAME, ttl_ms=60_000, retry_ms=1).acquire(timeout=5)
        assert all(token_a > b for b in tokens), (
            f"A holds the lock with token {token_a}, after B held it with {tokens}: the store will "
            f"refuse the rightful holder. A drew its token before it took the lock (INCR, then SET NX "
            f"in another round trip) and B came between: {ONE_STEP_ACQUIRE}"
        )
        FencedStore(redis_client, NAME).write("doc", "A", token_a)

    @pytest.mark.parametrize("n", [1, 2, 3])
    def test_a_client_that_dies_mid_acquire_leaves_no_lock_without_an_expiry(
        self, redis_client: redis.Redis, redis_clients: Callable[..., Any], n: int,
    ) -> None:
        dying: SlowLink = redis_clients(SlowLink)
        dying.at(n, dying.die)
        with contextlib.suppress(redis.RedisError, TimeoutError):
            FencingLock(dying, NAME, ttl_ms=60_000).acquire(timeout=0)
        pttl = redis_client.pttl(LOCK)
        assert pttl == -2 or 0 < pttl <= 60_000, (
            f"the client died after its command #{n} inside acquire; {LOCK!r} is left with PTTL {pttl} "
            "(-1: no expiry): nobody can ever take the lock again. SETNX then PEXPIRE are two commands; "
            "SET key token NX PX ttl_ms is one"
        )

    @pytest.mark.parametrize("n", [1, 2, 3])
    def test_release_and_extend_never_touch_a_lock_taken_between_two_round_trips(
        self, redis_client: redis.Redis, redis_clients: Callable[..., Any], n: int,
    ) -> None:
        """A's lock expires after A's n-th round trip inside release/extend, and B takes it."""
        slow: SlowLink = redis_clients(SlowLink)
        late = FencingLock(slow, NAME, ttl_ms=60_000)
        other = FencingLock(redis_clients(), NAME, ttl_ms=60_000)
        for name, call in (("release", lambda t: late.release(t)), ("extend", lambda t: late.extend(t, 1000))):
            taken: list[int] = []

            def expire_and_take(taken: list[int] = taken) -> None:
                redis_client.pexpire(LOCK, 1)
                wait_until(lambda: not redis_client.exists(LOCK), what="A's lock to expire")
                taken.append(other.acquire(timeout=0))

            token = late.acquire(timeout=0)
            slow.at(n, expire_and_take)
            with contextlib.suppress(LockNotHeld):
                call(token)
            slow.after = None
            if not taken:  # one round trip only: nothing to race (release freed, extend kept the lock)
                redis_client.delete(LOCK)
                continue
            assert redis_client.get(LOCK) == str(taken[-1]) and pttl_in(redis_client, LOCK, 60_000), (
                f"A's lock expired after A's command #{n} inside {name}({token}) and B took it with "
                f"{taken[-1]}; then {LOCK!r} = {redis_client.get(LOCK)!r}, PTTL {redis_client.pttl(LOCK)}: "
                + (CAS_RELEASE if name == "release" else CAS_EXTEND)
            )
            other.release(taken[-1])

    @pytest.mark.parametrize("n", [1, 2, 3])
    def test_the_store_checks_and_writes_in_one_step(
        self, redis_client: redis.Redis, redis_clients: Callable[..., Any], n: int,
    ) -> None:
        """A newer holder (token 6) writes between the n-th and next round trip of a write with token 5."""
        slow: SlowLink = redis_clients(SlowLink)
        FencedStore(redis_client, NAME).write("doc", "first", 4)
        newer = FencedStore(redis_clients(), NAME)
        slow.at(n, lambda: newer.write("doc", "by token 6", 6))
        with contextlib.suppress(StaleToken):
            FencedStore(slow, NAME).write("doc", "by token 5", 5)
        if slow.after is not None:  # the write made fewer than n round trips: nothing to race
            return
        assert (redis_client.hget(STORE, "doc"), redis_client.get(STORE_FENCE)) == ("by token 6", "6"), (
            f"token 6 wrote between the round trips of a write with token 5; the store holds "
            f"{redis_client.hget(STORE, 'doc')!r} with highest token {redis_client.get(STORE_FENCE)!r}: "
            "the stale write landed. Check the token and write in ONE Lua script (or WATCH/MULTI)"
        )

    def test_six_clients_take_turns_and_every_holder_writes(
        self, redis_client: redis.Redis, redis_clients: Callable[..., Any],
    ) -> None:
        inside, peak, order = [0], [0], []
        guard = threading.Lock()
        clients = [redis_clients() for _ in range(6)]

        def worker(client: redis.Redis) -> None:
            lock, store = FencingLock(client, NAME, ttl_ms=10_000, retry_ms=1), FencedStore(client, NAME)
            for _ in range(5):
                token = lock.acquire(timeout=None)
                with guard:
                    inside[0] += 1
                    peak[0] = max(peak[0], inside[0])
                    order.append(token)
                store.write("doc", str(token), token)
                with guard:
                    inside[0] -= 1
                lock.release(token)

        workers = [Background(worker, c, name=f"client-{i}") for i, c in enumerate(clients)]
        for w in workers:
            w.result(timeout=15)
        assert peak[0] == 1, f"{peak[0]} clients held the lock at once"
        assert order == sorted(order) and len(set(order)) == 30, (
            f"tokens in the order the clients held the lock: {order}: they must strictly increase"
        )
        assert redis_client.hget(STORE, "doc") == str(order[-1]) and not redis_client.exists(LOCK)
