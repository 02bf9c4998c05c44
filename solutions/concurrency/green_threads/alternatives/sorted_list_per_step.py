"""Green threads from generators: a cooperative scheduler with sleep and socket readiness, and an echo server."""

from __future__ import annotations

import bisect
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
        self._ready: deque[Task] = deque()
        # Sleepers in a list kept sorted by (deadline, arrival): bisect.insort, pop(0) for the due.
        self._sleeping: list[tuple[float, int, Task]] = []
        self._arrivals = itertools.count()
        # Who waits for what: (fd, event) -> (socket, task). The selector is re-registered from
        # this table after every change; nothing lives in key.data.
        self._waiting: dict[tuple[int, int], tuple[socket.socket, Task]] = {}

    def spawn(self, body: TaskBody, name: str | None = None) -> Task:
        """Schedule a generator to run; callable from outside or from inside a task.

        The task is called `name`, or by default its generator function's name (`body.__name__`).
        """
        task = Task(body, name if name is not None else body.__name__)
        self._ready.append(task)
        return task

    def run(self) -> None:
        """Run until every task has finished; an exception escaping a task propagates.

        Unlike rounds, this polls before every single step: a ready task still goes to the back of
        the queue, and I/O is checked between any two steps.
        """
        while self._ready or self._sleeping or self._waiting:
            self._poll()
            if self._ready:
                self._step(self._ready.popleft())

    def close(self) -> None:
        """Release the selector."""
        self.selector.close()

    def _poll(self) -> None:
        if self._ready:
            timeout: float | None = 0
        elif self._sleeping:
            timeout = max(0.0, self._sleeping[0][0] - self.clock())
        else:
            timeout = None
        woken = []
        for key, mask in self.selector.select(timeout):
            for event in (selectors.EVENT_READ, selectors.EVENT_WRITE):
                if mask & event and (key.fd, event) in self._waiting:
                    sock, task = self._waiting.pop((key.fd, event))
                    woken.append(task)
                    self._register(sock)
        self._ready.extend(woken)
        now = self.clock()
        due = bisect.bisect_right(self._sleeping, now, key=lambda entry: entry[0])
        self._ready.extend(task for _, _, task in self._sleeping[:due])
        del self._sleeping[:due]

    def _register(self, sock: socket.socket) -> None:
        fd = sock.fileno()
        events = 0
        for event in (selectors.EVENT_READ, selectors.EVENT_WRITE):
            if (fd, event) in self._waiting:
                events |= event
        if fd in self.selector.get_map():
            self.selector.unregister(sock)
        if events:
            self.selector.register(sock, events)

    def _step(self, task: Task) -> None:
        try:
            request = task.body.send(None)
        except StopIteration as stop:
            task.done, task.result = True, stop.value
            return
        if request is None:
            self._ready.append(task)
        elif isinstance(request, Sleep):
            entry = (self.clock() + max(0.0, request.seconds), next(self._arrivals), task)
            bisect.insort(self._sleeping, entry)
        elif isinstance(request, WaitReadable | WaitWritable):
            event = selectors.EVENT_READ if isinstance(request, WaitReadable) else selectors.EVENT_WRITE
            if (request.sock.fileno(), event) in self._waiting:
                raise RuntimeError(f"{task.name}: another task already waits for this on {request.sock}")
            self._waiting[request.sock.fileno(), event] = (request.sock, task)
            self._register(request.sock)
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
