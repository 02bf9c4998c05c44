"""Client-side rate limiting: a GCRA limiter with redis-cell's semantics, on an injected clock, in an HTTP client."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import requests


@dataclass(frozen=True)
class Decision:
    """The answer to one throttle() call, field for field redis-cell's CL.THROTTLE reply."""

    limited: bool  # True: don't send now
    limit: int  # max_burst + 1: the most requests allowed at one instant
    remaining: int  # whole requests that could still be sent right now
    retry_after: float  # seconds until this request would be allowed; -1 if allowed, or never
    reset_after: float  # seconds until the limiter is back to a full burst


class GCRA:
    """The generic cell rate algorithm: `count` requests per `period` seconds, bursts of max_burst + 1.

    It stores one number per key, the theoretical arrival time (TAT), and decides with the
    formulas of redis-cell (brandur/redis-cell, src/cell/mod.rs):

        T = period / count                  emission interval: one request's worth of time
        tau = T * (max_burst + 1)           how far ahead of now the TAT may run
        increment = T * quantity
        tat = the key's TAT if it is still ahead of now, else now   (redis-cell stores the TAT
              with an expiry, so a TAT in the past is a key that has gone: it reads as now)
        new_tat = max(now, tat) + increment
        allow_at = new_tat - tau
        limited if now < allow_at:  retry_after = allow_at - now (-1 if increment > tau: never)
                                     ttl = tat - now;  the TAT is left unchanged
        else allowed:                the key's TAT becomes new_tat;  ttl = new_tat - now
        remaining = int((tau - ttl) / T) if tau - ttl > -T else 0;  reset_after = ttl

    In floats, decide with durations from now (tat - now, new_tat - now), not instants:
    (now + tau) - tau need not equal now, and a fresh key must admit a whole burst at any
    clock reading. (redis-cell counts integer nanoseconds.)

    Time comes only from `clock()` (seconds, monotonic), so tests can drive it. ValueError
    unless max_burst >= 0, count > 0 and period > 0. Safe to share between threads: throttle's
    read-decide-write is atomic, so threads together are allowed exactly what one would be.

    >>> now = [0.0]
    >>> limiter = GCRA(max_burst=4, count=1, period=1, clock=lambda: now[0])
    >>> limiter.throttle("api.example.com")
    Decision(limited=False, limit=5, remaining=4, retry_after=-1.0, reset_after=1.0)
    """

    def __init__(self, max_burst: int, count: int, period: float, clock: Callable[[], float] = time.monotonic) -> None:
        # TODO: keep what throttle() needs: T, tau, the clock, a TAT per key, and a lock.
        raise NotImplementedError("GCRA.__init__")

    def throttle(self, key: str, quantity: int = 1) -> Decision:
        """Decide whether `quantity` requests for `key` may go now; if so, account for them."""
        # TODO: the formulas above, read-decide-write under the lock.
        raise NotImplementedError("GCRA.throttle")


class RequestTooLarge(Exception):
    """The request costs more than the whole burst: no amount of waiting will let it through."""


def host_of(url: str) -> str:
    """The limiter key for a URL: its host and port, e.g. '127.0.0.1:8080'."""
    return urlsplit(url).netloc


class RateLimitedClient:
    """Sends requests through `session`, never faster than `limiter` allows, one budget per host.

    >>> client = RateLimitedClient(requests.Session(), GCRA(max_burst=9, count=10, period=1))
    >>> client.get("https://api.example.com/items").status_code   # waits if it must, then sends
    200
    """

    def __init__(
        self,
        session: requests.Session,
        limiter: GCRA,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.session = session
        self.limiter = limiter
        self.sleep = sleep  # all waiting goes through this, so tests can make time virtual

    def request(self, method: str, url: str, *, cost: int = 1, **kwargs: Any) -> requests.Response:
        """Wait until the limiter lets `cost` requests through for host_of(url), then send.

        Ask limiter.throttle(host_of(url), cost); when it says limited, sleep its retry_after
        and ask again (the wait is only an estimate when several threads share the limiter).
        When it can never be allowed (cost above the burst) raise RequestTooLarge without
        sleeping or sending. `kwargs` go to session.request, whose response is returned whatever
        its status (pacing is this class's job; judging answers, e.g. a 429, is the caller's).
        Send outside any lock: requests allowed at the same moment are in flight together.
        """
        # TODO: loop: throttle, and either send, raise, or sleep and try again.
        raise NotImplementedError("RateLimitedClient.request")

    def get(self, url: str, **kwargs: Any) -> requests.Response:
        """request("GET", url, ...)."""
        return self.request("GET", url, **kwargs)
