"""Tests for the green-thread scheduler: round-robin, sleeping on a fake clock, socket readiness, a real echo server."""

from __future__ import annotations

import contextlib
import fcntl
import gc
import random
import socket
import struct
import termios
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dojo import testing
from dojo.testing import Background, ManualClock, wait_until

from .green_threads import Scheduler, TaskBody, echo_server, readable, sleep, writable

START = 100.0


class AutojumpSelector(testing.AutojumpSelector):
    """Virtual time: the selector jumps the clock to the next sleeper's deadline instead of waiting."""

    waiter = "the scheduler"
    deadlock_hint = ("Did a task wait for the wrong event (readable vs writable), or was a sleeper "
                     "forgotten (then the timeout should be the time until it is due)?")
    busy_wait_hint = ("When no task can run, block in select() with the time until the earliest "
                      "sleeper is due (or None if there is none)")


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(START)


@pytest.fixture
def fake_time(clock: ManualClock) -> Iterator[Scheduler]:
    """A scheduler on virtual time."""
    sched = Scheduler(clock=clock, selector=AutojumpSelector(clock))
    yield sched
    sched.selector.close()


@pytest.fixture
def socketpair() -> Iterator[tuple[socket.socket, socket.socket]]:
    a, b = socket.socketpair()
    a.setblocking(False)
    b.setblocking(False)
    yield a, b
    a.close()
    b.close()


# --- scheduling -----------------------------------------------------------------------------------


@pytest.mark.stage(1, "tasks take turns")
def test_tasks_take_turns_at_each_bare_yield(fake_time: Scheduler) -> None:
    log: list[str] = []

    def worker(name: str, steps: int) -> TaskBody:
        for i in range(steps):
            log.append(f"{name}{i}")
            yield

    fake_time.spawn(worker("a", 3))
    fake_time.spawn(worker("b", 1))
    fake_time.spawn(worker("c", 3))
    fake_time.run()
    assert log == ["a0", "b0", "c0", "a1", "c1", "a2", "c2"], (
        f"got {log}: a bare `yield` should put the task at the back of the ready queue (round robin), "
        "and a finished task leaves the rotation"
    )
    selector = fake_time.selector
    assert isinstance(selector, AutojumpSelector)
    assert selector.timeouts and set(selector.timeouts) == {0}, (
        f"select() was called with timeouts {selector.timeouts[:10]}: while a task is ready the scheduler "
        "must poll with timeout exactly 0 (not None, not negative, not a nap)"
    )


@pytest.mark.stage(1, "tasks take turns")
def test_run_with_no_tasks_returns_at_once(fake_time: Scheduler, clock: ManualClock) -> None:
    fake_time.run()  # the AutojumpSelector fails with "deadlock" if run() waits for nothing
    assert clock() == START, "run() with nothing to do must return without waiting"


@pytest.mark.stage(1, "tasks take turns")
def test_run_returns_each_task_result_and_a_task_can_spawn_another(fake_time: Scheduler) -> None:
    seen: list[bool] = []

    def child() -> TaskBody:
        yield
        yield
        return "child done"

    def parent() -> TaskBody:
        kid = fake_time.spawn(child(), name="kid")
        seen.append(kid.done)
        yield
        seen.append(kid.done)
        return kid

    task = fake_time.spawn(parent())
    assert not task.done, "a task that has not run yet is not done"
    fake_time.run()
    assert task.done and task.result.done, "run() must not return before every task has finished"
    assert seen == [False, False], f"the parent saw kid.done = {seen}: a task is done only once it has returned"
    assert task.result.result == "child done", "a task's result is its generator's return value"
    assert (task.name, task.result.name) == ("parent", "kid"), (
        f"names {task.name!r}, {task.result.name!r}: a task is called `name`, or its generator function's name"
    )


@pytest.mark.stage(1, "tasks take turns")
def test_a_task_that_returns_without_yielding_is_done_with_its_result(fake_time: Scheduler) -> None:
    def instant() -> TaskBody:
        return 42
        yield  # a generator all the same

    task = fake_time.spawn(instant())
    fake_time.run()
    assert task.done and task.result == 42, f"{task.done=}, {task.result=}: StopIteration.value is the result"


@pytest.mark.stage(2, "sleep and errors")
@pytest.mark.parametrize("error", [ValueError, KeyboardInterrupt], ids=["Exception", "BaseException"])
def test_an_exception_in_a_task_propagates_out_of_run(fake_time: Scheduler, error: type[BaseException]) -> None:
    def broken() -> TaskBody:
        yield sleep(1)
        raise error("task failed")

    fake_time.spawn(broken())
    with pytest.raises(error, match="task failed"):
        fake_time.run()


@pytest.mark.stage(2, "sleep and errors")
def test_close_releases_the_selector(clock: ManualClock) -> None:
    sched = Scheduler(clock=clock, selector=AutojumpSelector(clock))

    def nap() -> TaskBody:
        yield sleep(1)

    sched.spawn(nap())
    sched.run()
    sched.close()
    assert sched.selector.get_map() is None, "close() must close the selector (its epoll fd)"


@pytest.mark.stage(2, "sleep and errors")
def test_sleepers_wake_in_order_of_their_deadlines(fake_time: Scheduler, clock: ManualClock) -> None:
    log: list[tuple[float, str]] = []

    def sleeper(name: str, delays: list[float]) -> TaskBody:
        for delay in delays:
            yield sleep(delay)
            log.append((clock() - START, name))

    fake_time.spawn(sleeper("a", [2.5]))
    fake_time.spawn(sleeper("b", [1, 1, 1]))
    fake_time.spawn(sleeper("c", [0.25, 1.5]))
    fake_time.run()
    expected = [(0.25, "c"), (1, "b"), (1.75, "c"), (2, "b"), (2.5, "a"), (3, "b")]
    assert log == expected, (
        f"wake-up order and times (virtual seconds after start): expected {expected}, got {log}. "
        "Keep sleepers sorted by deadline (heapq) and pass select() the time until the first one "
        "is due, relative to now"
    )


@pytest.mark.stage(2, "sleep and errors")
def test_waiting_only_for_sleepers_blocks_instead_of_busy_waiting(fake_time: Scheduler, clock: ManualClock) -> None:
    def nap() -> TaskBody:
        yield sleep(5)

    fake_time.spawn(nap())
    fake_time.run()
    assert clock() - START == 5, f"the nap ended {clock() - START} s after it began, expected 5"
    selector = fake_time.selector
    assert isinstance(selector, AutojumpSelector)
    assert 5.0 in selector.timeouts, (
        f"select() was called with timeouts {selector.timeouts[:10]}: with one task asleep for 5 s "
        "and nothing else to do, the scheduler should block once with timeout=5"
    )


@pytest.mark.stage(2, "sleep and errors")
def test_sleepers_due_at_the_same_moment_wake_in_the_order_they_went_to_sleep(
    fake_time: Scheduler, clock: ManualClock
) -> None:
    log: list[str] = []

    def sleeper(name: str, delay: float) -> TaskBody:
        yield sleep(delay)
        log.append(name)

    # e falls asleep first (spawned first) with the latest deadline; d sleeps a negative time, which
    # counts as 0: due together with c, after it.
    fake_time.spawn(sleeper("e", 2))
    for name in "abc":
        fake_time.spawn(sleeper(name, 1))
    fake_time.spawn(sleeper("x", 0))
    fake_time.spawn(sleeper("y", -1))
    fake_time.run()
    assert log == ["x", "y", "a", "b", "c", "e"], (
        f"wake-up order {log}: ties on the deadline go to whoever fell asleep first (a counter in the "
        "heap entry, after the deadline), and a negative delay counts as 0, not as a deadline in the past"
    )
    assert clock() - START == 2


@pytest.mark.stage(2, "sleep and errors")
@pytest.mark.parametrize("delay", [0, -1, -0.5], ids=["zero", "minus-one", "minus-half"])
def test_sleep_zero_or_negative_lets_others_run_first(fake_time: Scheduler, clock: ManualClock, delay: float) -> None:
    log: list[str] = []

    def polite() -> TaskBody:
        yield sleep(delay)
        log.append(f"polite at {clock() - START}")

    def eager() -> TaskBody:
        log.append("eager")
        yield
        log.append("eager again")

    fake_time.spawn(polite())
    fake_time.spawn(eager())
    fake_time.run()
    assert log == ["eager", "eager again", "polite at 0.0"] or log == ["eager", "polite at 0.0", "eager again"], (
        f"got {log}: sleep({delay}) is due at once, but must give the other ready tasks a turn first "
        "(and a delay below 0 counts as 0: the clock must not move)"
    )


DELAYS = st.sampled_from([0, 0.25, 0.5, 1, 1.5, 3, -1])
SCRIPT = st.lists(st.one_of(st.none(), DELAYS), max_size=6)


@pytest.mark.stage(2, "sleep and errors")
@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scripts=st.lists(SCRIPT, min_size=1, max_size=4))
def test_every_mix_of_yields_and_sleeps_agrees_with_a_model_of_virtual_time(scripts: list[list[float | None]]) -> None:
    """The model: time passes only in select(), which jumps straight to the earliest deadline, and
    only when no task is ready. So each step of a task runs at START + the sum of its own sleeps
    (a delay below 0 counts as 0), whatever the others do, and the whole log is in time order."""
    clock = ManualClock(START)
    sched = Scheduler(clock=clock, selector=AutojumpSelector(clock))
    log: list[tuple[float, str, int]] = []

    def body(name: str, script: list[float | None]) -> TaskBody:
        for step, request in enumerate(script):
            log.append((clock(), name, step))
            yield None if request is None else sleep(request)
        log.append((clock(), name, len(script)))
        return name

    tasks = [sched.spawn(body(f"t{i}", script), name=f"t{i}") for i, script in enumerate(scripts)]
    try:
        sched.run()
    finally:
        sched.close()
    assert all(t.done and t.result == t.name for t in tasks), f"unfinished or wrong results: {tasks}"
    for i, script in enumerate(scripts):
        expected = [START + sum(max(0, d) for d in script[:k] if d is not None) for k in range(len(script) + 1)]
        got = [at for at, name, _ in log if name == f"t{i}"]
        assert got == expected, (
            f"task t{i} with script {script} (None = bare yield) ran its steps at {got}, expected {expected}: "
            "a sleeper wakes exactly when its deadline is due (deadline = clock at the yield + delay), "
            "never earlier, and select() must not be given more than the time until the earliest deadline"
        )
    times = [at for at, _, _ in log]
    assert times == sorted(times), (
        f"steps ran at times {times}: a task woke after a later deadline had already passed. "
        "Wake sleepers in deadline order (heapq), not in the order they went to sleep"
    )


# --- socket readiness ----------------------------------------------------------------------------


@pytest.mark.stage(3, "waiting on sockets")
def test_a_reader_sleeps_until_its_socket_has_data(
    fake_time: Scheduler, clock: ManualClock, socketpair: tuple[socket.socket, socket.socket]
) -> None:
    a, b = socketpair
    log: list[tuple[float, str]] = []

    def reader() -> TaskBody:
        yield readable(a)
        log.append((clock() - START, a.recv(100).decode()))

    def writer() -> TaskBody:
        yield sleep(2)
        b.send(b"ping")
        log.append((clock() - START, "sent"))

    fake_time.spawn(reader())
    fake_time.spawn(writer())
    fake_time.run()
    assert log == [(2, "sent"), (2, "ping")], (
        f"got {log}: the reader must wait (in select) until the writer sent, then read 'ping'"
    )


@pytest.mark.stage(3, "waiting on sockets")
def test_a_writer_waits_until_the_peer_drains_a_full_buffer(
    fake_time: Scheduler, clock: ManualClock, socketpair: tuple[socket.socket, socket.socket]
) -> None:
    a, b = socketpair
    queued = 0
    try:
        while True:  # fill the kernel buffers until send() would block
            queued += a.send(b"x" * 65536)
    except BlockingIOError:
        pass
    log: list[tuple[float, str]] = []

    def writer() -> TaskBody:
        yield writable(a)
        log.append((clock() - START, f"writable after {a.send(b'!')} byte"))

    def drainer() -> TaskBody:
        yield sleep(3)
        drained = 0
        while drained < queued:
            yield readable(b)
            drained += len(b.recv(1 << 20))
        log.append((clock() - START, "drained"))

    fake_time.spawn(writer())
    fake_time.spawn(drainer())
    fake_time.run()
    assert log and log[0][0] == 3, (
        f"got {log}: the writer must wait until the reader drained the full buffer at t=3 "
        "(register the socket for EVENT_WRITE)"
    )
    assert sorted(text for _, text in log) == ["drained", "writable after 1 byte"], f"got {log}"


@pytest.mark.stage(3, "waiting on sockets")
def test_one_task_can_read_a_socket_while_another_waits_to_write_it(
    fake_time: Scheduler, clock: ManualClock, socketpair: tuple[socket.socket, socket.socket]
) -> None:
    """Two tasks on one socket: one registration with both events, each wake-up to its own task."""
    a, b = socketpair
    log: list[str] = []

    def reader() -> TaskBody:
        yield readable(a)
        log.append(f"read {a.recv(10).decode()}")

    def writer() -> TaskBody:
        yield sleep(1)
        yield writable(a)
        a.send(b"pong")
        log.append("wrote")

    def peer() -> TaskBody:
        yield sleep(2)
        b.send(b"ping")
        yield readable(b)
        log.append(f"peer got {b.recv(10).decode()}")

    for body in (reader(), writer(), peer()):
        fake_time.spawn(body)
    fake_time.run()
    assert log == ["wrote", "read ping", "peer got pong"], (
        f"got {log}: one socket, a reader and a writer waiting on it. When the write event fires, the "
        "reader still waits: keep its event registered (selector.modify to what is left), unregister "
        "only when nobody waits, and wake each task only for its own event"
    )


@pytest.mark.stage(3, "waiting on sockets")
def test_io_is_polled_even_while_some_task_is_always_ready(
    clock: ManualClock, socketpair: tuple[socket.socket, socket.socket]
) -> None:
    a, b = socketpair
    sched = Scheduler(clock=clock, selector=AutojumpSelector(clock, max_idle_polls=None))
    got: list[bytes] = []
    b.send(b"data")  # `a` is readable from the start

    def reader() -> TaskBody:
        yield readable(a)
        got.append(a.recv(10))

    def spinner() -> TaskBody:
        for _ in range(10_000):
            if got:
                return
            yield  # always ready again at once
        raise AssertionError(
            "the reader starved: its socket was readable the whole time, but while another task was "
            "ready the scheduler never polled I/O. Poll (select with timeout 0) on every round"
        )

    sched.spawn(reader())
    sched.spawn(spinner())
    try:
        sched.run()
    finally:
        sched.selector.close()
    assert got == [b"data"]


# --- a real TCP echo server -------------------------------------------------------------------------


class Clients:
    """Real client sockets, driven from a thread while the scheduler runs in the test's thread."""

    def __init__(self) -> None:
        self.sockets: list[socket.socket] = []
        self.listener = make_listener()
        self.port = self.listener.getsockname()[1]

    def connect(self, small_buffers: bool = False) -> socket.socket:
        sock = socket.socket()
        if small_buffers:
            shrink_buffers(sock, socket.SO_RCVBUF)
        sock.settimeout(4)
        sock.connect(("127.0.0.1", self.port))
        self.sockets.append(sock)
        return sock

    def close(self) -> None:
        for sock in self.sockets:
            with contextlib.suppress(OSError):  # wakes a client thread blocked in recv() on it
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()
        self.listener.close()


PARTIAL_SENDS = (
    "On a non-blocking socket send() may take only part of the data (it returns how much) and "
    "raises BlockingIOError when the buffer is full; sendall() can't be used. Loop: yield "
    "writable(conn), send, keep what was not sent, until nothing is left"
)


def make_listener(small_buffers: bool = False) -> socket.socket:
    sock = socket.socket()
    if small_buffers:
        # Accepted sockets inherit this: the server reads big chunks (its receive buffer is the
        # usual size) but can hand the kernel only a few KiB at a time.
        shrink_buffers(sock, socket.SO_SNDBUF)
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    return sock


def unread(sock: socket.socket) -> int:
    """Bytes waiting in `sock`'s receive queue (FIONREAD)."""
    return struct.unpack("i", fcntl.ioctl(sock.fileno(), termios.FIONREAD, b"\0\0\0\0"))[0]


def shrink_buffers(sock: socket.socket, option: int) -> None:
    sock.setsockopt(socket.SOL_SOCKET, option, 4096)


@pytest.fixture
def clients() -> Iterator[Clients]:
    made = Clients()
    yield made
    made.close()


def recv_exactly(sock: socket.socket, n: int, who: str) -> bytes:
    data = b""
    while len(data) < n:
        try:
            chunk = sock.recv(n - len(data))
        except TimeoutError:
            chunk = None
        if not chunk:
            raise AssertionError(
                f"{who}: got {len(data)} of {n} bytes back, then "
                f"{'silence for 4 s' if chunk is None else 'the server closed the connection'}"
            )
        data += chunk
    return data


def serve(sched: Scheduler, clients: Clients, count: int, script: Callable[[], Any]) -> Any:
    """Run the echo server in this thread and `script` (the clients) in another; return its result."""
    sched.spawn(echo_server(sched, clients.listener, count), name="echo-server")
    talk = Background(script, name="clients")
    try:
        try:
            sched.run()
        except Exception as exc:
            clients.close()  # the clients' own verdict first: it usually names the cause
            try:
                talk.result(timeout=8)
            except AssertionError as verdict:
                raise verdict from exc
            except Exception:
                pass
            hint = PARTIAL_SENDS if isinstance(exc, BlockingIOError) else "see the traceback above"
            raise AssertionError(f"the scheduler stopped with {exc!r} while serving real clients: {hint}") from exc
        return talk.result(timeout=8)
    finally:
        clients.close()  # unblocks the client thread if the server failed
        talk.thread.join(5)
        sched.close()


@pytest.mark.stage(4, "a real echo server")
def test_the_echo_server_serves_several_real_clients_at_once(clients: Clients) -> None:
    def script() -> list[str]:
        socks = {name: clients.connect() for name in "ABC"}
        heard = []
        try:
            # Each client talks while the others are connected and silent: a server that serves
            # one client at a time answers A and leaves C waiting forever.
            for turn, name in enumerate("CBACAB"):
                message = f"{name} says {turn}\n".encode()
                socks[name].sendall(message)
                try:
                    heard.append(recv_exactly(socks[name], len(message), f"client {name}").decode())
                except AssertionError as exc:
                    others = sorted(set("ABC") - {name})
                    raise AssertionError(
                        f"{exc} while clients {others} were connected and silent. Does the server "
                        "handle one client at a time? Spawn a task per connection, and never call "
                        "a blocking recv()/accept() without yielding readable() first"
                    ) from None
        finally:
            for sock in socks.values():
                sock.close()  # EOF for the server, also when a turn failed
        return heard

    heard = serve(Scheduler(), clients, 3, script)
    assert heard == [f"{name} says {turn}\n" for turn, name in enumerate("CBACAB")]


@pytest.mark.stage(4, "a real echo server")
def test_a_large_echo_survives_partial_sends(clients: Clients) -> None:
    """A 512 KiB echo through a 4 KiB send buffer: send() takes only part of the data each time."""
    clients.listener.close()
    clients.listener = make_listener(small_buffers=True)
    clients.port = clients.listener.getsockname()[1]
    payload = random.Random(5).randbytes(1 << 19)

    def script() -> bytes:
        sock = clients.connect(small_buffers=True)
        sender = Background(sock.sendall, payload, name="sender")  # talks while we listen
        try:
            echoed = recv_exactly(sock, len(payload), "the 512 KiB client")
        except AssertionError as exc:
            raise AssertionError(f"{exc}. {PARTIAL_SENDS}") from None
        finally:
            sock.shutdown(socket.SHUT_RDWR)  # wakes the sender if it is still stuck
            sender.thread.join(5)
            sock.close()
        return echoed

    echoed = serve(Scheduler(), clients, 1, script)
    first_bad = next((i for i, (x, y) in enumerate(zip(echoed, payload, strict=False)) if x != y), None)
    assert echoed == payload, f"the echo differs from what was sent, first at byte {first_bad}"


@pytest.mark.stage(4, "a real echo server")
def test_a_client_that_does_not_read_its_echo_does_not_freeze_the_others(clients: Clients) -> None:
    """A slow peer: the hog sends 1 MiB and reads nothing back for a while. Its echo task must wait
    in writable() while the server keeps serving the other client."""
    clients.listener.close()
    clients.listener = make_listener(small_buffers=True)
    clients.port = clients.listener.getsockname()[1]
    payload = random.Random(7).randbytes(1 << 20)

    def script() -> bytes:
        hog = clients.connect(small_buffers=True)
        sender = Background(hog.sendall, payload, name="hog-sender")
        try:
            wait_until(lambda: unread(hog) > 0, what="the first bytes of the hog's echo")
            talker = clients.connect()
            for turn in range(5):
                message = f"still there? {turn}\n".encode()
                talker.sendall(message)
                try:
                    recv_exactly(talker, len(message), "the talker")
                except AssertionError as exc:
                    raise AssertionError(
                        f"{exc} while another client was not reading its echo: a blocking send() "
                        "on its socket froze every task. Make accepted sockets non-blocking "
                        "(setblocking(False)) and wait with writable()"
                    ) from None
            talker.close()
            echoed = recv_exactly(hog, len(payload), "the hog, once it read")
        finally:
            hog.shutdown(socket.SHUT_RDWR)
            sender.thread.join(5)
            hog.close()
        return echoed

    echoed = serve(Scheduler(), clients, 2, script)
    assert echoed == payload, "the hog's echo differs from what it sent"


@pytest.mark.stage(4, "a real echo server")
def test_a_client_that_half_closes_gets_every_byte_back_then_end_of_file(clients: Clients) -> None:
    """`shutdown(SHUT_WR)` (like `nc -N`): the server sees EOF, echoes what it has, closes its side."""

    def script() -> bytes:
        sock = clients.connect()
        try:
            for piece in (b"one ", "dvě ".encode(), b"\x00three"):
                sock.sendall(piece)
            sock.shutdown(socket.SHUT_WR)
            data = b""
            while chunk := sock.recv(4096):
                data += chunk
        except TimeoutError:
            raise AssertionError(
                f"got {data!r}, then silence: after the client's EOF (recv() returned b'') the server "
                "must close the connection"
            ) from None
        finally:
            sock.close()
        return data

    gc.collect()  # leftovers of earlier tests are not this server's
    port = clients.port
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ResourceWarning)
        echoed = serve(Scheduler(), clients, 1, script)
        gc.collect()
    assert echoed == "one dvě \x00three".encode()
    leaked = [
        str(w.message)
        for w in caught
        if issubclass(w.category, ResourceWarning) and f"laddr=('127.0.0.1', {port})" in str(w.message)
    ]
    assert not leaked, (
        f"{leaked}: the server left its end of the connection for the garbage collector to close. "
        "Close it yourself when the client is done (try/finally: conn.close()): a server that "
        "waits for the GC runs out of file descriptors"
    )
