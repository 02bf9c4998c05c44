"""Tests for the client-side limiter: redis-cell's vectors, a token-bucket oracle, the schedule a real server sees."""

from __future__ import annotations

import bisect
import math
import time
from collections.abc import Iterator
from fractions import Fraction

import pytest
import requests
from hypothesis import given, settings
from hypothesis import strategies as st

from fixtures.flaky_server import FlakyServer, Request, ok

from .rate_limiter_client import GCRA, Decision, RateLimitedClient, RequestTooLarge

# redis-cell's unit test `it_rate_limits` (max_burst 4, 1 token per second), from the shared
# reference sheet: (t, quantity, limited, remaining, reset_after, retry_after, what the row teaches)
VECTORS = [
    (0.0, 6, True, 5, 0.0, -1.0, "a request larger than the whole burst is never allowed (retry_after -1)"),
    (0.0, 1, False, 4, 1.0, -1.0, "a fresh key starts from TAT = now"),
    (0.0, 1, False, 3, 2.0, -1.0, "each allowed request pushes the TAT one emission interval ahead"),
    (0.0, 1, False, 2, 3.0, -1.0, "the burst is being used up"),
    (0.0, 1, False, 1, 4.0, -1.0, "the burst is being used up"),
    (0.0, 1, False, 0, 5.0, -1.0, "the last request of the burst (limit = max_burst + 1 = 5, tau = T * 5)"),
    (0.0, 1, True, 0, 5.0, 1.0, "the burst is spent: limited, retry_after = allow_at - now"),
    (3.0, 1, False, 2, 3.0, -1.0, "a limited request must leave the stored TAT unchanged"),
    (3.1, 1, False, 1, 3.9, -1.0, "fractions of a second count"),
    (4.0, 1, False, 1, 4.0, -1.0, "time passing earns allowance back"),
    (8.0, 1, False, 4, 1.0, -1.0, "time passing earns allowance back"),
    (9.5, 1, False, 4, 1.0, -1.0, "after idling, the TAT restarts from now: max(now, tat) + increment"),
    (9.5, 0, False, 4, 1.0, -1.0, "quantity 0 peeks without consuming"),
    (9.5, 2, False, 2, 3.0, -1.0, "a quantity of 2 costs two emission intervals"),
    (9.5, 5, True, 2, 3.0, 3.0, "limited: reset_after is the stored TAT - now, remaining is unchanged"),
]
EPOCH = 1_000_000.0  # the vectors start at t = 0; a realistic monotonic reading checks float precision
STUCK = 10_000  # clock reads without the clock moving: the client is spinning instead of sleeping
MAX_SLEEPS = 1_000  # no test needs more: a client still sleeping is being refused forever


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
            + ("it never read the injected clock, so sleeping can't help: the limiter must read "
               "time only from its `clock`" if not self.reads_total else
               "each refused throttle() call seems to push the TAT further ahead. A limited "
               "request must leave the stored TAT unchanged")
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


@pytest.fixture
def session() -> Iterator[requests.Session]:
    with requests.Session() as s:
        yield s


def schedule(server: FlakyServer, fake: FakeTime, path: str = "/api") -> list[float]:
    return [fake.sent_at(r) for r in server.hits(path)]


# ---- the algorithm: published vectors and a brute-force oracle ---------------------------------


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


def test_reproduces_the_redis_cell_readme_example() -> None:
    """CL.THROTTLE user123 15 30 60 1 -> allowed, limit 16, 15 remaining, -1, reset in 2 s."""
    got = GCRA(max_burst=15, count=30, period=60, clock=lambda: EPOCH).throttle("user123")
    actual = (got.limited, got.limit, got.remaining, got.retry_after, got.reset_after)
    assert actual == pytest.approx((False, 16, 15, -1.0, 2.0)), (
        f"CL.THROTTLE user123 15 30 60 1 answers (0, 16, 15, -1, 2) in redis-cell's README; got {got}"
    )


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

    def take(self, now: Fraction, quantity: int) -> tuple[bool, int]:
        self.tokens = min(self.capacity, self.tokens + (now - self.last) / self.interval)
        self.last = now
        allowed = quantity <= self.tokens
        if allowed:
            self.tokens -= quantity
        return not allowed, math.floor(self.tokens)


@settings(max_examples=150, deadline=None)
@given(
    max_burst=st.integers(0, 5),
    interval_eighths=st.sampled_from([2, 4, 8, 16]),  # T = 0.25, 0.5, 1 or 2 s: exact in binary
    steps=st.lists(st.tuples(st.integers(0, 24), st.integers(0, 7)), min_size=1, max_size=30),
)
def test_agrees_with_a_token_bucket_oracle(
    max_burst: int, interval_eighths: int, steps: list[tuple[int, int]]
) -> None:
    """GCRA is a token bucket of max_burst + 1 tokens refilled at 1 per T, kept as one number."""
    interval = Fraction(interval_eighths, 8)
    fake = FakeTime()
    limiter = GCRA(max_burst=max_burst, count=1, period=float(interval), clock=fake.clock)
    oracle = TokenBucket(max_burst, interval)
    now = Fraction(0)
    for i, (gap_eighths, quantity) in enumerate(steps):
        now += Fraction(gap_eighths, 8)
        fake.now = float(now)
        got = limiter.throttle("k", quantity)
        limited, remaining = oracle.take(now, quantity)
        assert (got.limited, got.remaining) == (limited, remaining), (
            f"max_burst={max_burst}, T={float(interval)} s, step {i} at t={float(now)}, quantity "
            f"{quantity}: expected (limited, remaining) = {(limited, remaining)} like a bucket of "
            f"{max_burst + 1} tokens refilled one per T, got {(got.limited, got.remaining)}. "
            f"Steps so far: {steps[: i + 1]}"
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


def test_idle_time_earns_back_one_burst_and_no_more(
    flaky_server: FlakyServer, session: requests.Session
) -> None:
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


def test_a_refused_request_does_not_use_up_allowance(
    flaky_server: FlakyServer, session: requests.Session
) -> None:
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
        "the second request belongs to the burst of max_burst + 1 = 2" if got[1:2] != [0.0]
        else "refused throttle() calls pushed the TAT ahead. A limited request must leave the "
        "stored TAT unchanged"
    )
    assert got == pytest.approx([0.0, 0.0, 1.0]), (
        f"the server saw requests at {got}, expected [0, 0, 1]: {why}"
    )


def test_costs_are_charged_in_emission_intervals(
    flaky_server: FlakyServer, session: requests.Session
) -> None:
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
