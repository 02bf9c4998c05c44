"""asyncio fan-out: many HTTP GETs at once, at most `limit` in flight, each with its own timeout.

Alternative design: an `asyncio.Condition` guards a count of requests in flight (a call waits
until the count is below `limit`, and notifies one waiter when it leaves); `asyncio.gather`
starts every call and cancels them all if it is cancelled. The deadline is
`asyncio.timeout_at`, the body is read as bytes and decoded with the response's own charset.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import aiohttp

__all__ = ["fetch", "fetch_all"]


async def fetch(session: aiohttp.ClientSession, url: str, timeout: float) -> str:
    deadline = asyncio.get_running_loop().time() + timeout
    async with asyncio.timeout_at(deadline), session.get(url) as response:
        if response.status >= 400:
            response.raise_for_status()
        body = await response.read()
        return body.decode(response.get_encoding())


async def fetch_all(
    session: aiohttp.ClientSession, urls: Sequence[str], *, limit: int, timeout: float
) -> list[str | Exception]:
    if limit < 1:
        raise ValueError(f"limit must be at least 1, got {limit}")
    room = asyncio.Condition()
    in_flight = 0

    async def one(url: str) -> str | Exception:
        nonlocal in_flight
        async with room:
            await room.wait_for(lambda: in_flight < limit)
            in_flight += 1
        try:
            return await fetch(session, url, timeout)
        except Exception as exc:
            return exc
        finally:
            async with room:
                in_flight -= 1
                room.notify()

    return list(await asyncio.gather(*(one(url) for url in urls)))
