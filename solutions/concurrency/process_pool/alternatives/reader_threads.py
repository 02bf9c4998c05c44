"""A process pool for CPU-bound work: chunks of items go to worker processes, results come back in order."""

from __future__ import annotations

import contextlib
import itertools
import multiprocessing
import queue
import threading
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from multiprocessing.connection import Connection
from types import TracebackType
from typing import Any, TypeVar

T = TypeVar("T")
R = TypeVar("R")

# Workers are started with fork: the child is a copy of this process, so the functions you map
# (and anything the tests set up before creating the pool) already exist in it. With "spawn" or
# "forkserver" the child starts a fresh interpreter and re-imports the function's module by name.
CTX = multiprocessing.get_context("fork")


class WorkerCrashed(RuntimeError):
    """A worker process died (killed, segfault, os._exit) while the pool was waiting for it."""


def chunked(items: Sequence[T], size: int) -> list[list[T]]:
    """Split `items` into consecutive lists of `size` items (the last may be shorter).

    >>> chunked([1, 2, 3, 4, 5], 2)
    [[1, 2], [3, 4], [5]]
    """
    if size < 1:
        raise ValueError(f"chunk size must be at least 1, got {size}")
    # Slicing keeps order and makes each chunk a consecutive run of the input.
    return [list(items[i : i + size]) for i in range(0, len(items), size)]


# Design: one pipe per worker, but no multiprocessing.connection.wait. A daemon reader thread per
# worker blocks on recv() and forwards each reply, or None when the pipe reports EOF (the worker
# died: the parent closed its copy of the child's end), into one queue.Queue that map() blocks on.


def _worker_main(conn: Connection) -> None:
    while True:
        try:
            task = conn.recv()
        except EOFError:
            return
        if task is None:
            return
        tag, fn, chunk = task
        try:
            reply: tuple[Any, bool, Any] = (tag, True, [fn(item) for item in chunk])
        except BaseException as exc:
            reply = (tag, False, exc)
        try:
            conn.send(reply)
        except Exception as exc:
            conn.send((tag, False, exc))


def _read_replies(index: int, conn: Connection, replies: queue.Queue[tuple[int, Any]]) -> None:
    while True:
        try:
            reply = conn.recv()
        except (EOFError, OSError):
            replies.put((index, None))
            return
        replies.put((index, reply))


class ProcessPool:
    """Worker processes on pipes, and a reader thread per pipe feeding one in-process queue."""

    def __init__(self, workers: int) -> None:
        if workers < 1:
            raise ValueError(f"workers must be at least 1, got {workers}")
        self._replies: queue.Queue[tuple[int, Any]] = queue.Queue()
        self._processes = []
        self._conns: list[Connection] = []
        self._busy: list[bool] = []
        self._ids = itertools.count()
        self._closed = False
        self._broken = ""
        for index in range(workers):
            ours, theirs = CTX.Pipe()
            process = CTX.Process(target=_worker_main, args=(theirs,), daemon=True)
            process.start()
            theirs.close()
            self._processes.append(process)
            self._conns.append(ours)
            self._busy.append(False)
            threading.Thread(target=_read_replies, args=(index, ours, self._replies), daemon=True).start()

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in self._processes if p.pid is not None]

    def _crash(self, index: int) -> None:
        process = self._processes[index]
        process.join(1)
        self._broken = f"worker pid {process.pid} died with exit code {process.exitcode}"
        raise WorkerCrashed(self._broken)

    def map(self, fn: Callable[[T], R], items: Iterable[T], chunksize: int = 1) -> list[R]:
        if self._closed:
            raise ValueError("map() on a closed pool")
        if self._broken:
            raise WorkerCrashed(self._broken)
        chunks = list(enumerate(chunked(list(items), chunksize)))
        chunks.reverse()  # pop() from the end hands them out in order
        total = len(chunks)
        call = next(self._ids)
        results: dict[int, list[R]] = {}

        def hand_out(index: int) -> None:
            if not self._busy[index] and chunks:
                number, chunk = chunks.pop()
                try:
                    self._conns[index].send(((call, number), fn, chunk))
                except (BrokenPipeError, ConnectionResetError):
                    self._crash(index)
                self._busy[index] = True

        for index in range(len(self._processes)):
            hand_out(index)
        while len(results) < total:
            index, reply = self._replies.get()
            if reply is None:
                self._crash(index)
            self._busy[index] = False
            (reply_call, number), ok, value = reply
            if reply_call == call:
                if not ok:
                    raise value
                results[number] = value
            hand_out(index)
        return [result for number in range(total) for result in results[number]]

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        for process, conn, busy in zip(self._processes, self._conns, self._busy, strict=True):
            if busy or self._broken:
                process.terminate()
            else:
                with contextlib.suppress(OSError):
                    conn.send(None)
        for process, conn in zip(self._processes, self._conns, strict=True):
            process.join(5)
            if process.is_alive():
                process.kill()
                process.join()
            conn.close()

    def __enter__(self) -> ProcessPool:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def thread_map(fn: Callable[[T], R], items: Iterable[T], workers: int, chunksize: int = 1) -> list[R]:
    """Like ProcessPool.map, but with `workers` threads in this process (to see the GIL at work).

    >>> thread_map(abs, [-1, -2, 3], workers=2)
    [1, 2, 3]
    """
    chunks = chunked(list(items), chunksize)
    # The executor hands each chunk to the next free thread; map() keeps the input order and
    # re-raises the first exception when its result is reached.
    with ThreadPoolExecutor(max_workers=workers) as executor:
        done = executor.map(lambda chunk: [fn(item) for item in chunk], chunks)
        return [result for chunk in done for result in chunk]
