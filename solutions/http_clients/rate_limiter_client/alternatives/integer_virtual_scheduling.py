"""Client-side rate limiting: ITU-T I.371's virtual scheduling in integer nanoseconds, one RLock."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import requests

NS = 1_000_000_000


@dataclass(frozen=True)
class Decision:
    """The answer to one throttle() call, field for field redis-cell's CL.THROTTLE reply."""

    limited: bool
    limit: int
    remaining: int
    retry_after: float
    reset_after: float


class GCRA:
    """GCRA as the ATM standard writes it, with integer nanoseconds so no rounding accumulates.

    A cell arriving at `now` conforms unless it is more than the tolerance early:
    earliest = TAT + increment - tau; conforming iff now >= earliest.
    """

    def __init__(self, max_burst: int, count: int, period: float, clock: Callable[[], float] = time.monotonic) -> None:
        if max_burst < 0:
            raise ValueError("max_burst must be >= 0")
        if count < 1 or period <= 0:
            raise ValueError("count and period must be positive")
        self.limit = max_burst + 1
        self._t = round(period * NS / count)
        self._tau = self._t * self.limit
        self._clock = clock
        self._tats: dict[str, int] = {}
        self._guard = threading.RLock()

    def throttle(self, key: str, quantity: int = 1) -> Decision:
        self._guard.acquire()
        try:
            now = round(self._clock() * NS)
            tat = self._tats.setdefault(key, now)
            if tat < now:
                tat = now
            increment = self._t * quantity
            earliest = tat + increment - self._tau
            if now >= earliest:
                self._tats[key] = tat + increment
                ttl, retry = tat + increment - now, None
            else:
                ttl = tat - now
                retry = None if increment > self._tau else earliest - now
        finally:
            self._guard.release()
        remaining = max(0, (self._tau - ttl) // self._t)
        limited = now < earliest
        retry_after = -1.0 if retry is None else retry / NS
        return Decision(limited, self.limit, remaining, retry_after, ttl / NS)


class RequestTooLarge(Exception):
    """The request costs more than the whole burst: no amount of waiting will let it through."""


def host_of(url: str) -> str:
    """The limiter key for a URL: its host and port, e.g. '127.0.0.1:8080'."""
    return urlsplit(url).netloc


class RateLimitedClient:
    """Sends requests through `session`, never faster than `limiter` allows, one budget per host."""

    def __init__(
        self,
        session: requests.Session,
        limiter: GCRA,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.session = session
        self.limiter = limiter
        self.sleep = sleep

    def _wait_for_turn(self, key: str, cost: int) -> None:
        decision = self.limiter.throttle(key, cost)
        if not decision.limited:
            return
        if decision.retry_after < 0:
            raise RequestTooLarge(f"{key}: cost {cost} can never fit a burst of {decision.limit}")
        self.sleep(decision.retry_after)
        self._wait_for_turn(key, cost)  # recursion depth = number of refusals (few)

    def request(self, method: str, url: str, *, cost: int = 1, **kwargs: Any) -> requests.Response:
        self._wait_for_turn(host_of(url), cost)
        return self.session.request(method, url, **kwargs)

    def get(self, url: str, **kwargs: Any) -> requests.Response:
        return self.request("GET", url, **kwargs)
