"""Tests for the client-side limiter: redis-cell's vectors, a token-bucket oracle, the schedule a real server sees."""

from __future__ import annotations

import bisect
import math
import threading
import time
from collections.abc import Iterator
from fractions import Fraction

import pytest
import requests
from hypothesis import given, settings
from hypothesis import strategies as st

from fixtures.flaky_server import FlakyServer, Reply, Request, held, ok, status
from fixtures.vectors import GCRA_REDIS_CELL

from .rate_limiter_client import GCRA, Decision, RateLimitedClient, RequestTooLarge

VECTORS = GCRA_REDIS_CELL  # redis-cell's published vectors: see fixtures/vectors.py
EPOCH = 1_000_000.0  # the vectors start at t = 0; a realistic monotonic reading checks float precision
STUCK = 10_000  # clock reads without the clock moving: the client is spinning instead of sleeping
MAX_SLEEPS = 1_000  # no test needs more: a client still sleeping is being refused forever
GENEROUS = 10.0  # seconds to wait for something that should happen at once (then fail with the cause)
SETTLE = 4.0  # the same, inside a test that must leave time to report (the kata's limit is 10 s)


class FakeTime:
    """Virtual time: sleep() moves the clock at once and stamps the move with the real monotonic time.

    The stamps let a test turn the flaky server's real arrival times into virtual ones: a request
    the client sent after the k-th move (and before the next) was sent at the k-th virtual time.
    """

    def __init__(self, start: float = 0.0) -> None:
        self.now = start
        self.sleeps: list[float] = []
        self._marks: list[tuple[float, float]] = [(time.monotonic(), start)]  # (real, virtual)
        self._reads = 0
        self.reads_total = 0

    def clock(self) -> float:
        self._reads += 1
        self.reads_total += 1
        assert self._reads < STUCK, (
            f"the limiter read the injected clock {STUCK} times while it stood still at {self.now}: "
            "the client waits without moving time. Wait with the client's `sleep` (injected), "
            "not time.sleep or a busy loop"
        )
        return self.now

    def sleep(self, seconds: float) -> None:
        assert seconds >= 0, (
            f"the client called sleep({seconds}): a limited decision with retry_after = -1 means "
            "the request can never be allowed (its cost exceeds the burst); raise RequestTooLarge"
        )
        self.sleeps.append(seconds)
        assert len(self.sleeps) < MAX_SLEEPS, (
            f"the client slept {MAX_SLEEPS} times (now at t={self.now}) and the limiter still "
            "refuses: "
            + (
                "it never read the injected clock, so sleeping can't help: the limiter must read "
                "time only from its `clock`"
                if not self.reads_total
                else "each refused throttle() call seems to push the TAT further ahead. A limited "
                "request must leave the stored TAT unchanged"
            )
        )
        self.advance(seconds)

    def advance(self, seconds: float) -> None:
        """Time passes (a client sleeping, or idle between calls)."""
        self.now += seconds
        self._reads = 0
        self._marks.append((time.monotonic(), self.now))

    def sent_at(self, request: Request) -> float:
        """The virtual time at which the client sent `request`, from the server's arrival stamp."""
        reals = [real for real, _ in self._marks]
        return self._marks[bisect.bisect_right(reals, request.received_at) - 1][1]


@pytest.fixture(autouse=True)
def no_real_sleep(monkeypatch: pytest.MonkeyPatch) -> None:
    """time.sleep fails the test: all waiting goes through the injected `sleep` (virtual time)."""

    def real_sleep(seconds: float) -> None:
        raise AssertionError(
            f"time.sleep({seconds}) was called: the client must wait only through the `sleep` it "
            "was given (RateLimitedClient(session, limiter, sleep)), or virtual time never moves "
            "and the limiter refuses for ever"
        )

    monkeypatch.setattr(time, "sleep", real_sleep)


@pytest.fixture
def session() -> Iterator[requests.Session]:
    with requests.Session() as s:
        yield s


def schedule(server: FlakyServer, fake: FakeTime, path: str = "/api") -> list[float]:
    return [fake.sent_at(r) for r in server.hits(path)]


# ---- the algorithm: published vectors and a brute-force oracle ---------------------------------


@pytest.mark.stage(1, "the gcra formula")
def test_replays_redis_cells_published_vectors_row_by_row() -> None:
    fake = FakeTime()
    limiter = GCRA(max_burst=4, count=1, period=1, clock=fake.clock)
    for row, (t, qty, limited, remaining, reset_after, retry_after, lesson) in enumerate(VECTORS):
        fake.now = EPOCH + t
        got = limiter.throttle("user", qty)
        expected = (limited, 5, remaining, retry_after, reset_after)
        actual = (got.limited, got.limit, got.remaining, got.retry_after, got.reset_after)
        assert actual == pytest.approx(expected, abs=1e-6), (
            f"GCRA vector row {row} (t={t}, quantity={qty}): expected (limited, limit, remaining, "
            f"retry_after, reset_after) = {expected}, got {actual}.\nThis row checks: {lesson}."
            + vector_hint(row, got, fake)
        )


def vector_hint(row: int, got: Decision, fake: FakeTime) -> str:
    """The likely cause of a wrong row: rows run in order on one key, so state carries over."""
    if not fake.reads_total:
        return "\nthrottle() never called the injected clock: read the time only from `clock`."
    if row > 0 and VECTORS[row - 1][2]:
        return (
            f"\nThe row before ({row - 1}) was refused: a limited request must leave the stored "
            "TAT unchanged, or a client that keeps asking pushes its own allowance away."
        )
    if got.remaining == VECTORS[row][3] - 1:
        return (
            "\nremaining is one short: tau = T * (max_burst + 1), because limit = max_burst + 1 = 5 "
            "requests fit at one instant (the request itself plus the burst)."
        )
    return "\nEach row's time comes from the injected clock; check the formulas in GCRA's docstring."


@pytest.mark.stage(1, "the gcra formula")
def test_reproduces_the_redis_cell_readme_example() -> None:
    """CL.THROTTLE user123 15 30 60 1 -> allowed, limit 16, 15 remaining, -1, reset in 2 s."""
    got = GCRA(max_burst=15, count=30, period=60, clock=lambda: EPOCH).throttle("user123")
    actual = (got.limited, got.limit, got.remaining, got.retry_after, got.reset_after)
    assert actual == pytest.approx((False, 16, 15, -1.0, 2.0)), (
        f"CL.THROTTLE user123 15 30 60 1 answers (0, 16, 15, -1, 2) in redis-cell's README; got {got}"
    )


@pytest.mark.stage(1, "the gcra formula")
def test_each_key_has_its_own_allowance() -> None:
    limiter = GCRA(max_burst=0, count=1, period=10, clock=lambda: EPOCH)
    assert not limiter.throttle("alice").limited, "a fresh key's first request must be allowed"
    assert limiter.throttle("alice").limited, "alice's second request in 10 s must be limited"
    assert not limiter.throttle("bob").limited, "bob was limited by alice's requests"


class TokenBucket:
    """The oracle: a bucket of max_burst + 1 tokens refilled at one token per T, in exact fractions."""

    def __init__(self, max_burst: int, interval: Fraction) -> None:
        self.capacity = Fraction(max_burst + 1)
        self.tokens = self.capacity
        self.interval = interval
        self.last = Fraction(0)

    def take(self, now: Fraction, quantity: int) -> tuple[bool, int, Fraction, Fraction]:
        """(limited, remaining, retry_after, reset_after), as redis-cell would answer them."""
        self.tokens = min(self.capacity, self.tokens + (now - self.last) / self.interval)
        self.last = now
        allowed = quantity <= self.tokens
        if allowed:
            self.tokens -= quantity
            retry_after = Fraction(-1)
        elif quantity > self.capacity:
            retry_after = Fraction(-1)  # never: more than a full bucket
        else:
            retry_after = (quantity - self.tokens) * self.interval  # until enough tokens drip in
        reset_after = (self.capacity - self.tokens) * self.interval  # until the bucket is full
        return not allowed, math.floor(self.tokens), retry_after, reset_after


@pytest.mark.stage(2, "limits and float edges")
@settings(max_examples=150, deadline=None)
@given(
    max_burst=st.integers(0, 5),
    interval_eighths=st.sampled_from([2, 4, 8, 16]),  # T = 0.25, 0.5, 1 or 2 s: exact in binary
    steps=st.lists(st.tuples(st.integers(0, 24), st.integers(0, 7)), min_size=1, max_size=30),
)
def test_agrees_with_a_token_bucket_oracle(max_burst: int, interval_eighths: int, steps: list[tuple[int, int]]) -> None:
    """GCRA is a token bucket of max_burst + 1 tokens refilled at 1 per T, kept as one number."""
    interval = Fraction(interval_eighths, 8)
    fake = FakeTime()
    limiter = GCRA(max_burst=max_burst, count=1, period=float(interval), clock=fake.clock)
    oracle = TokenBucket(max_burst, interval)
    now = Fraction(0)
    for i, (gap_eighths, quantity) in enumerate(steps):
        now += Fraction(gap_eighths, 8)
        fake.now = EPOCH + float(now)
        got = limiter.throttle("k", quantity)
        limited, remaining, retry_after, reset_after = oracle.take(now, quantity)
        expected = (limited, max_burst + 1, remaining, float(retry_after), float(reset_after))
        actual = (got.limited, got.limit, got.remaining, got.retry_after, got.reset_after)
        assert actual == pytest.approx(expected, abs=1e-6), (
            f"max_burst={max_burst}, T={float(interval)} s, step {i} at t={float(now)}, quantity "
            f"{quantity}: expected (limited, limit, remaining, retry_after, reset_after) = "
            f"{expected} like a bucket of {max_burst + 1} tokens refilled one per T, got {actual}. "
            + oracle_hint(quantity, max_burst, got, limited)
            + f" Steps so far: {steps[: i + 1]}"
        )


def oracle_hint(quantity: int, max_burst: int, got: Decision, limited: bool) -> str:
    if limited and quantity == max_burst + 1 and got.retry_after < 0:
        return (
            f"A cost of exactly the burst ({quantity}) fits in a full bucket, so it is allowed "
            "later: retry_after is -1 only when increment > tau, not when they are equal."
        )
    if limited and got.limited and quantity <= max_burst + 1 and got.retry_after >= 0:
        return "retry_after = allow_at - now = new_tat - tau - now, with tat = max(now, stored TAT)."
    return "reset_after is the TAT (stored if allowed, unchanged if limited) minus now."


@pytest.mark.stage(2, "limits and float edges")
@pytest.mark.parametrize(
    ("max_burst", "count", "period"),
    [(-1, 1, 1.0), (0, 0, 1.0), (0, -1, 1.0), (0, 1, 0.0), (0, 1, -1.0)],
    ids=["burst-1", "count0", "count-1", "period0", "period-1"],
)
def test_impossible_limits_are_refused(max_burst: int, count: int, period: float) -> None:
    try:
        GCRA(max_burst=max_burst, count=count, period=period, clock=lambda: EPOCH)
    except ValueError:
        return
    except Exception as exc:  # reported below
        got = repr(exc)
    else:
        got = "a limiter"
    pytest.fail(
        f"GCRA(max_burst={max_burst}, count={count}, period={period}) gave {got}: a negative burst, "
        "or T = period / count that is infinite, zero or negative, is no limit at all. Check the "
        "arguments in __init__ and refuse with ValueError",
        pytrace=False,
    )


@pytest.mark.stage(1, "the gcra formula")
def test_the_smallest_limit_allows_one_request_per_period() -> None:
    fake = FakeTime(EPOCH)
    limiter = GCRA(max_burst=0, count=1, period=2.0, clock=fake.clock)
    got = [limiter.throttle("k").limited for _ in range(2)]
    fake.advance(2.0)
    got.append(limiter.throttle("k").limited)
    assert got == [False, True, False], (
        f"max_burst=0, count=1, period=2 (the smallest limit there is: bursts of 1, one request "
        f"per 2 s) decided limited = {got} for requests at t=0, 0, 2; expected [False, True, "
        "False]. max_burst may be 0, count and period must be positive"
    )


@pytest.mark.stage(1, "the gcra formula")
def test_the_default_clock_is_monotonic_time() -> None:
    limiter = GCRA(max_burst=1, count=1, period=3600)
    got = [limiter.throttle("k") for _ in range(3)]
    assert [d.limited for d in got] == [False, False, True] and 3599 < got[2].retry_after <= 3600, (
        f"without a clock, GCRA reads time.monotonic(): one request per hour in bursts of 2 "
        f"allows two at once and refuses the third for just under an hour; got {got}"
    )


@pytest.mark.stage(2, "limits and float edges")
@pytest.mark.parametrize("now", [1000.1, 1000.3, 1001.1])
def test_a_fresh_key_admits_a_full_burst_whatever_the_clock_reads(now: float) -> None:
    """At these readings (now + 3600.0) - 3600.0 > now in binary floating point."""
    for max_burst, quantity in [(0, 1), (2, 3)]:
        got = GCRA(max_burst=max_burst, count=1, period=3600 / (max_burst + 1), clock=lambda: now).throttle(
            "fresh", quantity
        )
        assert not got.limited, (
            f"at now={now} a fresh key (bursts of {max_burst + 1}) refused a request costing the "
            f"whole burst, with retry_after={got.retry_after!r}: computed as floats, allow_at = "
            f"(now + {quantity * 3600 / (max_burst + 1)}) - tau is {(now + 3600.0) - 3600.0!r}, a "
            "hair past now. Compare durations, not instants: limited iff new_tat - now > tau, "
            "with tat - now = max(0, stored TAT - now) (or count in integer nanoseconds, as "
            "redis-cell does)"
        )


class SlowKey(str):
    """A key whose hashing lets other threads run (as a preemption at that point could): a limiter
    that reads the TAT and stores the new one in two unguarded steps is caught between them."""

    def __hash__(self) -> int:
        threading.Event().wait(0.0001)  # lets the other threads run (time.sleep is patched out)
        return str.__hash__(self)

    def __eq__(self, other: object) -> bool:
        return str.__eq__(self, other)


@pytest.mark.stage(4, "many threads")
def test_threads_sharing_a_limiter_are_allowed_no_more_than_one_thread_would_be() -> None:
    limiter = GCRA(max_burst=19, count=1, period=1, clock=lambda: EPOCH)  # time stands still
    start = threading.Barrier(8)
    allowed: list[int] = []

    def worker() -> None:
        start.wait(GENEROUS)
        allowed.append(sum(not limiter.throttle(SlowKey("api")).limited for _ in range(10)))

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(GENEROUS)
    assert len(allowed) == 8, "a thread calling throttle() never returned"
    assert sum(allowed) == 20, (
        f"8 threads asked one limiter (bursts of 20, time standing still) 80 times and were allowed "
        f"{sum(allowed)} times; one thread asking 80 times gets 20. throttle() reads the TAT, "
        "decides and stores the new TAT: two threads that both read the old TAT are both "
        "allowed (check-then-act). Do the read-decide-write under one lock"
    )


# ---- the client, against a real server -----------------------------------------------------------


def explain(got: list[float], expected: list[float], interval: float, limit: int) -> str:
    """Name the classic mistake behind a wrong schedule, if there is one."""
    if got and got.count(got[0]) == limit - 1:
        return (
            f"the server saw requests at {got}: a burst of {limit - 1}, one short of max_burst + 1 "
            f"= {limit}. tau = T * (max_burst + 1): the request itself plus the burst"
        )
    spaced = [got[0] + k * interval for k in range(len(got))] if got else []
    if got == pytest.approx(spaced) and got != pytest.approx(expected):
        return (
            f"the server saw requests at {got}: one every {interval} s from the start, no burst. "
            f"The limiter allows {limit} at once (max_burst + 1), then one per T"
        )
    window = [got[0] + (k // limit) * limit * interval for k in range(len(got))] if got else []
    if got == pytest.approx(window):
        return (
            f"the server saw requests at {got}: {limit} at a time, then a wait for a fresh window. "
            "That is a fixed-window counter; GCRA lets the next request through one T after the "
            "burst, not a whole window later"
        )
    return f"the server saw requests at {got} (virtual seconds), expected {expected}"


@pytest.mark.stage(3, "the client")
def test_a_burst_then_the_steady_rate(flaky_server: FlakyServer, session: requests.Session) -> None:
    url = flaky_server.script("/api", ok())
    fake = FakeTime()
    # 2 requests per second (T = 0.5 s), bursts of max_burst + 1 = 3
    client = RateLimitedClient(session, GCRA(max_burst=2, count=2, period=1, clock=fake.clock), fake.sleep)
    for _ in range(6):
        assert client.get(url).status_code == 200
    expected = [0.0, 0.0, 0.0, 0.5, 1.0, 1.5]
    got = schedule(flaky_server, fake)
    assert got == pytest.approx(expected), explain(got, expected, 0.5, 3)
    assert fake.sleeps == pytest.approx([0.5, 0.5, 0.5]), (
        f"slept {fake.sleeps}: sleep exactly the limiter's retry_after, then ask it again"
    )


@pytest.mark.stage(3, "the client")
def test_idle_time_earns_back_one_burst_and_no_more(flaky_server: FlakyServer, session: requests.Session) -> None:
    url = flaky_server.script("/api", ok())
    fake = FakeTime()
    client = RateLimitedClient(session, GCRA(max_burst=2, count=4, period=1, clock=fake.clock), fake.sleep)
    for _ in range(3):
        client.get(url)
    fake.advance(60.0)  # a minute without requests
    for _ in range(5):
        client.get(url)
    expected = [0.0, 0.0, 0.0, 60.0, 60.0, 60.0, 60.25, 60.5]
    got = schedule(flaky_server, fake)
    assert got == pytest.approx(expected), (
        f"{explain(got, expected, 0.25, 3)}. After a minute idle the client may burst "
        "max_burst + 1 = 3 requests again, and not more: new_tat = max(now, tat) + increment"
    )


@pytest.mark.stage(3, "the client")
def test_a_refused_request_does_not_use_up_allowance(flaky_server: FlakyServer, session: requests.Session) -> None:
    url = flaky_server.script("/api", ok())
    fake = FakeTime()
    limiter = GCRA(max_burst=1, count=1, period=1, clock=fake.clock)
    client = RateLimitedClient(session, limiter, fake.sleep)
    client.get(url)
    client.get(url)
    for _ in range(5):  # someone else asks the same limiter, is refused, and doesn't wait
        assert limiter.throttle(f"127.0.0.1:{flaky_server.port}").limited, (
            "the client's two requests should have used up the burst of 2 for key host_of(url)"
        )
    client.get(url)
    got = schedule(flaky_server, fake)
    why = (
        "the second request belongs to the burst of max_burst + 1 = 2"
        if got[1:2] != [0.0]
        else "refused throttle() calls pushed the TAT ahead. A limited request must leave the stored TAT unchanged"
    )
    assert got == pytest.approx([0.0, 0.0, 1.0]), f"the server saw requests at {got}, expected [0, 0, 1]: {why}"


@pytest.mark.stage(3, "the client")
def test_costs_are_charged_in_emission_intervals(flaky_server: FlakyServer, session: requests.Session) -> None:
    url = flaky_server.script("/api", ok())
    fake = FakeTime()
    client = RateLimitedClient(session, GCRA(max_burst=3, count=1, period=1, clock=fake.clock), fake.sleep)
    for cost in [3, 2, 1, 4]:
        client.get(url, cost=cost)
    got = schedule(flaky_server, fake)
    assert got == pytest.approx([0.0, 1.0, 2.0, 6.0]), (
        f"costs 3, 2, 1, 4 against a burst of 4 at 1 per second: expected sends at [0, 1, 2, 6], "
        f"the server saw {got}. A cost of n is n emission intervals (increment = T * quantity)"
    )


@pytest.mark.stage(3, "the client")
def test_a_request_costing_more_than_the_burst_is_refused_at_once(
    flaky_server: FlakyServer, session: requests.Session
) -> None:
    url = flaky_server.script("/api", ok())
    fake = FakeTime()
    client = RateLimitedClient(session, GCRA(max_burst=4, count=1, period=1, clock=fake.clock), fake.sleep)
    with pytest.raises(RequestTooLarge):
        client.get(url, cost=6)
    assert flaky_server.hits("/api") == [] and fake.sleeps == [], (
        "a request costing 6 against a limit of 5 can never go: raise RequestTooLarge without "
        f"sleeping or sending (slept {fake.sleeps}, sent {len(flaky_server.hits('/api'))})"
    )


@pytest.mark.stage(3, "the client")
def test_each_host_has_its_own_budget(flaky_server: FlakyServer, session: requests.Session) -> None:
    fake = FakeTime()
    client = RateLimitedClient(session, GCRA(max_burst=0, count=1, period=1, clock=fake.clock), fake.sleep)
    with FlakyServer() as other:
        urls = [flaky_server.script("/api", ok()), other.script("/api", ok())]
        for _ in range(2):
            for url in urls:
                client.get(url)
        here, there = schedule(flaky_server, fake), schedule(other, fake)
    assert here == pytest.approx([0.0, 1.0]) and there == pytest.approx([0.0, 1.0]), (
        f"one request per second per host, alternating between two hosts: expected each host to "
        f"see [0, 1], got {here} and {there}. Key the limiter by host_of(url), so one busy API "
        "doesn't slow down calls to another"
    )


@pytest.mark.stage(3, "the client")
def test_paths_and_queries_of_one_host_share_its_budget(flaky_server: FlakyServer, session: requests.Session) -> None:
    fake = FakeTime()
    client = RateLimitedClient(session, GCRA(max_burst=0, count=1, period=1, clock=fake.clock), fake.sleep)
    paths = ["/a", "/b", "/a"]
    for path in paths:
        flaky_server.script(path, ok())
    for path, query in zip(paths, ["", "?page=2", "?x=1"], strict=True):
        client.get(flaky_server.url(path) + query)
    got = sorted(fake.sent_at(r) for r in flaky_server.requests)
    assert got == pytest.approx([0.0, 1.0, 2.0]), (
        f"one request per second to one host, on paths /a, /b and /a?x=1: the server saw them at "
        f"{got}, expected [0, 1, 2]. The budget is the host's (host_of(url): host and port), not "
        "the URL's: an API limits its clients, not each of its paths"
    )


@pytest.mark.stage(3, "the client")
@pytest.mark.parametrize("code", [201, 304, 404, 429, 503])
def test_the_response_is_returned_whatever_its_status(
    flaky_server: FlakyServer, session: requests.Session, code: int
) -> None:
    reply = (
        Reply(304, b"") if code == 304 else status(code, headers={"Retry-After": "7"} if code in (429, 503) else None)
    )
    url = flaky_server.script("/api", reply, ok())  # a client that asks again gets a 200
    fake = FakeTime()
    client = RateLimitedClient(session, GCRA(max_burst=4, count=1, period=1, clock=fake.clock), fake.sleep)
    response = client.request("POST", url, data=b"payload", headers={"X-Trace": "t1"})
    hits = flaky_server.hits("/api")
    assert response.status_code == code and len(hits) == 1 and fake.sleeps == [], (
        f"the server answered {code} to one request; the client returned "
        f"{response.status_code}, after {len(hits)} request(s) and sleeps {fake.sleeps}. The "
        "limiter paces what you send; it doesn't judge answers: return session.request()'s "
        "response as it is (retrying a 429 or 503 is retry_backoff's job)"
    )
    assert (hits[0].method, hits[0].body, hits[0].header("X-Trace")) == ("POST", b"payload", "t1"), (
        f"client.request('POST', url, data=..., headers=...) reached the server as {hits[0].method} "
        f"with body {hits[0].body!r} and X-Trace {hits[0].header('X-Trace')!r}: pass the method "
        "and every keyword argument on to session.request"
    )


@pytest.mark.stage(3, "the client")
def test_a_request_costing_nothing_never_waits(flaky_server: FlakyServer, session: requests.Session) -> None:
    url = flaky_server.script("/api", ok())
    fake = FakeTime()
    client = RateLimitedClient(session, GCRA(max_burst=1, count=1, period=1, clock=fake.clock), fake.sleep)
    for cost in [2, 0, 0, 1]:
        client.get(url, cost=cost)
    got = schedule(flaky_server, fake)
    assert got == pytest.approx([0.0, 0.0, 0.0, 1.0]), (
        f"costs 2, 0, 0, 1 against a burst of 2 at 1 per second: the server saw them at {got}, "
        "expected [0, 0, 0, 1]. A cost of 0 is allowed even with the burst spent (redis-cell's "
        "quantity 0) and doesn't use anything up"
    )


class Waited(Exception):
    """Raised by the test's sleep: the thread that called it is recorded as having waited."""


@pytest.mark.stage(4, "many threads")
def test_threads_sharing_a_client_send_one_burst_together_and_the_rest_wait(
    flaky_server: FlakyServer, session: requests.Session
) -> None:
    url = flaky_server.script("/api", held("go", ok()))  # the server holds every answer until "go"
    waited: list[tuple[str, float]] = []

    def sleep(seconds: float) -> None:
        waited.append((threading.current_thread().name, seconds))
        raise Waited  # time stands still in this test: a thread told to wait stops here

    # 2 requests per second (T = 0.5 s), bursts of 3, time standing still at EPOCH
    client = RateLimitedClient(session, GCRA(max_burst=2, count=2, period=1, clock=lambda: EPOCH), sleep)
    outcomes: dict[str, str] = {}

    def worker() -> None:
        try:
            outcomes[threading.current_thread().name] = str(client.get(url).status_code)
        except Waited:
            outcomes[threading.current_thread().name] = "waited"

    threads = [threading.Thread(target=worker, name=f"t{i}") for i in range(6)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + SETTLE  # inside the kata's time limit, so the cause gets reported
    while time.monotonic() < deadline and (flaky_server.held_count() < 3 or len(waited) < 3):
        threading.Event().wait(0.01)
    in_flight, sleepers = flaky_server.held_count(), list(waited)
    flaky_server.release("go")
    for t in threads:
        t.join(GENEROUS)
    sent = len(flaky_server.hits("/api"))
    assert sent == 3, (
        f"6 threads shared a client allowing bursts of 3 at one instant; the server received {sent} "
        "requests. Every request must be allowed by its own throttle() call, and the limiter's "
        "read-decide-write must be atomic"
    )
    assert in_flight == 3 and flaky_server.peak_in_flight == 3, (
        f"the 3 allowed requests were never in flight together (at most {flaky_server.peak_in_flight} "
        "at once while the server held its answers): the client sends while holding a lock, so "
        "threads queue behind each other's network round trips. Only throttle() needs the lock; "
        "send outside it"
    )
    assert sorted(seconds for _, seconds in sleepers) == pytest.approx([0.5] * 3), (
        f"the 3 threads refused should each have slept the limiter's retry_after (T = 0.5 s); sleeps seen: {sleepers}"
    )
    assert sorted(outcomes.values()) == ["200"] * 3 + ["waited"] * 3, f"outcomes per thread: {outcomes}"
