"""A GCRA rate limiter that runs atomically inside Redis as one Lua script (EVALSHA, EVAL fallback)."""

from __future__ import annotations

import time
from dataclasses import dataclass

import redis

MICROS = 1_000_000  # count time in whole microseconds: float seconds at a real epoch round wrongly

# GCRA as redis-cell computes it (see the README). KEYS[1]: the key that holds the TAT.
# ARGV: T, tau, increment and now, each in whole microseconds. Returns {limited, remaining,
# retry_after, reset_after}: whole numbers (microseconds; retry_after -1 means "allowed" or "never").
GCRA_LUA = """
-- TODO: read the stored TAT (absent: now), compute new_tat and allow_at, decide, store new_tat
-- with an expiry (PX: milliseconds) only when allowed, and return the four values described above.
return redis.error_reply('GCRA_LUA is not written yet')
"""


@dataclass(frozen=True)
class Decision:
    """The answer for one request, with the numbers an HTTP API puts in its rate-limit headers."""

    limited: bool  # True: refuse the request (HTTP 429)
    limit: int  # max_burst + 1                          (X-RateLimit-Limit)
    remaining: int  # requests still allowed right now    (X-RateLimit-Remaining)
    retry_after: float  # seconds until it would pass; -1 when allowed (Retry-After)
    reset_after: float  # seconds until the limit is fully reset (X-RateLimit-Reset)


class RateLimiter:
    """Allows `count` requests per `period` seconds per key, with bursts of up to `max_burst + 1`.

    >>> limiter = RateLimiter(redis.Redis(), max_burst=15, count=30, period=60)
    >>> limiter.throttle("user123")
    Decision(limited=False, limit=16, remaining=15, retry_after=-1.0, reset_after=2.0)
    """

    def __init__(self, client: redis.Redis, max_burst: int, count: int, period: float) -> None:
        self.client = client
        self.max_burst = max_burst
        self.count = count
        self.period = period
        # TODO: the script's name in Redis' script cache (hint: hashlib, and the script's text).
        self.sha = ""

    def throttle(self, key: str, quantity: int = 1, now: float | None = None) -> Decision:
        """Take `quantity` from `key`'s allowance at time `now` (seconds; default: the clock)."""
        # Unix time, the clock every app server shares (never time.monotonic(): it starts anywhere).
        now = time.time() if now is None else now
        # TODO: convert to whole microseconds (round(now * MICROS); T = round(period * MICROS) // count),
        # run GCRA_LUA with one round trip: EVALSHA, and EVAL when Redis answers NOSCRIPT; then turn
        # the reply back into seconds.
        raise NotImplementedError("RateLimiter.throttle")

