"""asyncio fan-out: many HTTP GETs at once, at most `limit` in flight, each with its own timeout.

Alternative design: a sliding window. At most `limit` tasks exist at once; `asyncio.wait(...,
return_when=FIRST_COMPLETED)` says when one ends, and the next URL starts in its place. The
function cancels its own tasks when it is cancelled. The timeout is `asyncio.wait_for` around
the whole exchange.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import aiohttp

__all__ = ["fetch", "fetch_all"]


async def _exchange(session: aiohttp.ClientSession, url: str) -> str:
    async with session.get(url) as response:
        response.raise_for_status()
        return await response.text()


async def fetch(session: aiohttp.ClientSession, url: str, timeout: float) -> str:
    # wait_for cancels the exchange when the time is up (and, for timeout <= 0, at once)
    return await asyncio.wait_for(_exchange(session, url), timeout)


async def fetch_all(
    session: aiohttp.ClientSession, urls: Sequence[str], *, limit: int, timeout: float
) -> list[str | Exception]:
    if limit < 1:
        raise ValueError(f"limit must be at least 1, got {limit}")
    results: list[str | Exception] = [""] * len(urls)
    running: dict[asyncio.Task[str], int] = {}
    upcoming = iter(enumerate(urls))
    try:
        while True:
            while len(running) < limit:
                nxt = next(upcoming, None)
                if nxt is None:
                    break
                index, url = nxt
                running[asyncio.create_task(fetch(session, url, timeout))] = index
            if not running:
                return results
            done, _ = await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                index = running.pop(task)
                error = task.exception()
                if error is not None and not isinstance(error, Exception):
                    raise error
                results[index] = error if error is not None else task.result()
    finally:
        for task in running:  # cancelled (or failed): nothing of ours keeps running
            task.cancel()
        if running:
            await asyncio.wait(running)
