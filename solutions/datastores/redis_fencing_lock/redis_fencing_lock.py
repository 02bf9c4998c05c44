"""A Redis lock that hands out fencing tokens, and a store that refuses a stale holder's writes."""

from __future__ import annotations

import time
from collections.abc import Callable

import redis


class LockNotHeld(Exception):
    """release/extend with a token that does not hold the lock (it expired, or it is another's)."""


class StaleToken(Exception):
    """FencedStore.write with a token lower than the highest the store has accepted."""


# KEYS[1] the lock, KEYS[2] the token counter; ARGV[1] the TTL in ms. The token is drawn in the
# same atomic step that takes the lock, so the holders' tokens increase in the order they held it.
ACQUIRE_LUA = """
if redis.call('EXISTS', KEYS[1]) == 1 then
    return false
end
local token = redis.call('INCR', KEYS[2])
redis.call('SET', KEYS[1], token, 'PX', ARGV[1])
return token
"""

# Compare-and-delete in one step: a GET then a DEL could delete the lock of whoever took it between.
RELEASE_LUA = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
    return redis.call('DEL', KEYS[1])
end
return 0
"""

# Compare-and-pexpire: a lost lock is never brought back, nor another holder's lock extended.
EXTEND_LUA = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
    return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""

# KEYS[1] the data hash, KEYS[2] the highest accepted token; ARGV: field, value, token. Numbers
# compared as numbers: as strings, '10' < '9'. Equal is accepted: the holder writes many times.
WRITE_LUA = """
local token = tonumber(ARGV[3])
local highest = redis.call('GET', KEYS[2])
if highest and token < tonumber(highest) then
    return 0
end
redis.call('SET', KEYS[2], token)
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
return 1
"""


class FencingLock:
    """A lock named `name` in Redis: `acquire` returns a fencing token, `release`/`extend` take it.

    The lock is the key `lock:{name}`, holding the token (a decimal string) with an expiry of
    `ttl_ms` milliseconds; tokens come from INCR on `lock:{name}:fence`, which never expires.

    >>> lock = FencingLock(redis.Redis(), "invoices", ttl_ms=10_000)
    >>> token = lock.acquire(timeout=5)
    >>> lock.release(token)
    """

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
        if ttl_ms < 1 or retry_ms < 1:
            raise ValueError(f"ttl_ms and retry_ms must be at least 1 ms, got {ttl_ms} and {retry_ms}")
        self.client = client
        self.key = f"lock:{name}"
        self.fence_key = f"lock:{name}:fence"
        self.ttl_ms = ttl_ms
        self.retry_ms = retry_ms
        self.clock = clock
        self.sleep = sleep
        # register_script runs EVALSHA, and SCRIPT LOAD when Redis answers NOSCRIPT.
        self._acquire = client.register_script(ACQUIRE_LUA)
        self._release = client.register_script(RELEASE_LUA)
        self._extend = client.register_script(EXTEND_LUA)

    def acquire(self, timeout: float | None = None) -> int:
        """Take the lock and return its fencing token; wait at most `timeout` seconds (None: forever)."""
        if timeout is not None and timeout < 0:
            raise ValueError(f"timeout must be >= 0 or None, got {timeout}")
        deadline = None if timeout is None else self.clock() + timeout
        pause = self.retry_ms / 1000
        while True:
            token = self._acquire(keys=[self.key, self.fence_key], args=[self.ttl_ms])
            if token is not None:
                return int(token)
            if deadline is not None:
                left = deadline - self.clock()
                if left <= 0:
                    raise TimeoutError(f"{self.key} is still held after {timeout} s")
                pause = min(pause, left)  # the last attempt is made at the deadline
            # Sleep between attempts: a spinning client hammers Redis for the whole wait.
            self.sleep(pause)

    def release(self, token: int) -> None:
        """Free the lock if `token` holds it; else raise LockNotHeld and leave the lock as it is."""
        if not self._release(keys=[self.key], args=[token]):
            raise LockNotHeld(f"token {token} does not hold {self.key}")

    def extend(self, token: int, ttl_ms: int | None = None) -> None:
        """Make the lock expire `ttl_ms` (default: the lock's ttl_ms) from now, if `token` holds it."""
        ttl_ms = self.ttl_ms if ttl_ms is None else ttl_ms
        if ttl_ms < 1:
            raise ValueError(f"ttl_ms must be at least 1 ms, got {ttl_ms}")
        if not self._extend(keys=[self.key], args=[token, ttl_ms]):
            raise LockNotHeld(f"token {token} does not hold {self.key}")


class FencedStore:
    """A key-value store in Redis that accepts a write only with a token >= the highest it accepted.

    The data is the hash `store:{name}`; the highest accepted token is the key `store:{name}:fence`.

    >>> store = FencedStore(redis.Redis(), "invoices")
    >>> store.write("inv-1", "paid", token)
    >>> store.read("inv-1")
    'paid'
    """

    def __init__(self, client: redis.Redis, name: str) -> None:
        self.client = client
        self.key = f"store:{name}"
        self.fence_key = f"store:{name}:fence"
        self._write = client.register_script(WRITE_LUA)

    def write(self, key: str, value: str, token: int) -> None:
        """Set `key` to `value` if `token` >= every token accepted so far; else raise StaleToken."""
        # The check and the write in one script: between a GET and an HSET a newer holder can write.
        if not self._write(keys=[self.key, self.fence_key], args=[key, value, token]):
            raise StaleToken(f"token {token} is older than one {self.key} has accepted")

    def read(self, key: str) -> str | None:
        """The value last written to `key`, or None."""
        return self.client.hget(self.key, key)  # type: ignore[return-value]
