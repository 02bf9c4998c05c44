"""A circuit breaker per host for requests: closed, open, half-open, on an injected clock."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
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


@dataclass
class _Circuit:
    """One host's bookkeeping."""

    failures: int = 0  # in a row, while closed
    opened_at: float | None = None  # None while closed
    trial_running: bool = False


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
        # One circuit per host: a dead payment provider must not stop calls to a healthy search
        # service. Open/half-open is derived from opened_at and the clock, not stored, so there
        # is no timer thread to run and no state to forget to flip.
        self._circuits: dict[str, _Circuit] = {}

    def _state(self, circuit: _Circuit) -> str:
        if circuit.opened_at is None:
            return CLOSED
        if self.clock() < circuit.opened_at + self.reset_timeout:
            return OPEN
        return HALF_OPEN

    def state(self, url: str) -> str:
        """CLOSED, OPEN or HALF_OPEN for url's host (OPEN turns HALF_OPEN once retry_at is reached)."""
        with self._lock:
            return self._state(self._circuits.setdefault(host_of(url), _Circuit()))

    def get(self, session: requests.Session, url: str, **kwargs: Any) -> requests.Response:
        """session.get(url, **kwargs) through the host's breaker.

        Returns the response (5xx included, after counting it); re-raises a connection error or
        timeout after counting it; raises CircuitOpen without sending when the breaker refuses.
        """
        host = host_of(url)
        with self._lock:
            circuit = self._circuits.setdefault(host, _Circuit())
            state = self._state(circuit)
            if state == OPEN or (state == HALF_OPEN and circuit.trial_running):
                # Failing fast is the point: no socket, no waiting on a host we believe is down.
                assert circuit.opened_at is not None
                raise CircuitOpen(host, circuit.opened_at + self.reset_timeout)
            if state == HALF_OPEN:
                # Exactly one probe: a recovering host gets one request, not the whole backlog.
                circuit.trial_running = True
        # The network call happens outside the lock, so other hosts (and refusals) never wait.
        try:
            response = session.get(url, **kwargs)
        except (requests.ConnectionError, requests.Timeout):
            self._record(circuit, failed=True)
            raise
        except BaseException:
            # Not the host's fault (a bug, an interrupt): don't count it, but end the trial.
            with self._lock:
                circuit.trial_running = False
            raise
        # A 4xx is the caller's mistake and says the host is alive; only 5xx counts against it.
        self._record(circuit, failed=response.status_code >= 500)
        return response

    def _record(self, circuit: _Circuit, failed: bool) -> None:
        with self._lock:
            was_trial = circuit.trial_running
            circuit.trial_running = False
            if not failed:
                circuit.failures = 0
                circuit.opened_at = None
                return
            circuit.failures += 1
            if was_trial or circuit.failures >= self.failure_threshold:
                # A failed trial re-opens with a fresh timer, measured from now.
                circuit.opened_at = self.clock()
