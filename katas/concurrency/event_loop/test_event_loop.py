"""Tests for the event loop: callbacks, timers on a fake clock, futures, tasks, sockets, and real HTTP."""

from __future__ import annotations

import asyncio
import gc
import itertools
import selectors
import socket
import threading
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from dojo import testing
from dojo.testing import ManualClock

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


class AutojumpSelector(testing.AutojumpSelector):
    """Virtual time: the selector jumps the clock to the next timer instead of waiting."""

    waiter = "the loop"
    deadlock_hint = ("Was a timer forgotten (then the timeout is the time until it is due), or a "
                     "reader/writer left registered?")
    busy_wait_hint = "With no callback ready, block in select() until the next timer is due"


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(START)


@pytest.fixture
def loop(clock: ManualClock) -> Iterator[EventLoop]:
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


def elapsed(clock: ManualClock) -> float:
    return clock() - START


# --- callbacks and timers ---------------------------------------------------------------------------


@pytest.mark.stage(1, "callbacks and timers")
def test_call_soon_runs_callbacks_in_order_with_their_arguments(loop: EventLoop) -> None:
    log: list[str] = []
    done = loop.create_future()
    loop.call_soon(log.append, "first")
    loop.call_soon(lambda a, b: log.append(f"{a}+{b}"), "x", "y")
    loop.call_soon(done.set_result, "finished")
    assert log == [], "call_soon must only schedule the callback, not run it"
    assert loop.run_until_complete(done) == "finished"
    assert log == ["first", "x+y"], f"got {log}: callbacks run first in, first out"


@pytest.mark.stage(1, "callbacks and timers")
def test_call_later_fires_in_deadline_order_at_the_right_times(loop: EventLoop, clock: ManualClock) -> None:
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


@pytest.mark.stage(1, "callbacks and timers")
def test_waiting_for_a_timer_blocks_in_select_instead_of_busy_waiting(loop: EventLoop, clock: ManualClock) -> None:
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


@pytest.mark.stage(1, "callbacks and timers")
def test_a_cancelled_timer_never_runs(loop: EventLoop, clock: ManualClock) -> None:
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


@pytest.mark.stage(3, "readers and writers")
def test_a_callback_that_keeps_rescheduling_itself_does_not_starve_io(
    clock: ManualClock, socketpair: tuple[socket.socket, socket.socket]
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


@pytest.mark.stage(1, "callbacks and timers")
def test_a_callback_scheduled_by_a_callback_runs_in_the_next_iteration(loop: EventLoop) -> None:
    log: list[str] = []
    selector = loop.selector
    assert isinstance(selector, AutojumpSelector)
    real_select = selector.select

    def logging_select(timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        log.append("select")
        return real_select(timeout)

    selector.select = logging_select  # type: ignore[method-assign]
    done = loop.create_future()

    def first() -> None:
        log.append("first")
        loop.call_soon(log.append, "child of first")

    loop.call_soon(first)
    loop.call_soon(log.append, "second")
    loop.call_soon(loop.call_soon, done.set_result, None)
    loop.run_until_complete(done)
    assert log[:5] == ["select", "first", "second", "select", "child of first"], (
        f"events {log}: one iteration runs only the callbacks that were ready when it began; what "
        "they schedule waits for the next iteration, after select() has polled I/O again"
    )


@pytest.mark.stage(3, "readers and writers")
def test_select_gets_timeout_zero_while_callbacks_are_ready_and_none_only_for_sockets_alone(
    loop: EventLoop, clock: ManualClock, socketpair: tuple[socket.socket, socket.socket]
) -> None:
    a, b = socketpair
    done = loop.create_future()
    selector = loop.selector
    assert isinstance(selector, AutojumpSelector)
    count = 0

    def again() -> None:
        nonlocal count
        count += 1
        if count < 5:
            loop.call_soon(again)

    loop.call_soon(again)
    loop.run_until_complete(loop.create_task(sleep(loop, 0)))
    assert set(selector.timeouts) == {0}, (
        f"timeouts {selector.timeouts}: while a callback is ready, select() must poll with exactly 0"
    )
    selector.timeouts.clear()
    loop.add_reader(a, lambda: (loop.remove_reader(a), done.set_result(a.recv(10))))
    real_select = selector.select
    asked: list[float | None] = []

    def peer_sends_when_asked_to_wait_forever(timeout: float | None = None) -> Any:
        asked.append(timeout)
        if timeout is None:
            b.send(b"late")  # the peer answers while the loop waits
        return real_select(0 if timeout is None else timeout)

    selector.select = peer_sends_when_asked_to_wait_forever  # type: ignore[method-assign]
    assert loop.run_until_complete(done) == b"late"
    assert None in asked and all(t == 0 for t in asked[: asked.index(None)]), (
        f"timeouts {asked}: with only a socket to wait for, select() waits with None (forever)"
    )


@pytest.mark.stage(1, "callbacks and timers")
def test_timers_due_together_fire_in_the_order_they_were_scheduled(loop: EventLoop, clock: ManualClock) -> None:
    log: list[tuple[float, str]] = []
    done = loop.create_future()
    note = lambda name: log.append((elapsed(clock), name))  # noqa: E731
    loop.call_later(2, note, "late")
    for name in "abcdefgh":
        loop.call_later(1, note, name)
    loop.call_later(0, note, "zero")
    loop.call_later(-1, note, "negative")
    loop.call_soon(note, "soon")
    loop.call_later(3, done.set_result, None)
    loop.run_until_complete(done)
    expected = [(0, "soon"), (0, "negative"), (0, "zero"), *[(1, n) for n in "abcdefgh"], (2, "late")]
    assert log == expected, (
        f"expected {expected}, got {log}: timers fire in deadline order, ties in the order they were "
        "scheduled (a counter after the deadline in each heap entry); a delay of 0 or less is due at "
        "once, after the callbacks call_soon already queued"
    )


@pytest.mark.stage(1, "callbacks and timers")
def test_a_cancelled_timer_does_not_wake_the_loop(loop: EventLoop, clock: ManualClock) -> None:
    done = loop.create_future()
    loop.call_later(5, done.set_result, "too early").cancel()
    loop.call_later(8, done.set_result, "on time")
    assert loop.run_until_complete(done) == "on time"
    selector = loop.selector
    assert isinstance(selector, AutojumpSelector)
    assert 5.0 not in selector.timeouts and 8.0 in selector.timeouts, (
        f"timeouts {selector.timeouts}: a cancelled timer is no reason to wake up; drop cancelled "
        "timers from the head of the heap before computing the timeout"
    )


@pytest.mark.stage(1, "callbacks and timers")
def test_cancelling_a_handle_after_it_ran_changes_nothing(loop: EventLoop) -> None:
    log: list[str] = []
    done = loop.create_future()
    handle = loop.call_soon(log.append, "ran")
    loop.call_soon(handle.cancel)
    loop.call_soon(loop.call_soon, done.set_result, None)
    loop.run_until_complete(done)
    assert log == ["ran"]


@pytest.mark.stage(1, "callbacks and timers")
def test_close_releases_the_selector(clock: ManualClock) -> None:
    loop = EventLoop(clock=clock, selector=AutojumpSelector(clock))
    assert loop.run_until_complete(sleep(loop, 1, "rested")) == "rested"
    loop.close()
    assert loop.selector.get_map() is None, "close() must close the selector (its epoll fd)"


@pytest.mark.stage(1, "callbacks and timers")
def test_an_exception_in_a_plain_callback_comes_out_of_run_until_complete(loop: EventLoop) -> None:
    def broken() -> None:
        raise KeyError("callback failed")

    loop.call_soon(broken)
    with pytest.raises(KeyError, match="callback failed"):
        loop.run_until_complete(loop.create_future())


# A program of callbacks, run on asyncio and on EventLoop: each node is scheduled with call_soon or
# call_later(delay) and, when it runs, logs its name and the time, schedules its children and
# cancels the handles of earlier nodes. Every delay is a whole number plus its own power of two
# (1/2, 1/4, ...), so no two timers are due at the same moment (asyncio leaves ties unordered).


@dataclass
class Node:
    name: str
    delay: float | None  # None: call_soon
    children: list[Node]
    cancels: list[int]  # indexes into the list of nodes scheduled so far


@st.composite
def programs(draw: st.DrawFn) -> list[Node]:
    counter = itertools.count(1)

    def node(depth: int) -> Node:
        number = next(counter)
        whole = draw(st.sampled_from([None, -1, 0, 1, 2, 5]))
        delay = None if whole is None else whole + 2.0**-number
        most = 3 if depth < 2 and number < 14 else 0  # at most 16 nodes: 2**-16 is far above the clock's resolution
        children = [node(depth + 1) for _ in range(min(draw(st.integers(0, most)), 16 - number))]
        cancels = draw(st.lists(st.integers(0, 30), max_size=2))
        return Node(f"n{number}", delay, children, cancels)

    return [node(0) for _ in range(draw(st.integers(1, 3)))]


def run_program(loop: Any, roots: list[Node]) -> list[tuple[float, str]]:
    log: list[tuple[float, str]] = []
    handles: list[Any] = []
    start = loop.time()

    def schedule(node: Node) -> None:
        if node.delay is None:
            handles.append(loop.call_soon(run, node))
        else:
            handles.append(loop.call_later(node.delay, run, node))

    def run(node: Node) -> None:
        log.append((loop.time() - start, node.name))
        for child in node.children:
            schedule(child)
        for index in node.cancels:
            if index < len(handles):
                handles[index].cancel()

    for root in roots:
        schedule(root)
    done = loop.create_future()
    loop.call_later(100, done.set_result, None)
    loop.run_until_complete(done)
    return log


@pytest.mark.stage(1, "callbacks and timers")
@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.shrink],
)
@given(roots=programs())
def test_any_program_of_callbacks_and_timers_runs_as_on_asyncio(roots: list[Node]) -> None:
    oracle_clock = ManualClock(START)
    oracle = asyncio.SelectorEventLoop(AutojumpSelector(oracle_clock))
    oracle.time = oracle_clock  # type: ignore[method-assign]
    try:
        expected = run_program(oracle, roots)
    finally:
        oracle.close()
    clock = ManualClock(START)
    loop = EventLoop(clock=clock, selector=AutojumpSelector(clock))
    try:
        got = run_program(loop, roots)
    finally:
        loop.selector.close()
    assert got == expected, (
        f"(virtual time, callback) on your loop: {got}\non asyncio: {expected}\nfor the program {roots}. "
        "An iteration runs the callbacks ready when it began (call_soon FIFO, then the timers that are "
        "due, in deadline order); what they schedule waits for the next; cancelled handles never run; "
        "a negative delay is simply due"
    )


# --- futures ---------------------------------------------------------------------------------------


@pytest.mark.stage(2, "futures and tasks")
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


@pytest.mark.stage(2, "futures and tasks")
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


def refused(call: Any, why: str) -> None:
    try:
        call()
    except InvalidStateError:
        return
    pytest.fail(f"no InvalidStateError: {why}")


@pytest.mark.stage(2, "futures and tasks")
def test_every_wrong_state_raises_invalid_state_error(loop: EventLoop) -> None:
    pending = loop.create_future()
    refused(pending.result, "result() of a pending future has nothing to return")
    refused(pending.exception, "exception() of a pending future has nothing to return")
    with_value = loop.create_future()
    with_value.set_result(None)  # None is a result like any other
    assert with_value.done() and with_value.result() is None and with_value.exception() is None
    failed = loop.create_future()
    failed.set_exception(KeyboardInterrupt())
    for future, state in ((with_value, "a result"), (failed, "an exception")):
        refused(lambda f=future: f.set_result(1), f"set_result() on a future that already holds {state}")
        refused(lambda f=future: f.set_exception(ValueError()), f"set_exception() on a future that holds {state}")
    assert with_value.result() is None, "a refused second set_result() must not change the result"
    assert isinstance(failed.exception(), KeyboardInterrupt), "a future holds a BaseException too"


@pytest.mark.stage(2, "futures and tasks")
def test_done_callbacks_run_in_the_order_they_were_added_and_each_gets_the_future(loop: EventLoop) -> None:
    log: list[tuple[str, Any]] = []
    fut = loop.create_future()
    for name in "abc":
        fut.add_done_callback(lambda f, n=name: log.append((n, f)))
    loop.call_soon(fut.set_exception, OSError("boom"))
    with pytest.raises(OSError):
        loop.run_until_complete(fut)
    finisher = loop.create_future()
    loop.call_soon(finisher.set_result, None)
    loop.run_until_complete(finisher)
    assert log == [("a", fut), ("b", fut), ("c", fut)], (
        f"got {log}: every done callback runs once, in the order added, with the future as its argument, "
        "also when the future failed"
    )


# --- tasks -------------------------------------------------------------------------------------------


@pytest.mark.stage(2, "futures and tasks")
def test_a_task_awaits_a_future_and_returns_the_coroutines_value(loop: EventLoop, clock: ManualClock) -> None:
    fut = loop.create_future()
    loop.call_later(2, fut.set_result, 20)

    async def main() -> tuple[float, int]:
        value = await fut
        return elapsed(clock), value + 1

    assert loop.run_until_complete(main()) == (2, 21)


@pytest.mark.stage(2, "futures and tasks")
def test_tasks_run_concurrently_so_their_sleeps_overlap(loop: EventLoop, clock: ManualClock) -> None:
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


@pytest.mark.stage(2, "futures and tasks")
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


@pytest.mark.stage(2, "futures and tasks")
def test_a_task_that_awaits_a_done_future_goes_straight_on(loop: EventLoop) -> None:
    ready = loop.create_future()
    ready.set_result("already there")
    log: list[str] = []

    async def main() -> str:
        log.append("before")
        value = await ready
        log.append("after")
        return value

    task = loop.create_task(main())
    assert log == [], "create_task() schedules the first step with call_soon; it does not run it inline"
    assert loop.run_until_complete(task) == "already there"
    assert log == ["before", "after"]


@pytest.mark.stage(2, "futures and tasks")
@pytest.mark.parametrize("error", [KeyboardInterrupt, SystemExit], ids=["KeyboardInterrupt", "SystemExit"])
def test_a_base_exception_in_a_task_stops_the_loop(loop: EventLoop, error: type[BaseException]) -> None:
    async def interrupted() -> None:
        await sleep(loop, 1)
        raise error("stop everything")

    loop.create_task(interrupted())
    forever = loop.create_future()
    loop.call_later(10, forever.set_result, "the loop kept running")
    try:
        outcome = loop.run_until_complete(forever)
    except error:
        return
    pytest.fail(
        f"{error.__name__} raised in a task did not stop the loop ({outcome!r}): a task fails only with "
        "an Exception; catch `Exception`, not `BaseException`, around the coroutine's step"
    )


@pytest.mark.stage(2, "futures and tasks")
def test_a_task_that_awaits_something_other_than_a_future_fails_with_type_error(loop: EventLoop) -> None:
    class NotAFuture:
        def __await__(self) -> Any:
            yield "not a future"

    log: list[str] = []

    async def confused() -> None:
        try:
            await NotAFuture()
        finally:
            log.append("cleaned up")

    task = loop.create_task(confused())
    with pytest.raises(TypeError):
        loop.run_until_complete(task)
    assert isinstance(task.exception(), TypeError), "the task itself holds the TypeError"
    assert log == ["cleaned up"], (
        "the task failed, but the coroutine is still suspended inside its try: close() it, so its "
        "finally blocks run now (not whenever the garbage collector gets to it)"
    )


# --- sockets ---------------------------------------------------------------------------------------


@pytest.mark.stage(4, "socket coroutines")
def test_sock_recv_waits_for_data_then_stops_watching_the_socket(
    loop: EventLoop, clock: ManualClock, socketpair: tuple[socket.socket, socket.socket]
) -> None:
    a, b = socketpair
    loop.call_later(2, b.send, b"hello")

    async def main() -> tuple[float, bytes]:
        data = await sock_recv(loop, a, 100)
        return elapsed(clock), data

    assert loop.run_until_complete(main()) == (2, b"hello")
    left = [key.fileobj for key in loop.selector.get_map().values()]
    assert not left, f"still registered after sock_recv returned: {left}; call remove_reader()"


@pytest.mark.stage(4, "socket coroutines")
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


@pytest.mark.stage(4, "socket coroutines")
def test_sock_sendall_onto_a_socket_that_is_already_full_loses_nothing(
    loop: EventLoop, socketpair: tuple[socket.socket, socket.socket]
) -> None:
    a, b = socketpair
    queued = 0
    try:
        while True:  # fill the buffers: the very first send() of sock_sendall will raise BlockingIOError
            queued += a.send(b"." * 65536)
    except BlockingIOError:
        pass
    payload = bytes(range(256)) * 64

    async def reader() -> bytes:
        got = bytearray()
        while len(got) < queued + len(payload):
            chunk = await sock_recv(loop, b, 65536)
            if not chunk:
                break
            got += chunk
        return bytes(got[queued:])

    async def main() -> bytes:
        receiving = loop.create_task(reader())
        await sock_sendall(loop, a, payload)
        data: bytes = await receiving
        return data

    cause = "a send() that raised BlockingIOError took nothing: wait until writable and send the same bytes again"
    try:
        got = loop.run_until_complete(main())
    except AssertionError as exc:
        if not str(exc).startswith("deadlock"):
            raise
        raise AssertionError(f"the reader waited for bytes that never came: {cause}") from exc
    assert got == payload, f"received {len(got)} bytes after the filler, expected the {len(payload)} sent: {cause}"


@pytest.mark.stage(4, "socket coroutines")
def test_sock_connect_waits_while_the_handshake_is_in_progress(loop: EventLoop) -> None:
    """A listener whose accept queue is full (backlog 0, one connection waiting) drops new SYNs:
    the next connect stays in progress."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    first = socket.create_connection(listener.getsockname(), timeout=5)
    sock = socket.socket()
    sock.setblocking(False)
    try:
        connecting = sock_connect(loop, sock, listener.getsockname())
        task = loop.create_task(connecting)
        loop.run_until_complete(sleep(loop, 1))
        assert not task.done(), (
            f"sock_connect finished ({task.exception() or 'connected'}) while the handshake was still "
            "in progress: after EINPROGRESS, wait until the socket is writable, then read SO_ERROR"
        )
    finally:
        connecting.close()  # its cleanup runs now, while the socket is still open
        sock.close()
        first.close()
        listener.close()


@pytest.mark.stage(4, "socket coroutines")
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


@pytest.mark.stage(3, "readers and writers")
def test_a_reader_is_called_every_iteration_while_its_socket_stays_readable(
    loop: EventLoop, socketpair: tuple[socket.socket, socket.socket]
) -> None:
    a, b = socketpair
    b.send(b"unread")
    calls = 0
    done = loop.create_future()

    def on_readable() -> None:
        nonlocal calls
        calls += 1  # never reads: the socket stays readable
        if calls == 3:
            assert loop.remove_reader(a) is not False
            loop.call_later(1, done.set_result, None)

    loop.add_reader(a, on_readable)
    loop.run_until_complete(done)
    assert calls == 3, (
        f"the reader ran {calls} times: it runs once per iteration while the socket is readable, "
        "and never after remove_reader()"
    )


@pytest.mark.stage(3, "readers and writers")
def test_remove_reader_cancels_a_callback_already_queued_in_this_iteration(
    loop: EventLoop, socketpair: tuple[socket.socket, socket.socket]
) -> None:
    a, b = socketpair
    c, d = socket.socketpair()
    try:
        c.setblocking(False)
        b.send(b"1")
        d.send(b"2")  # a and c are both readable in the first iteration
        log: list[str] = []
        done = loop.create_future()

        def first(mine: socket.socket, other: socket.socket, name: str) -> None:
            log.append(name)
            loop.remove_reader(mine)
            loop.remove_reader(other)  # its callback may already be queued behind this one

        loop.add_reader(a, first, a, c, "a")
        loop.add_reader(c, first, c, a, "c")
        loop.call_later(1, done.set_result, None)
        loop.run_until_complete(done)
        assert len(log) == 1, (
            f"both readers ran ({log}) though the first removed the other: remove_reader() must also "
            "cancel the handle, which select() may already have queued in this iteration"
        )
    finally:
        c.close()
        d.close()


REPLACED = (
    "got {log}: add_reader() on a socket that has a reader replaces it; the old callback must not "
    "run again, not even the one select() already queued in this iteration (cancel it)"
)


@pytest.mark.stage(3, "readers and writers")
def test_add_reader_again_replaces_the_callback_even_one_already_queued(
    loop: EventLoop, socketpair: tuple[socket.socket, socket.socket]
) -> None:
    a, b = socketpair
    c, d = socket.socketpair()
    try:
        c.setblocking(False)
        b.send(b"1")
        d.send(b"2")  # a and c are both readable in the first iteration
        log: list[str] = []
        done = loop.create_future()

        def old(name: str) -> None:
            if log:  # the first old callback replaced this one: it must not run
                log.append(f"old {name}")
                loop.remove_reader(a if name == "a" else c)
                done.set_exception(AssertionError(REPLACED.format(log=log)))
                return
            log.append(f"old {name}")
            (a if name == "a" else c).recv(10)  # drained: not readable any more
            if len(log) == 1:  # whichever runs first swaps the other's callback
                other = c if name == "a" else a
                loop.add_reader(other, new, "c" if name == "a" else "a")

        def new(name: str) -> None:
            log.append(f"new {name}")
            loop.remove_reader(a if name == "a" else c)
            if not done.done():
                done.set_result(None)

        loop.add_reader(a, old, "a")
        loop.add_reader(c, old, "c")
        loop.run_until_complete(done)
        assert len(log) == 2 and log[1].startswith("new"), REPLACED.format(log=log)
    finally:
        loop.remove_reader(a)
        loop.remove_reader(c)
        c.close()
        d.close()


@pytest.mark.stage(3, "readers and writers")
def test_remove_reader_and_writer_say_whether_a_callback_was_registered(
    loop: EventLoop, socketpair: tuple[socket.socket, socket.socket]
) -> None:
    a, _ = socketpair
    assert loop.remove_reader(a) is False and loop.remove_writer(a) is False, (
        "nothing was registered: remove_reader()/remove_writer() return False"
    )
    loop.add_reader(a, print)
    assert loop.remove_writer(a) is False, "only a reader was registered: remove_writer() returns False"
    assert loop.remove_reader(a) is True, "a reader was registered: remove_reader() returns True"
    assert loop.remove_reader(a) is False, "removed already: remove_reader() returns False"
    assert not loop.selector.get_map(), "nothing is registered any more"


@pytest.mark.stage(3, "readers and writers")
def test_a_reader_and_a_writer_on_one_socket_each_get_their_own_event(
    loop: EventLoop, socketpair: tuple[socket.socket, socket.socket]
) -> None:
    a, b = socketpair
    log: list[str] = []
    done = loop.create_future()

    def on_writable() -> None:
        loop.remove_writer(a)
        a.send(b"ping")
        log.append("wrote")

    def on_readable() -> None:
        loop.remove_reader(a)
        log.append(f"read {a.recv(10).decode()}")
        done.set_result(None)

    def peer_replies() -> None:
        loop.remove_reader(b)
        b.send(b.recv(10).replace(b"i", b"o"))

    loop.add_reader(a, on_readable)
    loop.add_writer(a, on_writable)
    loop.add_reader(b, peer_replies)
    loop.run_until_complete(done)
    assert log == ["wrote", "read pong"], (
        f"got {log}: one socket with a reader and a writer is registered once for both events; "
        "removing one must keep the other (selector.modify), and each event runs its own callback"
    )
    assert not loop.selector.get_map(), "everything was removed: nothing may stay registered"


@pytest.mark.stage(3, "readers and writers")
def test_removing_the_writer_keeps_the_reader_and_stops_the_write_events(
    loop: EventLoop, clock: ManualClock, socketpair: tuple[socket.socket, socket.socket]
) -> None:
    a, b = socketpair
    log: list[str] = []
    loop.add_reader(a, lambda: log.append(f"read {a.recv(10).decode()}"))
    loop.add_writer(a, log.append, "writable")
    assert loop.remove_writer(a) is True
    selector = loop.selector
    assert isinstance(selector, AutojumpSelector)
    real_select = selector.select
    wake_ups: list[float | None] = []

    def counting_select(timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        wake_ups.append(timeout)
        if len(wake_ups) > 100:
            raise AssertionError(
                "select() returned at once 100 times while only a 5 s timer and an idle reader were left: "
                "the socket is still registered for EVENT_WRITE after remove_writer(). Modify the "
                "registration to the events still wanted"
            )
        return real_select(timeout)

    selector.select = counting_select  # type: ignore[method-assign]
    loop.call_later(5, b.send, b"hi")
    done = loop.create_future()
    loop.call_later(6, done.set_result, None)
    loop.run_until_complete(done)
    loop.remove_reader(a)
    assert log == ["read hi"], f"got {log}: the writer was removed before it could run, the reader stays"


@pytest.mark.stage(4, "socket coroutines")
def test_sock_recv_returns_empty_bytes_when_the_peer_closes(
    loop: EventLoop, socketpair: tuple[socket.socket, socket.socket]
) -> None:
    a, b = socketpair
    loop.call_later(1, b.close)

    async def main() -> bytes:
        return await sock_recv(loop, a, 100)

    assert loop.run_until_complete(main()) == b"", "a peer that closed means EOF: recv() returns b''"


@pytest.mark.stage(4, "socket coroutines")
def test_sock_connect_to_a_listening_socket_succeeds(real_loop: EventLoop) -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    sock = socket.socket()
    sock.setblocking(False)
    try:
        real_loop.run_until_complete(sock_connect(real_loop, sock, listener.getsockname()))
        peer, _ = listener.accept()
        with peer:
            peer.sendall(b"welcome")
            assert real_loop.run_until_complete(sock_recv(real_loop, sock, 100)) == b"welcome"
    finally:
        sock.close()
        listener.close()


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


@pytest.mark.stage(5, "a real http exchange")
def test_http_get_fetches_a_page_from_a_real_http_server(real_loop: EventLoop, server: Server) -> None:
    gc.collect()  # leftovers of earlier tests are not this request's
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ResourceWarning)
        response = real_loop.run_until_complete(http_get(real_loop, "127.0.0.1", server.port, "/hello"))
        gc.collect()
    leaked = [
        str(w.message)
        for w in caught
        if issubclass(w.category, ResourceWarning) and f"raddr=('127.0.0.1', {server.port})" in str(w.message)
    ]
    assert not leaked, (
        f"{leaked}: http_get left its socket for the garbage collector to close; close it yourself "
        "(try/finally), also when the request fails"
    )
    assert server.requests == [("/hello", f"127.0.0.1:{server.port}")], (
        f"the server received {server.requests}: send 'GET /hello HTTP/1.1' with a Host header"
    )
    assert (response.status, response.reason) == (200, "OK"), f"status line parsed as {response}"
    assert response.headers.get("content-type") == "text/plain; charset=utf-8", (
        f"headers {response.headers}: header names are case-insensitive, store them in lower case"
    )
    assert response.body == b"hello from http.server\n"


@pytest.mark.stage(5, "a real http exchange")
def test_http_get_reads_a_large_body_and_a_404(real_loop: EventLoop, server: Server) -> None:
    big = real_loop.run_until_complete(http_get(real_loop, "127.0.0.1", server.port, "/big"))
    assert len(big.body) == len(BIG) == int(big.headers["content-length"]), (
        f"body of {len(big.body)} bytes, the server sent {len(BIG)}: keep reading until recv "
        "returns b'' (the server closes the connection)"
    )
    assert big.body == BIG
    missing = real_loop.run_until_complete(http_get(real_loop, "127.0.0.1", server.port, "/nope"))
    assert missing.status == 404 and missing.body == b"no such page\n", f"got {missing}"


@pytest.mark.stage(5, "a real http exchange")
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


@pytest.mark.stage(5, "a real http exchange")
def test_http_get_from_a_slow_server_that_trickles_its_answer(real_loop: EventLoop) -> None:
    """A raw peer: mixed-case header names, a reason of two words, the answer a few bytes at a time."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    body = "žluťoučký kůň\r\n\r\nstill the body".encode()
    answer = (
        b"HTTP/1.1 404 Not Found\r\nX-Custom-Header:  spaced value \r\nCONTENT-LENGTH: %d\r\n"
        b"Connection: close\r\n\r\n" % len(body)
    ) + body
    seen: list[bytes] = []

    def serve() -> None:
        conn, _ = listener.accept()
        with conn:
            request = b""
            while b"\r\n\r\n" not in request:
                request += conn.recv(1024)
            seen.append(request)
            for i in range(0, len(answer), 7):
                conn.sendall(answer[i : i + 7])
                time.sleep(0.002)  # slow, not timed: only the order matters

    server = threading.Thread(target=serve, daemon=True)
    server.start()
    try:
        response = real_loop.run_until_complete(http_get(real_loop, "127.0.0.1", listener.getsockname()[1], "/x"))
    finally:
        server.join(5)
        listener.close()
    assert seen and seen[0].startswith(b"GET /x HTTP/1.1\r\n"), f"request line: {seen}"
    assert b"\r\nconnection: close\r\n" in seen[0].lower(), (
        f"request {seen}: ask for `Connection: close`, so the body ends where the stream ends"
    )
    assert (response.status, response.reason) == (404, "Not Found"), (
        f"status line parsed as {response.status!r}, {response.reason!r}: "
        "the reason is everything after the second space"
    )
    assert response.headers.get("x-custom-header") == "spaced value", (
        f"headers {response.headers}: names in lower case, values without the surrounding spaces"
    )
    assert response.headers.get("content-length") == str(len(body))
    assert response.body == body, (
        f"body {response.body!r}: it starts after the first empty line, and may itself hold CRLF CRLF; "
        "the answer came a few bytes at a time, so keep reading until recv() returns b''"
    )
