"""One I/O-bound job three ways (threads, asyncio, processes), each with every request in flight at once."""

from __future__ import annotations

import asyncio
import multiprocessing
import urllib.request
from concurrent.futures import ThreadPoolExecutor  # you may want it
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
    """Fetch every URL with `get`, one OS thread per URL, all in flight at once.

    Returns the bodies (bytes, unchanged) in `urls` order, whatever order they complete in; a URL
    listed twice is fetched twice. If a request fails, raises the exception `get` raised for it,
    but only once every thread is done: no thread started here outlives the call.

    >>> fetch_with_threads([])
    []
    """
    # TODO: how many threads do len(urls) blocking requests in flight need? Join them all.
    raise NotImplementedError("fetch_with_threads")


async def fetch_with_asyncio(urls: list[str]) -> list[bytes]:
    """Fetch every URL with `aget`, all in flight at once on this one thread (no thread, no process).

    Returns the bodies in `urls` order; if a request fails, raises the exception `aget` raised.

    >>> asyncio.run(fetch_with_asyncio([]))
    []
    """
    # TODO: start every aget() before awaiting any; create no thread.
    raise NotImplementedError("fetch_with_asyncio")


def fetch_with_processes(urls: list[str]) -> list[bytes]:
    """Fetch every URL with `get`, one forked child process per URL, all in flight at once.

    Returns the bodies in `urls` order (1 MiB bodies too); if a request fails, raises an exception
    (any type). When it returns or raises, every child is gone: joined, not a zombie.

    >>> fetch_with_processes([])
    []
    """
    # TODO: CTX.Process (+ a Pipe each) or CTX.Pool: how many children? Read their results
    # before you join them, and who waits for them to exit, even after a failure?
    raise NotImplementedError("fetch_with_processes")
