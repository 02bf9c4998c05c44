"""Tests for the event loop: callbacks, timers on a fake clock, futures, tasks, sockets, and real HTTP."""

from __future__ import annotations

import selectors
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from .event_loop import (
    EventLoop,
    InvalidStateError,
    http_get,
    sleep,
    sock_connect,
    sock_recv,
    sock_sendall,
)

START = 1000.0


class FakeClock:
    """Time that moves only when told to."""

    def __init__(self, now: float = START) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class AutojumpSelector(selectors.DefaultSelector):
    """A real selector that never blocks: when no socket is ready, it moves the fake clock forward
    by the timeout it was given instead of waiting. Virtual time makes timer tests exact and fast,
    and shows how the loop waits."""

    def __init__(self, clock: FakeClock, max_idle_polls: int | None = 1000) -> None:
        super().__init__()
        self.clock = clock
        self.max_idle_polls = max_idle_polls
        self.idle_polls = 0
        self.timeouts: list[float | None] = []

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        self.timeouts.append(timeout)
        events = super().select(0)
        if events:
            self.idle_polls = 0
            return events
        if timeout is None:
            raise AssertionError(
                "deadlock: the loop called select(timeout=None) (wait forever), but no socket is "
                "ready and nothing else can make one ready. Was a timer forgotten (then the timeout "
                "is the time until it is due), or a reader/writer left registered?"
            )
        if timeout > 0:
            self.clock.now += timeout
            self.idle_polls = 0
        else:
            self.idle_polls += 1
            if self.max_idle_polls is not None and self.idle_polls > self.max_idle_polls:
                raise AssertionError(
                    f"busy-wait: select(timeout=0) was called {self.idle_polls} times in a row and "
                    "nothing was ready. With no callback ready, block in select() until the next "
                    "timer is due"
                )
        return []


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def loop(clock: FakeClock) -> Iterator[EventLoop]:
    """An event loop on virtual time."""
    made = EventLoop(clock=clock, selector=AutojumpSelector(clock))
    yield made
    made.selector.close()


@pytest.fixture
def real_loop() -> Iterator[EventLoop]:
    made = EventLoop()
    yield made
    made.selector.close()


@pytest.fixture
def socketpair() -> Iterator[tuple[socket.socket, socket.socket]]:
    a, b = socket.socketpair()
    a.setblocking(False)
    b.setblocking(False)
    yield a, b
    a.close()
    b.close()


def elapsed(clock: FakeClock) -> float:
    return clock() - START


# --- callbacks and timers ---------------------------------------------------------------------------


def test_call_soon_runs_callbacks_in_order_with_their_arguments(loop: EventLoop) -> None:
    log: list[str] = []
    done = loop.create_future()
    loop.call_soon(log.append, "first")
    loop.call_soon(lambda a, b: log.append(f"{a}+{b}"), "x", "y")
    loop.call_soon(done.set_result, "finished")
    assert log == [], "call_soon must only schedule the callback, not run it"
    assert loop.run_until_complete(done) == "finished"
    assert log == ["first", "x+y"], f"got {log}: callbacks run first in, first out"


def test_call_later_fires_in_deadline_order_at_the_right_times(loop: EventLoop, clock: FakeClock) -> None:
    log: list[tuple[float, str]] = []
    done = loop.create_future()
    for delay, name in [(3, "c"), (1, "a"), (2.5, "b"), (0.5, "first")]:
        loop.call_later(delay, lambda n: log.append((elapsed(clock), n)), name)
    loop.call_later(4, done.set_result, None)
    loop.run_until_complete(done)
    expected = [(0.5, "first"), (1, "a"), (2.5, "b"), (3, "c")]
    assert log == expected, (
        f"timers (virtual seconds after start): expected {expected}, got {log}. Keep timers in "
        "deadline order (a heap) and let select() wait until the earliest is due"
    )


def test_waiting_for_a_timer_blocks_in_select_instead_of_busy_waiting(loop: EventLoop, clock: FakeClock) -> None:
    done = loop.create_future()
    loop.call_later(5, done.set_result, "woke")
    assert loop.run_until_complete(done) == "woke"
    assert elapsed(clock) == 5, f"the timer fired {elapsed(clock)} s after it was set, expected 5"
    selector = loop.selector
    assert isinstance(selector, AutojumpSelector)
    assert 5.0 in selector.timeouts, (
        f"select() was called with timeouts {selector.timeouts[:10]}: with one timer 5 s away and "
        "nothing else to do, the loop should block once with timeout=5"
    )


def test_a_cancelled_timer_never_runs(loop: EventLoop, clock: FakeClock) -> None:
    log: list[str] = []
    done = loop.create_future()
    handle = loop.call_later(1, log.append, "cancelled one")
    loop.call_later(2, log.append, "kept")
    loop.call_later(3, done.set_result, None)
    handle.cancel()
    soon = loop.call_soon(log.append, "cancelled soon")
    soon.cancel()
    loop.run_until_complete(done)
    assert log == ["kept"], f"got {log}: a handle whose cancel() was called must not run"


def test_a_callback_that_keeps_rescheduling_itself_does_not_starve_io(
    clock: FakeClock, socketpair: tuple[socket.socket, socket.socket]
) -> None:
    a, b = socketpair
    loop = EventLoop(clock=clock, selector=AutojumpSelector(clock, max_idle_polls=None))
    done = loop.create_future()
    spins = 0

    def spin() -> None:
        nonlocal spins
        spins += 1
        if spins == 2:
            b.send(b"x")  # from now on `a` is readable
        if done.done():
            return
        if spins > 10_000:
            done.set_exception(
                AssertionError(
                    "the reader starved: its socket had data waiting, but a callback that "
                    "keeps calling call_soon() kept the loop from polling I/O. Run only the callbacks "
                    "that were ready when the iteration began; new ones wait for the next iteration"
                )
            )
            return
        loop.call_soon(spin)

    def on_readable() -> None:
        loop.remove_reader(a)
        done.set_result(a.recv(10))

    loop.call_soon(spin)
    loop.add_reader(a, on_readable)
    try:
        assert loop.run_until_complete(done) == b"x"
    finally:
        loop.selector.close()


# --- futures ---------------------------------------------------------------------------------------


def test_a_future_holds_a_result_or_an_exception_exactly_once(loop: EventLoop) -> None:
    fut = loop.create_future()
    assert not fut.done()
    with pytest.raises(InvalidStateError):
        fut.result()
    fut.set_result(7)
    assert fut.done() and fut.result() == 7 and fut.exception() is None
    with pytest.raises(InvalidStateError):
        fut.set_result(8)
    failed = loop.create_future()
    failed.set_exception(KeyError("gone"))
    assert isinstance(failed.exception(), KeyError)
    with pytest.raises(KeyError):
        failed.result()


def test_done_callbacks_are_scheduled_with_call_soon_not_called_inside_set_result(
    loop: EventLoop,
) -> None:
    log: list[Any] = []
    fut = loop.create_future()
    fut.add_done_callback(lambda f: log.append(("early", f.result())))
    fut.set_result("v")
    assert log == [], (
        "set_result() ran the done callback on the spot: schedule each callback with "
        "loop.call_soon(callback, future), as asyncio does, so the code that completed the "
        "future finishes first"
    )
    fut.add_done_callback(lambda f: log.append(("late", f.result())))  # already done: soon too
    assert log == []
    loop.run_until_complete(fut)
    marker = loop.create_future()
    loop.call_soon(marker.set_result, None)
    loop.run_until_complete(marker)
    assert log == [("early", "v"), ("late", "v")], f"got {log}"


# --- tasks -------------------------------------------------------------------------------------------


def test_a_task_awaits_a_future_and_returns_the_coroutines_value(loop: EventLoop, clock: FakeClock) -> None:
    fut = loop.create_future()
    loop.call_later(2, fut.set_result, 20)

    async def main() -> tuple[float, int]:
        value = await fut
        return elapsed(clock), value + 1

    assert loop.run_until_complete(main()) == (2, 21)


def test_tasks_run_concurrently_so_their_sleeps_overlap(loop: EventLoop, clock: FakeClock) -> None:
    log: list[tuple[float, str]] = []

    async def napper(name: str, seconds: float) -> str:
        await sleep(loop, seconds)
        log.append((elapsed(clock), name))
        return name

    async def main() -> list[str]:
        tasks = [loop.create_task(napper(n, s)) for n, s in [("slow", 3), ("quick", 1), ("mid", 2)]]
        return [await task for task in tasks]

    assert loop.run_until_complete(main()) == ["slow", "quick", "mid"]
    assert log == [(1, "quick"), (2, "mid"), (3, "slow")], (
        f"got {log}: three tasks sleeping 3, 1 and 2 s at the same time are all done at t=3, "
        "not t=6. Does create_task() run the coroutine to the end before returning?"
    )


def test_an_exception_in_a_coroutine_fails_its_task_and_reaches_the_awaiter(loop: EventLoop) -> None:
    async def broken() -> None:
        await sleep(loop, 1)
        raise ValueError("inside the task")

    async def main() -> str:
        task = loop.create_task(broken())
        try:
            await task
        except ValueError as exc:
            return f"caught {exc}"
        return "nothing raised"

    assert loop.run_until_complete(main()) == "caught inside the task"
    task = loop.create_task(broken())
    with pytest.raises(ValueError, match="inside the task"):
        loop.run_until_complete(task)
    assert isinstance(task.exception(), ValueError), "the task itself should hold the exception"


# --- sockets ---------------------------------------------------------------------------------------


def test_sock_recv_waits_for_data_then_stops_watching_the_socket(
    loop: EventLoop, clock: FakeClock, socketpair: tuple[socket.socket, socket.socket]
) -> None:
    a, b = socketpair
    loop.call_later(2, b.send, b"hello")

    async def main() -> tuple[float, bytes]:
        data = await sock_recv(loop, a, 100)
        return elapsed(clock), data

    assert loop.run_until_complete(main()) == (2, b"hello")
    left = [key.fileobj for key in loop.selector.get_map().values()]
    assert not left, f"still registered after sock_recv returned: {left}; call remove_reader()"


def test_sock_sendall_pushes_a_large_buffer_through_a_full_socket(
    loop: EventLoop, socketpair: tuple[socket.socket, socket.socket]
) -> None:
    a, b = socketpair
    payload = bytes(range(256)) * 4096  # 1 MiB: far more than the socket buffers hold

    async def reader() -> bytes:
        got = bytearray()
        while len(got) < len(payload):
            chunk = await sock_recv(loop, b, 65536)
            if not chunk:
                break
            got += chunk
        return bytes(got)

    async def main() -> bytes:
        receiving = loop.create_task(reader())
        await sock_sendall(loop, a, payload)
        data: bytes = await receiving
        return data

    partial = (
        "send() on a non-blocking socket may take only part of the data (it returns how much): "
        "wait until writable, then send the rest"
    )
    try:
        got = loop.run_until_complete(main())
    except AssertionError as exc:
        if not str(exc).startswith("deadlock"):
            raise
        raise AssertionError(f"the reader waited for the rest of the 1 MiB, and no more came. {partial}") from exc
    assert got == payload, f"received {len(got)} of {len(payload)} bytes, or different ones: {partial}"


def test_sock_connect_to_a_closed_port_raises_connection_refused(real_loop: EventLoop) -> None:
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()  # nobody listens there now
    sock = socket.socket()
    sock.setblocking(False)
    try:
        with pytest.raises(ConnectionRefusedError):
            real_loop.run_until_complete(sock_connect(real_loop, sock, ("127.0.0.1", port)))
    finally:
        sock.close()


# --- a real HTTP exchange ------------------------------------------------------------------------------


BIG = b"".join(b"line %06d of a big body\n" % i for i in range(12_000))  # about 300 KB


class Server:
    """A real http.server in a thread; records what it was asked."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, str | None]] = []
        self.meeting = threading.Barrier(3)
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                owner.requests.append((self.path, self.headers.get("Host")))
                if self.path == "/hello":
                    self.reply(200, b"hello from http.server\n")
                elif self.path == "/big":
                    self.reply(200, BIG)
                elif self.path.startswith("/meet/"):
                    try:  # passes only when three requests are in flight at once
                        owner.meeting.wait(timeout=5)
                        self.reply(200, b"met\n")
                    except threading.BrokenBarrierError:
                        self.reply(503, b"waited 5 s and nobody else came\n")
                else:
                    self.reply(404, b"no such page\n")

            def reply(self, status: int, body: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "text/plain; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass  # keep the test output clean

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), name="http.server", daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.meeting.abort()
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(5)


@pytest.fixture
def server() -> Iterator[Server]:
    made = Server()
    yield made
    made.stop()


def test_http_get_fetches_a_page_from_a_real_http_server(real_loop: EventLoop, server: Server) -> None:
    response = real_loop.run_until_complete(http_get(real_loop, "127.0.0.1", server.port, "/hello"))
    assert server.requests == [("/hello", f"127.0.0.1:{server.port}")], (
        f"the server received {server.requests}: send 'GET /hello HTTP/1.1' with a Host header"
    )
    assert (response.status, response.reason) == (200, "OK"), f"status line parsed as {response}"
    assert response.headers.get("content-type") == "text/plain; charset=utf-8", (
        f"headers {response.headers}: header names are case-insensitive, store them in lower case"
    )
    assert response.body == b"hello from http.server\n"


def test_http_get_reads_a_large_body_and_a_404(real_loop: EventLoop, server: Server) -> None:
    big = real_loop.run_until_complete(http_get(real_loop, "127.0.0.1", server.port, "/big"))
    assert len(big.body) == len(BIG) == int(big.headers["content-length"]), (
        f"body of {len(big.body)} bytes, the server sent {len(BIG)}: keep reading until recv "
        "returns b'' (the server closes the connection)"
    )
    assert big.body == BIG
    missing = real_loop.run_until_complete(http_get(real_loop, "127.0.0.1", server.port, "/nope"))
    assert missing.status == 404 and missing.body == b"no such page\n", f"got {missing}"


def test_three_http_gets_are_in_flight_at_the_same_time(real_loop: EventLoop, server: Server) -> None:
    async def main() -> list[Any]:
        tasks = [real_loop.create_task(http_get(real_loop, "127.0.0.1", server.port, f"/meet/{i}")) for i in range(3)]
        return [await task for task in tasks]

    responses = real_loop.run_until_complete(main())
    statuses = [r.status for r in responses]
    assert statuses == [200, 200, 200], (
        f"statuses {statuses}: the server answers only when three requests are in flight at once, "
        "and they never were. Is a socket call blocking the loop (a blocking connect/recv, or "
        "sendall on a blocking socket)? Every wait must go through the loop: add_reader/add_writer"
    )
