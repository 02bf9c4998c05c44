"""Fetching many URLs at once with aiohttp: bounded per host and overall, in order, fail-fast on request."""

from __future__ import annotations

import asyncio
from urllib.parse import urlsplit

import aiohttp


class FetchError(Exception):
    """A URL that could not be fetched: an HTTP status >= 400, or a connection error (status None)."""

    def __init__(self, url: str, status: int | None, reason: str = "") -> None:
        super().__init__(f"{url}: {status if status is not None else reason or 'failed'}")
        self.url = url
        self.status = status


def host_of(url: str) -> str:
    """The per-host key: host and port, e.g. '127.0.0.1:8080'."""
    return urlsplit(url).netloc


async def fetch_all(
    urls: list[str],
    *,
    limit: int,
    per_host: int,
    fail_fast: bool = False,
    timeout: float = 10.0,
) -> list[bytes | FetchError]:
    """GET every URL concurrently in one aiohttp.ClientSession; results in the order of `urls`.

    - At most `limit` requests in flight in all, and at most `per_host` to any one host_of(url).
      A request waiting for its host's slot must not hold one of the `limit` slots meanwhile.
    - Each result is the body (bytes) for a status < 400, else FetchError(url, status); an
      aiohttp.ClientError or timeout (`timeout` seconds per request, counted from when it is
      sent, not while it waits for a slot) becomes FetchError(url, None).
    - fail_fast=True: the first FetchError cancels every other request (in flight: the
      connection is closed; not started: never sent) and is raised itself (not an ExceptionGroup).
    - When fetch_all returns, raises or is cancelled, none of its tasks is left running.
    - limit or per_host below 1 raises ValueError at once (a semaphore with no slot would make
      every request wait forever).

    >>> asyncio.run(fetch_all(["http://127.0.0.1:8080/a"], limit=4, per_host=2))
    [b'...']
    """
    if limit < 1 or per_host < 1:
        raise ValueError(f"limit and per_host must be at least 1, got {limit} and {per_host}")
    # One condition and a predicate instead of two semaphores: a request starts only when both
    # counts have room, and waiting holds nothing, so no slot ever sits idle.
    room = asyncio.Condition()
    busy: dict[str, int] = {}
    total = 0
    results: list[bytes | FetchError | None] = [None] * len(urls)

    async def fetch_one(session: aiohttp.ClientSession, index: int, url: str) -> None:
        nonlocal total
        host = host_of(url)
        async with room:
            await room.wait_for(lambda: total < limit and busy.get(host, 0) < per_host)
            total += 1
            busy[host] = busy.get(host, 0) + 1
        try:
            try:
                async with session.get(url) as response:
                    body = await response.read()
                    outcome: bytes | FetchError = (
                        FetchError(url, response.status) if response.status >= 400 else body
                    )
            except (TimeoutError, aiohttp.ClientError) as exc:
                outcome = FetchError(url, None, repr(exc))
        finally:
            async with room:
                total -= 1
                busy[host] -= 1
                room.notify_all()
        if fail_fast and isinstance(outcome, FetchError):
            raise outcome
        results[index] = outcome

    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout)) as session:
        try:
            async with asyncio.TaskGroup() as group:
                for index, url in enumerate(urls):
                    group.create_task(fetch_one(session, index, url))
        except* FetchError as failures:
            raise failures.exceptions[0] from None
    return [r for r in results if r is not None]
