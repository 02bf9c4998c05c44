"""An event loop from scratch: callbacks, timers, futures, coroutine tasks, socket readiness, and an HTTP GET."""

from __future__ import annotations

import bisect
import errno
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
        self._done = False
        self._result: Any = None
        self._exception: BaseException | None = None
        self._callbacks: list[Callable[[Future], Any]] = []

    def done(self) -> bool:
        return self._done

    def result(self) -> Any:
        """The value, or raise the exception; InvalidStateError while pending."""
        if not self._done:
            raise InvalidStateError("result() of a pending future")
        if self._exception is not None:
            raise self._exception
        return self._result

    def exception(self) -> BaseException | None:
        """The exception (None if it has a value); InvalidStateError while pending."""
        if not self._done:
            raise InvalidStateError("exception() of a pending future")
        return self._exception

    def set_result(self, value: Any) -> None:
        self._finish(value, None)

    def set_exception(self, exc: BaseException) -> None:
        self._finish(None, exc)

    def _finish(self, value: Any, exc: BaseException | None) -> None:
        if self._done:
            raise InvalidStateError("the future is already done")
        self._done, self._result, self._exception = True, value, exc
        # Callbacks are scheduled, never called right here: whoever completes the future (a
        # callback, a task halfway through its step) finishes what it is doing first, and a long
        # chain of futures can't grow the stack.
        for callback in self._callbacks:
            self.loop.call_soon(callback, self)
        self._callbacks.clear()

    def add_done_callback(self, callback: Callable[[Future], Any]) -> None:
        """Call `callback(future)` soon after the future is done (soon, if it already is)."""
        if self._done:
            self.loop.call_soon(callback, self)
        else:
            self._callbacks.append(callback)

    def __await__(self) -> Generator[Future, None, Any]:
        if not self._done:
            # The Task running this coroutine receives this future, and resumes the coroutine
            # when the future is done.
            yield self
        return self.result()


class Task(Future):
    """Runs a coroutine step by step; its own result is the coroutine's return value."""

    def __init__(self, coro: Coroutine[Any, Any, Any], loop: EventLoop) -> None:
        super().__init__(loop)
        self.coro = coro
        loop.call_soon(self._step)

    def _step(self) -> None:
        try:
            awaited = self.coro.send(None)
        except StopIteration as stop:
            self.set_result(stop.value)
        except Exception as exc:  # BaseException (a time limit, Ctrl-C) must stop the loop instead
            self.set_exception(exc)
        else:
            if isinstance(awaited, Future):
                # Sleep until the awaited future is done; its __await__ then returns its result
                # (or raises its exception) inside the coroutine.
                awaited.add_done_callback(self._wakeup)
            else:
                self.coro.close()
                self.set_exception(TypeError(f"a task awaited {awaited!r}, not a Future"))

    def _wakeup(self, _future: Future) -> None:
        self._step()


class EventLoop:
    """One thread, one loop: ready callbacks, timers and socket readiness, in iterations.

    This design: timers in a list kept sorted with bisect (pop from the front), readers and
    writers in two dicts fd -> (socket, handle) from which the selector registration is rebuilt,
    and a sentinel appended to the ready deque that marks where this iteration's callbacks end.
    """

    _END = Handle(lambda: None, ())

    def __init__(
        self,
        clock: Callable[[], float] = time.monotonic,
        selector: selectors.BaseSelector | None = None,
    ) -> None:
        self.clock = clock
        self.selector = selector if selector is not None else selectors.DefaultSelector()
        self._ready: deque[Handle] = deque()
        self._timers: list[tuple[float, int, Handle]] = []
        self._order = itertools.count()
        self._readers: dict[int, tuple[socket.socket, Handle]] = {}
        self._writers: dict[int, tuple[socket.socket, Handle]] = {}

    def time(self) -> float:
        return self.clock()

    def call_soon(self, callback: Callable[..., Any], *args: Any) -> Handle:
        handle = Handle(callback, args)
        self._ready.append(handle)
        return handle

    def call_later(self, delay: float, callback: Callable[..., Any], *args: Any) -> Handle:
        handle = Handle(callback, args)
        bisect.insort(self._timers, (self.time() + delay, next(self._order), handle), key=lambda t: t[:2])
        return handle

    def create_future(self) -> Future:
        return Future(self)

    def create_task(self, coro: Coroutine[Any, Any, Any]) -> Task:
        return Task(coro, self)

    def add_reader(self, sock: socket.socket, callback: Callable[..., Any], *args: Any) -> None:
        self._set(self._readers, sock, Handle(callback, args))

    def add_writer(self, sock: socket.socket, callback: Callable[..., Any], *args: Any) -> None:
        self._set(self._writers, sock, Handle(callback, args))

    def remove_reader(self, sock: socket.socket) -> bool:
        return self._drop(self._readers, sock)

    def remove_writer(self, sock: socket.socket) -> bool:
        return self._drop(self._writers, sock)

    def _set(self, table: dict[int, tuple[socket.socket, Handle]], sock: socket.socket, handle: Handle) -> None:
        old = table.get(sock.fileno())
        if old is not None:
            old[1].cancel()
        table[sock.fileno()] = (sock, handle)
        self._sync(sock)

    def _drop(self, table: dict[int, tuple[socket.socket, Handle]], sock: socket.socket) -> bool:
        entry = table.pop(sock.fileno(), None)
        if entry is None:
            return False
        entry[1].cancel()  # it may be queued already
        self._sync(sock)
        return True

    def _sync(self, sock: socket.socket) -> None:
        fd = sock.fileno()
        events = (selectors.EVENT_READ if fd in self._readers else 0) | (
            selectors.EVENT_WRITE if fd in self._writers else 0
        )
        known = fd in self.selector.get_map()
        if events and known:
            self.selector.modify(sock, events)
        elif events:
            self.selector.register(sock, events)
        elif known:
            self.selector.unregister(sock)

    def run_until_complete(self, awaitable: Future | Coroutine[Any, Any, Any]) -> Any:
        future = awaitable if isinstance(awaitable, Future) else self.create_task(awaitable)
        while not future.done():
            self._iterate()
        return future.result()

    def close(self) -> None:
        self.selector.close()

    def _iterate(self) -> None:
        self._timers = [t for t in self._timers if not t[2].cancelled]
        if self._ready:
            timeout: float | None = 0
        elif self._timers:
            timeout = max(0.0, self._timers[0][0] - self.time())
        elif self._readers or self._writers:
            timeout = None
        else:
            raise RuntimeError("nothing is scheduled: the awaited future can never complete")
        for key, mask in self.selector.select(timeout):
            if mask & selectors.EVENT_READ and key.fd in self._readers:
                self._ready.append(self._readers[key.fd][1])
            if mask & selectors.EVENT_WRITE and key.fd in self._writers:
                self._ready.append(self._writers[key.fd][1])
        now = self.time()
        due = bisect.bisect_right(self._timers, now, key=lambda t: t[0])
        self._ready.extend(handle for _, _, handle in self._timers[:due])
        del self._timers[:due]
        self._ready.append(self._END)
        while (handle := self._ready.popleft()) is not self._END:
            if not handle.cancelled:
                handle.run()


# --- coroutines on top of the loop -------------------------------------------------------------------


async def sleep(loop: EventLoop, delay: float, result: Any = None) -> Any:
    """Suspend the calling coroutine for `delay` seconds of the loop's clock, then return `result`."""
    future = loop.create_future()
    loop.call_later(delay, future.set_result, result)
    return await future


async def _ready_for(loop: EventLoop, sock: socket.socket, event: int) -> None:
    future = loop.create_future()
    if event == selectors.EVENT_READ:
        loop.add_reader(sock, future.set_result, None)
    else:
        loop.add_writer(sock, future.set_result, None)
    try:
        await future
    finally:
        # Stop watching: readiness is reported again every iteration until removed.
        if event == selectors.EVENT_READ:
            loop.remove_reader(sock)
        else:
            loop.remove_writer(sock)


async def sock_recv(loop: EventLoop, sock: socket.socket, n: int) -> bytes:
    """Receive up to `n` bytes from a non-blocking socket; b"" at EOF."""
    while True:
        try:
            return sock.recv(n)  # try first: the data may already be there
        except BlockingIOError:
            await _ready_for(loop, sock, selectors.EVENT_READ)


async def sock_sendall(loop: EventLoop, sock: socket.socket, data: bytes) -> None:
    """Send all of `data` on a non-blocking socket, waiting whenever its buffer is full."""
    view = memoryview(data)
    while view:
        try:
            sent = sock.send(view)  # may take only part of it
        except BlockingIOError:
            sent = 0
        view = view[sent:]
        if view:
            await _ready_for(loop, sock, selectors.EVENT_WRITE)


async def sock_connect(loop: EventLoop, sock: socket.socket, address: tuple[str, int]) -> None:
    """Connect a non-blocking socket; raise the OSError (e.g. ConnectionRefusedError) on failure."""
    err = sock.connect_ex(address)
    if err == errno.EINPROGRESS:
        # The handshake is under way; the socket turns writable when it succeeded or failed, and
        # SO_ERROR says which.
        await _ready_for(loop, sock, selectors.EVENT_WRITE)
        err = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
    if err:
        raise OSError(err, os.strerror(err))  # OSError(errno, ...) picks the right subclass


@dataclass
class Response:
    status: int
    reason: str
    headers: dict[str, str] = field(default_factory=dict)  # names in lower case
    body: bytes = b""


async def http_get(loop: EventLoop, host: str, port: int, path: str) -> Response:
    """GET `path` from an HTTP server with HTTP/1.1 and `Connection: close`; read until EOF."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setblocking(False)
    try:
        await sock_connect(loop, sock, (host, port))
        request = f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nConnection: close\r\n\r\n"
        await sock_sendall(loop, sock, request.encode("ascii"))
        chunks = []
        # Connection: close means the body ends where the stream ends.
        while chunk := await sock_recv(loop, sock, 65536):
            chunks.append(chunk)
    finally:
        sock.close()
    head, _, body = b"".join(chunks).partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("iso-8859-1").split("\r\n")
    _version, status, reason = [*status_line.split(" ", 2), ""][:3]
    headers = {}
    for line in header_lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return Response(int(status), reason, headers, body)
