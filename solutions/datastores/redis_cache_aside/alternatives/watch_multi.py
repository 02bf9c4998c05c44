"""Cache-aside on Redis: one load per miss under a stampede, stale-while-revalidate, safe invalidation."""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from typing import Any

import redis


class Cache:
    """Cache-aside without Lua: SET NX PX for the lock, a second look once it is held, and
    WATCH/MULTI transactions for the checked store, the checked release and the invalidation."""

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
        checks = [soft_ttl_ms >= 1, soft_ttl_ms <= hard_ttl_ms, lock_ttl_ms >= 1, retry_ms >= 1, wait_ms >= 0]
        if not all(checks):
            raise ValueError("times out of range")
        self.r = client
        self.loader = loader
        self.soft_ttl_ms, self.hard_ttl_ms, self.lock_ttl_ms = soft_ttl_ms, hard_ttl_ms, lock_ttl_ms
        self.retry_ms, self.wait_ms = retry_ms, wait_ms
        self.clock, self.sleep = clock, sleep

    def _look(self, entry: str) -> tuple[bool, bool, str | None]:
        """(present, fresh, value) of the entry: a hash {'t': fresh until, 'v': value, absent for None}."""
        fields: dict[str, str] = self.r.hgetall(entry)  # type: ignore[assignment]
        if not fields:
            return False, False, None
        return True, self.clock() < float(fields["t"]), fields.get("v")

    def get(self, key: str) -> str | None:
        entry, lock, gen = f"cache:{key}", f"lock:cache:{key}", f"gen:cache:{key}"
        token = secrets.token_urlsafe(12)
        start = self.clock()
        sleeps = 0.0
        while True:
            present, fresh, value = self._look(entry)
            if fresh:
                return value
            seen = self.r.get(gen) or "0"  # before the load: an invalidation after it changes gen
            if self.r.set(lock, token, nx=True, px=self.lock_ttl_ms):
                present, fresh, value = self._look(entry)  # another reader may have stored meanwhile
                if fresh:
                    self._release(lock, token)
                    return value
                return self._load(key, entry, lock, gen, token, seen)
            if present:
                return value  # stale: someone else refreshes
            left = start + self.wait_ms / 1000 - self.clock()
            if left <= 0:
                raise TimeoutError(f"no value for {key!r} after waiting {sleeps} s")
            pause = min(self.retry_ms / 1000, left)
            self.sleep(pause)
            sleeps += pause

    def _load(self, key: str, entry: str, lock: str, gen: str, token: str, seen: str) -> str | None:
        try:
            value = self.loader(key)
        except BaseException:
            self._release(lock, token)
            raise
        fields = {"t": repr(self.clock() + self.soft_ttl_ms / 1000)}
        if value is not None:
            fields["v"] = value

        def store(pipe: Any) -> None:
            current = pipe.get(gen) or "0"
            mine = pipe.get(lock) == token
            pipe.multi()
            if current == seen:
                pipe.delete(entry)
                pipe.hset(entry, mapping=fields)
                pipe.pexpire(entry, self.hard_ttl_ms)
            if mine:
                pipe.delete(lock)

        self.r.transaction(store, gen, lock)
        return value

    def _release(self, lock: str, token: str) -> None:
        def release(pipe: Any) -> None:
            mine = pipe.get(lock) == token
            pipe.multi()
            if mine:
                pipe.delete(lock)

        self.r.transaction(release, lock)

    def invalidate(self, key: str) -> None:
        with self.r.pipeline(transaction=True) as pipe:  # MULTI/EXEC: both or neither, nothing between
            pipe.incr(f"gen:cache:{key}")
            pipe.delete(f"cache:{key}")
            pipe.execute()
