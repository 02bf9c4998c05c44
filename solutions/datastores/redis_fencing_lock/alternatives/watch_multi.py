"""A Redis lock that hands out fencing tokens, and a store that refuses a stale holder's writes."""

from __future__ import annotations

import time
from collections.abc import Callable

import redis
from redis.client import Pipeline


class LockNotHeld(Exception):
    """release/extend with a token that does not hold the lock (it expired, or it is another's)."""


class StaleToken(Exception):
    """FencedStore.write with a token lower than the highest the store has accepted."""


def holds(pipe: Pipeline, key: str, token: int) -> bool:
    """Read (while WATCHing `key`) whether `key` holds `token`."""
    value = pipe.get(key)
    return value is not None and int(value) == token


class FencingLock:
    """Optimistic transactions instead of Lua: WATCH the keys, read, then MULTI/EXEC the writes.
    EXEC is refused (WatchError) if a watched key changed since WATCH, and redis-py's
    `transaction()` runs the whole read-decide-write again."""

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
        if min(ttl_ms, retry_ms) < 1:
            raise ValueError("ttl_ms and retry_ms are whole milliseconds, at least 1")
        self.client = client
        self.key, self.fence_key = f"lock:{name}", f"lock:{name}:fence"
        self.ttl_ms, self.retry_ms = ttl_ms, retry_ms
        self.clock, self.sleep = clock, sleep

    def _try_acquire(self, pipe: Pipeline) -> int | None:
        if pipe.exists(self.key):
            return None
        # The counter is watched too: the token is read and written back inside the transaction.
        token = int(pipe.get(self.fence_key) or 0) + 1
        pipe.multi()
        pipe.set(self.fence_key, token)
        pipe.set(self.key, token, px=self.ttl_ms)
        return token

    def acquire(self, timeout: float | None = None) -> int:
        if timeout is not None and timeout < 0:
            raise ValueError("timeout must be >= 0, or None to wait forever")
        start = self.clock()
        while True:
            token = self.client.transaction(self._try_acquire, self.key, self.fence_key,
                                            value_from_callable=True)
            if token is not None:
                return token
            elapsed = self.clock() - start
            if timeout is not None and elapsed >= timeout:
                raise TimeoutError(f"{self.key} is held")
            wait = self.retry_ms / 1000
            self.sleep(wait if timeout is None else min(wait, timeout - elapsed))

    def _change_if_held(self, token: int, change: Callable[[Pipeline], object]) -> None:
        def attempt(pipe: Pipeline) -> bool:
            if not holds(pipe, self.key, token):
                return False
            pipe.multi()
            change(pipe)
            return True

        if not self.client.transaction(attempt, self.key, value_from_callable=True):
            raise LockNotHeld(f"{token} does not hold {self.key}")

    def release(self, token: int) -> None:
        self._change_if_held(token, lambda pipe: pipe.delete(self.key))

    def extend(self, token: int, ttl_ms: int | None = None) -> None:
        ttl = self.ttl_ms if ttl_ms is None else ttl_ms
        if ttl < 1:
            raise ValueError("ttl_ms is whole milliseconds, at least 1")
        self._change_if_held(token, lambda pipe: pipe.pexpire(self.key, ttl))


class FencedStore:
    """The highest accepted token is WATCHed: a newer write between the check and EXEC aborts it."""

    def __init__(self, client: redis.Redis, name: str) -> None:
        self.client = client
        self.key, self.fence_key = f"store:{name}", f"store:{name}:fence"

    def write(self, key: str, value: str, token: int) -> None:
        def attempt(pipe: Pipeline) -> bool:
            highest = pipe.get(self.fence_key)
            if highest is not None and token < int(highest):
                return False
            pipe.multi()
            pipe.set(self.fence_key, token)
            pipe.hset(self.key, key, value)
            return True

        if not self.client.transaction(attempt, self.fence_key, value_from_callable=True):
            raise StaleToken(f"{token} is lower than a token {self.key} has accepted")

    def read(self, key: str) -> str | None:
        return self.client.hget(self.key, key)  # type: ignore[return-value]
