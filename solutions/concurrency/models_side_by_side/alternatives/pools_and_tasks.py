"""One I/O-bound job three ways (threads, asyncio, processes), each with every request in flight at once."""

from __future__ import annotations

import asyncio
import multiprocessing
import urllib.request
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor, as_completed
from urllib.parse import urlsplit

__all__ = ["aget", "fetch_with_asyncio", "fetch_with_processes", "fetch_with_threads", "get"]

# Processes are started with fork: the child is a copy of this process (the functions below and
# the modules already imported come with it), so nothing is re-imported by name in the child.
CTX = multiprocessing.get_context("fork")


def get(url: str, timeout: float = 10.0) -> bytes:
    """GET `url` on a blocking socket and return the body (given: the HTTP is not the point)."""
    with urllib.request.urlopen(url, timeout=timeout) as response:
        body: bytes = response.read()
        return body


async def aget(url: str) -> bytes:
    """GET `url` with asyncio streams (HTTP/1.0) and return the body (given).

    It awaits the connect, the send and every read, so the event loop runs other coroutines
    meanwhile. The host must be an IP address (the loop then needs no resolver thread).
    """
    parts = urlsplit(url)
    reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
    try:
        request = f"GET {parts.path or '/'} HTTP/1.0\r\nHost: {parts.netloc}\r\n\r\n"
        writer.write(request.encode("ascii"))
        await writer.drain()
        raw = await reader.read()  # HTTP/1.0: the server closes after the body
    finally:
        writer.close()
        await writer.wait_closed()
    head, _, body = raw.partition(b"\r\n\r\n")
    status_line = head.partition(b"\r\n")[0]  # "HTTP/1.1 200 OK"; the reason may be missing
    status = status_line.partition(b" ")[2][:3]
    if status != b"200":  # includes no status line at all (the peer hung up)
        raise OSError(f"GET {url}: HTTP status {status!r}")
    return body


def fetch_with_threads(urls: list[str]) -> list[bytes]:
    """A pool of len(urls) workers; futures collected as they complete, placed by index."""
    if not urls:
        return []
    bodies: list[bytes] = [b""] * len(urls)
    with ThreadPoolExecutor(max_workers=len(urls)) as pool:
        index = {pool.submit(get, url): i for i, url in enumerate(urls)}
        for future in as_completed(index):
            bodies[index[future]] = future.result()  # a failure raises; `with` waits for the rest
    return bodies


async def fetch_with_asyncio(urls: list[str]) -> list[bytes]:
    """create_task() schedules every request at once; then await them in URL order."""
    tasks = [asyncio.create_task(aget(url)) for url in urls]
    try:
        return [await task for task in tasks]
    finally:
        for task in tasks:
            task.cancel()  # after a failure, the others are not left running (no-op when done)


def fetch_with_processes(urls: list[str]) -> list[bytes]:
    """A ProcessPoolExecutor of len(urls) forked workers; `with` waits for them to exit."""
    if not urls:
        return []
    with ProcessPoolExecutor(max_workers=len(urls), mp_context=CTX) as pool:
        return list(pool.map(get, urls))
