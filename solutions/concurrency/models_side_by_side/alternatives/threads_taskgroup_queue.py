"""One I/O-bound job three ways (threads, asyncio, processes), each with every request in flight at once."""

from __future__ import annotations

import asyncio
import multiprocessing
import multiprocessing.queues
import threading
import urllib.request
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
    """Bare threads, one per URL, each writing its body (or its exception) at its own index."""
    bodies: list[bytes] = [b""] * len(urls)
    errors: list[BaseException | None] = [None] * len(urls)

    def work(i: int, url: str) -> None:
        try:
            bodies[i] = get(url)
        except BaseException as exc:  # handed to the caller below
            errors[i] = exc

    threads = [threading.Thread(target=work, args=(i, url)) for i, url in enumerate(urls)]
    for thread in threads:
        thread.start()
    for thread in threads:  # every one, even after a failure: a thread cannot be killed
        thread.join()
    for error in errors:
        if error is not None:
            raise error
    return bodies


async def fetch_with_asyncio(urls: list[str]) -> list[bytes]:
    """A TaskGroup: every task starts at once; a failure cancels the rest and is unwrapped."""
    try:
        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(aget(url)) for url in urls]
    except BaseExceptionGroup as failed:
        raise failed.exceptions[0] from None
    return [task.result() for task in tasks]


def fetch_with_processes(urls: list[str]) -> list[bytes]:
    """One CTX.Process per URL, all reporting (index, ok, payload) on one shared Queue."""
    queue: multiprocessing.queues.Queue[tuple[int, bool, bytes | str]] = CTX.Queue()
    children = [CTX.Process(target=_report, args=(i, url, queue)) for i, url in enumerate(urls)]
    for child in children:
        child.start()
    try:
        # Every child reports exactly once, failure or not: drain the queue BEFORE joining (a
        # child's feeder thread cannot flush a 1 MiB body, nor the child exit, until we read).
        reports = {i: (ok, payload) for i, ok, payload in (queue.get() for _ in urls)}
    finally:
        for child in children:
            child.join()
    for i in range(len(urls)):
        ok, payload = reports[i]
        if not ok:
            raise OSError(f"GET {urls[i]}: {payload}")
    return [reports[i][1] for i in range(len(urls))]  # type: ignore[misc]


def _report(i: int, url: str, queue: multiprocessing.queues.Queue) -> None:  # type: ignore[type-arg]
    try:
        queue.put((i, True, get(url)))
    except Exception as exc:
        queue.put((i, False, repr(exc)))
