"""A GCRA rate limiter that runs atomically inside Redis as one Lua script (EVALSHA, EVAL fallback)."""

from __future__ import annotations

import hashlib
import math
import time
from dataclasses import dataclass

import redis

# GCRA as redis-cell computes it (see the README). KEYS[1]: the key that holds the TAT.
# ARGV: max_burst, count, period (s), quantity, now (s). Returns {limited, limit, remaining,
# retry_after, reset_after}; the last two as strings, because Redis truncates Lua numbers to ints.
GCRA_LUA = """
local key = KEYS[1]
local max_burst = tonumber(ARGV[1])
local count = tonumber(ARGV[2])
local period = tonumber(ARGV[3])
local quantity = tonumber(ARGV[4])
local now = tonumber(ARGV[5])

local emission = period / count                 -- T: one request's worth of time
local tolerance = emission * (max_burst + 1)    -- tau: how far ahead of now the TAT may run
local increment = emission * quantity

-- The theoretical arrival time; an absent key means "nothing owed": now.
local tat = tonumber(redis.call('GET', key)) or now
-- max(): after idling, the TAT restarts from now instead of banking unused time.
local new_tat = math.max(now, tat) + increment
local allow_at = new_tat - tolerance

local limited, retry_after, ttl
if now - allow_at < 0 then
    -- Limited: nothing is stored, so a refused request costs the caller nothing.
    limited = 1
    retry_after = -1
    if increment <= tolerance then retry_after = allow_at - now end
    ttl = tat - now
else
    limited = 0
    retry_after = -1
    ttl = new_tat - now
    if ttl > 0 then
        -- PX: the key disappears exactly when the limit has fully reset (no memory leak).
        redis.call('SET', key, string.format('%.17g', new_tat), 'PX', math.ceil(ttl * 1000))
    end
end

local remaining = 0
if tolerance - ttl > -emission then
    remaining = math.floor((tolerance - ttl) / emission + 1e-9)
    if remaining < 0 then remaining = 0 end
end
return {limited, max_burst + 1, remaining,
        string.format('%.17g', retry_after), string.format('%.17g', ttl)}
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
        # The SHA1 of the script text is its name in Redis' script cache: computed here, no round trip.
        self.sha = hashlib.sha1(GCRA_LUA.encode()).hexdigest()

    def throttle(self, key: str, quantity: int = 1, now: float | None = None) -> Decision:
        """Take `quantity` from `key`'s allowance at time `now` (seconds; default: the clock)."""
        now = time.time() if now is None else now
        # MISTAKE: GET, compute in Python, SET: another client can run between the GET and the SET
        emission = self.period / self.count
        tolerance = emission * (self.max_burst + 1)
        increment = emission * quantity
        stored = self.client.get(key)
        tat = float(stored) if stored is not None else now
        new_tat = max(now, tat) + increment
        allow_at = new_tat - tolerance
        if now - allow_at < 0:
            retry_after = allow_at - now if increment <= tolerance else -1.0
            ttl = tat - now
            limited = True
        else:
            retry_after, ttl, limited = -1.0, new_tat - now, False
            if ttl > 0:
                self.client.set(key, repr(new_tat), px=math.ceil(ttl * 1000))
        remaining = max(0, math.floor((tolerance - ttl) / emission + 1e-9)) if tolerance - ttl > -emission else 0
        return Decision(limited, self.max_burst + 1, remaining, retry_after, ttl)
