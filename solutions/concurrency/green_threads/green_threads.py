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
        self._ready: deque[Task] = deque()
        # A heap of (wake-up time, sequence number, task): the earliest wake-up is always at [0];
        # the sequence number breaks ties in spawn order and keeps tasks from being compared.
        self._sleepers: list[tuple[float, int, Task]] = []
        self._sequence = itertools.count()

    def spawn(self, body: TaskBody, name: str | None = None) -> Task:
        """Schedule a generator to run; callable from outside or from inside a task.

        The task is called `name`, or by default its generator function's name (`body.__name__`).
        """
        task = Task(body, body.__name__ if name is None else name)
        self._ready.append(task)
        return task

    def run(self) -> None:
        """Run until every task has finished; an exception escaping a task propagates.

        Each round: wait in selector.select() (timeout 0 if a task is ready, else until the
        earliest sleeper is due, else None), make the tasks whose socket or time has come ready,
        then run each ready task one step: `task.body.send(None)` up to its next yield.
        """
        while self._ready or self._sleepers or self.selector.get_map():
            self._wait_for_io_and_timers()
            # One round: each task that is ready now runs one step. Tasks made ready during the
            # round run in the next one, after I/O has been polled again, so a task that keeps
            # yielding can't starve the sockets.
            for _ in range(len(self._ready)):
                self._step(self._ready.popleft())

    def close(self) -> None:
        """Release the selector."""
        self.selector.close()

    def _wait_for_io_and_timers(self) -> None:
        if self._ready:
            timeout: float | None = 0  # others can run now: just poll
        elif self._sleepers:
            # Block exactly until the earliest sleeper is due (a relative timeout, never negative).
            timeout = max(0.0, self._sleepers[0][0] - self.clock())
        else:
            timeout = None  # only sockets left: block until one is ready
        for key, mask in self.selector.select(timeout):
            waiting: dict[int, Task] = key.data
            for event in (selectors.EVENT_READ, selectors.EVENT_WRITE):
                if mask & event and event in waiting:
                    self._ready.append(waiting.pop(event))
            # Unregister what nobody waits for any more: a readiness that stays registered would be
            # reported again and again, and registering the socket anew would raise KeyError.
            if waiting:
                self.selector.modify(key.fileobj, sum(waiting), waiting)  # the events left (distinct bits)
            else:
                self.selector.unregister(key.fileobj)
        now = self.clock()
        while self._sleepers and self._sleepers[0][0] <= now:
            self._ready.append(heapq.heappop(self._sleepers)[2])

    def _step(self, task: Task) -> None:
        try:
            request = task.body.send(None)
        except StopIteration as stop:
            task.done, task.result = True, stop.value
            return
        if request is None:
            self._ready.append(task)
        elif isinstance(request, Sleep):
            wake = self.clock() + max(0.0, request.seconds)
            heapq.heappush(self._sleepers, (wake, next(self._sequence), task))
        elif isinstance(request, WaitReadable):
            self._wait_io(task, request.sock, selectors.EVENT_READ)
        elif isinstance(request, WaitWritable):
            self._wait_io(task, request.sock, selectors.EVENT_WRITE)
        else:
            raise TypeError(f"{task.name} yielded {request!r}: yield sleep(), readable() or writable()")

    def _wait_io(self, task: Task, sock: socket.socket, event: int) -> None:
        # key.data maps each event to the task waiting for it, so one task can read a socket while
        # another writes to it.
        try:
            key = self.selector.get_key(sock)
        except KeyError:
            self.selector.register(sock, event, {event: task})
            return
        if event in key.data:
            raise RuntimeError(f"{task.name}: another task already waits for this on {sock}")
        key.data[event] = task
        self.selector.modify(sock, key.events | event, key.data)


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
