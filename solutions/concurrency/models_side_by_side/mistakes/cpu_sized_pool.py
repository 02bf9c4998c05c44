"""One I/O-bound job three ways (threads, asyncio, processes), each with every request in flight at once."""

from __future__ import annotations

import asyncio
import multiprocessing
import urllib.request
from concurrent.futures import ThreadPoolExecutor
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
    status = head.split(b" ", 2)[1] if head.count(b" ") >= 1 else b"?"
    if status != b"200":
        raise OSError(f"GET {url}: HTTP status {status.decode(errors='replace')}")
    return body


def fetch_with_threads(urls: list[str]) -> list[bytes]:
    """Fetch every URL with `get`, one thread per URL, all at once; bodies in `urls` order.

    >>> fetch_with_threads([])
    []
    """
    # One worker per URL: each thread spends its life blocked in recv(), so the number of
    # threads *is* the number of requests in flight. The pool joins its threads on leaving the
    # `with`, and map() keeps the input order and re-raises a worker's exception here.
    if not urls:
        return []
    with ThreadPoolExecutor(max_workers=len(urls), thread_name_prefix="fetch") as pool:
        return list(pool.map(get, urls))


async def fetch_with_asyncio(urls: list[str]) -> list[bytes]:
    """Fetch every URL with `aget`, all at once on this one thread; bodies in `urls` order."""
    # gather() schedules every coroutine before awaiting any, so all connect at once; the loop
    # switches between them at each await. No thread is created: `get` (blocking) here would
    # freeze the loop, and to_thread/run_in_executor would be threads with extra steps.
    return list(await asyncio.gather(*(aget(url) for url in urls)))


def fetch_with_processes(urls: list[str]) -> list[bytes]:
    """Fetch every URL with `get`, one child process per URL, all at once; bodies in order.

    Every child is gone (joined, not a zombie) when this returns.
    """
    if not urls:
        return []
    # One worker per URL (a CPU-sized Pool() would let only cpu_count() requests fly). The `with`
    # terminates and joins the workers, so no child outlives the call; map() pickles each body
    # back to the parent in input order.
    with CTX.Pool(processes=2) as pool:  # "one worker per core", as for CPU-bound work
        return pool.map(get, urls, chunksize=1)
