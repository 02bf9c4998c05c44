"""A Redis lock that hands out fencing tokens, and a store that refuses a stale holder's writes."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable

import redis


class LockNotHeld(Exception):
    """release/extend with a token that does not hold the lock (it expired, or it is another's)."""


class StaleToken(Exception):
    """FencedStore.write with a token lower than the highest the store has accepted."""


# One script for every lock operation, chosen by ARGV[1]; run by its SHA1 (EVALSHA), with EVAL
# when the script cache is empty. KEYS: the lock, its counter. Tokens compared as numbers.
LOCK_LUA = """
local op, lock, counter = ARGV[1], KEYS[1], KEYS[2]
if op == 'acquire' then
    -- SET NX is the test: only the client that created the key draws a token.
    if not redis.call('SET', lock, 'taking', 'NX', 'PX', ARGV[2]) then return -1 end
    local token = redis.call('INCR', counter)
    redis.call('SET', lock, token, 'XX', 'PX', ARGV[2])
    return token
end
if tonumber(redis.call('GET', lock)) ~= tonumber(ARGV[2]) then return -1 end
if op == 'release' then return redis.call('DEL', lock) end
return redis.call('PEXPIRE', lock, ARGV[3])
"""

STORE_LUA = """
local highest = tonumber(redis.call('GET', KEYS[2]) or '-1')
if tonumber(ARGV[3]) < highest then return -1 end
redis.call('SET', KEYS[2], ARGV[3])
return redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
"""


def run(client: redis.Redis, script: str, keys: list[str], *args: object) -> int:
    sha = hashlib.sha1(script.encode()).hexdigest()
    try:
        return int(client.evalsha(sha, len(keys), *keys, *args))  # type: ignore[arg-type]
    except redis.exceptions.NoScriptError:
        return int(client.eval(script, len(keys), *keys, *args))  # type: ignore[arg-type]


class FencingLock:
    def __init__(
        self,
        client: redis.Redis,
        name: str,
        *,
        ttl_ms: int,
        retry_ms: int = 50,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], object] = time.sleep,
    ) -> None:
        if not (ttl_ms >= 1 and retry_ms >= 1):
            raise ValueError("ttl_ms and retry_ms must be >= 1")
        self.client, self.keys = client, [f"lock:{name}", f"lock:{name}:fence"]
        self.ttl_ms, self.retry_ms, self.clock, self.sleep = ttl_ms, retry_ms, clock, sleep

    def acquire(self, timeout: float | None = None) -> int:
        if timeout is not None and timeout < 0:
            raise ValueError("negative timeout")
        give_up = float("inf") if timeout is None else self.clock() + timeout
        while (token := run(self.client, LOCK_LUA, self.keys, "acquire", self.ttl_ms)) < 0:
            now = self.clock()
            if now >= give_up:
                raise TimeoutError(self.keys[0])
            self.sleep(min(self.retry_ms / 1000, give_up - now))
        return token

    def release(self, token: int) -> None:
        if run(self.client, LOCK_LUA, self.keys, "release", token) < 0:
            raise LockNotHeld(token)

    def extend(self, token: int, ttl_ms: int | None = None) -> None:
        ttl_ms = ttl_ms if ttl_ms is not None else self.ttl_ms
        if ttl_ms < 1:
            raise ValueError("ttl_ms must be >= 1")
        if run(self.client, LOCK_LUA, self.keys, "extend", token, ttl_ms) < 0:
            raise LockNotHeld(token)


class FencedStore:
    def __init__(self, client: redis.Redis, name: str) -> None:
        self.client, self.keys = client, [f"store:{name}", f"store:{name}:fence"]

    def write(self, key: str, value: str, token: int) -> None:
        if run(self.client, STORE_LUA, self.keys, key, value, token) < 0:
            raise StaleToken(token)

    def read(self, key: str) -> str | None:
        return self.client.hget(self.keys[0], key)  # type: ignore[return-value]
