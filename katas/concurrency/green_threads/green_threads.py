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
        # TODO: a queue of ready tasks, and the sleepers ordered by wake-up time (heapq).

    def spawn(self, body: TaskBody, name: str | None = None) -> Task:
        """Schedule a generator to run; callable from outside or from inside a task.

        The task is called `name`, or by default its generator function's name (`body.__name__`).
        """
        # TODO: wrap it in a Task and make it ready.
        raise NotImplementedError("Scheduler.spawn")

    def run(self) -> None:
        """Run until every task has finished; an exception escaping a task propagates.

        Each round: wait in selector.select() (timeout 0 if a task is ready, else until the
        earliest sleeper is due, else None), make the tasks whose socket or time has come ready,
        then run each ready task one step: `task.body.send(None)` up to its next yield.
        """
        # TODO: loop while anything is ready, asleep or waiting for a socket. Handle each request a
        # task yields: None (back of the queue), Sleep, WaitReadable, WaitWritable. A task that
        # returns (StopIteration) is done, with its return value as the result.
        raise NotImplementedError("Scheduler.run")

    def close(self) -> None:
        """Release the selector."""
        self.selector.close()


# --- an echo server made of green threads --------------------------------------------------------


def echo_server(sched: Scheduler, listener: socket.socket, clients: int) -> TaskBody:
    """Accept `clients` connections on `listener`, serve each in its own task, then return.

    Every byte a client sends is sent back to it; a connection ends when the client closes its
    side. All clients are served at the same time. Make the sockets non-blocking.
    """
    # TODO: a generator: yield readable(listener) before each accept(); spawn echo_client(conn).
    raise NotImplementedError("echo_server")


def echo_client(conn: socket.socket) -> TaskBody:
    """Echo everything `conn` sends until it closes its side, then close `conn`."""
    # TODO: a generator: yield readable(conn), recv; yield writable(conn) before every send(), and
    # send again whatever send() did not take.
    raise NotImplementedError("echo_client")
