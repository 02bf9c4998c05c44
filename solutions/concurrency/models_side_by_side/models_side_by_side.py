"""One I/O-bound job three ways (threads, asyncio, processes), each with every request in flight at once."""

from __future__ import annotations

import asyncio
import multiprocessing
import multiprocessing.connection
import multiprocessing.process
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
    # One worker per URL: each thread spends its life blocked in recv(), so the number of
    # threads *is* the number of requests in flight. The pool joins its threads on leaving the
    # `with`, and map() keeps the input order and re-raises a worker's exception here.
    if not urls:
        return []
    with ThreadPoolExecutor(max_workers=len(urls), thread_name_prefix="fetch") as pool:
        return list(pool.map(get, urls))


async def fetch_with_asyncio(urls: list[str]) -> list[bytes]:
    """Fetch every URL with `aget`, all in flight at once on this one thread (no thread, no process).

    Returns the bodies in `urls` order; if a request fails, raises the exception `aget` raised.

    >>> asyncio.run(fetch_with_asyncio([]))
    []
    """
    # gather() schedules every coroutine before awaiting any, so all connect at once; the loop
    # switches between them at each await. No thread is created: `get` (blocking) here would
    # freeze the loop, and to_thread/run_in_executor would be threads with extra steps.
    return list(await asyncio.gather(*(aget(url) for url in urls)))


def fetch_with_processes(urls: list[str]) -> list[bytes]:
    """Fetch every URL with `get`, one forked child process per URL, all in flight at once.

    Returns the bodies in `urls` order (1 MiB bodies too); if a request fails, raises an exception
    (any type). When it returns or raises, every child is gone: joined, not a zombie.

    >>> fetch_with_processes([])
    []
    """
    # One child per URL, each with its own one-way pipe back to us: len(urls) children in
    # flight (a Pool() would be sized for the CPUs). Close our copy of each write end at once,
    # so a child that dies without sending shows up as EOF (and later children do not inherit it).
    children: list[multiprocessing.process.BaseProcess] = []
    receivers: list[multiprocessing.connection.Connection] = []
    try:
        for url in urls:
            receiver, sender = CTX.Pipe()
            child = CTX.Process(target=_fetch_in_child, args=(url, sender))
            child.start()
            sender.close()
            children.append(child)
            receivers.append(receiver)
        # Read every pipe BEFORE joining: a child whose body is bigger than the pipe's 64 KiB
        # buffer cannot finish sending, so cannot exit, until we read.
        bodies = []
        for i, receiver in enumerate(receivers):
            try:
                bodies.append(receiver.recv())
            except EOFError:
                raise OSError(f"GET {urls[i]}: the child sent nothing (it failed)") from None
        return bodies
    except Exception:
        # A failure: the other children may still be sending into pipes nobody will read (and
        # each child forked later holds a copy of the earlier read ends, so closing ours would
        # not even give them EPIPE). Stop them rather than wait for them: SIGKILL, which no
        # inherited signal handler can turn into a clean-up that blocks.
        for child in children:
            child.kill()
        raise
    finally:
        for child in children:
            child.join()  # reap every child: no zombie outlives the call


def _fetch_in_child(url: str, sender: multiprocessing.connection.Connection) -> None:
    # Runs in the child. A failed request raises here: the child exits with code 1, sending
    # nothing (an HTTPError would not even pickle), and the parent sees EOF on its pipe. The
    # child's exit closes its end.
    sender.send(get(url))
