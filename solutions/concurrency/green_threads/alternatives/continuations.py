"""Green threads from generators: a cooperative scheduler with sleep and socket readiness, and an echo server."""

from __future__ import annotations

import heapq
import itertools
import selectors
import socket
import time
from collections import deque
from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import Any

# --- what a task may yield: the scheduler's "system calls" --------------------------------------


@dataclass(frozen=True)
class Sleep:
    seconds: float


@dataclass(frozen=True)
class WaitReadable:
    sock: socket.socket


@dataclass(frozen=True)
class WaitWritable:
    sock: socket.socket


Request = Sleep | WaitReadable | WaitWritable | None  # None (a bare `yield`): let others run
TaskBody = Generator[Request, None, Any]


def sleep(seconds: float) -> Sleep:
    """`yield sleep(s)`: resume this task once `s` seconds have passed on the scheduler's clock.

    s <= 0 is due at once, but the other ready tasks go first; sleepers due at the same moment wake
    in the order they fell asleep.
    """
    return Sleep(seconds)


def readable(sock: socket.socket) -> WaitReadable:
    """`yield readable(sock)`: resume once recv()/accept() on `sock` won't block."""
    return WaitReadable(sock)


def writable(sock: socket.socket) -> WaitWritable:
    """`yield writable(sock)`: resume once send() on `sock` can take at least one byte."""
    return WaitWritable(sock)


class Task:
    """A spawned generator; `done` and `result` (its return value) tell how it ended."""

    def __init__(self, body: TaskBody, name: str) -> None:
        self.body = body
        self.name = name
        self.done = False
        self.result: Any = None

    def __repr__(self) -> str:
        return f"<Task {self.name} {'done' if self.done else 'pending'}>"


class Scheduler:
    """Runs generator-based tasks cooperatively in one thread.

    A task runs until it yields a request (sleep, readable, writable, or a bare yield), then the
    scheduler picks the next task. The only place it waits is `selector.select(timeout)`: never
    time.sleep(), never a loop that checks the clock.

    >>> sched = Scheduler()
    >>> def hello(name):
    ...     yield sleep(0.01)
    ...     return f"hi {name}"
    >>> task = sched.spawn(hello("ada"))
    >>> sched.run()
    >>> task.result
    'hi ada'
    """

    def __init__(
        self,
        clock: Callable[[], float] = time.monotonic,
        selector: selectors.BaseSelector | None = None,
    ) -> None:
        self.clock = clock
        self.selector = selector if selector is not None else selectors.DefaultSelector()
        # Continuations, not tasks: everything the loop runs is a zero-argument callable, so tasks,
        # timers and sockets share one mechanism (green threads as a thin layer over callbacks).
        self._soon: deque[Callable[[], None]] = deque()
        self._timers: list[tuple[float, int, Callable[[], None]]] = []
        self._counter = itertools.count()
        # fd -> [reader continuation or None, writer continuation or None]
        self._io: dict[int, list[Callable[[], None] | None]] = {}

    def spawn(self, body: TaskBody, name: str | None = None) -> Task:
        """Schedule a generator to run; callable from outside or from inside a task.

        The task is called `name`, or by default its generator function's name (`body.__name__`).
        """
        task = Task(body, body.__name__ if name is None else name)
        self._soon.append(lambda: self._resume(task))
        return task

    def run(self) -> None:
        """Run until every task has finished; an exception escaping a task propagates."""
        while self._soon or self._timers or self._io:
            if self._soon:
                timeout: float | None = 0
            elif self._timers:
                timeout = max(0.0, self._timers[0][0] - self.clock())
            else:
                timeout = None
            for key, mask in self.selector.select(timeout):
                slots = self._io[key.fd]
                for index, event in enumerate((selectors.EVENT_READ, selectors.EVENT_WRITE)):
                    callback = slots[index]
                    if mask & event and callback is not None:
                        slots[index] = None
                        self._soon.append(callback)
                self._sync(key.fileobj, key.fd)
            now = self.clock()
            while self._timers and self._timers[0][0] <= now:
                self._soon.append(heapq.heappop(self._timers)[2])
            batch, self._soon = self._soon, deque()
            while batch:
                batch.popleft()()

    def close(self) -> None:
        """Release the selector."""
        self.selector.close()

    def _sync(self, sock: Any, fd: int) -> None:
        """Make the selector's registration for `fd` match the continuations waiting on it."""
        slots = self._io[fd]
        events = (selectors.EVENT_READ if slots[0] else 0) | (selectors.EVENT_WRITE if slots[1] else 0)
        registered = self.selector.get_map().get(fd)
        if not events:
            del self._io[fd]
            if registered is not None:
                self.selector.unregister(sock)
        elif registered is None:
            self.selector.register(sock, events)
        elif registered.events != events:
            self.selector.modify(sock, events)

    def _resume(self, task: Task) -> None:
        try:
            request = task.body.send(None)
        except StopIteration as stop:
            task.done, task.result = True, stop.value
            return
        again = lambda: self._resume(task)  # noqa: E731
        if request is None:
            self._soon.append(again)
        elif isinstance(request, Sleep):
            deadline = self.clock() + max(0.0, request.seconds)
            heapq.heappush(self._timers, (deadline, next(self._counter), again))
        elif isinstance(request, WaitReadable | WaitWritable):
            index = 0 if isinstance(request, WaitReadable) else 1
            slots = self._io.setdefault(request.sock.fileno(), [None, None])
            if slots[index] is not None:
                raise RuntimeError(f"{task.name}: another task already waits for this on {request.sock}")
            slots[index] = again
            self._sync(request.sock, request.sock.fileno())
        else:
            raise TypeError(f"{task.name} yielded {request!r}: yield sleep(), readable() or writable()")


# --- an echo server made of green threads --------------------------------------------------------


def echo_server(sched: Scheduler, listener: socket.socket, clients: int) -> TaskBody:
    """Accept `clients` connections on `listener`, serve each in its own task, then return.

    Every byte a client sends is sent back to it; a connection ends when the client closes its
    side. All clients are served at the same time. Make the sockets non-blocking.
    """
    listener.setblocking(False)
    for number in range(clients):
        yield readable(listener)
        conn, _ = listener.accept()
        conn.setblocking(False)
        # A task per client: this loop goes straight back to accepting, so one silent client
        # can't hold up the others.
        sched.spawn(echo_client(conn), name=f"client-{number}")


def echo_client(conn: socket.socket) -> TaskBody:
    """Echo everything `conn` sends until it closes its side, then close `conn`."""
    try:
        while True:
            yield readable(conn)
            data = conn.recv(65536)
            if not data:  # b"": the client closed its side
                return
            while data:
                yield writable(conn)
                # On a non-blocking socket send() takes what fits in the kernel buffer and returns
                # the count; the rest waits for the next writable().
                sent = conn.send(data)
                data = data[sent:]
    finally:
        conn.close()
