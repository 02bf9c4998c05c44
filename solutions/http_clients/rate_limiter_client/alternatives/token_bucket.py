"""Client-side rate limiting: the equivalent token bucket (tokens and a last-refill time per key), a lock per key."""

from __future__ import annotations

import math
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

    limited: bool
    limit: int
    remaining: int
    retry_after: float
    reset_after: float


@dataclass
class _Bucket:
    tokens: float
    last: float
    lock: threading.Lock


class GCRA:
    """Same answers as GCRA, kept as a token bucket: max_burst + 1 tokens, refilled one per T.

    TAT - now is (capacity - tokens) * T, so every field of redis-cell's reply follows:
    remaining = floor(tokens), reset_after = (capacity - tokens) * T, and a refused request
    waits (quantity - tokens) * T for enough tokens to drip in.
    """

    def __init__(self, max_burst: int, count: int, period: float, clock: Callable[[], float] = time.monotonic) -> None:
        if not (max_burst >= 0 and count > 0 and period > 0):
            raise ValueError("need max_burst >= 0, count > 0, period > 0")
        self.capacity = max_burst + 1
        self.interval = period / count
        self.clock = clock
        self._buckets: dict[str, _Bucket] = {}
        self._buckets_lock = threading.Lock()  # only to create a key's bucket exactly once

    def _bucket(self, key: str) -> _Bucket:
        with self._buckets_lock:
            bucket = self._buckets.get(key)
            if bucket is None:
                bucket = self._buckets[key] = _Bucket(float(self.capacity), -math.inf, threading.Lock())
            return bucket

    def throttle(self, key: str, quantity: int = 1) -> Decision:
        bucket = self._bucket(key)
        with bucket.lock:  # keys don't wait for each other
            now = self.clock()
            if bucket.last != -math.inf:
                bucket.tokens = min(self.capacity, bucket.tokens + (now - bucket.last) / self.interval)
            bucket.last = now
            allowed = quantity <= bucket.tokens + 1e-9  # float refills may fall a hair short
            if allowed:
                bucket.tokens = max(0.0, bucket.tokens - quantity)
                retry_after = -1.0
            elif quantity > self.capacity:
                retry_after = -1.0
            else:
                retry_after = (quantity - bucket.tokens) * self.interval
            tokens = bucket.tokens
        reset_after = (self.capacity - tokens) * self.interval
        return Decision(not allowed, self.capacity, math.floor(tokens + 1e-9), retry_after, reset_after)


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

    def request(self, method: str, url: str, *, cost: int = 1, **kwargs: Any) -> requests.Response:
        decision = self.limiter.throttle(host_of(url), cost)
        while decision.limited:
            if decision.retry_after == -1:
                raise RequestTooLarge(f"cost {cost} exceeds the burst of {decision.limit}")
            self.sleep(decision.retry_after)
            decision = self.limiter.throttle(host_of(url), cost)
        return self.session.request(method, url, **kwargs)

    def get(self, url: str, **kwargs: Any) -> requests.Response:
        return self.request("GET", url, **kwargs)
