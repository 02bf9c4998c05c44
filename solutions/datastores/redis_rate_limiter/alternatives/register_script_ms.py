"""A GCRA rate limiter that runs atomically inside Redis as one Lua script (EVALSHA, EVAL fallback)."""

from __future__ import annotations

import time
from dataclasses import dataclass

import redis

# GCRA in whole milliseconds. KEYS[1]: the key that holds the TAT (ms since the epoch).
# ARGV: max_burst, T (ms), quantity, now (ms). Returns {limited, remaining, retry_after_ms or -1,
# reset_after_ms}.
GCRA_LUA = """
local max_burst, emission = tonumber(ARGV[1]), tonumber(ARGV[2])
local quantity, now = tonumber(ARGV[3]), tonumber(ARGV[4])
local tolerance = emission * (max_burst + 1)
local increment = emission * quantity
local tat = tonumber(redis.call('GET', KEYS[1]))
if tat == nil or tat < now then tat = now end
local new_tat = tat + increment
if new_tat - tolerance > now then
    local retry = -1
    if increment <= tolerance then retry = new_tat - tolerance - now end
    local reset = tonumber(redis.call('GET', KEYS[1]) or now) - now
    return {1, math.max(0, math.floor((tolerance - reset) / emission)), retry, reset}
end
if new_tat > now then
    redis.call('SET', KEYS[1], string.format('%.0f', new_tat), 'PX', new_tat - now)
end
return {0, math.floor((tolerance - (new_tat - now)) / emission), -1, new_tat - now}
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
        # redis-py's Script object: EVALSHA, and on NOSCRIPT a SCRIPT LOAD and EVALSHA again.
        self.script = client.register_script(GCRA_LUA)
        self.sha = self.script.sha

    def throttle(self, key: str, quantity: int = 1, now: float | None = None) -> Decision:
        """Take `quantity` from `key`'s allowance at time `now` (seconds; default: the clock)."""
        now_ms = round((time.time() if now is None else now) * 1000)
        emission_ms = round(self.period * 1000) // self.count
        reply = self.script(keys=[key], args=[self.max_burst, emission_ms, quantity, now_ms])
        limited, remaining, retry_ms, reset_ms = map(int, reply)
        return Decision(limited == 1, self.max_burst + 1, remaining,
                        retry_ms / 1000 if retry_ms >= 0 else -1.0, reset_ms / 1000)
