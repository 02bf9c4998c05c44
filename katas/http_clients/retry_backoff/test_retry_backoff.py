"""Tests for retries: the exact full-jitter schedule, cap, deadline, Retry-After, and which requests may retry."""

from __future__ import annotations

import calendar
import os
import random
import time
from collections.abc import Iterator

import pytest
import requests
import tenacity

from fixtures.flaky_server import (
    BlackHole,
    FlakyServer,
    closed_port,
    delayed,
    dropped,
    fail,
    http_date,
    ok,
    retry_after,
    status,
)

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
    try:
        return send_with_retries(
            session, method, url, policy=policy, rng=random.Random(SEED),
            sleep=fake.sleep, clock=fake.monotonic, now=fake.time, **kwargs,  # type: ignore[arg-type]
        )
    except tenacity.RetryError as exc:
        pytest.fail(
            f"giving up raised {exc!r}: when the retries run out, return the last response (the "
            "caller can still read a 503) or re-raise the last exception. tenacity's reraise=True "
            "re-raises only an exception: for a response it raises RetryError. Pass "
            "retry_error_callback=lambda state: state.outcome.result() instead, which does both",
            pytrace=False,
        )


def slow_calls(session: requests.Session, fake: FakeTime, seconds: float) -> None:
    """Each response takes `seconds` on the fake clock: a server that answers slowly."""

    def took_time(response: requests.Response, *args: object, **kwargs: object) -> None:
        fake.elapsed += seconds

    session.hooks["response"].append(took_time)


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


@pytest.mark.stage(1, "backoff and methods")
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


@pytest.mark.stage(1, "backoff and methods")
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


@pytest.mark.stage(4, "retry-after")
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
        ("-5", None),  # delay-seconds is 1*DIGIT: no sign,
        ("+5", None),
        ("1.5", None),  # no fraction,
        ("1e3", None),  # no exponent,
        ("\u00b2", None),  # and DIGIT is ASCII 0-9: not a superscript two (str.isdigit says yes)
        ("\u0661\u0662\u0660", None),  # nor Arabic-Indic 120 (str.isdigit and float() accept it)
        ("Sun, 32 Nov 1994 08:49:37 GMT", None),  # no 32nd of November
    ],
)
def test_parse_retry_after(value: str | None, expected: float | None) -> None:
    try:
        got = parse_retry_after(value, now=RFC_EPOCH)
    except NotImplementedError:
        raise
    except Exception as exc:  # a malformed header from a peer must not crash the client
        pytest.fail(
            f"parse_retry_after({value!r}) raised {exc!r}: a malformed Retry-After gives None "
            "(the server's hint is unusable, so fall back to your own backoff)",
            pytrace=False,
        )
    assert got == expected, (
        f"Retry-After {value!r} at now = Sun, 06 Nov 1994 08:49:37 GMT: expected {expected}, "
        f"got {got} (RFC 9110 §10.2.3: delay-seconds = 1*DIGIT with DIGIT = 0-9, or an HTTP-date "
        "in any of the three formats of §5.6.7, always UTC)"
    )


# POSIX TZ strings, so no zoneinfo database is needed: New York (with its DST rule) and Tokyo.
NON_UTC_ZONES = ["EST5EDT,M3.2.0,M11.1.0", "JST-9"]


@pytest.fixture(params=NON_UTC_ZONES)
def local_zone(request: pytest.FixtureRequest) -> Iterator[str]:
    """Run the test on a machine whose local time zone is not UTC (CI machines usually are)."""
    saved = os.environ.get("TZ")
    os.environ["TZ"] = request.param
    time.tzset()
    try:
        assert time.timezone != 0, f"TZ={request.param} did not take effect"
        yield request.param
    finally:
        if saved is None:
            del os.environ["TZ"]
        else:
            os.environ["TZ"] = saved
        time.tzset()


JULY_4_2022_NOON = float(calendar.timegm((2022, 7, 4, 12, 0, 0)))  # summer time in New York


@pytest.mark.stage(4, "retry-after")
@pytest.mark.parametrize(
    "value, now, expected",
    [
        ("Sun, 06 Nov 1994 08:49:40 GMT", RFC_EPOCH, 3.0),
        ("Sunday, 06-Nov-94 08:49:47 GMT", RFC_EPOCH, 10.0),
        ("Sun Nov  6 08:50:37 1994", RFC_EPOCH, 60.0),
        ("Mon, 04 Jul 2022 12:00:30 GMT", JULY_4_2022_NOON, 30.0),
        ("Mon Jul  4 12:01:00 2022", JULY_4_2022_NOON, 60.0),
    ],
)
def test_http_dates_are_utc_whatever_the_machines_time_zone(
    local_zone: str, value: str, now: float, expected: float
) -> None:
    got = parse_retry_after(value, now=now)
    assert got is not None, (
        f"Retry-After {value!r} was not understood (None): RFC 9110 §5.6.7 has three date "
        "formats, and a recipient must accept all three"
    )
    assert got == pytest.approx(expected), (
        f"under TZ={local_zone}, Retry-After {value!r} {expected} s ahead gave {got}: the date was "
        "read in the machine's local time zone (right only on a UTC machine, like CI). Every "
        "HTTP-date is UTC (RFC 9110 §5.6.7), the asctime form too although it names no zone: "
        "email.utils.parsedate_to_datetime returns it naive, and a naive datetime's .timestamp() "
        "(like time.mktime) reads local time. Attach timezone.utc, or use calendar.timegm"
    )


# ---- which requests may be retried -----------------------------------------------------------


@pytest.mark.stage(1, "backoff and methods")
@pytest.mark.parametrize(
    "method", ["GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE", "get", "head", "Put", "delete"]
)
def test_idempotent_methods_may_retry(method: str) -> None:
    assert retry_allowed(method, None) is True, (
        f"{method} is idempotent (RFC 9110 §9.2.2: PUT, DELETE and the safe methods GET, HEAD, "
        "OPTIONS, TRACE); method names are compared case-insensitively here"
    )
    assert retry_allowed(method, {}) is True, f"{method} with no headers at all is still idempotent"


@pytest.mark.stage(1, "backoff and methods")
@pytest.mark.parametrize("method", ["POST", "PATCH", "CONNECT", "post", "patch"])
def test_non_idempotent_methods_retry_only_with_an_idempotency_key(method: str) -> None:
    assert retry_allowed(method, {"Accept": "*/*"}) is False, (
        f"{method} is not idempotent: retrying it blindly can apply it twice"
    )
    assert retry_allowed(method, None) is False, f"{method} without headers (None) may not be retried"
    for name in ["Idempotency-Key", "idempotency-key", "IDEMPOTENCY-KEY"]:
        assert retry_allowed(method, {"Accept": "*/*", name: "k-1"}) is True, (
            f"{method} with a {name!r} header may be retried: header names are case-insensitive, "
            "and with the key the server can recognise the repeat"
        )


# ---- the retry loop against a real server ---------------------------------------------------


@pytest.mark.stage(2, "the retry loop")
def test_retries_503_502_504_with_the_exact_full_jitter_schedule(
    flaky_server: FlakyServer, session: requests.Session
) -> None:
    url = flaky_server.script("/orders", status(503), status(502), status(504), ok(b"done"))
    session.headers["User-Agent"] = "retry-kata/1"
    fake, policy = FakeTime(), RetryPolicy(base=0.5, cap=10.0, max_attempts=5)
    response = call(session, url, fake, policy)
    assert response.status_code == 200 and response.content == b"done"
    hits = flaky_server.hits("/orders")
    assert len(hits) == 4, "3 failures then success: 4 requests"
    assert {h.header("User-Agent") for h in hits} == {"retry-kata/1"}, (
        "every attempt must go through the `session` you are given (its headers, cookies, adapters "
        "and connection pool), not requests.request or a new Session"
    )
    expected = aws_full_jitter(policy, 3)
    assert fake.sleeps == pytest.approx(expected), explain_schedule(fake.sleeps, expected, policy)


@pytest.mark.stage(2, "the retry loop")
@pytest.mark.parametrize("code", [429, 502, 503, 504])
def test_each_retryable_status_is_retried(
    code: int, flaky_server: FlakyServer, session: requests.Session
) -> None:
    url = flaky_server.script("/again", status(code), ok())
    response = call(session, url, FakeTime(), RetryPolicy())
    hits = len(flaky_server.hits("/again"))
    assert hits == 2 and response.status_code == 200, (
        f"a {code} then a 200: expected 2 requests and the 200, got {hits} requests and a "
        f"{response.status_code}. 429, 502, 503 and 504 say 'try again later'"
    )


@pytest.mark.stage(2, "the retry loop")
def test_each_backoff_is_drawn_below_the_cap(
    flaky_server: FlakyServer, session: requests.Session
) -> None:
    url = flaky_server.script("/busy", *fail(503, times=6), ok())
    fake, policy = FakeTime(), RetryPolicy(base=1.0, cap=3.0, max_attempts=7, deadline=100.0)
    assert call(session, url, fake, policy).status_code == 200
    expected = aws_full_jitter(policy, 6)
    assert fake.sleeps == pytest.approx(expected), explain_schedule(fake.sleeps, expected, policy)


@pytest.mark.stage(2, "the retry loop")
@pytest.mark.parametrize("max_attempts", [1, 2, 3, None])
def test_gives_up_after_max_attempts_and_returns_the_last_response(
    max_attempts: int | None, flaky_server: FlakyServer, session: requests.Session
) -> None:
    url = flaky_server.script("/down", status(503))
    if max_attempts is None:  # the default policy
        policy, max_attempts = RetryPolicy(), 5
    else:
        policy = RetryPolicy(base=0.1, cap=5.0, max_attempts=max_attempts)
    fake = FakeTime()
    response = call(session, url, fake, policy)
    hits = len(flaky_server.hits("/down"))
    assert hits == max_attempts, (
        f"max_attempts={max_attempts} ({policy}) means {max_attempts} requests in all, the first "
        f"one included; the server saw {hits}"
    )
    assert response.status_code == 503, "when giving up, return the last response"
    assert len(fake.sleeps) == max_attempts - 1, (
        f"{max_attempts} attempts need {max_attempts - 1} sleeps, not {fake.sleeps} "
        "(no sleep after the last attempt)"
    )


@pytest.mark.stage(3, "errors and idempotency")
def test_giving_up_answers_with_the_last_outcome_not_the_first(
    flaky_server: FlakyServer, session: requests.Session
) -> None:
    policy = RetryPolicy(base=0.1, cap=5.0, max_attempts=3)
    url = flaky_server.script("/then-503", dropped(), status(503))
    response = call(session, url, FakeTime(), policy)
    assert response.status_code == 503, (
        "a dropped connection, then 503s: giving up returns the last outcome, the 503"
    )
    url = flaky_server.script("/then-dropped", status(503), dropped())
    with pytest.raises(requests.ConnectionError):
        call(session, url, FakeTime(), policy)
    assert len(flaky_server.hits("/then-dropped")) == 3, (
        "a 503, then dropped connections: 3 attempts, then the last outcome (the connection "
        "error) is raised"
    )


@pytest.mark.stage(5, "the deadline")
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


@pytest.mark.stage(5, "the deadline")
@pytest.mark.parametrize("deadline, attempts", [(9.0, 2), (10.0, 3)])
def test_the_deadline_counts_the_time_spent_in_calls_too(
    deadline: float, attempts: int, flaky_server: FlakyServer, session: requests.Session
) -> None:
    url = flaky_server.script("/slow", retry_after(1, code=503))
    fake = FakeTime()
    slow_calls(session, fake, 4.0)  # every answer takes 4 s
    call(session, url, fake, RetryPolicy(max_attempts=10, deadline=deadline))
    hits = len(flaky_server.hits("/slow"))
    # calls at 0-4 and 5-9 s; the sleep after the second ends at 10 s; the third call at 10-14 s
    assert hits == attempts and fake.sleeps == [1.0] * (attempts - 1), (
        f"each call takes 4 s and each Retry-After is 1 s, deadline {deadline} s from the first "
        f"call: expected {attempts} requests and sleeps {[1.0] * (attempts - 1)}, got {hits} "
        f"requests and sleeps {fake.sleeps}. The deadline is on `clock`, counted from just before "
        "the first call: the time spent waiting for answers counts, not only the sleeps, and a "
        "sleep ending exactly at the deadline is still allowed"
    )


@pytest.mark.stage(3, "errors and idempotency")
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


@pytest.mark.stage(3, "errors and idempotency")
def test_a_connect_timeout_is_retried(black_hole: BlackHole, session: requests.Session) -> None:
    fake, policy = FakeTime(), RetryPolicy(base=0.2, cap=5.0, max_attempts=2)
    with pytest.raises(requests.ConnectTimeout):
        call(session, black_hole.url("/"), fake, policy, timeout=0.2)
    expected = aws_full_jitter(policy, 1)
    assert fake.sleeps == pytest.approx(expected), (
        f"a connect timeout (the TCP handshake never completed) slept {fake.sleeps}, expected one "
        f"retry after {expected}: the request never reached the server, so it is safe to send "
        "again. requests.ConnectTimeout is a requests.ConnectionError"
    )


@pytest.mark.stage(3, "errors and idempotency")
def test_a_read_timeout_is_not_retried(flaky_server: FlakyServer, session: requests.Session) -> None:
    url = flaky_server.script("/slow", delayed(1.5, ok()))
    fake = FakeTime()
    outcome: object
    try:
        outcome = call(session, url, fake, RetryPolicy(), timeout=0.2)
    except requests.ReadTimeout:
        outcome = "ReadTimeout"
    except requests.RequestException as exc:
        outcome = exc
    hits = len(flaky_server.hits("/slow"))
    assert outcome == "ReadTimeout", (
        f"a server slower than timeout=0.2 must end in requests.ReadTimeout, got {outcome!r}: "
        "pass `timeout` to every request, and re-raise the exception"
    )
    assert hits == 1 and fake.sleeps == [], (
        f"a read timeout was retried: the server received the GET {hits} times (sleeps "
        f"{fake.sleeps}). A read timeout means the server got the request and may be working on "
        "it; only a ConnectionError (the request never arrived) is retried"
    )


@pytest.mark.stage(2, "the retry loop")
@pytest.mark.parametrize("code", [500, 501, 505, 511, 400, 401, 403, 404, 408, 409])
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


@pytest.mark.stage(4, "retry-after")
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
        "retry k=1, and no number is drawn from the rng for a sleep that Retry-After decided"
    )


@pytest.mark.stage(4, "retry-after")
def test_retry_after_zero_means_retry_now(flaky_server: FlakyServer, session: requests.Session) -> None:
    url = flaky_server.script("/now", retry_after(0, code=503), status(503), ok())
    fake, policy = FakeTime(), RetryPolicy(base=0.5, cap=10.0)
    assert call(session, url, fake, policy).status_code == 200
    expected = [0.0, random.Random(SEED).uniform(0, min(policy.cap, policy.base * 2**1))]
    assert fake.sleeps == pytest.approx(expected), (
        f"slept {fake.sleeps}, expected {expected}: Retry-After: 0 is a valid answer (retry at "
        "once), not a missing one; test the parsed value with `is not None`, not its truth"
    )


@pytest.mark.stage(4, "retry-after")
@pytest.mark.parametrize("junk", ["soon", "-5", "1.5"])
def test_a_malformed_retry_after_falls_back_to_the_backoff(
    junk: str, flaky_server: FlakyServer, session: requests.Session
) -> None:
    url = flaky_server.script("/junk", retry_after(junk, code=503), ok())
    fake, policy = FakeTime(), RetryPolicy(base=0.5, cap=10.0)
    assert call(session, url, fake, policy).status_code == 200
    expected = aws_full_jitter(policy, 1)
    assert fake.sleeps == pytest.approx(expected), (
        f"a 503 with Retry-After: {junk} (malformed) slept {fake.sleeps}, expected the backoff "
        f"{expected}: an unusable hint is no hint, so draw full_jitter(k, ...) as usual"
    )


@pytest.mark.stage(4, "retry-after")
def test_retry_after_is_not_capped(flaky_server: FlakyServer, session: requests.Session) -> None:
    url = flaky_server.script("/long", retry_after(20), ok())
    fake = FakeTime()
    assert call(session, url, fake, RetryPolicy(cap=10.0, deadline=30.0)).status_code == 200
    assert fake.sleeps == [20.0], (
        f"Retry-After: 20 with cap=10 and a 30 s deadline slept {fake.sleeps}: the cap bounds your "
        "own backoff draws, not the server's word; only the deadline limits a Retry-After"
    )


@pytest.mark.stage(4, "retry-after")
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


@pytest.mark.stage(4, "retry-after")
def test_each_retry_after_date_counts_from_when_its_answer_came(
    flaky_server: FlakyServer, session: requests.Session
) -> None:
    first, second = http_date(RFC_EPOCH + 4), http_date(RFC_EPOCH + 10)
    url = flaky_server.script(
        "/maintenance", retry_after(first, code=503), retry_after(second, code=503), ok()
    )
    fake = FakeTime()
    assert call(session, url, fake, RetryPolicy()).status_code == 200
    assert fake.sleeps == [4.0, 6.0], (
        f"Retry-After: {first}, then (4 s later) Retry-After: {second}: expected sleeps "
        f"[4.0, 6.0], got {fake.sleeps}. A date is counted from the time now() gives when that "
        "answer arrives: call now() for each answer, not once at the start"
    )


@pytest.mark.stage(5, "the deadline")
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


@pytest.mark.stage(5, "the deadline")
def test_retry_after_ending_exactly_at_the_deadline_is_slept(
    flaky_server: FlakyServer, session: requests.Session
) -> None:
    url = flaky_server.script("/edge", retry_after(30), ok())
    fake = FakeTime()
    response = call(session, url, fake, RetryPolicy(deadline=30.0))
    assert fake.sleeps == [30.0] and response.status_code == 200, (
        f"Retry-After: 30 with a 30 s deadline: the sleep ends exactly at the deadline, which is "
        f"allowed (give up only if it would end *after* it); slept {fake.sleeps}, got "
        f"{response.status_code}"
    )


@pytest.mark.stage(3, "errors and idempotency")
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


@pytest.mark.stage(3, "errors and idempotency")
def test_a_post_that_cannot_connect_is_tried_once_and_raises(session: requests.Session) -> None:
    url = f"http://127.0.0.1:{closed_port()}/payments"
    fake = FakeTime()
    with pytest.raises(requests.ConnectionError):
        call(session, url, fake, RetryPolicy(), method="POST", data=b"amount=10")
    assert fake.sleeps == [], (
        f"retried a POST without an Idempotency-Key after a connection error (slept {fake.sleeps}): "
        "this kata keeps one rule for every failure, so a POST without a key is sent once"
    )


@pytest.mark.stage(3, "errors and idempotency")
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


@pytest.mark.stage(3, "errors and idempotency")
@pytest.mark.parametrize("method", ["PUT", "DELETE"])
def test_idempotent_writes_are_retried(
    method: str, flaky_server: FlakyServer, session: requests.Session
) -> None:
    url = flaky_server.script("/doc", status(502), ok())
    response = call(session, url, FakeTime(), RetryPolicy(), method=method)
    assert response.status_code == 200
    assert len(flaky_server.hits("/doc")) == 2, f"{method} is idempotent: retry it"
