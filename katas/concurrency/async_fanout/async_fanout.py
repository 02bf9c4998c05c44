"""asyncio fan-out: many HTTP GETs at once, at most `limit` in flight, each with its own timeout."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import aiohttp

__all__ = ["fetch", "fetch_all"]


async def fetch(session: aiohttp.ClientSession, url: str, timeout: float) -> str:
    """GET `url` and return the body as text (decoded with the charset the response declares).

    Raises aiohttp.ClientResponseError for every status >= 400 (4xx and 5xx), aiohttp.ClientError
    subclasses for connection failures, and TimeoutError if the whole exchange (connect,
    headers, the whole body: one deadline) takes more than `timeout` seconds; a timeout of 0 or
    less has already run out. A timed-out request is cancelled, not left running.

    >>> await fetch(session, "http://127.0.0.1:8080/hello", timeout=5)  # doctest: +SKIP
    'hello'
    """
    # TODO: one deadline for the whole exchange (asyncio.timeout), raise for bad statuses.
    raise NotImplementedError("fetch")


async def fetch_all(
    session: aiohttp.ClientSession, urls: Sequence[str], *, limit: int, timeout: float
) -> list[str | Exception]:
    """fetch() every URL concurrently, with at most `limit` requests in flight at any moment.

    Raises ValueError if limit < 1, before any request.
    Returns one entry per URL, in the order of `urls`: the body, or the Exception its fetch()
    raised (a failure or timeout of one URL does not stop the others). `timeout` applies to
    each request on its own, from the moment it gets a slot: time spent waiting for a slot
    does not count. If the caller cancels fetch_all, every request still running is cancelled,
    no new one starts, and CancelledError propagates to the caller.

    >>> await fetch_all(session, [url_a, url_b], limit=10, timeout=5)  # doctest: +SKIP
    ['body of a', ClientResponseError(...)]
    """
    if limit < 1:
        raise ValueError(f"limit must be at least 1, got {limit}")
    # TODO: an asyncio.Semaphore(limit) around each fetch, the calls started as tasks together
    # (gather or a TaskGroup), each outcome caught per URL, results kept in input order.
    raise NotImplementedError("fetch_all")
