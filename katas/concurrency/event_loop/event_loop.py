"""An event loop from scratch: callbacks, timers, futures, coroutine tasks, socket readiness, and an HTTP GET."""

from __future__ import annotations

import errno
import heapq
import itertools
import os
import selectors
import socket
import time
from collections import deque
from collections.abc import Callable, Coroutine, Generator
from dataclasses import dataclass, field
from typing import Any


class InvalidStateError(Exception):
    """The future is not in the state this call needs (result() too early, set_result() twice)."""


class Handle:
    """A scheduled callback; cancel() keeps it from running if it hasn't run yet."""

    def __init__(self, callback: Callable[..., Any], args: tuple[Any, ...]) -> None:
        self.callback = callback
        self.args = args
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True

    def run(self) -> None:
        self.callback(*self.args)


class Future:
    """A result that is not there yet. Coroutines `await` it; callbacks hear when it is done.

    >>> loop = EventLoop()
    >>> fut = loop.create_future()
    >>> _ = loop.call_soon(fut.set_result, 42)
    >>> loop.run_until_complete(fut)
    42
    """

    def __init__(self, loop: EventLoop) -> None:
        self.loop = loop
        # TODO: pending/done state, the result or the exception, the done callbacks.

    def done(self) -> bool:
        # TODO
        raise NotImplementedError("Future.done")

    def result(self) -> Any:
        """The value, or raise the exception; InvalidStateError while pending."""
        # TODO
        raise NotImplementedError("Future.result")

    def exception(self) -> BaseException | None:
        """The exception (None if it has a value); InvalidStateError while pending."""
        # TODO
        raise NotImplementedError("Future.exception")

    def set_result(self, value: Any) -> None:
        """Complete the future; InvalidStateError if it is already done."""
        # TODO: store it, then schedule every done callback with loop.call_soon(callback, self).
        raise NotImplementedError("Future.set_result")

    def set_exception(self, exc: BaseException) -> None:
        """Complete the future with an exception; InvalidStateError if it is already done."""
        # TODO: like set_result.
        raise NotImplementedError("Future.set_exception")

    def add_done_callback(self, callback: Callable[[Future], Any]) -> None:
        """Call `callback(future)` soon after the future is done (soon, if it already is)."""
        # TODO: never call it right here; always through loop.call_soon.
        raise NotImplementedError("Future.add_done_callback")

    def __await__(self) -> Generator[Future, None, Any]:
        # TODO: `await fut` runs this generator. If the future is pending, yield it (the Task
        # running the coroutine receives it and arranges to be woken), then return the result.
        raise NotImplementedError("Future.__await__")


class Task(Future):
    """Runs a coroutine step by step; its own result is the coroutine's return value.

    An Exception in the coroutine fails the task (a BaseException such as KeyboardInterrupt stops
    the loop instead). A coroutine that yields anything but a Future fails the task with TypeError
    and is closed, so its finally blocks run.
    """

    def __init__(self, coro: Coroutine[Any, Any, Any], loop: EventLoop) -> None:
        super().__init__(loop)
        self.coro = coro
        # TODO: schedule the first step.

    def _step(self) -> None:
        # TODO: coro.send(None) runs the coroutine to its next suspension: it raises StopIteration
        # (the return value is the task's result), raises an Exception (the task's exception), or
        # returns the Future it awaits: wake up (another _step) when that future is done.
        raise NotImplementedError("Task._step")


class EventLoop:
    """One thread, one loop: ready callbacks, timers and socket readiness, in iterations.

    Each iteration: select() (timeout 0 if callbacks are ready, else until the next timer that
    is not cancelled, else None), queue the handles of ready sockets and due timers, then run the
    callbacks that were ready at that point. Callbacks they schedule run in the next iteration.
    An exception escaping a callback comes out of run_until_complete().
    """

    def __init__(
        self,
        clock: Callable[[], float] = time.monotonic,
        selector: selectors.BaseSelector | None = None,
    ) -> None:
        self.clock = clock
        self.selector = selector if selector is not None else selectors.DefaultSelector()
        # TODO: a queue of ready handles, and the timers ordered by deadline (heapq).

    def time(self) -> float:
        """The loop's clock (call_later deadlines are measured on it)."""
        # TODO
        raise NotImplementedError("EventLoop.time")

    def call_soon(self, callback: Callable[..., Any], *args: Any) -> Handle:
        """Run `callback(*args)` in the next iteration (first in, first out)."""
        # TODO
        raise NotImplementedError("EventLoop.call_soon")

    def call_later(self, delay: float, callback: Callable[..., Any], *args: Any) -> Handle:
        """Run `callback(*args)` once `delay` seconds have passed on the loop's clock.

        Timers due at the same moment run in the order they were scheduled (a counter after the
        deadline in the heap entry); a delay of 0 or less is due at once, and runs after the
        callbacks call_soon has already queued.
        """
        # TODO
        raise NotImplementedError("EventLoop.call_later")

    def create_future(self) -> Future:
        # TODO
        raise NotImplementedError("EventLoop.create_future")

    def create_task(self, coro: Coroutine[Any, Any, Any]) -> Task:
        """Wrap a coroutine in a Task; it starts running in the next iteration."""
        # TODO
        raise NotImplementedError("EventLoop.create_task")

    def add_reader(self, sock: socket.socket, callback: Callable[..., Any], *args: Any) -> None:
        """Call `callback(*args)` in every iteration while `sock` is readable.

        A second add_reader() on the same socket replaces the first callback (cancel its handle).
        """
        # TODO: register (or modify) the socket in the selector; remember the handle per event.
        raise NotImplementedError("EventLoop.add_reader")

    def add_writer(self, sock: socket.socket, callback: Callable[..., Any], *args: Any) -> None:
        """Call `callback(*args)` in every iteration while `sock` is writable."""
        # TODO
        raise NotImplementedError("EventLoop.add_writer")

    def remove_reader(self, sock: socket.socket) -> bool:
        """Stop watching `sock` for reading; True if it was watched."""
        # TODO: also cancel the handle: it may already be queued in this iteration.
        raise NotImplementedError("EventLoop.remove_reader")

    def remove_writer(self, sock: socket.socket) -> bool:
        """Stop watching `sock` for writing; True if it was watched."""
        # TODO
        raise NotImplementedError("EventLoop.remove_writer")

    def run_until_complete(self, awaitable: Future | Coroutine[Any, Any, Any]) -> Any:
        """Run iterations until `awaitable` (a future, or a coroutine run as a task) is done.

        Return its result or raise its exception. An exception from a plain callback, and a
        KeyboardInterrupt/SystemExit from a task, stop the loop: they come out of here.
        """
        # TODO: one iteration at a time (see the class docstring), then return its result.
        raise NotImplementedError("EventLoop.run_until_complete")

    def close(self) -> None:
        self.selector.close()


# --- coroutines on top of the loop -------------------------------------------------------------------


async def sleep(loop: EventLoop, delay: float, result: Any = None) -> Any:
    """Suspend the calling coroutine for `delay` seconds of the loop's clock, then return `result`."""
    # TODO: a future, completed by a timer, awaited.
    raise NotImplementedError("sleep")


async def sock_recv(loop: EventLoop, sock: socket.socket, n: int) -> bytes:
    """Receive up to `n` bytes from a non-blocking socket; b"" at EOF."""
    # TODO: try recv(); on BlockingIOError await a future that a reader callback completes, and
    # remove the reader afterwards.
    raise NotImplementedError("sock_recv")


async def sock_sendall(loop: EventLoop, sock: socket.socket, data: bytes) -> None:
    """Send all of `data` on a non-blocking socket, waiting whenever its buffer is full."""
    # TODO: send() may take only part of the data; wait until writable before sending the rest.
    raise NotImplementedError("sock_sendall")


async def sock_connect(loop: EventLoop, sock: socket.socket, address: tuple[str, int]) -> None:
    """Connect a non-blocking socket; raise the OSError (e.g. ConnectionRefusedError) on failure."""
    # TODO: connect_ex() returns EINPROGRESS; wait until writable, then read SO_ERROR.
    raise NotImplementedError("sock_connect")


@dataclass
class Response:
    status: int
    reason: str
    headers: dict[str, str] = field(default_factory=dict)  # names in lower case
    body: bytes = b""


async def http_get(loop: EventLoop, host: str, port: int, path: str) -> Response:
    """GET `path` from an HTTP server with HTTP/1.1 and `Connection: close`; read until EOF.

    >>> loop = EventLoop()
    >>> loop.run_until_complete(http_get(loop, "127.0.0.1", 8000, "/"))  # doctest: +SKIP
    Response(status=200, reason='OK', headers={'content-type': 'text/html', ...}, body=b'...')
    """
    # TODO: a non-blocking socket; sock_connect, sock_sendall the request (with a Host header),
    # sock_recv until b""; split the head from the body at the first blank line; parse the
    # status line and the headers.
    raise NotImplementedError("http_get")
