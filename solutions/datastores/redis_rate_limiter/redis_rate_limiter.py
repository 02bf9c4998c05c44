"""A GCRA rate limiter that runs atomically inside Redis as one Lua script (EVALSHA, EVAL fallback)."""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass

import redis

MICROS = 1_000_000  # the script counts time in whole microseconds: no float rounding at a real epoch

# GCRA as redis-cell computes it (see the README). KEYS[1]: the key that holds the TAT.
# ARGV: T, tau, increment and now, each in whole microseconds. Returns {limited, remaining,
# retry_after, reset_after}: whole numbers (microseconds; retry_after -1 means "allowed" or "never").
GCRA_LUA = """
local key = KEYS[1]
local emission = tonumber(ARGV[1])      -- T: one request's worth of time
local tolerance = tonumber(ARGV[2])     -- tau: how far ahead of now the TAT may run
local increment = tonumber(ARGV[3])     -- what this request costs
local now = tonumber(ARGV[4])

-- The theoretical arrival time; an absent key means "nothing owed": now.
local tat = tonumber(redis.call('GET', key)) or now
-- max(): after idling, the TAT restarts from now instead of banking unused time.
local new_tat = math.max(now, tat) + increment
local allow_at = new_tat - tolerance

local limited, retry_after, reset_after
if now < allow_at then
    -- Limited: nothing is stored, so a refused request costs the caller nothing.
    limited = 1
    retry_after = -1
    if increment <= tolerance then retry_after = allow_at - now end
    reset_after = tat - now
else
    limited = 0
    retry_after = -1
    reset_after = new_tat - now
    if reset_after > 0 then
        -- PX takes milliseconds: the key disappears when the limit has fully reset (no leak),
        -- and not a moment before (rounded up), or the client would get its allowance back early.
        redis.call('SET', key, string.format('%.0f', new_tat), 'PX', math.ceil(reset_after / 1000))
    end
end

-- Whole numbers divide exactly here: floats at now = 1.7e9 s would make floor(2) come out as 1.
local remaining = math.floor((tolerance - reset_after) / emission)
if remaining < 0 then remaining = 0 end
return {limited, remaining, retry_after, reset_after}
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
        # Unix time, the clock every app server shares; time.monotonic() starts anywhere, per host.
        now = time.time() if now is None else now
        # Whole microseconds, as redis-cell uses whole nanoseconds (Lua's doubles hold integers
        # exactly up to 2**53: 1.7e15 us fits, 1.7e18 ns would not). round(), not int(): the double
        # nearest 1.001 is 1.000999999999999889. T is rounded down to a whole microsecond.
        emission = round(self.period * MICROS) // self.count
        tolerance = emission * (self.max_burst + 1)
        args = (emission, tolerance, emission * quantity, round(now * MICROS))
        # EVALSHA sends 40 bytes instead of the script; after a restart or SCRIPT FLUSH Redis
        # answers NOSCRIPT, and EVAL both runs the script and caches it again.
        try:
            reply = self.client.evalsha(self.sha, 1, key, *args)
        except redis.exceptions.NoScriptError:
            reply = self.client.eval(GCRA_LUA, 1, key, *args)
        limited, remaining, retry_after, reset_after = (int(value) for value in reply)
        return Decision(
            limited=bool(limited),
            limit=self.max_burst + 1,
            remaining=remaining,
            retry_after=-1.0 if retry_after < 0 else retry_after / MICROS,
            reset_after=reset_after / MICROS,
        )
