"""asyncio fan-out: many HTTP GETs at once, at most `limit` in flight, each with its own timeout.

Alternative design: no semaphore. `limit` worker tasks take (index, url) pairs from an
`asyncio.Queue` and write each outcome into its slot of a list made up front; the timeout is
aiohttp's own `ClientTimeout(total=...)`, which covers connect, headers and body.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import aiohttp

__all__ = ["fetch", "fetch_all"]


async def fetch(session: aiohttp.ClientSession, url: str, timeout: float) -> str:
    if timeout <= 0:
        # ClientTimeout(total=0) means "no timeout" to aiohttp; here it means no time at all
        raise TimeoutError(f"timeout={timeout}: no time left for {url}")
    async with session.get(url, timeout=aiohttp.ClientTimeout(total=timeout)) as response:
        response.raise_for_status()
        return await response.text()  # inside the block: the total timeout covers the body


async def fetch_all(
    session: aiohttp.ClientSession, urls: Sequence[str], *, limit: int, timeout: float
) -> list[str | Exception]:
    if limit < 1:
        raise ValueError(f"limit must be at least 1, got {limit}")
    work: asyncio.Queue[tuple[int, str]] = asyncio.Queue()
    for job in enumerate(urls):
        work.put_nowait(job)
    results: list[str | Exception] = [""] * len(urls)

    async def worker() -> None:
        while not work.empty():
            index, url = work.get_nowait()
            try:
                results[index] = await fetch(session, url, timeout)
            except Exception as exc:
                results[index] = exc

    # cancelled, the group cancels every worker (and so its request) and waits for them
    async with asyncio.TaskGroup() as group:
        for _ in range(min(limit, len(urls))):
            group.create_task(worker())
    return results
