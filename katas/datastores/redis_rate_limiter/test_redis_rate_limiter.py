"""Tests for the GCRA rate limiter: redis-cell's published vectors, atomicity, script caching, expiry."""

from __future__ import annotations

import threading

import pytest
import redis

from dojo.testing import Background

from .redis_rate_limiter import RateLimiter

# redis-cell's unit test `it_rate_limits` (max_burst 4, 1 token per second), from the shared
# reference sheet: (t, quantity, limited, remaining, reset_after, retry_after, what the row teaches)
VECTORS = [
    (0.0, 6, True, 5, 0.0, -1.0, "a request larger than the whole burst is never allowed (retry_after -1)"),
    (0.0, 1, False, 4, 1.0, -1.0, "a fresh key starts from TAT = now"),
    (0.0, 1, False, 3, 2.0, -1.0, "each allowed request pushes the TAT one emission interval ahead"),
    (0.0, 1, False, 2, 3.0, -1.0, "the burst is being used up"),
    (0.0, 1, False, 1, 4.0, -1.0, "the burst is being used up"),
    (0.0, 1, False, 0, 5.0, -1.0, "the last request of the burst (limit = max_burst + 1 = 5)"),
    (0.0, 1, True, 0, 5.0, 1.0, "the burst is spent: limited, retry_after = allow_at - now"),
    (3.0, 1, False, 2, 3.0, -1.0, "a limited request must leave the stored TAT unchanged"),
    (3.1, 1, False, 1, 3.9, -1.0, "fractions of a second count: keep floats, return them as strings"),
    (4.0, 1, False, 1, 4.0, -1.0, "time passing earns allowance back"),
    (8.0, 1, False, 4, 1.0, -1.0, "time passing earns allowance back"),
    (9.5, 1, False, 4, 1.0, -1.0, "after idling, the TAT restarts from now: max(now, tat) + increment"),
    (9.5, 0, False, 4, 1.0, -1.0, "quantity 0 peeks without consuming"),
    (9.5, 2, False, 2, 3.0, -1.0, "a quantity of 2 costs two emission intervals"),
    (9.5, 5, True, 2, 3.0, 3.0, "limited: reset_after is the stored TAT - now, remaining is unchanged"),
]
EPOCH = 1_700_000_000.0  # vectors start at t = 0; a realistic clock value checks float precision


def test_replays_redis_cells_published_vectors_row_by_row(redis_client: redis.Redis) -> None:
    limiter = RateLimiter(redis_client, max_burst=4, count=1, period=1)
    for row, (t, qty, limited, remaining, reset_after, retry_after, lesson) in enumerate(VECTORS):
        got = limiter.throttle("user", qty, now=EPOCH + t)
        expected = (limited, 5, remaining, retry_after, reset_after)
        actual = (got.limited, got.limit, got.remaining, got.retry_after, got.reset_after)
        assert actual == pytest.approx(expected, abs=1e-3), (
            f"GCRA vector row {row} (t={t}, quantity={qty}): expected (limited, limit, remaining, "
            f"retry_after, reset_after) = {expected}, got {actual}.\nThis row checks: {lesson}."
        )


def test_reproduces_the_redis_cell_readme_example(redis_client: redis.Redis) -> None:
    """CL.THROTTLE user123 15 30 60 1 -> allowed, limit 16, 15 remaining, -1, reset in 2 s."""
    got = RateLimiter(redis_client, max_burst=15, count=30, period=60).throttle("user123", now=EPOCH)
    assert (got.limited, got.limit, got.remaining, got.retry_after, got.reset_after) == \
        pytest.approx((False, 16, 15, -1, 2)), f"the README example of redis-cell gives {got}"


def test_each_key_has_its_own_allowance(redis_client: redis.Redis) -> None:
    limiter = RateLimiter(redis_client, max_burst=0, count=1, period=10)
    assert not limiter.throttle("alice", now=EPOCH).limited
    assert limiter.throttle("alice", now=EPOCH).limited, "alice's second request in 10 s must be limited"
    assert not limiter.throttle("bob", now=EPOCH).limited, "bob was limited by alice's requests"


def test_the_key_expires_when_the_limit_has_fully_reset(redis_client: redis.Redis) -> None:
    """Without an expiry every client ever seen stays in Redis forever: a memory leak."""
    limiter = RateLimiter(redis_client, max_burst=4, count=1, period=20)
    got = limiter.throttle("visitor")
    keys = redis_client.keys("*")
    assert keys == ["visitor"], f"expected exactly the key 'visitor' in Redis, found {keys}"
    ttl_ms = redis_client.pttl("visitor")
    assert 0 < ttl_ms <= got.reset_after * 1000 + 1, (
        f"the key must expire when the limit has fully reset ({got.reset_after} s): PTTL is "
        f"{ttl_ms} ms (-1 means no expiry was set). Use SET ... PX inside the script."
    )


def test_a_limited_request_stores_nothing(redis_client: redis.Redis) -> None:
    limiter = RateLimiter(redis_client, max_burst=0, count=1, period=10)
    limiter.throttle("k", now=EPOCH)
    stored = redis_client.get("k")
    for _ in range(3):
        assert limiter.throttle("k", now=EPOCH + 1).limited
    assert redis_client.get("k") == stored, (
        f"a limited request changed the stored TAT from {stored} to {redis_client.get('k')}: "
        "refused requests must leave the TAT unchanged, or a client that keeps retrying is "
        "locked out forever"
    )


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
