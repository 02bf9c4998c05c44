"""Tests for retries: the exact full-jitter schedule, cap, deadline, Retry-After, and which requests may retry."""

from __future__ import annotations

import random
from collections.abc import Iterator

import pytest
import requests
import tenacity

from fixtures.flaky_server import FlakyServer, closed_port, fail, http_date, ok, retry_after, status

from .retry_backoff import RetryPolicy, full_jitter, parse_retry_after, retry_allowed, send_with_retries

# RFC 9110 §5.6.7's example instant, "Sun, 06 Nov 1994 08:49:37 GMT", in epoch seconds.
RFC_EPOCH = 784111777.0
SEED = 20150304  # the AWS backoff article's month; any fixed seed makes the schedule exact


class FakeTime:
    """Virtual time: sleep() records the delay and moves both clocks forward instantly."""

    def __init__(self) -> None:
        self.sleeps: list[float] = []
        self.elapsed = 0.0

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.elapsed += seconds

    def monotonic(self) -> float:
        return 5000.0 + self.elapsed

    def time(self) -> float:
        return RFC_EPOCH + self.elapsed


@pytest.fixture
def session() -> Iterator[requests.Session]:
    with requests.Session() as s:
        yield s


def call(
    session: requests.Session,
    url: str,
    fake: FakeTime,
    policy: RetryPolicy,
    method: str = "GET",
    **kwargs: object,
) -> requests.Response:
    return send_with_retries(
        session, method, url, policy=policy, rng=random.Random(SEED),
        sleep=fake.sleep, clock=fake.monotonic, now=fake.time, **kwargs,  # type: ignore[arg-type]
    )


def aws_full_jitter(policy: RetryPolicy, retries: int) -> list[float]:
    """The oracle: AWS's sleep = random_between(0, min(cap, base * 2 ** attempt)), seeded."""
    rng = random.Random(SEED)
    return [rng.uniform(0, min(policy.cap, policy.base * 2**k)) for k in range(retries)]


def explain_schedule(got: list[float], expected: list[float], policy: RetryPolicy) -> str:
    """Name the classic mistake behind a wrong schedule, if there is one."""
    bare = [min(policy.cap, policy.base * 2**k) for k in range(len(got))]
    if got and got == pytest.approx(bare):
        return (
            f"slept {got}: the bare exponential min(cap, base * 2 ** k), no jitter. Every client "
            "that failed together retries together (a thundering herd); draw "
            "rng.uniform(0, min(cap, base * 2 ** k)) instead"
        )
    if any(s > policy.cap for s in got):
        return f"slept {got}: a sleep exceeds cap={policy.cap}; the ceiling is min(cap, base * 2 ** k)"
    if len(got) != len(expected):
        return f"slept {len(got)} times {got}, expected {len(expected)} sleeps {expected}"
    return (
        f"slept {got}, expected exactly {expected}: one rng.uniform(0, min(cap, base * 2 ** k)) "
        "per retry, k = 0 for the first retry, and every sleep through the `sleep` hook"
    )


# ---- the formula --------------------------------------------------------------------------------


@pytest.mark.parametrize("base, cap", [(0.1, 10.0), (1.0, 4.0), (0.5, 60.0)])
def test_full_jitter_is_the_aws_formula(base: float, cap: float) -> None:
    for retry in range(10):
        for seed in range(5):
            expected = random.Random(seed).uniform(0, min(cap, base * 2**retry))
            got = full_jitter(retry, base, cap, random.Random(seed))
            assert got == pytest.approx(expected), (
                f"full_jitter({retry}, base={base}, cap={cap}) with Random({seed}) gave {got}, "
                f"expected {expected} = rng.uniform(0, min(cap, base * 2 ** retry))"
            )


def test_full_jitter_agrees_with_tenacitys_own_full_jitter() -> None:
    """tenacity's wait_random_exponential 'corresponds to the Full Jitter algorithm'."""
    wait = tenacity.wait_random_exponential(multiplier=0.5, max=6)
    saved = random.getstate()
    try:
        for attempt in range(1, 9):
            random.seed(attempt)
            state = tenacity.RetryCallState(tenacity.Retrying(), None, (), {})
            state.attempt_number = attempt
            theirs = wait(state)
            ours = full_jitter(attempt - 1, 0.5, 6, random.Random(attempt))
            assert ours == pytest.approx(theirs), (
                f"retry {attempt - 1}: tenacity's full jitter gives {theirs}, yours {ours}"
            )
    finally:
        random.setstate(saved)


# ---- Retry-After --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value, expected",
    [
        ("120", 120.0),  # RFC 9110 §10.2.3: "the delay is 2 minutes"
        ("0", 0.0),
        ("Sun, 06 Nov 1994 08:49:40 GMT", 3.0),  # IMF-fixdate
        ("Sunday, 06-Nov-94 08:49:47 GMT", 10.0),  # obsolete RFC 850 format
        ("Sun Nov  6 08:50:37 1994", 60.0),  # ANSI C asctime() format, UTC by definition
        ("Sun, 06 Nov 1994 08:49:00 GMT", 0.0),  # already in the past: go now
        (None, None),
        ("", None),
        ("soon", None),
        ("-5", None),  # delay-seconds is 1*DIGIT: no sign
    ],
)
def test_parse_retry_after(value: str | None, expected: float | None) -> None:
    got = parse_retry_after(value, now=RFC_EPOCH)
    assert got == expected, (
        f"Retry-After {value!r} at now = Sun, 06 Nov 1994 08:49:37 GMT: expected {expected}, "
        f"got {got} (RFC 9110 §10.2.3: delay-seconds or an HTTP-date, all three formats of §5.6.7, "
        "always UTC)"
    )


# ---- which requests may be retried -----------------------------------------------------------


@pytest.mark.parametrize("method", ["GET", "head", "PUT", "DELETE", "OPTIONS"])
def test_idempotent_methods_may_retry(method: str) -> None:
    assert retry_allowed(method, None) is True, f"{method} is idempotent (RFC 9110 §9.2.2)"


@pytest.mark.parametrize("method", ["POST", "PATCH", "post"])
def test_non_idempotent_methods_retry_only_with_an_idempotency_key(method: str) -> None:
    assert retry_allowed(method, {"Accept": "*/*"}) is False, (
        f"{method} is not idempotent: retrying it blindly can apply it twice"
    )
    assert retry_allowed(method, {"idempotency-key": "k-1"}) is True, (
        "with an Idempotency-Key (any case) the server can recognise the repeat"
    )


# ---- the retry loop against a real server ---------------------------------------------------


def test_retries_503_502_504_with_the_exact_full_jitter_schedule(
    flaky_server: FlakyServer, session: requests.Session
) -> None:
    url = flaky_server.script("/orders", status(503), status(502), status(504), ok(b"done"))
    fake, policy = FakeTime(), RetryPolicy(base=0.5, cap=10.0, max_attempts=5)
    response = call(session, url, fake, policy)
    assert response.status_code == 200 and response.content == b"done"
    assert len(flaky_server.hits("/orders")) == 4, "3 failures then success: 4 requests"
    expected = aws_full_jitter(policy, 3)
    assert fake.sleeps == pytest.approx(expected), explain_schedule(fake.sleeps, expected, policy)


def test_each_backoff_is_drawn_below_the_cap(
    flaky_server: FlakyServer, session: requests.Session
) -> None:
    url = flaky_server.script("/busy", *fail(503, times=6), ok())
    fake, policy = FakeTime(), RetryPolicy(base=1.0, cap=3.0, max_attempts=7, deadline=100.0)
    assert call(session, url, fake, policy).status_code == 200
    expected = aws_full_jitter(policy, 6)
    assert fake.sleeps == pytest.approx(expected), explain_schedule(fake.sleeps, expected, policy)


def test_gives_up_after_max_attempts_and_returns_the_last_response(
    flaky_server: FlakyServer, session: requests.Session
) -> None:
    url = flaky_server.script("/down", status(503))
    fake, policy = FakeTime(), RetryPolicy(base=0.1, cap=5.0, max_attempts=3)
    response = call(session, url, fake, policy)
    hits = len(flaky_server.hits("/down"))
    assert hits == 3, f"max_attempts=3 means 3 requests in all, the server saw {hits}"
    assert response.status_code == 503, "when giving up, return the last response"
    assert len(fake.sleeps) == 2, f"3 attempts need 2 sleeps, not {fake.sleeps} (no sleep after the last)"


def test_never_sleeps_past_the_deadline(flaky_server: FlakyServer, session: requests.Session) -> None:
    url = flaky_server.script("/down", status(503))
    fake, policy = FakeTime(), RetryPolicy(base=1.0, cap=8.0, max_attempts=50, deadline=10.0)
    response = call(session, url, fake, policy)
    # the oracle: keep the draws while the total stays within the deadline
    expected, total = [], 0.0
    for delay in aws_full_jitter(policy, 50):
        if total + delay > policy.deadline:
            break
        expected.append(delay)
        total += delay
    assert sum(fake.sleeps) <= policy.deadline, (
        f"slept {sum(fake.sleeps):.2f} s in all, past the {policy.deadline} s deadline; measure the "
        "deadline on the injected `clock` (tenacity's stop_after_delay reads the real clock)"
    )
    assert fake.sleeps == pytest.approx(expected), (
        f"slept {fake.sleeps}, expected {expected}: stop as soon as the next sleep would end after "
        "the deadline (tenacity gives stop() the next sleep as retry_state.upcoming_sleep)"
    )
    assert response.status_code == 503
    assert len(flaky_server.hits("/down")) == len(expected) + 1


def test_connection_errors_are_retried_then_raised(session: requests.Session) -> None:
    url = f"http://127.0.0.1:{closed_port()}/nobody-home"
    fake, policy = FakeTime(), RetryPolicy(base=0.2, cap=5.0, max_attempts=4)
    with pytest.raises(requests.ConnectionError):
        call(session, url, fake, policy)
    expected = aws_full_jitter(policy, 3)
    assert fake.sleeps == pytest.approx(expected), (
        "a refused connection is retryable, and after the last attempt its error is re-raised "
        "(not tenacity.RetryError): " + explain_schedule(fake.sleeps, expected, policy)
    )


@pytest.mark.parametrize("code", [500, 501, 400, 404, 409])
def test_other_statuses_are_not_retried(
    code: int, flaky_server: FlakyServer, session: requests.Session
) -> None:
    url = flaky_server.script("/x", status(code), ok())
    fake = FakeTime()
    response = call(session, url, fake, RetryPolicy())
    hits = len(flaky_server.hits("/x"))
    assert hits == 1 and response.status_code == code, (
        f"a {code} was retried ({hits} requests): only 429, 502, 503 and 504 say 'try again later'; "
        f"a {code} will come back the same"
    )
    assert fake.sleeps == []


def test_retry_after_in_seconds_replaces_the_backoff(
    flaky_server: FlakyServer, session: requests.Session
) -> None:
    url = flaky_server.script("/limited", retry_after(3), status(503), ok())
    fake, policy = FakeTime(), RetryPolicy(base=0.5, cap=10.0)
    assert call(session, url, fake, policy).status_code == 200
    # retry 0 sleeps what the server asked; retry 1 backs off with the first draw of the rng
    expected = [3.0, random.Random(SEED).uniform(0, min(policy.cap, policy.base * 2**1))]
    assert fake.sleeps[:1] == [3.0], (
        f"the 429 said Retry-After: 3, but the client slept {fake.sleeps[:1]}: it ignores Retry-After"
    )
    assert fake.sleeps == pytest.approx(expected), (
        f"slept {fake.sleeps}, expected {expected}: after a Retry-After, the next backoff is still "
        "retry k=1, and the rng is drawn only for sleeps that use it"
    )


def test_retry_after_as_an_http_date_counts_from_now(
    flaky_server: FlakyServer, session: requests.Session
) -> None:
    url = flaky_server.script("/maintenance", retry_after(http_date(RFC_EPOCH + 4), code=503), ok())
    fake = FakeTime()
    assert call(session, url, fake, RetryPolicy()).status_code == 200
    assert fake.sleeps == [4.0], (
        f"the 503 said Retry-After: {http_date(RFC_EPOCH + 4)} when now() was 4 s earlier; the "
        f"client slept {fake.sleeps}: it ignores Retry-After dates, or reads time from elsewhere"
    )


def test_retry_after_beyond_the_deadline_gives_up_at_once(
    flaky_server: FlakyServer, session: requests.Session
) -> None:
    url = flaky_server.script("/limited", retry_after(3600), ok())
    fake = FakeTime()
    response = call(session, url, fake, RetryPolicy(deadline=30.0))
    assert fake.sleeps == [], (
        f"Retry-After: 3600 with a 30 s deadline: waiting can't help, return the 429 now; "
        f"the client slept {fake.sleeps}"
    )
    assert response.status_code == 429
    assert len(flaky_server.hits("/limited")) == 1


@pytest.mark.parametrize("method", ["POST", "PATCH"])
def test_a_non_idempotent_request_is_sent_once(
    method: str, flaky_server: FlakyServer, session: requests.Session
) -> None:
    url = flaky_server.script("/payments", status(503), ok())
    fake = FakeTime()
    response = call(session, url, fake, RetryPolicy(), method=method, data=b"amount=10")
    hits = flaky_server.hits("/payments")
    assert len(hits) == 1, (
        f"retried a {method} without an Idempotency-Key: the server received it {len(hits)} times. "
        "The first one may have been applied (charged, created) before the 503; only idempotent "
        "methods, or requests carrying an Idempotency-Key, may be sent again"
    )
    assert response.status_code == 503 and fake.sleeps == []


def test_a_post_with_an_idempotency_key_is_retried_with_the_same_key_and_body(
    flaky_server: FlakyServer, session: requests.Session
) -> None:
    url = flaky_server.script("/payments", status(503), status(429), ok(b"paid"))
    fake = FakeTime()
    response = call(
        session, url, fake, RetryPolicy(), method="POST",
        headers={"Idempotency-Key": "8e03978e-40d5"}, data=b"amount=10",
    )
    assert response.content == b"paid"
    hits = flaky_server.hits("/payments")
    assert [h.method for h in hits] == ["POST"] * 3
    assert {h.header("Idempotency-Key") for h in hits} == {"8e03978e-40d5"}, (
        "every retry must carry the same Idempotency-Key, or the server can't tell it's a repeat"
    )
    assert {h.body for h in hits} == {b"amount=10"}


@pytest.mark.parametrize("method", ["PUT", "DELETE"])
def test_idempotent_writes_are_retried(
    method: str, flaky_server: FlakyServer, session: requests.Session
) -> None:
    url = flaky_server.script("/doc", status(502), ok())
    response = call(session, url, FakeTime(), RetryPolicy(), method=method)
    assert response.status_code == 200
    assert len(flaky_server.hits("/doc")) == 2, f"{method} is idempotent: retry it"
