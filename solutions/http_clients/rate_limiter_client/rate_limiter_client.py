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
        if max_burst < 0 or count <= 0 or period <= 0:
            raise ValueError("need max_burst >= 0, count > 0, period > 0")
        self.limit = max_burst + 1
        self.interval = period / count  # T
        # tau counts max_burst + 1 intervals: at a fresh key, max_burst + 1 requests fit at one
        # instant (the request itself plus the burst), exactly as redis-cell's `limit` says.
        self.tau = self.interval * (max_burst + 1)
        self.clock = clock
        self._tat: dict[str, float] = {}
        # The read-decide-write must be one step: two threads reading the same TAT would both
        # be allowed, the classic check-then-act race.
        self._lock = threading.Lock()

    def throttle(self, key: str, quantity: int = 1) -> Decision:
        """Decide whether `quantity` requests for `key` may go now; if so, account for them."""
        with self._lock:
            now = self.clock()
            increment = self.interval * quantity
            # How far the key's TAT runs ahead of now. max(0, ...): time spent idle earns
            # allowance back, but only up to a full burst; without it an idle client would
            # "save up" and then fire an unbounded burst. (redis-cell gets the same from the
            # key's expiry at its TAT.) Working with this difference rather than with absolute
            # times keeps a fresh key exact: in floats, now + tau - tau need not equal now.
            ahead = max(0.0, self._tat.get(key, now) - now)
            new_ahead = ahead + increment  # new_tat - now
            if new_ahead > self.tau:  # now < allow_at = new_tat - tau
                # A refused request stores nothing: otherwise a client that keeps asking
                # pushes its own TAT ahead and locks itself out for good.
                retry_after = new_ahead - self.tau if increment <= self.tau else -1.0
                ttl = ahead
                limited = True
            else:
                self._tat[key] = now + new_ahead
                retry_after, ttl, limited = -1.0, new_ahead, False
        # ttl never exceeds tau (a stored TAT is at most tau ahead), so this is never negative.
        remaining = int((self.tau - ttl) / self.interval)
        return Decision(limited, self.limit, remaining, retry_after, ttl)


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
        key = host_of(url)  # each API host has its own budget, as its own limit is its own
        while True:
            decision = self.limiter.throttle(key, cost)
            if not decision.limited:
                return self.session.request(method, url, **kwargs)
            if decision.retry_after == -1:
                # -1 while limited means "never": the cost exceeds the whole burst.
                raise RequestTooLarge(f"{method} {url}: cost {cost} > burst {decision.limit}")
            # Sleep, then ask again rather than sending blindly: the throttle call that says
            # yes is the one that accounts for this request, and another thread sharing the
            # limiter may have taken the slot in the meantime.
            self.sleep(decision.retry_after)

    def get(self, url: str, **kwargs: Any) -> requests.Response:
        """request("GET", url, ...)."""
        return self.request("GET", url, **kwargs)
