"""Cache-aside on Redis: one load per miss under a stampede, stale-while-revalidate, safe invalidation."""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable

import redis


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
        # TODO: ValueError unless 1 <= soft_ttl_ms <= hard_ttl_ms, lock_ttl_ms >= 1, retry_ms >= 1,
        #       wait_ms >= 0. Keep the client (or your scripts: client.register_script), the loader,
        #       the times, and the clock and sleep to wait with.
        raise NotImplementedError("Cache.__init__")

    def get(self, key: str) -> str | None:
        """The value for `key`: from the cache if fresh (or stale while another reader refreshes
        it), else loaded once by whoever takes the lock while the others wait for it."""
        # TODO: look at the entry and take the lock (SET lock:cache:{key} <token> NX PX lock_ttl_ms)
        #       in one atomic step (a Lua script), or look again once you hold the lock. Then the
        #       README's table: serve, load (release the lock if the loader raises), or sleep
        #       retry_ms and look again until wait_ms has passed on the injected clock.
        #       secrets.token_hex() makes a token unique to this call.
        raise NotImplementedError("Cache.get")

    def invalidate(self, key: str) -> None:
        """Drop `key`'s entry after the source was written; a load that began before is not stored."""
        # TODO: delete the entry AND make sure a get that looked before cannot store its old value
        #       (a generation the store script checks, bumped in the same step as the delete).
        raise NotImplementedError("Cache.invalidate")
