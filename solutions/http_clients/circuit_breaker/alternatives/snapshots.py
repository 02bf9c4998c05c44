"""A circuit breaker per host for requests: closed, open, half-open, on an injected clock."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any, NamedTuple
from urllib.parse import urlsplit

import requests

CLOSED, OPEN, HALF_OPEN = "closed", "open", "half_open"


class CircuitOpen(Exception):
    """Refused without touching the network: the host's breaker is open (or its trial is running)."""

    def __init__(self, host: str, retry_at: float) -> None:
        super().__init__(f"circuit for {host} is open; next trial at clock {retry_at:.3f}")
        self.host = host
        self.retry_at = retry_at


def host_of(url: str) -> str:
    """The breaker key: scheme, host and port, e.g. 'http://127.0.0.1:8080'."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


class _Record(NamedTuple):
    failures: int  # in a row
    opened_at: float | None  # None while closed
    trial: bool  # a half-open trial is running


_CLOSED = _Record(0, None, False)


class CircuitBreaker:
    """Stops calling a host that keeps failing, and probes it now and then to see if it is back.

    Per host (see host_of), independently:
    - closed: calls go through. A failure is a 5xx response (500-599) or a
      requests.ConnectionError / requests.Timeout (a read timeout too); any response below 500
      is a success and resets the count to 0. After `failure_threshold` failures in a row the
      breaker opens, at time clock() of the failure that reached the threshold.
    - open: calls raise CircuitOpen(host, retry_at=opened_at + reset_timeout) at once, sending
      nothing, until clock() reaches retry_at; then the breaker is half-open.
    - half_open: the next call is the one trial and goes through; while it runs, other calls
      raise CircuitOpen. Trial success -> closed (count 0); trial failure -> open again, at the
      time of that failure. state() only looks: it never starts a trial.
    - Any other exception out of session.get (a bug in the caller's hook, KeyboardInterrupt) is
      re-raised and is no failure of the host; a trial it interrupts is over, so a later call
      can be the next trial.
    Thread-safe: calls for the same host may come from many threads at once, and a call in
    flight holds up no other call (to any host), nor state().

    >>> breaker = CircuitBreaker(failure_threshold=3, reset_timeout=30.0)
    >>> response = breaker.get(requests.Session(), "http://127.0.0.1:8080/health", timeout=2)
    """

    def __init__(
        self,
        failure_threshold: int,
        reset_timeout: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.failure_threshold = failure_threshold
        self.reset_timeout = reset_timeout
        self.clock = clock
        self._lock = threading.Lock()
        # Each host's record is an immutable tuple, replaced whole under the lock. state() reads
        # one tuple without locking: it sees the record before or after a change, never half.
        self._records: dict[str, _Record] = {}

    def state(self, url: str) -> str:
        """CLOSED, OPEN or HALF_OPEN for url's host (OPEN turns HALF_OPEN once retry_at is reached)."""
        record = self._records.get(host_of(url), _CLOSED)
        return self._state_of(record)

    def get(self, session: requests.Session, url: str, **kwargs: Any) -> requests.Response:
        """session.get(url, **kwargs) through the host's breaker.

        Returns the response (5xx included, after counting it); re-raises a connection error or
        timeout after counting it; raises CircuitOpen without sending when the breaker refuses.
        """
        host = host_of(url)
        with self._lock:
            record = self._records.get(host, _CLOSED)
            state = self._state_of(record)
            if state == OPEN or (state == HALF_OPEN and record.trial):
                assert record.opened_at is not None
                raise CircuitOpen(host, record.opened_at + self.reset_timeout)
            if state == HALF_OPEN:
                self._records[host] = record._replace(trial=True)
        ok: bool | None = None
        try:
            response = session.get(url, **kwargs)
            ok = response.status_code < 500
            return response
        except (requests.ConnectionError, requests.Timeout):
            ok = False
            raise
        finally:
            with self._lock:
                before = self._records.get(host, _CLOSED)
                if ok is True:
                    self._records[host] = _CLOSED
                elif ok is False:
                    failures = before.failures + 1
                    if before.trial or failures >= self.failure_threshold:
                        self._records[host] = _Record(failures, self.clock(), False)
                    else:
                        self._records[host] = before._replace(failures=failures)
                elif before.trial:
                    self._records[host] = before._replace(trial=False)

    def _state_of(self, record: _Record) -> str:
        if record.opened_at is None:
            return CLOSED
        return OPEN if self.clock() < record.opened_at + self.reset_timeout else HALF_OPEN
