"""Tests for the GCRA rate limiter: redis-cell's vectors, an exact model, atomicity, script caching, expiry."""

from __future__ import annotations

import itertools
import threading
import time
from dataclasses import dataclass

import pytest
import redis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dojo.testing import Background
from fixtures.vectors import GCRA_REDIS_CELL

from .redis_rate_limiter import Decision, RateLimiter

VECTORS = GCRA_REDIS_CELL  # redis-cell's published vectors: see fixtures/vectors.py
EPOCH = 1_700_000_000.0  # a realistic clock value: a double holds it only to ~0.24 microseconds
YEAR_2100 = 4_102_444_800.0
ODD = 1.001  # the double nearest 1.001 is 1.000999999999999889: int(ODD * 1000) is 1000, not 1001
FLOATS = ("work in whole microseconds or milliseconds (round(now * 1_000_000), not int()), as redis-cell works "
          "in whole nanoseconds: at now = 1.7e9 s a double is off by ~1e-7 s, so float seconds "
          "turn floor(0.4 / 0.2) = 2 into 1 and put allow_at a hair after now")


def as_tuple(got: Decision) -> tuple[bool, int, int, float, float]:
    return (got.limited, got.limit, got.remaining, got.retry_after, got.reset_after)


def assert_expires_with_the_reset(client: redis.Redis, key: str, got: Decision, after: str) -> None:
    """Right after an allowed request that took something, the key's PTTL is reset_after.

    Checked after every such request of a replayed sequence, so a key that expires too early
    (in real time, between two requests) is reported as that, not as a wrong later decision.
    """
    want_ms = round(got.reset_after * 1000)
    pttl = client.pttl(key)
    assert want_ms // 2 <= pttl <= want_ms + 1, (
        f"after {after} the key {key!r} must expire in reset_after = {want_ms} ms; its PTTL is "
        f"{pttl} ms (-2: no such key, -1: no expiry). SET it with PX (milliseconds) = "
        "ceil(reset_after in ms), under the key itself: too short and the TAT vanishes before "
        "the next request, which then gets the burst back."
    )


@pytest.mark.stage(1, "the gcra decisions")
@pytest.mark.parametrize("base", [EPOCH, 0.0, ODD, YEAR_2100], ids=["epoch_2023", "epoch_0", "odd", "year_2100"])
def test_replays_redis_cells_published_vectors_row_by_row(redis_client: redis.Redis, base: float) -> None:
    limiter = RateLimiter(redis_client, max_burst=4, count=1, period=1)
    for row, (t, qty, limited, remaining, reset_after, retry_after, lesson) in enumerate(VECTORS):
        got = limiter.throttle("user", qty, now=base + t)
        expected = (limited, 5, remaining, retry_after, reset_after)
        assert as_tuple(got) == pytest.approx(expected, abs=1e-7), (
            f"GCRA vector row {row} (now = {base} + {t}, quantity={qty}): expected (limited, limit, "
            f"remaining, retry_after, reset_after) = {expected}, got {as_tuple(got)}.\n"
            f"This row checks: {lesson}."
            + ("\nnow = 0 is a time like any other: test `now is None`, not `not now`." if not base else "")
            + ("\nConvert seconds to whole units with round(), not int(): int(1.001 * 1000) is 1000."
               if base == ODD else "")
        )
        if not limited and qty:
            assert_expires_with_the_reset(redis_client, "user", got, f"vector row {row} (now = {base} + {t})")


@pytest.mark.stage(1, "the gcra decisions")
def test_reproduces_the_redis_cell_readme_example(redis_client: redis.Redis) -> None:
    """CL.THROTTLE user123 15 30 60 1 -> allowed, limit 16, 15 remaining, -1, reset in 2 s."""
    got = RateLimiter(redis_client, max_burst=15, count=30, period=60).throttle("user123", now=EPOCH)
    assert as_tuple(got) == pytest.approx((False, 16, 15, -1, 2)), \
        f"the README example of redis-cell gives {got}"


@pytest.mark.stage(2, "exact time and expiry")
@pytest.mark.parametrize(("count", "period"), [(5, 1), (10, 1), (10, 3), (10, 7)],
                         ids=["T=0.2s", "T=0.1s", "T=0.3s", "T=0.7s"])
def test_remaining_is_exact_at_a_real_clock_value(redis_client: redis.Redis, count: int, period: float) -> None:
    """max_burst 2 at 5 per second, three requests at now = 1.7e9: remaining 2, 1, 0 (README formula)."""
    emission = period / count
    limiter = RateLimiter(redis_client, max_burst=2, count=count, period=period)
    got = []
    for n in range(4):
        got.append(limiter.throttle("k", now=EPOCH))
        if not got[-1].limited:
            assert_expires_with_the_reset(redis_client, "k", got[-1], f"request {n + 1} at now = {EPOCH}")
    expected = [(False, 3, 2, -1.0, emission), (False, 3, 1, -1.0, 2 * emission),
                (False, 3, 0, -1.0, 3 * emission), (True, 3, 0, emission, 3 * emission)]
    assert [as_tuple(g) for g in got] == [pytest.approx(e, abs=1e-7) for e in expected], (
        f"max_burst 2, T = {emission:g} s, four requests at now = {EPOCH}: expected "
        f"{expected}, got {[as_tuple(g) for g in got]}: {FLOATS}"
    )
    later = limiter.throttle("k", now=EPOCH + emission)
    assert not later.limited and later.remaining == 0, (
        f"one emission interval later exactly one request is allowed again, got {later}: {FLOATS}"
    )


# -- the README's formulas, in whole milliseconds, against the limiter -----------------------------

@dataclass
class Model:
    """GCRA exactly as the README states it, in integer milliseconds; `tat` is what Redis holds."""

    emission: int
    max_burst: int
    tat: int | None = None

    def throttle(self, quantity: int, now: int) -> tuple[bool, int, int, int, int]:
        tolerance = self.emission * (self.max_burst + 1)
        increment = self.emission * quantity
        tat = now if self.tat is None else self.tat
        new_tat = max(now, tat) + increment
        allow_at = new_tat - tolerance
        if now < allow_at:
            retry_after = allow_at - now if increment <= tolerance else -1
            reset_after = tat - now
            limited = True
        else:
            retry_after, reset_after, limited = -1, new_tat - now, False
            if reset_after > 0:
                self.tat = new_tat
        remaining = max(0, (tolerance - reset_after) // self.emission)
        return limited, self.max_burst + 1, remaining, retry_after, reset_after


STEP_MS = 200  # every time step and T is a multiple of 200 ms, so every expiry is >= 200 ms of real time
keys = itertools.count()


@pytest.mark.stage(2, "exact time and expiry")
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    base=st.sampled_from([EPOCH, 0.0, ODD, YEAR_2100]),
    emission_steps=st.sampled_from([1, 2, 3, 5, 7]),
    count=st.integers(1, 6),
    max_burst=st.integers(0, 4),
    calls=st.lists(st.tuples(st.integers(0, 12), st.integers(0, 6)), min_size=1, max_size=12),
)
def test_every_decision_matches_the_readme_formulas_in_whole_milliseconds(
    redis_client: redis.Redis, base: float, emission_steps: int, count: int, max_burst: int,
    calls: list[tuple[int, int]],
) -> None:
    emission = emission_steps * STEP_MS
    period = emission * count / 1000
    limiter = RateLimiter(redis_client, max_burst=max_burst, count=count, period=period)
    model = Model(emission, max_burst)
    key = f"client-{next(keys)}"
    now_ms = round(base * 1000)
    history: list[str] = []
    for steps, quantity in calls:
        now_ms += steps * STEP_MS
        stale = model.tat is not None and model.tat < now_ms
        want = model.throttle(quantity, now_ms)
        got = as_tuple(limiter.throttle(key, quantity, now=now_ms / 1000))
        history.append(f"throttle(quantity={quantity}, now={now_ms / 1000!r}) -> {got}")
        expected = (want[0], want[1], want[2], want[3] / 1000 if want[3] >= 0 else -1.0, want[4] / 1000)
        if stale and want[0]:
            # a TAT behind now is one Redis would already have expired on a real clock: only the
            # verdict is fixed (the request is larger than the whole burst), not reset_after
            expected, got = expected[:2], got[:2]
        assert got == pytest.approx(expected, abs=1e-7), (
            f"max_burst={max_burst}, count={count}, period={period} (T = {emission} ms): expected "
            f"(limited, limit, remaining, retry_after, reset_after) = {expected}, got {got}.\n"
            "The calls so far:\n  " + "\n  ".join(history) + "\n"
            "Check: tat = stored or now; new_tat = max(now, tat) + T * quantity; limited when "
            "now < new_tat - tau; only an allowed request stores new_tat; remaining = "
            f"floor((tau - reset_after) / T). And {FLOATS}."
        )
        if not want[0] and quantity > 0:
            # (quantity 0 may leave the key as it was: on a real clock its expiry is the same moment)
            pttl = redis_client.pttl(key)
            assert want[4] // 2 <= pttl <= want[4] + 1, (
                f"after {history[-1]} the key {key!r} must expire in reset_after = {want[4]} ms; "
                f"its PTTL is {pttl} ms (-2: no such key, -1: no expiry). SET it with PX "
                "(milliseconds) = ceil(reset_after in ms), under the key itself."
            )


@pytest.mark.stage(1, "the gcra decisions")
def test_each_key_has_its_own_allowance(redis_client: redis.Redis) -> None:
    limiter = RateLimiter(redis_client, max_burst=0, count=1, period=10)
    assert not limiter.throttle("alice", now=EPOCH).limited
    assert limiter.throttle("alice", now=EPOCH).limited, "alice's second request in 10 s must be limited"
    assert not limiter.throttle("bob", now=EPOCH).limited, "bob was limited by alice's requests"


# -- the key in Redis -------------------------------------------------------------------------

@pytest.mark.stage(2, "exact time and expiry")
@pytest.mark.parametrize(("count", "period"), [(1, 20), (5, 1)], ids=["T=20s", "T=0.2s"])
def test_the_key_lives_exactly_until_the_limit_has_fully_reset(
    redis_client: redis.Redis, count: int, period: float,
) -> None:
    """Without an expiry every client ever seen stays forever; too short, and the TAT is lost."""
    limiter = RateLimiter(redis_client, max_burst=4, count=count, period=period)
    for n in range(1, 4):
        got = limiter.throttle("visitor", now=EPOCH)
        want_ms = round(got.reset_after * 1000)
        pttl = redis_client.pttl("visitor")
        assert pttl != -2, (
            f"the key 'visitor' is gone right after an allowed request (found {redis_client.keys('*')}): "
            "store the TAT under the key itself, with an expiry of reset_after: PX takes "
            "milliseconds (ceil(reset_after * 1000)), EX seconds"
        )
        assert pttl != -1, "no expiry was set: every client ever seen stays in Redis forever. Use SET ... PX"
        assert want_ms // 2 <= pttl <= want_ms + 1, (
            f"after {n} request(s) the limit fully resets in {got.reset_after} s, but the key's PTTL is "
            f"{pttl} ms: PX takes milliseconds (reset_after * 1000), EX seconds. Too short loses the "
            "TAT early and the client gets its burst back; too long keeps idle keys in memory."
        )
    time.sleep(0.05)
    assert redis_client.exists("visitor"), (
        f"the key vanished within 50 ms although the limit resets in {got.reset_after} s: the expiry "
        "is far too short (seconds given where milliseconds were meant?)"
    )


@pytest.mark.stage(2, "exact time and expiry")
def test_a_limited_request_stores_nothing(redis_client: redis.Redis) -> None:
    limiter = RateLimiter(redis_client, max_burst=0, count=1, period=10)
    limiter.throttle("k", now=EPOCH)
    stored, pttl = redis_client.get("k"), redis_client.pttl("k")
    for _ in range(3):
        assert limiter.throttle("k", now=EPOCH + 1).limited
    assert redis_client.get("k") == stored, (
        f"a limited request changed the stored TAT from {stored} to {redis_client.get('k')}: "
        "refused requests must leave the TAT unchanged, or a client that keeps retrying is "
        "locked out forever"
    )
    assert 0 < redis_client.pttl("k") <= pttl, (
        f"a limited request changed the key's expiry from {pttl} ms to {redis_client.pttl('k')} ms: "
        "a refused request must store nothing, not even a new expiry"
    )


# -- the clock --------------------------------------------------------------------------------

@pytest.mark.stage(2, "exact time and expiry")
def test_the_default_clock_is_the_unix_time_every_app_server_shares(redis_client: redis.Redis) -> None:
    """App servers boot at different times: only the Unix time means the same instant on each."""
    limiter = RateLimiter(redis_client, max_burst=0, count=1, period=30)
    before = time.time()
    first = limiter.throttle("k")
    after = time.time()
    assert not first.limited, f"the first request of a fresh key was refused: {first}"
    peek = limiter.throttle("k", quantity=0, now=after)
    clock = after + peek.reset_after - 30  # the `now` the default call stored its TAT from
    assert before - 0.05 <= clock <= after + 0.05, (
        f"with no `now`, throttle stored a TAT as if the time were {clock:.3f}, but time.time() was "
        f"{before:.3f}: the default clock must be the Unix time (time.time()), read at each call. "
        "time.monotonic() starts anywhere, differently on each machine, so two app servers sharing "
        "the TAT disagree by hours; a default argument `now=time.time()` is frozen at import."
    )
    limiter.throttle("j", now=time.time())
    second = limiter.throttle("j")
    assert second.limited and 0 < second.retry_after <= 30.05, (
        f"another app server was just allowed a request at time.time(); this one, on the default "
        f"clock, got {second}: its clock is not the Unix time (time.monotonic()?)"
    )


# -- scripts ----------------------------------------------------------------------------------

@pytest.mark.stage(3, "atomic scripts")
def test_works_on_a_redis_that_has_never_seen_the_script(redis_client: redis.Redis) -> None:
    """After a restart or SCRIPT FLUSH Redis answers EVALSHA with NOSCRIPT: fall back to EVAL."""
    redis_client.script_flush()
    limiter = RateLimiter(redis_client, max_burst=1, count=1, period=1)
    try:
        got = limiter.throttle("k", now=EPOCH)
    except redis.exceptions.NoScriptError as exc:
        pytest.fail(f"NOSCRIPT was not handled ({exc}): catch redis.exceptions.NoScriptError "
                    "and run the script with EVAL, which also caches it")
    assert not got.limited
    redis_client.script_flush()
    assert limiter.throttle("k", now=EPOCH).remaining == 0, "after a second SCRIPT FLUSH"


@pytest.mark.stage(3, "atomic scripts")
def test_repeated_calls_run_the_cached_script_by_its_sha(redis_client: redis.Redis) -> None:
    """EVAL ships the whole script on every call; EVALSHA only its 40-character SHA1."""
    limiter = RateLimiter(redis_client, max_burst=100, count=1, period=1)
    limiter.throttle("warm-up", now=EPOCH)
    redis_client.config_resetstat()
    for i in range(10):
        limiter.throttle(f"k{i}", now=EPOCH)
    stats = redis_client.info("commandstats")
    evalsha = stats.get("cmdstat_evalsha", {}).get("calls", 0)
    evals = stats.get("cmdstat_eval", {}).get("calls", 0)
    assert evalsha == 10 and evals == 0, (
        f"10 calls on a warm cache should be 10 EVALSHA and no EVAL; Redis counted {evalsha} "
        f"EVALSHA and {evals} EVAL. The SHA1 of GCRA_LUA's text names the cached script."
    )


@pytest.mark.stage(3, "atomic scripts")
def test_every_read_and_write_of_the_key_happens_inside_the_script(redis_client: redis.Redis) -> None:
    """MONITOR shows who sent each command: GET/SET from the client instead of Lua is a race."""
    url = redis_client.connection_pool.connection_kwargs
    watcher = redis.Redis(host=url["host"], port=url["port"], decode_responses=True)
    seen: list[tuple[str, str]] = []
    with watcher.monitor() as monitor:
        def record() -> None:
            for entry in monitor.listen():
                seen.append((entry["client_type"], entry["command"]))
                if "end-of-test" in entry["command"]:
                    return

        reader = Background(record, name="monitor")
        limiter = RateLimiter(redis_client, max_burst=3, count=1, period=1)
        for _ in range(3):
            limiter.throttle("k", now=EPOCH)
        redis_client.echo("end-of-test")
        reader.result(timeout=5)
    watcher.close()
    from_client = [cmd.split() for who, cmd in seen if who != "lua"]
    scripts = [c for c in from_client if c[0].upper() in ("EVAL", "EVALSHA")]
    outside = [" ".join(c) for c in from_client if c not in scripts and "k" in c[1:]]
    assert scripts and not outside, (
        f"the client itself sent {outside or 'no EVAL/EVALSHA'}: the read-compute-write must run in "
        "one Lua script, which Redis executes atomically. Between a client's GET and SET another "
        "client can slip in, and both are allowed."
    )


@pytest.mark.stage(3, "atomic scripts")
def test_concurrent_clients_never_get_more_than_the_burst(redis_client: redis.Redis) -> None:
    kwargs = redis_client.connection_pool.connection_kwargs
    clients = [redis.Redis(host=kwargs["host"], port=kwargs["port"]) for _ in range(8)]
    barrier = threading.Barrier(len(clients))

    def hammer(client: redis.Redis) -> int:
        limiter = RateLimiter(client, max_burst=4, count=1, period=60)
        barrier.wait()
        return sum(not limiter.throttle("shared", now=EPOCH).limited for _ in range(5))

    workers = [Background(hammer, c, name=f"client-{i}") for i, c in enumerate(clients)]
    allowed = sum(w.result(timeout=10) for w in workers)
    for client in clients:
        client.close()
    assert allowed == 5, (
        f"8 clients sent 40 requests at the same instant against a burst of 5: {allowed} were "
        "allowed. More than 5 means the check and the update are not atomic."
    )
