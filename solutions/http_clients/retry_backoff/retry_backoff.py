"""Retrying HTTP requests with tenacity: full-jitter backoff, a cap, a deadline, Retry-After, idempotency."""

from __future__ import annotations

import email.utils
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC

import requests
import tenacity

# Worth another try: the server is overloaded or a gateway could not reach it (RFC 9110 §15.6,
# RFC 6585 §4). A 500 is a bug on the server: trying again gives the same bug.
RETRYABLE_STATUSES = frozenset({429, 502, 503, 504})
# RFC 9110 §9.2.2: "PUT, DELETE, and safe request methods are idempotent."
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE"})


@dataclass(frozen=True)
class RetryPolicy:
    """How hard to try: at most `max_attempts` calls, never sleeping past `deadline` seconds."""

    base: float = 0.1  # seconds: the backoff ceiling before the first retry
    cap: float = 10.0  # seconds: no single backoff is drawn from a range wider than this
    max_attempts: int = 5  # calls in total, the first one included
    deadline: float = 30.0  # seconds on `clock` from the first call; no sleep may end after it


def full_jitter(retry: int, base: float, cap: float, rng: random.Random) -> float:
    """AWS "Full Jitter": a delay drawn uniformly from [0, min(cap, base * 2 ** retry)].

    `retry` is 0 for the sleep after the first failed call, 1 after the second, and so on.
    Draw exactly one number per call: `rng.uniform(0, ceiling)`.

    >>> full_jitter(3, base=0.5, cap=2.0, rng=random.Random(1)) <= 2.0
    True
    """
    # The exponential only sets the *range*; the draw spreads clients that failed together over
    # the whole range, so they don't all come back at the same instant (the thundering herd).
    ceiling = min(cap, base * 2**retry)
    return rng.uniform(0, ceiling)


def parse_retry_after(value: str | None, now: float) -> float | None:
    """Seconds to wait according to a Retry-After header value (RFC 9110 §10.2.3), or None.

    The value is delay-seconds ("120") or an HTTP-date in any of the three formats of RFC 9110
    §5.6.7 ("Sun, 06 Nov 1994 08:49:37 GMT", "Sunday, 06-Nov-94 08:49:37 GMT",
    "Sun Nov  6 08:49:37 1994"; all are UTC). `now` is the current time in epoch seconds; a date
    in the past means 0. A missing or malformed value (a sign, a fraction, a digit other than
    ASCII 0-9, an impossible date) gives None. Never read a date in the machine's time zone.

    >>> parse_retry_after("120", now=0.0)
    120.0
    """
    if value is None:
        return None
    value = value.strip()
    # delay-seconds = 1*DIGIT: no sign, no fraction, so "-5" and "1.5" are malformed. DIGIT is
    # ASCII 0-9; str.isdigit() alone also says yes to "²" and to Arabic-Indic digits.
    if value.isascii() and value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    # asctime dates carry no zone and come back naive; HTTP-dates are always UTC, and a naive
    # datetime's .timestamp() would read it in the machine's local zone instead.
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, when.timestamp() - now)


def retry_allowed(method: str, headers: Mapping[str, str] | None) -> bool:
    """True if a failed request may be sent again: an idempotent method, or an Idempotency-Key."""
    if method.upper() in IDEMPOTENT_METHODS:
        return True
    # A POST that failed may still have been applied: sending it again could charge a card twice.
    # An Idempotency-Key lets the server recognise the repeat and answer it without re-applying.
    return any(name.lower() == "idempotency-key" for name in (headers or {}))


def send_with_retries(
    session: requests.Session,
    method: str,
    url: str,
    *,
    policy: RetryPolicy,
    rng: random.Random,
    headers: Mapping[str, str] | None = None,
    data: bytes | None = None,
    timeout: float = 5.0,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
    now: Callable[[], float] = time.time,
) -> requests.Response:
    """Send the request, retrying retryable failures with full-jitter backoff; return the response.

    - Retryable: a response with a status in RETRYABLE_STATUSES, or requests.ConnectionError.
      Nothing else (a 500, a 404, a read timeout) is retried.
    - Only when retry_allowed(method, headers); otherwise exactly one call is made.
    - Before retry k (k = 0, 1, ...): sleep the response's Retry-After if it has a valid one,
      else full_jitter(k, policy.base, policy.cap, rng). When Retry-After decides the sleep, draw
      nothing from rng: the next backoff takes the rng's next number. (tenacity computes the wait
      before it asks stop, so it may also draw for a sleep that never happens: that is fine.)
    - Stop after policy.max_attempts calls, or instead of a sleep that would end after
      policy.deadline seconds on `clock`, measured from just before the first call (time spent
      waiting for answers counts too; a sleep ending exactly at the deadline is allowed).
    - When giving up: return the last response, or re-raise the last exception (never
      tenacity.RetryError).
    - All waiting goes through `sleep` (pass it to tenacity.Retrying(sleep=...)); read time only
      from `clock` (monotonic seconds) and `now` (epoch seconds, for HTTP-dates).
    """
    allowed = retry_allowed(method, headers)
    started = clock()

    def should_retry(state: tenacity.RetryCallState) -> bool:
        assert state.outcome is not None
        if not allowed:
            return False
        if state.outcome.failed:
            # ConnectionError covers refused connections and connect timeouts (ConnectTimeout is
            # a subclass); a ReadTimeout is not one: the server may be working on the request.
            return isinstance(state.outcome.exception(), requests.ConnectionError)
        response: requests.Response = state.outcome.result()
        return response.status_code in RETRYABLE_STATUSES

    def wait(state: tenacity.RetryCallState) -> float:
        assert state.outcome is not None
        if not state.outcome.failed:
            # The server knows when it will have capacity again: its word beats our guess.
            hinted = parse_retry_after(state.outcome.result().headers.get("Retry-After"), now())
            if hinted is not None:
                return hinted
        # attempt_number is 1 after the first call, and that first sleep is retry 0.
        return full_jitter(state.attempt_number - 1, policy.base, policy.cap, rng)

    def stop(state: tenacity.RetryCallState) -> bool:
        # tenacity computes the wait before asking stop, so upcoming_sleep is the sleep we'd take.
        # tenacity's own stop_before_delay reads the real monotonic clock, which an injected
        # clock (and a test) cannot move; so measure on `clock`.
        if state.attempt_number >= policy.max_attempts:
            return True
        return clock() - started + state.upcoming_sleep > policy.deadline

    def give_up(state: tenacity.RetryCallState) -> requests.Response:
        # The last response (a 503 is still an answer the caller can act on), or its exception.
        assert state.outcome is not None
        result: requests.Response = state.outcome.result()
        return result

    retrying = tenacity.Retrying(
        retry=should_retry,
        wait=wait,
        stop=stop,
        sleep=sleep,
        retry_error_callback=give_up,
    )
    # session.request reads the whole body (stream=False), so a failed response's connection is
    # already back in the pool before the sleep: nothing to release by hand.
    response: requests.Response = retrying(
        session.request, method, url, headers=dict(headers or {}), data=data, timeout=timeout
    )
    return response
