"""A process pool for CPU-bound work: chunks of items go to worker processes, results come back in order."""

from __future__ import annotations

import multiprocessing
import multiprocessing.connection
from collections.abc import Callable, Iterable, Sequence
from multiprocessing.connection import Connection
from types import TracebackType
from typing import TypeVar

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

    Raises ValueError if `size` is below 1.

    >>> chunked([1, 2, 3, 4, 5], 2)
    [[1, 2], [3, 4], [5]]
    """
    # TODO: consecutive runs of `size` items, in order.
    raise NotImplementedError("chunked")


def _worker_main(conn: Connection) -> None:
    """Runs in the child: take a chunk, apply the function to each item, send the results back.

    A suggested protocol: the pool sends `(tag, fn, chunk)` or None for "stop"; the worker replies
    `(tag, True, results)` or `(tag, False, exception)`.
    """
    # TODO: loop: recv() a task (None or EOFError: return), run it, send the results or the error
    # (any BaseException from fn; and if the reply cannot be pickled, send the pickling error).
    raise NotImplementedError("_worker_main")


class ProcessPool:
    """A fixed set of worker processes that apply a function to chunks of items.

    Build it on CTX.Process and CTX.Pipe (or CTX.Queue); multiprocessing.Pool and
    ProcessPoolExecutor would be using the answer.

    >>> with ProcessPool(2) as pool:
    ...     pool.map(abs, [-1, -2, 3], chunksize=2)
    [1, 2, 3]
    """

    def __init__(self, workers: int) -> None:
        if workers < 1:
            raise ValueError(f"workers must be at least 1, got {workers}")
        # TODO: start `workers` daemonic processes (CTX.Process(target=_worker_main, daemon=True)),
        # each with a way to receive chunks and send results back.
        raise NotImplementedError("ProcessPool.__init__")

    @property
    def pids(self) -> list[int]:
        """The process ids of the workers."""
        # TODO: the pid of each worker process.
        raise NotImplementedError("ProcessPool.pids")

    def map(self, fn: Callable[[T], R], items: Iterable[T], chunksize: int = 1) -> list[R]:
        """Return `[fn(item) for item in items]`, computed in the workers, one chunk per message.

        Raises the first exception a call of `fn` raised (BaseException included), as soon as it
        arrives, and pickling's own error for a function, item or result that cannot be pickled;
        either way the workers live on and the pool stays usable. Raises WorkerCrashed if a worker
        died (busy or idle); the pool is then broken and every later call raises it too.
        ValueError if `chunksize < 1`.
        """
        # TODO: split into chunks, hand a chunk to each idle worker, collect the replies in input
        # order, give the next chunk to whoever replied. Wait without polling, also for a worker
        # to die. Results of an earlier call that raised may still arrive: don't mix them up.
        raise NotImplementedError("ProcessPool.map")

    def close(self) -> None:
        """Stop every worker, wait for it to exit and close the pipes; calling it again does nothing.

        Workers still running a chunk nobody will read (their map() raised) are terminated.
        Afterwards map() raises ValueError.
        """
        # TODO: ask idle workers to stop, terminate busy ones, join() them all.
        raise NotImplementedError("ProcessPool.close")

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

    concurrent.futures.ThreadPoolExecutor is fine here: the point is what you observe.

    >>> thread_map(abs, [-1, -2, 3], workers=2)
    [1, 2, 3]
    """
    # TODO: run the chunks on `workers` threads; results in input order, errors re-raised.
    raise NotImplementedError("thread_map")
