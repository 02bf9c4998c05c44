"""A GCRA rate limiter that runs atomically inside Redis as one Lua script (EVALSHA, EVAL fallback)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import redis

# GCRA in whole microseconds, with Redis' own clock as the default: every app server asks the
# same server for the time, so no host's clock can drift away from the others.
# KEYS[1]: the key. ARGV: max_burst, count, period (us), quantity, now (us, or "" for Redis' TIME).
# Returns {limited, remaining, retry_after, reset_after} as strings of seconds.
GCRA_LUA = """
local max_burst, count = tonumber(ARGV[1]), tonumber(ARGV[2])
local period, quantity = tonumber(ARGV[3]), tonumber(ARGV[4])
local now = tonumber(ARGV[5])
if now == nil then
    local t = redis.call('TIME')   -- {seconds, microseconds}
    now = tonumber(t[1]) * 1000000 + tonumber(t[2])
end
local emission = math.floor(period / count)
local tolerance = emission * (max_burst + 1)
local increment = emission * quantity
local stored = redis.call('GET', KEYS[1])
local tat = now
if stored then tat = tonumber(stored) end
local new_tat = math.max(tat, now) + increment
local allow_at = new_tat - tolerance
local limited, retry, reset = 0, -1, new_tat - now
if allow_at > now then
    limited, reset = 1, tat - now
    if increment <= tolerance then retry = allow_at - now end
elseif reset > 0 then
    redis.call('SET', KEYS[1], string.format('%.0f', new_tat), 'PX', math.ceil(reset / 1000))
end
local remaining = 0
if tolerance - reset > 0 then remaining = math.floor((tolerance - reset) / emission) end
local function seconds(us)
    if us == -1 then return '-1' end
    return string.format('%d.%06d', math.floor(us / 1000000), us % 1000000)
end
if reset < 0 then
    return {limited, remaining, seconds(retry), '-' .. seconds(-reset)}
end
return {limited, remaining, seconds(retry), seconds(reset)}
"""
SHA = hashlib.sha1(GCRA_LUA.encode()).hexdigest()


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
        self.sha = SHA

    def throttle(self, key: str, quantity: int = 1, now: float | None = None) -> Decision:
        """Take `quantity` from `key`'s allowance at time `now` (seconds; default: the clock)."""
        now_arg = "" if now is None else round(now * 1_000_000)
        args = (self.max_burst, self.count, round(self.period * 1_000_000), quantity, now_arg)
        try:
            reply = self.client.evalsha(self.sha, 1, key, *args)
        except redis.exceptions.NoScriptError:
            reply = self.client.eval(GCRA_LUA, 1, key, *args)
        limited, remaining, retry, reset = reply
        return Decision(int(limited) == 1, self.max_burst + 1, int(remaining), float(retry), float(reset))
