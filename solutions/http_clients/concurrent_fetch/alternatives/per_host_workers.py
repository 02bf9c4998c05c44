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
    # Per host, `per_host` workers drain that host's queue: the host bound holds by construction.
    # A worker takes the global slot only once it has a URL in hand, so no global slot waits on a
    # busy host.
    overall = asyncio.Semaphore(limit)
    queues: dict[str, asyncio.Queue[tuple[int, str]]] = {}
    for index, url in enumerate(urls):
        queues.setdefault(host_of(url), asyncio.Queue()).put_nowait((index, url))
    results: list[bytes | FetchError | None] = [None] * len(urls)

    async def worker(session: aiohttp.ClientSession, queue: asyncio.Queue[tuple[int, str]]) -> None:
        while not queue.empty():
            index, url = queue.get_nowait()
            async with overall:
                try:
                    async with session.get(url) as response:
                        body = await response.read()
                        status = response.status
                    outcome: bytes | FetchError = body if status < 400 else FetchError(url, status)
                except (TimeoutError, aiohttp.ClientError) as exc:
                    outcome = FetchError(url, None, repr(exc))
            if fail_fast and isinstance(outcome, FetchError):
                raise outcome
            results[index] = outcome

    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout)) as session:
        try:
            async with asyncio.TaskGroup() as group:
                for queue in queues.values():
                    for _ in range(min(per_host, queue.qsize())):
                        group.create_task(worker(session, queue))
        except* FetchError as failures:
            raise failures.exceptions[0] from None
    return [r for r in results if r is not None]
