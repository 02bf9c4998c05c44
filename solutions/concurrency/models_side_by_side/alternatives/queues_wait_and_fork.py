"""One I/O-bound job three ways (threads, asyncio, processes), each with every request in flight at once."""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import queue
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
    """Bare threads that hand (index, outcome) to a queue.Queue; the caller collects N of them."""
    done: queue.Queue[tuple[int, bytes | Exception]] = queue.Queue()

    def work(i: int, url: str) -> None:
        try:
            done.put((i, get(url)))
        except Exception as exc:
            done.put((i, exc))

    threads = [threading.Thread(target=work, args=(i, url)) for i, url in enumerate(urls)]
    for thread in threads:
        thread.start()
    outcomes = dict(done.get() for _ in urls)  # every thread reports once, so all are done
    for thread in threads:
        thread.join()
    ordered = [outcomes[i] for i in range(len(urls))]
    for outcome in ordered:
        if isinstance(outcome, Exception):
            raise outcome
    return ordered  # type: ignore[return-value]


async def fetch_with_asyncio(urls: list[str]) -> list[bytes]:
    """asyncio.wait for every task, then read the results in URL order."""
    if not urls:
        return []
    tasks = [asyncio.ensure_future(aget(url)) for url in urls]
    await asyncio.wait(tasks)  # ALL_COMPLETED: failures included
    return [task.result() for task in tasks]  # raises the first failure, in URL order


def fetch_with_processes(urls: list[str]) -> list[bytes]:
    """os.fork and os.pipe by hand: the child writes the body and _exit()s; waitpid reaps it."""
    children: list[tuple[int, int]] = []  # (pid, read end)
    for url in urls:
        read_end, write_end = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: fetch, write, and leave without running any parent code
            status = 1
            try:
                os.close(read_end)
                body = get(url)
                view = memoryview(body)
                while view:
                    view = view[os.write(write_end, view) :]
                status = 0
            finally:
                os._exit(status)
        os.close(write_end)  # ours: EOF comes when the child's copy closes (it exits)
        children.append((pid, read_end))
    bodies: list[bytes] = []
    failed: list[str] = []
    for url, (pid, read_end) in zip(urls, children, strict=True):
        with os.fdopen(read_end, "rb") as pipe:
            body = pipe.read()  # read to EOF BEFORE waiting: a big body fills the pipe
        _, status = os.waitpid(pid, 0)  # reap: no zombie
        if os.waitstatus_to_exitcode(status) != 0:
            failed.append(url)
        bodies.append(body)
    if failed:
        raise OSError(f"GET {failed[0]}: the child failed")
    return bodies
