"""Cache-aside on Redis: one load per miss under a stampede, stale-while-revalidate, safe invalidation."""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable

import redis

# KEYS: the entry, the lock, the generation; ARGV: now (ms), a token, the lock's TTL (ms).
# The look and the lock in one step: a reader that takes the lock right after another reader
# stored a fresh value would otherwise load again. The generation is read in the same step,
# BEFORE the load, so an invalidation during the load is seen when storing.
LOOKUP_LUA = """
local entry = redis.call('HMGET', KEYS[1], 'fresh_until', 'value')
if entry[1] and tonumber(ARGV[1]) < tonumber(entry[1]) then
    return {1, entry[2], 0, false}
end
local locked = redis.call('SET', KEYS[2], ARGV[2], 'NX', 'PX', ARGV[3]) and 1 or 0
return {entry[1] and 1 or 0, entry[2], locked, redis.call('GET', KEYS[3]) or '0'}
"""

# KEYS: the entry, the lock, the generation; ARGV: the generation seen before the load, the
# token, fresh_until (ms), the hard TTL (ms), then the value, absent when the loader said None.
# An invalidation since the look bumped the generation: the loaded value may be older than the
# source, so it is not stored. The lock is released only if it is still ours.
STORE_LUA = """
if (redis.call('GET', KEYS[3]) or '0') == ARGV[1] then
    redis.call('DEL', KEYS[1])
    if ARGV[5] then
        redis.call('HSET', KEYS[1], 'fresh_until', ARGV[3], 'value', ARGV[5])
    else
        redis.call('HSET', KEYS[1], 'fresh_until', ARGV[3])
    end
    redis.call('PEXPIRE', KEYS[1], ARGV[4])
end
if redis.call('GET', KEYS[2]) == ARGV[2] then
    redis.call('DEL', KEYS[2])
end
"""

# Compare-and-delete: a lock that expired during our load may be another reader's by now.
RELEASE_LUA = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
    return redis.call('DEL', KEYS[1])
end
return 0
"""

# KEYS: the entry, the generation. Both in one step: between a DEL and an INCR in two round
# trips, a reader that loaded before the write could still store its old value.
INVALIDATE_LUA = """
redis.call('INCR', KEYS[2])
redis.call('DEL', KEYS[1])
"""


class Cache:
    """Cache-aside in front of `loader` (the source of truth), with Redis as the cache.

    The entry for `key` is `cache:{key}` (expires hard_ttl_ms after it is stored; stale
    soft_ttl_ms after, on the injected clock); the load lock is `lock:cache:{key}`.

    >>> cache = Cache(redis.Redis(decode_responses=True), load_user, soft_ttl_ms=30_000, hard_ttl_ms=300_000)
    >>> cache.get("user:42")
    'Ada'
    """

    def __init__(
        self,
        client: redis.Redis,
        loader: Callable[[str], str | None],
        *,
        soft_ttl_ms: int,
        hard_ttl_ms: int,
        lock_ttl_ms: int = 5000,
        retry_ms: int = 50,
        wait_ms: int = 5000,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], object] = time.sleep,
    ) -> None:
        if not 1 <= soft_ttl_ms <= hard_ttl_ms:
            raise ValueError(f"need 1 <= soft_ttl_ms <= hard_ttl_ms, got {soft_ttl_ms} and {hard_ttl_ms}")
        if lock_ttl_ms < 1 or retry_ms < 1 or wait_ms < 0:
            raise ValueError(f"need lock_ttl_ms, retry_ms >= 1, wait_ms >= 0: {lock_ttl_ms}, {retry_ms}, {wait_ms}")
        self.loader = loader
        self.soft_ttl_ms = soft_ttl_ms
        self.hard_ttl_ms = hard_ttl_ms
        self.lock_ttl_ms = lock_ttl_ms
        self.retry_ms = retry_ms
        self.wait_ms = wait_ms
        self.clock = clock
        self.sleep = sleep
        self._lookup = client.register_script(LOOKUP_LUA)
        self._store = client.register_script(STORE_LUA)
        self._release = client.register_script(RELEASE_LUA)
        self._invalidate = client.register_script(INVALIDATE_LUA)

    @staticmethod
    def _keys(key: str) -> list[str]:
        return [f"cache:{key}", f"lock:cache:{key}", f"gen:cache:{key}"]

    def _now_ms(self) -> int:
        return round(self.clock() * 1000)

    def get(self, key: str) -> str | None:
        """The value for `key`: from the cache if fresh (or stale while another reader refreshes
        it), else loaded once by whoever takes the lock while the others wait for it."""
        keys = self._keys(key)
        token = secrets.token_hex()  # unique per call: only the holder may release the lock
        deadline = self.clock() + self.wait_ms / 1000
        while True:
            present, value, locked, generation = self._lookup(
                keys=keys, args=[self._now_ms(), token, self.lock_ttl_ms])
            if locked:
                return self._load(key, keys, token, generation)
            if present:
                return value  # type: ignore[no-any-return]  # fresh, or stale while another refreshes
            # A miss while another reader loads: wait for its value, or for its lock to go.
            left = deadline - self.clock()
            if left <= 0:
                raise TimeoutError(f"{keys[1]} still held and no value after {self.wait_ms} ms")
            self.sleep(min(self.retry_ms / 1000, left))

    def _load(self, key: str, keys: list[str], token: str, generation: str) -> str | None:
        try:
            value = self.loader(key)
        except BaseException:
            # Nothing is cached from a failure, and the lock goes now, not when it expires.
            self._release(keys=[keys[1]], args=[token])
            raise
        fresh_until = self._now_ms() + self.soft_ttl_ms
        given = [] if value is None else [value]  # None is cached too: "no such record"
        self._store(keys=keys, args=[generation, token, fresh_until, self.hard_ttl_ms, *given])
        return value

    def invalidate(self, key: str) -> None:
        """Drop `key`'s entry after the source was written; a load that began before is not stored."""
        entry, _lock, generation = self._keys(key)
        self._invalidate(keys=[entry, generation])
