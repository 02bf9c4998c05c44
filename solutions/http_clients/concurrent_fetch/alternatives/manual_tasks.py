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
    overall = asyncio.Semaphore(limit)
    hosts: dict[str, asyncio.Semaphore] = {}

    async def fetch_one(session: aiohttp.ClientSession, url: str) -> bytes | FetchError:
        async with hosts.setdefault(host_of(url), asyncio.Semaphore(per_host)), overall:
            try:
                # The timeout starts here, once both slots are held: a request is timed, not
                # its wait in the queue.
                async with asyncio.timeout(timeout), session.get(url) as response:
                    if response.status >= 400:
                        return FetchError(url, response.status)
                    return await response.read()
            except (TimeoutError, aiohttp.ClientError) as exc:
                return FetchError(url, None, repr(exc))

    async with aiohttp.ClientSession() as session:
        tasks = [asyncio.create_task(fetch_one(session, url)) for url in urls]
        try:
            if fail_fast:
                pending: set[asyncio.Task[bytes | FetchError]] = set(tasks)
                while pending:
                    done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                    failed = [t for t in tasks if t in done and isinstance(t.result(), FetchError)]
                    if failed:
                        error = failed[0].result()
                        assert isinstance(error, FetchError)
                        raise error
            elif tasks:  # asyncio.wait refuses an empty set
                await asyncio.wait(tasks)
            return [t.result() for t in tasks]
        finally:
            # Whatever ends this call (a result, an error, a cancellation from outside): cancel
            # what is left and wait until it has really finished.
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
