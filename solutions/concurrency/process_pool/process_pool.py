"""A process pool for CPU-bound work: chunks of items go to worker processes, results come back in order."""

from __future__ import annotations

import contextlib
import itertools
import multiprocessing
import multiprocessing.connection
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
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


# A message to a worker: ((call id, chunk index), function, chunk), or None for "stop".
Task = tuple[tuple[int, int], Callable[[Any], Any], list[Any]]


def _worker_main(conn: Connection) -> None:
    """Runs in the child: take a chunk, apply the function to each item, send the results back."""
    while True:
        try:
            task: Task | None = conn.recv()
        except EOFError:  # the pool went away: nothing more will come
            return
        if task is None:
            return
        tag, fn, chunk = task
        try:
            reply: tuple[Any, bool, Any] = (tag, True, [fn(item) for item in chunk])
        except BaseException as exc:  # even SystemExit: it travels back, the worker carries on
            reply = (tag, False, exc)
        try:
            conn.send(reply)
        except Exception as exc:  # the result (or the error) could not be pickled: say so instead
            conn.send((tag, False, exc))


@dataclass
class _Worker:
    process: BaseProcess
    conn: Connection
    # The (call id, chunk index) this worker is running, or None when it is idle. It can belong to
    # an earlier map() that has already raised: the result then arrives late and is dropped.
    busy: tuple[int, int] | None = None


class ProcessPool:
    """A fixed set of worker processes that apply a function to chunks of items.

    >>> with ProcessPool(2) as pool:
    ...     pool.map(abs, [-1, -2, 3], chunksize=2)
    [1, 2, 3]
    """

    def __init__(self, workers: int) -> None:
        if workers < 1:
            raise ValueError(f"workers must be at least 1, got {workers}")
        self._workers: list[_Worker] = []
        self._call_ids = itertools.count()
        self._closed = False
        self._broken: str | None = None
        # One duplex pipe per worker rather than a shared queue: the pool decides who gets the
        # next chunk (whoever just finished), and each reply arrives on a known connection.
        for _ in range(workers):
            parent_end, child_end = CTX.Pipe()
            process = CTX.Process(target=_worker_main, args=(child_end,), daemon=True)
            process.start()
            child_end.close()  # the child holds its own copy; ours would hide the child's death
            self._workers.append(_Worker(process, parent_end))

    @property
    def pids(self) -> list[int]:
        """The process ids of the workers."""
        return [w.process.pid for w in self._workers if w.process.pid is not None]

    def map(self, fn: Callable[[T], R], items: Iterable[T], chunksize: int = 1) -> list[R]:
        """Return `[fn(item) for item in items]`, computed in the workers, one chunk per message.

        Raises the first exception a call of `fn` raised (BaseException included), as soon as it
        arrives, and pickling's own error for a function, item or result that cannot be pickled;
        either way the workers live on and the pool stays usable. Raises WorkerCrashed if a worker
        died (busy or idle); the pool is then broken and every later call raises it too.
        ValueError if `chunksize < 1`.
        """
        if self._closed:
            raise ValueError("map() on a closed pool")
        if self._broken:
            raise WorkerCrashed(self._broken)
        chunks = chunked(list(items), chunksize)
        # A fresh id per call: results of chunks from an earlier call that raised early are still
        # on their way, and must not be mistaken for this call's chunks with the same index.
        call = next(self._call_ids)
        results: list[list[R] | None] = [None] * len(chunks)
        pending = deque(enumerate(chunks))
        remaining = len(chunks)
        for worker in self._workers:
            self._feed(worker, call, fn, pending)
        while remaining:
            # Block (no polling) until a worker replies or a worker process ends: a process's
            # sentinel becomes ready when it exits, so a crash can't leave us waiting forever.
            busy: list[Any] = [w.conn for w in self._workers if w.busy is not None]
            sentinels = [w.process.sentinel for w in self._workers]
            ready = multiprocessing.connection.wait(busy + sentinels)
            for worker in self._workers:
                if worker.conn in ready:
                    try:
                        tag, ok, value = worker.conn.recv()
                    except EOFError:
                        self._crashed(worker)
                    worker.busy = None
                    if tag[0] == call:
                        if not ok:
                            raise value  # fail fast; the other chunks' results will be dropped
                        results[tag[1]] = value
                        remaining -= 1
                    self._feed(worker, call, fn, pending)
                elif worker.process.sentinel in ready:
                    self._crashed(worker)
        return [result for chunk in results for result in chunk or ()]

    def _feed(self, worker: _Worker, call: int, fn: Callable[..., Any], pending: deque[tuple[int, list[Any]]]) -> None:
        if worker.busy is None and pending:
            index, chunk = pending.popleft()
            # Pickling happens before anything is written: an unpicklable function or item raises
            # here, in the caller, and leaves the pipe clean and the pool usable. A worker that
            # died while idle (OOM killer) can't be written to: the wait in map() reports it.
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                worker.conn.send(((call, index), fn, chunk))
            worker.busy = (call, index)

    def _crashed(self, worker: _Worker) -> None:
        worker.process.join(5)  # its pipe can report EOF a moment before the process has exited
        self._broken = (
            f"worker pid {worker.process.pid} died with exit code {worker.process.exitcode}; the pool is broken"
        )
        raise WorkerCrashed(self._broken)

    def close(self) -> None:
        """Stop every worker, wait for it to exit and close the pipes; calling it again does nothing."""
        if self._closed:
            return
        self._closed = True
        for worker in self._workers:
            if worker.busy is None and worker.process.is_alive():
                with contextlib.suppress(OSError):  # a pipe already broken needs no goodbye
                    worker.conn.send(None)  # idle: ask it to leave
            else:
                # Still running a chunk nobody will read (its map() raised): don't wait for it.
                # SIGKILL rather than SIGTERM: the work might ignore or handle SIGTERM.
                worker.process.kill()
        for worker in self._workers:
            # join() also reaps the child; without it an exited worker stays a zombie.
            worker.process.join()
            worker.conn.close()

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
