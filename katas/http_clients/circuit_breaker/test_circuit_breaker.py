"""Tests for the circuit breaker: opening, failing fast, one half-open trial, per-host state, injected time."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests

from dojo.testing import Background, wait_until
from fixtures.flaky_server import FlakyServer, closed_port, fail, held, ok, status

from .circuit_breaker import CLOSED, HALF_OPEN, OPEN, CircuitBreaker, CircuitOpen, host_of

THRESHOLD, RESET = 3, 30.0


class FakeClock:
    """Time that moves only when the test says so."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def session() -> Iterator[requests.Session]:
    with requests.Session() as s:
        yield s


def get(breaker: CircuitBreaker, session: requests.Session, url: str, why: str = "") -> int:
    """The status of one call through the breaker; an unexpected CircuitOpen fails with `why`."""
    try:
        return breaker.get(session, url, timeout=5).status_code
    except CircuitOpen as exc:
        raise AssertionError(f"the breaker refused a call it should have let through ({exc}). {why}") from exc


def expect_state(breaker: CircuitBreaker, url: str, expected: str, why: str = "") -> None:
    got = breaker.state(url)
    clock_hint = (
        " The clock only moves when the test moves it: read time from the `clock` you were "
        "given, not time.monotonic()."
        if {got, expected} == {OPEN, HALF_OPEN} else ""
    )
    assert got == expected, f"breaker state is {got!r}, expected {expected!r}. {why}{clock_hint}"


def open_it(breaker: CircuitBreaker, session: requests.Session, server: FlakyServer) -> str:
    """Script /down to fail and call it THRESHOLD times; returns its URL."""
    url = server.script("/down", status(503))
    for _ in range(THRESHOLD):
        assert get(breaker, session, url) == 503, "a 5xx response is returned to the caller"
    return url


def test_threshold_failures_in_a_row_open_the_circuit_and_calls_fail_fast(
    flaky_server: FlakyServer, session: requests.Session
) -> None:
    clock = FakeClock()
    breaker = CircuitBreaker(THRESHOLD, RESET, clock=clock)
    url = flaky_server.script("/down", status(503))
    for i in range(THRESHOLD):
        expect_state(breaker, url, CLOSED, f"closed until {THRESHOLD} failures, not after {i}")
        assert get(breaker, session, url) == 503
    expect_state(breaker, url, OPEN, f"{THRESHOLD} failures in a row open the circuit")
    with pytest.raises(CircuitOpen) as refused:
        breaker.get(session, url, timeout=5)
    assert refused.value.host == host_of(url)
    assert refused.value.retry_at == clock.now + RESET, "retry_at = when it opened + reset_timeout"
    hits = len(flaky_server.hits("/down"))
    assert hits == THRESHOLD, (
        f"the server got {hits} requests: once open, the breaker must refuse without sending"
    )


def test_a_success_resets_the_count_of_failures_in_a_row(
    flaky_server: FlakyServer, session: requests.Session
) -> None:
    breaker = CircuitBreaker(THRESHOLD, RESET, clock=FakeClock())
    url = flaky_server.script("/flaky", status(503), status(503), ok(), status(503), status(503), ok())
    why = (
        "4 failures, but never 3 in a row: the breaker opened. Count *consecutive* failures; "
        "a success resets the count (else any long-lived client opens eventually)"
    )
    codes = [get(breaker, session, url, why) for _ in range(6)]
    assert codes == [503, 503, 200, 503, 503, 200]
    expect_state(breaker, url, CLOSED, why)


def test_client_errors_are_not_failures_of_the_host(
    flaky_server: FlakyServer, session: requests.Session
) -> None:
    breaker = CircuitBreaker(THRESHOLD, RESET, clock=FakeClock())
    url = flaky_server.script("/missing", status(404), status(400), status(429), status(404))
    why = (
        "4xx answers opened the breaker: a 404 is the caller's mistake and proves the host is "
        "alive; only 5xx and connection errors/timeouts count"
    )
    codes = [get(breaker, session, url, why) for _ in range(4)]
    assert codes == [404, 400, 429, 404]
    expect_state(breaker, url, CLOSED, why)


def test_connection_errors_count_and_are_re_raised(session: requests.Session) -> None:
    breaker = CircuitBreaker(THRESHOLD, RESET, clock=FakeClock())
    url = f"http://127.0.0.1:{closed_port()}/nobody"
    for _ in range(THRESHOLD):
        with pytest.raises(requests.ConnectionError):
            breaker.get(session, url, timeout=2)
    expect_state(breaker, url, OPEN, "refused connections count as failures")
    with pytest.raises(CircuitOpen):
        breaker.get(session, url, timeout=2)


def test_after_the_reset_timeout_one_trial_goes_through_and_success_closes(
    flaky_server: FlakyServer, session: requests.Session
) -> None:
    clock = FakeClock()
    breaker = CircuitBreaker(THRESHOLD, RESET, clock=clock)
    url = open_it(breaker, session, flaky_server)
    flaky_server.script("/down", ok(b"back"))
    clock.now += RESET - 0.001
    expect_state(breaker, url, OPEN, f"still open {RESET - 0.001} s after opening")
    with pytest.raises(CircuitOpen):
        breaker.get(session, url, timeout=5)
    assert len(flaky_server.hits("/down")) == THRESHOLD, "no request may go out before retry_at"
    clock.now += 0.001
    expect_state(breaker, url, HALF_OPEN, f"{RESET} s after opening (on the injected clock).")
    assert get(breaker, session, url, "half-open lets one trial through") == 200
    expect_state(breaker, url, CLOSED, "a successful trial closes the circuit")
    assert [get(breaker, session, url) for _ in range(3)] == [200] * 3


def test_a_failed_trial_reopens_with_a_fresh_timer(
    flaky_server: FlakyServer, session: requests.Session
) -> None:
    clock = FakeClock()
    breaker = CircuitBreaker(THRESHOLD, RESET, clock=clock)
    url = open_it(breaker, session, flaky_server)
    clock.now += RESET + 5
    assert get(breaker, session, url, "half-open lets one trial through") == 503
    failed_at = clock.now
    expect_state(
        breaker, url, OPEN,
        "one failed trial is enough to open again, and the timer restarts from the failure",
    )
    clock.now = failed_at + RESET - 0.001
    with pytest.raises(CircuitOpen) as refused:
        breaker.get(session, url, timeout=5)
    assert refused.value.retry_at == failed_at + RESET, (
        f"retry_at is {refused.value.retry_at}, expected {failed_at + RESET}: after a failed "
        "trial the timer restarts from the failure, not from the first opening"
    )
    assert len(flaky_server.hits("/down")) == THRESHOLD + 1


def test_half_open_lets_exactly_one_trial_through_at_a_time(
    flaky_server: FlakyServer, session: requests.Session
) -> None:
    clock = FakeClock()
    breaker = CircuitBreaker(THRESHOLD, RESET, clock=clock)
    url = open_it(breaker, session, flaky_server)
    flaky_server.script("/down", held("trial", ok(b"back")))
    clock.now += RESET
    trial = Background(lambda: get(breaker, session, url), name="trial")
    try:
        wait_until(lambda: len(flaky_server.hits("/down")) == THRESHOLD + 1, what="the trial request")
        others: list[str] = []
        for _ in range(5):
            try:
                breaker.get(session, url, timeout=0.3)
                others.append("answered")
            except CircuitOpen:
                others.append("refused")
            except requests.Timeout:
                others.append("sent")  # it reached the server, which holds it like the trial
    finally:
        flaky_server.release("trial")
    assert trial.result() == 200
    sent = len(flaky_server.hits("/down")) - THRESHOLD
    assert others == ["refused"] * 5 and sent == 1, (
        f"while the half-open trial was running, 5 more calls gave {others} and the server got "
        f"{sent} requests: half-open lets ONE trial through; the others raise CircuitOpen "
        "(a recovering host must not be hit by the whole backlog at once)"
    )
    expect_state(breaker, url, CLOSED, "the trial succeeded")


def test_each_host_has_its_own_circuit(flaky_server: FlakyServer, session: requests.Session) -> None:
    clock = FakeClock()
    breaker = CircuitBreaker(THRESHOLD, RESET, clock=clock)
    bad = open_it(breaker, session, flaky_server)
    with FlakyServer() as healthy:
        good = healthy.script("/fine", *fail(503, 2), ok(b"fine"))
        assert host_of(good) != host_of(bad)
        why = (
            f"{host_of(bad)} failing opened the breaker for {host_of(good)} too: keep one "
            "circuit per host (scheme://host:port)"
        )
        expect_state(breaker, good, CLOSED, why)
        assert [get(breaker, session, good, why) for _ in range(3)] == [503, 503, 200]
        assert len(healthy.hits("/fine")) == 3
    expect_state(breaker, bad, OPEN)
