"""A circuit breaker per host for requests: closed, open, half-open, on an injected clock."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any
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
        self._lock = threading.RLock()  # state() is called from inside get(): re-entrant
        # Stored, not derived: each host's state is a field, moved by explicit transitions.
        self._states: dict[str, str] = {}
        self._failures: dict[str, int] = {}
        self._opened_at: dict[str, float] = {}
        self._trials: set[str] = set()

    def state(self, url: str) -> str:
        """CLOSED, OPEN or HALF_OPEN for url's host (OPEN turns HALF_OPEN once retry_at is reached)."""
        with self._lock:
            return self._current(host_of(url))

    def get(self, session: requests.Session, url: str, **kwargs: Any) -> requests.Response:
        """session.get(url, **kwargs) through the host's breaker.

        Returns the response (5xx included, after counting it); re-raises a connection error or
        timeout after counting it; raises CircuitOpen without sending when the breaker refuses.
        """
        host = host_of(url)
        with self._lock:
            state = self._current(host)
            if state == OPEN or (state == HALF_OPEN and host in self._trials):
                raise CircuitOpen(host, self._opened_at[host] + self.reset_timeout)
            trial = state == HALF_OPEN
            if trial:
                self._trials.add(host)
        failed: bool | None = None  # None: the call ended in a way that says nothing of the host
        try:
            response = session.get(url, **kwargs)
            failed = response.status_code >= 500
            return response
        except (requests.ConnectionError, requests.Timeout):
            failed = True
            raise
        finally:
            with self._lock:
                if trial:
                    self._trials.discard(host)
                if failed is True:
                    self._on_failure(host, trial)
                elif failed is False:
                    self._transition(host, CLOSED)

    def _current(self, host: str) -> str:
        state = self._states.get(host, CLOSED)
        if state == OPEN and self.clock() >= self._opened_at[host] + self.reset_timeout:
            state = self._transition(host, HALF_OPEN)
        return state

    def _transition(self, host: str, state: str) -> str:
        self._states[host] = state
        if state == CLOSED:
            self._failures[host] = 0
        elif state == OPEN:
            self._opened_at[host] = self.clock()
        return state

    def _on_failure(self, host: str, trial: bool) -> None:
        self._failures[host] = self._failures.get(host, 0) + 1
        if trial or self._failures[host] >= self.failure_threshold:
            self._transition(host, OPEN)
