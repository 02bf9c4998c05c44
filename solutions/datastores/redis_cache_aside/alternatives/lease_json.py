"""Cache-aside on Redis: one load per miss under a stampede, stale-while-revalidate, safe invalidation."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable

import redis

# The lock's token is a lease (Facebook's memcache): only the reader whose lease still stands may
# store, and invalidate revokes it by deleting the lock with the entry. No generation counter.
# KEYS: entry, lock; ARGV: now (float seconds), token, lock TTL (ms). Returns {entry or false, locked}.
LOOKUP_LUA = """
local raw = redis.call('GET', KEYS[1])
if raw and tonumber(ARGV[1]) < cjson.decode(raw)['until'] then
    return {raw, 0}
end
if redis.call('SET', KEYS[2], ARGV[2], 'NX', 'PX', ARGV[3]) then
    return {raw, 1}
end
return {raw, 0}
"""

# KEYS: entry, lock; ARGV: token, the entry as JSON, hard TTL (ms). Store only under our lease.
STORE_LUA = """
if redis.call('GET', KEYS[2]) ~= ARGV[1] then
    return 0
end
redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
redis.call('DEL', KEYS[2])
return 1
"""

RELEASE_LUA = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
    return redis.call('DEL', KEYS[1])
end
return 0
"""


class Cache:
    """Cache-aside in front of `loader`; entries are JSON strings {"value": ..., "until": seconds}."""

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
        if soft_ttl_ms < 1 or hard_ttl_ms < soft_ttl_ms:
            raise ValueError("need 1 <= soft_ttl_ms <= hard_ttl_ms")
        if min(lock_ttl_ms, retry_ms) < 1 or wait_ms < 0:
            raise ValueError("need lock_ttl_ms >= 1, retry_ms >= 1, wait_ms >= 0")
        self.client, self.loader = client, loader
        self.soft, self.hard, self.lock_ttl_ms = soft_ttl_ms / 1000, hard_ttl_ms, lock_ttl_ms
        self.retry, self.wait = retry_ms / 1000, wait_ms / 1000
        self.clock, self.sleep = clock, sleep
        self.lookup = client.register_script(LOOKUP_LUA)
        self.store = client.register_script(STORE_LUA)
        self.release = client.register_script(RELEASE_LUA)

    def get(self, key: str) -> str | None:
        keys = [f"cache:{key}", f"lock:cache:{key}"]
        lease = uuid.uuid4().hex
        give_up = self.clock() + self.wait
        while True:
            raw, locked = self.lookup(keys=keys, args=[repr(self.clock()), lease, self.lock_ttl_ms])
            if locked:
                break
            if raw is not None:
                return json.loads(raw)["value"]  # type: ignore[no-any-return]
            now = self.clock()
            if now >= give_up:
                raise TimeoutError(key)
            self.sleep(min(self.retry, give_up - now))
        try:
            value = self.loader(key)
        except BaseException:
            self.release(keys=[keys[1]], args=[lease])
            raise
        doc = json.dumps({"value": value, "until": self.clock() + self.soft})
        self.store(keys=keys, args=[lease, doc, self.hard])  # refused if invalidate revoked the lease
        return value

    def invalidate(self, key: str) -> None:
        # One DEL of both keys is atomic: the entry goes and every lease handed out before is void.
        self.client.delete(f"cache:{key}", f"lock:cache:{key}")
