"""Green threads from generators: a cooperative scheduler with sleep and socket readiness, and an echo server."""

from __future__ import annotations

import selectors
import socket
import time
from collections import defaultdict
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
        # Two plain lists swapped each round: `_now` runs this round, `_next` collects what runs in
        # the following one (bare yields, new tasks, wake-ups).
        self._next: list[Task] = []
        # Timer buckets: deadline -> tasks in the order they fell asleep; min() finds the earliest.
        self._buckets: dict[float, list[Task]] = defaultdict(list)
        # Per socket, one registration whose data is a two-slot list [reader, writer].
        self._io_waiters = 0

    def spawn(self, body: TaskBody, name: str | None = None) -> Task:
        """Schedule a generator to run; callable from outside or from inside a task.

        The task is called `name`, or by default its generator function's name (`body.__name__`).
        """
        task = Task(body, name or body.__name__)
        self._next.append(task)
        return task

    def run(self) -> None:
        """Run until every task has finished; an exception escaping a task propagates."""
        while self._next or self._buckets or self._io_waiters:
            if self._next:
                timeout: float | None = 0
            elif self._buckets:
                timeout = max(0.0, min(self._buckets) - self.clock())
            else:
                timeout = None
            for key, mask in self.selector.select(timeout):
                slots = key.data
                if mask & selectors.EVENT_READ and slots[0] is not None:
                    self._next.append(slots[0])
                    slots[0] = None
                    self._io_waiters -= 1
                if mask & selectors.EVENT_WRITE and slots[1] is not None:
                    self._next.append(slots[1])
                    slots[1] = None
                    self._io_waiters -= 1
                self._update(key.fileobj, slots)
            now = self.clock()
            for deadline in sorted(d for d in self._buckets if d <= now):
                self._next.extend(self._buckets.pop(deadline))
            current, self._next = self._next, []
            for task in current:
                self._step(task)

    def close(self) -> None:
        """Release the selector."""
        self.selector.close()

    def _update(self, sock: Any, slots: list[Task | None]) -> None:
        events = (selectors.EVENT_READ if slots[0] else 0) | (selectors.EVENT_WRITE if slots[1] else 0)
        if events:
            self.selector.modify(sock, events, slots)
        else:
            self.selector.unregister(sock)

    def _step(self, task: Task) -> None:
        try:
            request = task.body.send(None)
        except StopIteration as stop:
            task.done, task.result = True, stop.value
            return
        if request is None:
            self._next.append(task)
        elif isinstance(request, Sleep):
            self._buckets[self.clock() + max(0.0, request.seconds)].append(task)
        elif isinstance(request, WaitReadable | WaitWritable):
            slot = 0 if isinstance(request, WaitReadable) else 1
            try:
                slots = self.selector.get_key(request.sock).data
            except KeyError:
                slots = [None, None]
                slots[slot] = task
                self.selector.register(request.sock, (selectors.EVENT_READ, selectors.EVENT_WRITE)[slot], slots)
            else:
                if slots[slot] is not None:
                    raise RuntimeError(f"{task.name}: another task already waits for this on {request.sock}")
                slots[slot] = task
                self._update(request.sock, slots)
            self._io_waiters += 1
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
