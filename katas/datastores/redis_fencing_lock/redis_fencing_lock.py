"""A Redis lock that hands out fencing tokens, and a store that refuses a stale holder's writes."""

from __future__ import annotations

import time
from collections.abc import Callable

import redis


class LockNotHeld(Exception):
    """release/extend with a token that does not hold the lock (it expired, or it is another's)."""


class StaleToken(Exception):
    """FencedStore.write with a token lower than the highest the store has accepted."""


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
        # TODO: refuse ttl_ms or retry_ms below 1 (ValueError); keep the key names, the client
        #       (or your scripts: client.register_script), and the clock and sleep to wait with.
        raise NotImplementedError("FencingLock.__init__")

    def acquire(self, timeout: float | None = None) -> int:
        """Take the lock and return its fencing token; wait at most `timeout` seconds (None: forever).

        timeout=0 makes one attempt; a held lock raises TimeoutError. Between attempts, sleep
        retry_ms (the injected sleep, in seconds), never past the deadline on the injected clock.
        """
        # TODO: one atomic step takes the lock AND draws its token (a Lua script: if the lock key
        #       is absent, INCR the counter, SET the lock to it with PX ttl_ms). Then the waiting loop.
        raise NotImplementedError("FencingLock.acquire")

    def release(self, token: int) -> None:
        """Free the lock if `token` holds it; else raise LockNotHeld and leave the lock as it is."""
        # TODO: compare and delete in one step (Lua), never GET then DEL from the client.
        raise NotImplementedError("FencingLock.release")

    def extend(self, token: int, ttl_ms: int | None = None) -> None:
        """Make the lock expire `ttl_ms` (default: the lock's ttl_ms) from now, if `token` holds it."""
        # TODO: ttl_ms below 1: ValueError. Compare and PEXPIRE in one step; else LockNotHeld.
        raise NotImplementedError("FencingLock.extend")


class FencedStore:
    """A key-value store in Redis that accepts a write only with a token >= the highest it accepted.

    The data is the hash `store:{name}`; the highest accepted token is the key `store:{name}:fence`.

    >>> store = FencedStore(redis.Redis(), "invoices")
    >>> store.write("inv-1", "paid", token)
    >>> store.read("inv-1")
    'paid'
    """

    def __init__(self, client: redis.Redis, name: str) -> None:
        # TODO: keep the client and the two key names (and your script).
        raise NotImplementedError("FencedStore.__init__")

    def write(self, key: str, value: str, token: int) -> None:
        """Set `key` to `value` if `token` >= every token accepted so far; else raise StaleToken."""
        # TODO: check the token and write (the value and the new highest token) in one Lua script.
        raise NotImplementedError("FencedStore.write")

    def read(self, key: str) -> str | None:
        """The value last written to `key`, or None."""
        # TODO: HGET.
        raise NotImplementedError("FencedStore.read")
