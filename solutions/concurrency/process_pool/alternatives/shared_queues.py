"""A process pool for CPU-bound work: chunks of items go to worker processes, results come back in order."""

from __future__ import annotations

import itertools
import multiprocessing
import multiprocessing.connection
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
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


# Design: one task queue shared by all workers and one result queue, both CTX.SimpleQueue. All of a
# call's chunks are queued at once; whichever worker is free takes the next. The pool does not know
# who runs what, only how many chunks are still out (of any call), and waits on the result queue's
# reader plus every worker's sentinel.


def _worker_main(tasks: Any, results: Any) -> None:
    while True:
        task = tasks.get()
        if task is None:
            return
        tag, fn, chunk = task
        try:
            reply: tuple[Any, bool, Any] = (tag, True, [fn(item) for item in chunk])
        except BaseException as exc:
            reply = (tag, False, exc)
        try:
            results.put(reply)
        except Exception as exc:  # SimpleQueue pickles before it writes: nothing half-sent
            results.put((tag, False, exc))


class ProcessPool:
    """Workers pull chunks from one shared queue and push replies onto another."""

    def __init__(self, workers: int) -> None:
        if workers < 1:
            raise ValueError(f"workers must be at least 1, got {workers}")
        self._tasks = CTX.SimpleQueue()
        self._results = CTX.SimpleQueue()
        self._out = 0  # chunks queued whose reply has not been read yet, whatever call they belong to
        self._ids = itertools.count(1)
        self._closed = False
        self._broken = ""
        self._processes = [
            CTX.Process(target=_worker_main, args=(self._tasks, self._results), daemon=True) for _ in range(workers)
        ]
        for process in self._processes:
            process.start()

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in self._processes if p.pid is not None]

    def map(self, fn: Callable[[T], R], items: Iterable[T], chunksize: int = 1) -> list[R]:
        if self._closed:
            raise ValueError("map() on a closed pool")
        if self._broken:
            raise WorkerCrashed(self._broken)
        chunks = chunked(list(items), chunksize)
        call = next(self._ids)
        for index, chunk in enumerate(chunks):
            self._tasks.put(((call, index), fn, chunk))  # an unpicklable one raises here
            self._out += 1
        results: dict[int, list[R]] = {}
        while len(results) < len(chunks):
            sentinels = [p.sentinel for p in self._processes]
            ready = multiprocessing.connection.wait([self._results._reader, *sentinels])  # type: ignore[attr-defined]
            # Deaths first: a dead worker's chunk never comes back, and the live ones could
            # otherwise finish everything and hide that the pool is broken.
            for process in self._processes:
                if process.sentinel in ready:
                    process.join()
                    self._broken = f"worker pid {process.pid} died with exit code {process.exitcode}"
                    raise WorkerCrashed(self._broken)
            (reply_call, index), ok, value = self._results.get()
            self._out -= 1
            if reply_call != call:
                continue  # a late reply of an earlier call that raised
            if not ok:
                raise value
            results[index] = value
        return [result for index in range(len(chunks)) for result in results[index]]

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._out or self._broken:
            # Someone may still run an abandoned chunk, or hold a queue lock of a dead peer.
            for process in self._processes:
                process.terminate()
        else:
            for _ in self._processes:
                self._tasks.put(None)
        for process in self._processes:
            process.join()
        self._tasks.close()
        self._results.close()

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
