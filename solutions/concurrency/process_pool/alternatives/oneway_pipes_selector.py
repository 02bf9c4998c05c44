"""A process pool for CPU-bound work: chunks of items go to worker processes, results come back in order."""

from __future__ import annotations

import multiprocessing
import selectors
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


# Design: two one-way pipes per worker (tasks in, replies out) and a selectors.DefaultSelector on
# the reply ends and the process sentinels. Calls are numbered by a plain counter; a worker's
# pending call number says whether its next reply is stale.


def _worker_main(tasks: Connection, replies: Connection) -> None:
    while True:
        try:
            task = tasks.recv()
        except EOFError:
            return
        if task is None:
            return
        tag, fn, chunk = task
        try:
            values = [fn(item) for item in chunk]
        except BaseException as exc:
            reply: tuple[Any, bool, Any] = (tag, False, exc)
        else:
            reply = (tag, True, values)
        try:
            replies.send(reply)
        except Exception as exc:
            replies.send((tag, False, exc))


class ProcessPool:
    """Workers on one-way pipes, watched through a selector."""

    def __init__(self, workers: int) -> None:
        if workers < 1:
            raise ValueError(f"workers must be at least 1, got {workers}")
        self._processes = []
        self._tasks: list[Connection] = []
        self._replies: list[Connection] = []
        self._running: list[Any] = []  # the (call, chunk) each worker runs, or None
        self._call = 0
        self._closed = False
        self._broken = ""
        for _ in range(workers):
            task_r, task_w = CTX.Pipe(duplex=False)
            reply_r, reply_w = CTX.Pipe(duplex=False)
            process = CTX.Process(target=_worker_main, args=(task_r, reply_w), daemon=True)
            process.start()
            task_r.close()
            reply_w.close()
            self._processes.append(process)
            self._tasks.append(task_w)
            self._replies.append(reply_r)
            self._running.append(None)

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
        todo = chunked(list(items), chunksize)
        self._call += 1
        call = self._call
        results: list[Any] = [None] * len(todo)
        handed = 0
        left = len(todo)

        def give(index: int) -> None:
            nonlocal handed
            if self._running[index] is None and handed < len(todo):
                try:
                    self._tasks[index].send(((call, handed), fn, todo[handed]))
                except (BrokenPipeError, ConnectionResetError):
                    self._crash(index)
                self._running[index] = (call, handed)
                handed += 1

        with selectors.DefaultSelector() as selector:
            for index, (process, reply) in enumerate(zip(self._processes, self._replies, strict=True)):
                selector.register(process.sentinel, selectors.EVENT_READ, ("died", index))
                selector.register(reply, selectors.EVENT_READ, ("reply", index))
                give(index)
            while left:
                events = selector.select()
                # Replies before deaths, as long as they can be read.
                for key, _ in sorted(events, key=lambda event: event[0].data[0] != "reply"):
                    what, index = key.data
                    if what == "died":
                        self._crash(index)
                    try:
                        (reply_call, number), ok, value = self._replies[index].recv()
                    except EOFError:
                        self._crash(index)
                    self._running[index] = None
                    if reply_call == call:
                        if not ok:
                            raise value
                        results[number] = value
                        left -= 1
                    give(index)
        return [result for chunk in results for result in chunk]

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        for process, tasks, running in zip(self._processes, self._tasks, self._running, strict=True):
            if running is None and not self._broken:
                try:
                    tasks.send(None)
                except OSError:
                    process.terminate()
            else:
                process.terminate()
        for process in self._processes:
            process.join(5)
            if process.is_alive():
                process.kill()
                process.join()
        for conn in self._tasks + self._replies:
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
