"""Tests for the thread pool: futures, parallelism, order, exceptions, shutdown, and idle CPU."""

from __future__ import annotations

import concurrent.futures
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from dojo.testing import Background, is_blocked, wait_until

from .thread_pool import CancelledError, Future, ThreadPool

# How long the CPU-use tests watch an idle process. Not a threshold on anything: they compare
# the CPU the process used while idle with what one spinning thread gets over the same time.
WATCH = 0.3


@pytest.fixture
def gate() -> Iterator[threading.Event]:
    """An event that blocked calls wait on; always opened at the end so no worker stays stuck."""
    event = threading.Event()
    yield event
    event.set()


@pytest.fixture
def make_pool(gate: threading.Event) -> Iterator[Callable[[int], ThreadPool]]:
    """Creates pools and shuts each one down after the test, whatever the test left running."""
    pools: list[ThreadPool] = []

    def make(workers: int) -> ThreadPool:
        pool = ThreadPool(workers)
        pools.append(pool)
        return pool

    yield make
    gate.set()
    stuck = 0
    for pool in pools:
        closer = Background(lambda p=pool: p.shutdown(wait=True, cancel_pending=True))
        closer.thread.join(3)  # bounded: a broken shutdown must not hang the teardown...
        stuck += closer.thread.is_alive()
    if stuck:  # ...nor pass unnoticed
        pytest.fail(
            f"after the test, shutdown(wait=True, cancel_pending=True) of {stuck} pool(s) had not "
            "returned after 3 s, with nothing left to run: a worker was never told to leave. "
            "shutdown() must wake every idle worker (notify_all(), not notify()) and each must "
            "return once it sees the flag and an empty queue",
            pytrace=False,
        )


def cpu_per_second(seconds: float = WATCH) -> float:
    """CPU seconds this whole process (all threads) used per wall-clock second, while we sleep."""
    wall, cpu = time.perf_counter(), time.process_time()
    time.sleep(seconds)
    return (time.process_time() - cpu) / (time.perf_counter() - wall)


def spinning_cpu_per_second(seconds: float = WATCH) -> float:
    """The same measure while one thread spins: what busy-waiting costs on this machine, now."""
    stop = threading.Event()

    def spin() -> None:
        while not stop.is_set():
            pass

    spinner = threading.Thread(target=spin, daemon=True)
    spinner.start()
    try:
        return cpu_per_second(seconds)
    finally:
        stop.set()
        spinner.join()


def assert_sleeps(idle: float, who: str, fix: str) -> None:
    """Idle must cost a small fraction of spinning (a ratio: the machine may be busy)."""
    busy = spinning_cpu_per_second()
    assert idle < 0.25 * busy, (
        f"while {who}, the process used {idle:.2f} CPU-seconds per second, "
        f"{idle / busy:.0%} of what one spinning thread uses here ({busy:.2f}): that is busy "
        f"waiting, burning a core to wait. {fix}"
    )


# -- the Future on its own ---------------------------------------------------------------------


@pytest.mark.stage(1, "the future")
def test_result_waits_until_another_thread_sets_the_value() -> None:
    future: Future[int] = Future()
    waiter = Background(future.result, name="waiter")
    assert is_blocked(waiter.thread), "result() on a pending future must wait, not return"
    assert not future.done()
    assert future.set_running()
    future.set_result(7)
    assert waiter.result() == 7
    assert future.done() and not future.cancelled() and not future.running()
    assert future.exception() is None


@pytest.mark.stage(1, "the future")
def test_result_with_a_timeout_raises_timeout_error_while_pending() -> None:
    future: Future[int] = Future()
    with pytest.raises(TimeoutError):
        future.result(timeout=0.05)
    with pytest.raises(TimeoutError):
        future.exception(timeout=0.05)
    assert not future.done()


@pytest.mark.stage(1, "the future")
def test_set_result_wakes_every_thread_waiting_on_the_future() -> None:
    future: Future[str] = Future()
    waiters = [Background(future.result, name=f"waiter-{i}") for i in range(3)]
    for w in waiters:
        assert is_blocked(w.thread)
    future.set_running()
    future.set_result("ready")
    for w in waiters:
        w.thread.join(2)
    still_waiting = [w.thread.name for w in waiters if w.thread.is_alive()]
    assert not still_waiting, (
        f"{still_waiting} still waiting after set_result(): one future can have many waiters, "
        "so finishing it must wake them all (notify_all(), not notify())"
    )
    assert [w.result() for w in waiters] == ["ready"] * 3


@pytest.mark.stage(1, "the future")
def test_cancelling_a_pending_future_wakes_its_waiters_with_cancelled_error() -> None:
    future: Future[int] = Future()
    waiter = Background(future.result, name="waiter")
    assert is_blocked(waiter.thread)
    assert future.cancel() is True
    assert future.cancelled() and future.done()
    with pytest.raises(CancelledError):
        waiter.result(timeout=2)
    assert future.cancel() is True, "cancelling a cancelled future again still reports True"
    assert future.set_running() is False, (
        "set_running() on a cancelled future must return False, so the worker skips the call"
    )


@pytest.mark.stage(1, "the future")
def test_a_running_or_finished_future_cannot_be_cancelled() -> None:
    future: Future[int] = Future()
    assert future.set_running() and future.running()
    assert future.cancel() is False, "cancel() on a running future must return False"
    assert not future.cancelled()
    future.set_result(1)
    assert future.cancel() is False, "cancel() on a finished future must return False"
    assert future.result() == 1


# -- the pool ---------------------------------------------------------------------------------


@pytest.mark.stage(2, "running calls on workers")
def test_submit_runs_the_call_on_a_worker_thread_and_returns_its_value(
    make_pool: Callable[[int], ThreadPool],
) -> None:
    pool = make_pool(2)

    def call(x: int, *, y: int) -> tuple[int, threading.Thread]:
        return x * y, threading.current_thread()

    value, thread = pool.submit(call, 6, y=7).result(timeout=5)
    assert value == 42
    assert thread is not threading.current_thread(), "the call ran in the caller's thread"


@pytest.mark.stage(2, "running calls on workers")
def test_the_pool_reuses_a_fixed_set_of_worker_threads(
    make_pool: Callable[[int], ThreadPool],
) -> None:
    pool = make_pool(2)
    futures = [pool.submit(threading.current_thread) for _ in range(20)]
    threads = {f.result(timeout=5) for f in futures}
    assert len(threads) <= 2, (
        f"20 calls ran on {len(threads)} different threads with workers=2: a pool starts its "
        "workers once and reuses them (a thread per call is what a pool exists to avoid)"
    )


@pytest.mark.stage(2, "running calls on workers")
def test_runs_as_many_calls_at_once_as_it_has_workers_and_never_more(
    make_pool: Callable[[int], ThreadPool], gate: threading.Event
) -> None:
    pool = make_pool(3)
    lock = threading.Lock()
    running = peak = started = 0

    def call(i: int) -> int:
        nonlocal running, peak, started
        with lock:
            running += 1
            started += 1
            peak = max(peak, running)
        gate.wait(5)
        with lock:
            running -= 1
        return i

    futures = [pool.submit(call, i) for i in range(9)]
    wait_until(
        lambda: started >= 3, timeout=3,
        what="3 calls to run at the same time on a pool with workers=3 (are the workers "
        "running calls outside the lock, in parallel?)",
    )
    time.sleep(0.1)  # give a pool that has too many threads the time to start a 4th call
    assert started == 3, (
        f"{started} calls were running at once on a pool with workers=3: at most `workers` "
        "calls may run at the same time; the rest wait in the queue"
    )
    gate.set()
    assert [f.result(timeout=5) for f in futures] == list(range(9))
    assert peak == 3


@pytest.mark.stage(2, "running calls on workers")
def test_an_exception_is_raised_by_result_and_the_worker_survives_it(
    make_pool: Callable[[int], ThreadPool],
) -> None:
    pool = make_pool(1)
    error = ValueError("boom-17")

    def fail() -> None:
        raise error

    future = pool.submit(fail)
    try:
        value = future.result(timeout=5)
    except ValueError as exc:
        assert exc is error, f"result() raised {exc!r}, not the exception the call raised"
    except TimeoutError:
        pytest.fail(
            "the future of a call that raised never finished: catch the exception in the worker "
            "and hand it to future.set_exception(), or the caller waits forever"
        )
    else:
        pytest.fail(
            f"result() returned {value!r} for a call that raised ValueError('boom-17'): the pool "
            "swallows exceptions. Deliver them through the future (set_exception) so result() "
            "re-raises them in the caller"
        )
    assert future.exception() is error
    try:
        after = pool.submit(lambda: "still here").result(timeout=5)
    except TimeoutError:
        pytest.fail(
            "the only worker stopped after a call raised: an exception must end the call, "
            "not the worker thread (catch it around the call, inside the worker's loop)"
        )
    assert after == "still here"


@pytest.mark.stage(3, "map")
def test_map_returns_results_in_input_order_not_completion_order(
    make_pool: Callable[[int], ThreadPool],
) -> None:
    pool = make_pool(4)
    gates = [threading.Event() for _ in range(4)]
    finished: list[int] = []

    def call(i: int) -> str:
        gates[i].wait(5)
        finished.append(i)
        return f"r{i}"

    mapper = Background(lambda: list(pool.map(call, range(4))), name="map")
    try:
        for i in reversed(range(4)):  # finish the calls last-first
            gates[i].set()
            wait_until(lambda i=i: i in finished, timeout=3, what=f"call {i} to finish")
        got = mapper.result()
    finally:
        for g in gates:
            g.set()
    assert finished == [3, 2, 1, 0]
    assert got == ["r0", "r1", "r2", "r3"], (
        f"map() gave {got}, expected results in input order ['r0', 'r1', 'r2', 'r3'] even though "
        "the calls finished last-first: wait on the futures in the order they were submitted"
    )


@pytest.mark.stage(3, "map")
def test_map_starts_every_call_before_waiting_for_the_first_result(
    make_pool: Callable[[int], ThreadPool], gate: threading.Event
) -> None:
    pool = make_pool(4)
    started: list[int] = []

    def call(i: int) -> int:
        started.append(i)
        gate.wait(5)
        return i * i

    mapper = Background(lambda: list(pool.map(call, range(4))), name="map")
    wait_until(
        lambda: len(started) == 4, timeout=3,
        what="all 4 calls of map() to run at once on 4 workers; a map that submits one call "
        "and waits for its result before the next runs them one at a time",
    )
    gate.set()
    assert mapper.result() == [0, 1, 4, 9]


@pytest.mark.stage(3, "map")
def test_map_raises_the_calls_exception_when_iteration_reaches_it(
    make_pool: Callable[[int], ThreadPool],
) -> None:
    pool = make_pool(2)
    results = pool.map(lambda x, y: x // y, [10, 10, 10], [5, 0, 2])
    assert next(results) == 2
    with pytest.raises(ZeroDivisionError):
        got = next(results)
        pytest.fail(
            f"map() yielded {got!r} for 10 // 0: the call's exception must be raised when "
            "iteration reaches its result (a pool that swallows exceptions hides it)"
        )


@pytest.mark.stage(4, "shutdown and cancelling")
def test_shutdown_waits_for_queued_calls_then_stops_the_workers(
    make_pool: Callable[[int], ThreadPool], gate: threading.Event
) -> None:
    pool = make_pool(2)

    def call(i: int) -> tuple[int, threading.Thread]:
        gate.wait(5)
        return i, threading.current_thread()

    futures = [pool.submit(call, i) for i in range(6)]
    closer = Background(pool.shutdown, name="shutdown")
    assert is_blocked(closer.thread), (
        "shutdown() (wait=True) returned while calls were still queued and running: it must "
        "return only once every queued call ran and the workers finished"
    )
    with pytest.raises(RuntimeError):
        pool.submit(print, "too late")
    gate.set()
    closer.result()
    results = [f.result(timeout=0) for f in futures]
    assert [i for i, _ in results] == list(range(6)), "queued calls must still run on shutdown()"
    alive = {t.name for _, t in results if t.is_alive()}
    assert not alive, f"worker threads {alive} still alive after shutdown(wait=True) returned"
    pool.shutdown()  # a second shutdown is harmless


@pytest.mark.stage(4, "shutdown and cancelling")
def test_shutdown_with_cancel_pending_cancels_queued_calls_and_lets_running_ones_finish(
    make_pool: Callable[[int], ThreadPool], gate: threading.Event
) -> None:
    pool = make_pool(1)
    ran: list[int] = []
    running = pool.submit(gate.wait, 5)
    wait_until(running.running, timeout=3, what="the first call to start")
    queued = [pool.submit(ran.append, i) for i in range(3)]
    pool.shutdown(wait=False, cancel_pending=True)
    not_cancelled = [i for i, f in enumerate(queued) if not f.cancelled()]
    assert not not_cancelled, (
        f"queued calls {not_cancelled} are not cancelled after shutdown(cancel_pending=True): "
        "cancel the future of every call still in the queue"
    )
    assert not running.cancelled(), "a call that already started must not be cancelled"
    gate.set()
    assert running.result(timeout=5) is True
    pool.shutdown(wait=True)
    with pytest.raises(CancelledError):
        queued[0].result(timeout=0)
    assert ran == [], f"cancelled calls ran anyway: {ran}"


@pytest.mark.stage(4, "shutdown and cancelling")
def test_a_cancelled_queued_call_never_runs(
    make_pool: Callable[[int], ThreadPool], gate: threading.Event
) -> None:
    pool = make_pool(1)
    ran: list[str] = []
    blocker = pool.submit(gate.wait, 5)
    wait_until(blocker.running, timeout=3, what="the first call to start")
    future = pool.submit(ran.append, "should not run")
    assert future.cancel() is True, "cancel() on a call still in the queue must succeed"
    after = pool.submit(ran.append, "runs")
    assert blocker.cancel() is False, "cancel() on a running call must return False"
    gate.set()
    after.result(timeout=5)
    assert ran == ["runs"], (
        f"calls that ran: {ran}; a worker that takes a cancelled call from the queue must skip "
        "it (set_running() returns False)"
    )
    assert future.cancelled()


@pytest.mark.stage(5, "races and idle cpu")
def test_idle_workers_sleep_instead_of_polling_for_work(
    make_pool: Callable[[int], ThreadPool],
) -> None:
    pool = make_pool(4)
    pool.submit(int).result(timeout=5)  # the pool is up, then idle
    idle = cpu_per_second()
    assert_sleeps(
        idle, "4 idle workers waited for work",
        "An idle worker must block on a Condition (wait()) until submit() notifies it, not loop "
        "checking the queue.",
    )


@pytest.mark.stage(5, "races and idle cpu")
def test_a_thread_waiting_on_result_sleeps_instead_of_polling(
    make_pool: Callable[[int], ThreadPool], gate: threading.Event
) -> None:
    pool = make_pool(1)
    future = pool.submit(gate.wait, 5)
    waiters = [Background(future.result, name=f"waiter-{i}") for i in range(2)]
    assert is_blocked(waiters[0].thread)
    idle = cpu_per_second()
    gate.set()
    for w in waiters:
        assert w.result() is True
    assert_sleeps(
        idle, "two threads waited in result()",
        "result() must block on the future's Condition until set_result() notifies, not loop "
        "checking done().",
    )


# -- the Future against concurrent.futures.Future (the oracle) -------------------------------


class Abort(BaseException):
    """Not an Exception, like SystemExit and KeyboardInterrupt: `except Exception` misses it."""


def outcome(future: Any, how: str) -> tuple[str, object]:
    """What result(timeout=0) or exception(timeout=0) does right now, as a comparable value."""
    try:
        got = future.result(timeout=0) if how == "result" else future.exception(timeout=0)
    except CancelledError:
        return ("raises CancelledError", None)
    except TimeoutError:
        return ("raises TimeoutError", None)
    except BaseException as exc:  # the call's own exception, compared by identity
        return ("raises the call's exception", id(exc))
    return ("returns", got if how == "result" else id(got))


class FutureAgainstConcurrentFutures(RuleBasedStateMachine):
    """One thread, never waiting (timeout=0): every answer is the one concurrent.futures gives.

    The pool's side is used as a pool uses it: set_running() once, then set_result() or
    set_exception() once, only on a future that is running.
    """

    def __init__(self) -> None:
        super().__init__()
        self.ours: Future[object] = Future()
        self.theirs: concurrent.futures.Future[object] = concurrent.futures.Future()
        self.started = False
        self.steps: list[str] = []

    def _same(self, what: str, ours: object, theirs: object) -> None:
        assert ours == theirs, (
            f"after {' -> '.join(self.steps) or 'nothing'}, {what} gave {ours!r}; "
            f"concurrent.futures.Future gives {theirs!r}. A future moves pending -> running -> "
            "finished or pending -> cancelled, never back: check the state under the lock"
        )

    @rule()
    def cancel(self) -> None:
        self.steps.append("cancel()")
        self._same("cancel()", self.ours.cancel(), self.theirs.cancel())

    @precondition(lambda self: not self.started)
    @rule()
    def set_running(self) -> None:
        self.started = True
        self.steps.append("set_running()")
        self._same("set_running()", self.ours.set_running(), self.theirs.set_running_or_notify_cancel())

    @precondition(lambda self: self.theirs.running())
    @rule(value=st.integers())
    def set_result(self, value: int) -> None:
        self.steps.append(f"set_result({value})")
        self.ours.set_result(value)
        self.theirs.set_result(value)

    @precondition(lambda self: self.theirs.running())
    @rule(error=st.sampled_from([ValueError("v"), SystemExit(2), Abort("stop")]))
    def set_exception(self, error: BaseException) -> None:
        self.steps.append(f"set_exception({error!r})")
        self.ours.set_exception(error)
        self.theirs.set_exception(error)

    @invariant()
    def same_answers(self) -> None:
        for query in ("cancelled", "running", "done"):
            self._same(f"{query}()", getattr(self.ours, query)(), getattr(self.theirs, query)())
        for how in ("result", "exception"):
            self._same(f"{how}(timeout=0)", outcome(self.ours, how), outcome(self.theirs, how))


@pytest.mark.stage(1, "the future")
def test_the_future_answers_like_concurrent_futures_in_any_sequence_of_steps() -> None:
    run_state_machine_as_test(
        FutureAgainstConcurrentFutures, settings=settings(max_examples=40, stateful_step_count=8, deadline=None)
    )


@pytest.mark.stage(1, "the future")
@pytest.mark.parametrize("timeout", [0, -1], ids=["timeout=0", "negative timeout"])
def test_a_timeout_that_has_already_run_out_does_not_wait(timeout: float) -> None:
    future: Future[int] = Future()
    for call in (future.result, future.exception):
        waiter = Background(call, timeout, name=f"{call.__name__}(timeout={timeout})")
        waiter.thread.join(3)
        assert not waiter.thread.is_alive(), (
            f"{call.__name__}(timeout={timeout}) on a pending future was still waiting after 3 s: "
            "a timeout of 0 or less has already run out; only None means wait forever "
            "(test `timeout is None`, not `not timeout`)"
        )
        with pytest.raises(TimeoutError):
            waiter.result()
    future.set_running()
    future.set_result(5)
    assert future.result(timeout=timeout) == 5, "a finished future answers even with timeout=0"


@pytest.mark.stage(1, "the future")
@pytest.mark.parametrize("finish", ["cancel", "set_exception"])
def test_every_waiter_wakes_when_the_future_is_cancelled_or_fails(finish: str) -> None:
    future: Future[int] = Future()
    error = ValueError("failed-23")
    waiters = [Background(future.result, name=f"result-{i}") for i in range(2)]
    waiters += [Background(future.exception, name=f"exception-{i}") for i in range(2)]
    for w in waiters:
        assert is_blocked(w.thread, settle=0.05)
    if finish == "cancel":
        assert future.cancel() is True
    else:
        future.set_running()
        future.set_exception(error)
    for w in waiters:
        w.thread.join(2)
    still_waiting = [w.thread.name for w in waiters if w.thread.is_alive()]
    assert not still_waiting, (
        f"{still_waiting} still waiting after {finish}(): every way a future ends must wake all "
        f"of its waiters (notify_all() in {finish}(), as in set_result())"
    )
    for w in waiters:
        if finish == "cancel":
            with pytest.raises(CancelledError):
                w.result()
        elif w.thread.name.startswith("result"):
            with pytest.raises(ValueError) as raised:
                w.result()
            assert raised.value is error
        else:
            assert w.result() is error


# -- the pool: more of its contract -----------------------------------------------------------


@pytest.mark.stage(2, "running calls on workers")
def test_a_pool_needs_at_least_one_worker(make_pool: Callable[[int], ThreadPool]) -> None:
    for workers in (0, -1):
        with pytest.raises(ValueError):
            ThreadPool(workers)
            pytest.fail(f"ThreadPool({workers}) must raise ValueError: a pool with no worker never runs a call")
    assert make_pool(1).submit(dict, fn=1).result(timeout=3) == {"fn": 1}, (
        "submit(fn, /, *args, **kwargs): a keyword argument called `fn` belongs to the call"
    )


@pytest.mark.stage(2, "running calls on workers")
def test_with_one_worker_calls_start_in_the_order_they_were_submitted(
    make_pool: Callable[[int], ThreadPool], gate: threading.Event
) -> None:
    pool = make_pool(1)
    started: list[int] = []
    blocker = pool.submit(gate.wait, 5)
    wait_until(blocker.running, timeout=3, what="the first call to start")
    futures = [pool.submit(started.append, i) for i in range(8)]
    gate.set()
    for f in futures:
        f.result(timeout=3)
    assert started == list(range(8)), (
        f"with one worker the queued calls ran in the order {started}: the pool's queue is first "
        "in, first out (append and popleft), as in concurrent.futures"
    )


@pytest.mark.stage(2, "running calls on workers")
@pytest.mark.parametrize("error", [SystemExit(3), Abort("abort-5")], ids=["SystemExit", "BaseException"])
def test_a_call_that_raises_a_base_exception_fails_its_future_not_the_worker(
    make_pool: Callable[[int], ThreadPool], error: BaseException
) -> None:
    def fail() -> None:
        raise error

    with concurrent.futures.ThreadPoolExecutor(1) as oracle:
        assert oracle.submit(fail).exception(timeout=3) is error  # what the standard library does
    pool = make_pool(1)
    future = pool.submit(fail)
    try:
        got = future.exception(timeout=3)
    except TimeoutError:
        pytest.fail(
            f"the future of a call that raised {type(error).__name__} never finished: it is a "
            "BaseException, not an Exception, so `except Exception` let it kill the worker. Catch "
            "BaseException around the call and deliver it with set_exception(), as "
            "concurrent.futures does"
        )
    assert got is error, f"exception() gave {got!r}, not the {error!r} the call raised"
    with pytest.raises(type(error)) as raised:
        future.result(timeout=0)
    assert raised.value is error
    try:
        after = pool.submit(lambda: "still here").result(timeout=3)
    except TimeoutError:
        pytest.fail(f"the only worker stopped after a call raised {type(error).__name__}: "
                    "whatever a call raises ends the call, not the worker")
    assert after == "still here"


@pytest.mark.stage(5, "races and idle cpu")
def test_workers_woken_for_work_another_worker_took_wait_again(
    make_pool: Callable[[int], ThreadPool], gate: threading.Event
) -> None:
    pool = make_pool(4)
    for _ in range(30):  # bursts of short calls: workers race for them, some wake to an empty queue
        for f in [pool.submit(abs, -i) for i in range(40)]:
            f.result(timeout=3)
    lock = threading.Lock()
    running: set[int] = set()

    def call(i: int) -> None:
        with lock:
            running.add(i)
        gate.wait(5)

    for i in range(4):
        pool.submit(call, i)
    try:
        wait_until(lambda: len(running) == 4, timeout=3, what="")
    except AssertionError:
        pytest.fail(
            f"after bursts of short calls only {len(running)} of 4 blocked calls run at once on 4 "
            "workers: workers are gone. A worker woken by submit() can find the queue empty "
            "(another worker took the call first); it must wait again (a loop, or wait_for), "
            "and leave only once the pool is shut down"
        )


@pytest.mark.stage(5, "races and idle cpu")
def test_calls_and_cancels_race_and_exactly_one_wins_for_each_future(
    make_pool: Callable[[int], ThreadPool],
) -> None:
    pool = make_pool(2)
    ran: list[int] = []
    futures: list[Future[None]] = []
    won: list[bool] = []
    for i in range(300):
        futures.append(pool.submit(ran.append, i))
        won.append(futures[-1].cancel())  # the workers are taking calls off the queue meanwhile
    for future, cancelled in zip(futures, won, strict=True):
        if cancelled:
            assert future.cancelled()
        else:
            future.result(timeout=3)
    pool.shutdown(wait=True)
    ran_twice = sorted({i for i in ran if ran.count(i) > 1})
    both = sorted(i for i in ran if won[i])
    neither = sorted(i for i, cancelled in enumerate(won) if not cancelled and i not in ran)
    assert not (ran_twice or both or neither), (
        f"calls {both} ran although cancel() returned True; calls {neither} neither ran nor were "
        f"cancelled; calls {ran_twice} ran twice. cancel() and set_running() must check and "
        "change the state under the same lock, and the worker must skip a call whose "
        "set_running() returned False"
    )


@pytest.mark.stage(3, "map")
def test_map_stops_at_the_shortest_iterable_like_the_builtin(
    make_pool: Callable[[int], ThreadPool],
) -> None:
    pool = make_pool(2)
    cases: list[tuple[Callable[..., Any], tuple[list[Any], ...]]] = [
        (pow, ([2, 3, 4], [5, 6])),
        (pow, ([2], [3, 4, 5])),
        (abs, ([],)),
        (divmod, ([7, 8, 9], [2, 3, 4])),
    ]
    for fn, iterables in cases:
        expected = list(map(fn, *iterables))
        with concurrent.futures.ThreadPoolExecutor(2) as oracle:
            assert list(oracle.map(fn, *iterables)) == expected
        got = list(pool.map(fn, *(iter(it) for it in iterables)))  # one-shot iterators, too
        assert got == expected, (
            f"map({fn.__name__}, {', '.join(map(repr, iterables))}) gave {got}, expected {expected}: "
            "like the builtin map() and concurrent.futures, pair the iterables up with zip() and "
            "stop at the shortest (no strict=True, no error)"
        )


@pytest.mark.stage(3, "map")
def test_map_submits_every_call_when_it_is_called_not_when_iterated(
    make_pool: Callable[[int], ThreadPool], gate: threading.Event
) -> None:
    pool = make_pool(3)
    started: list[int] = []

    def call(i: int) -> int:
        started.append(i)
        gate.wait(5)
        return -i

    results = pool.map(call, range(3))  # not iterated yet
    wait_until(
        lambda: len(started) == 3, timeout=3,
        what="the 3 calls of map() to start before anyone iterates its result: map() submits "
        "every call when it is called (a generator function submits nothing until next())",
    )
    gate.set()
    assert list(results) == [0, -1, -2]


@pytest.mark.stage(3, "map")
def test_map_yields_each_result_as_soon_as_it_is_ready(
    make_pool: Callable[[int], ThreadPool], gate: threading.Event
) -> None:
    pool = make_pool(2)

    def call(i: int) -> int:
        if i:
            gate.wait(5)  # the second call is still running when the first result is asked for
        return i + 100

    first = Background(lambda: next(iter(pool.map(call, range(2)))), name="first result of map()")
    first.thread.join(3)
    assert not first.thread.is_alive(), (
        "the first result of map() was not there 3 s after its call returned, while the second "
        "call still ran: map() yields each result as soon as it is ready (in input order), it "
        "does not wait for every call before returning or yielding"
    )
    assert first.result() == 100


@pytest.mark.stage(4, "shutdown and cancelling")
def test_shutdown_with_cancel_pending_and_wait_still_waits_for_the_running_call(
    make_pool: Callable[[int], ThreadPool], gate: threading.Event
) -> None:
    pool = make_pool(1)
    running = pool.submit(gate.wait, 5)
    wait_until(running.running, timeout=3, what="the first call to start")
    queued = [pool.submit(abs, -i) for i in range(3)]
    closer = Background(lambda: pool.shutdown(wait=True, cancel_pending=True), name="shutdown")
    wait_until(lambda: all(f.cancelled() for f in queued), timeout=3,
               what="shutdown(cancel_pending=True) to cancel the queued calls before it waits")
    assert is_blocked(closer.thread), (
        "shutdown(wait=True, cancel_pending=True) returned while a call was still running: "
        "cancel_pending cancels what is queued, and wait=True still joins every worker"
    )
    gate.set()
    closer.result()
    assert running.result(timeout=0) is True


@pytest.mark.stage(4, "shutdown and cancelling")
@pytest.mark.parametrize("cancel_pending", [False, True], ids=["wait", "wait+cancel_pending"])
def test_shutdown_wakes_every_idle_worker_and_returns(
    make_pool: Callable[[int], ThreadPool], cancel_pending: bool
) -> None:
    before = set(threading.enumerate())
    pool = make_pool(3)
    futures = [pool.submit(abs, -i) for i in range(6)]
    assert [f.result(timeout=3) for f in futures] == list(range(6))  # done: the workers are idle
    closer = Background(lambda: pool.shutdown(wait=True, cancel_pending=cancel_pending), name="shutdown")
    closer.thread.join(3)
    assert not closer.thread.is_alive(), (
        f"shutdown(wait=True, cancel_pending={cancel_pending}) of a pool whose 3 workers were "
        "all idle had not returned after 3 s: it joins workers that are still asleep. "
        "Every idle worker must be woken to see the flag (notify_all(), not notify())"
    )
    closer.result()
    left = [t.name for t in set(threading.enumerate()) - before if t is not closer.thread and t.is_alive()]
    assert not left, f"threads {left} still alive after shutdown(wait=True) returned: join every worker"


@pytest.mark.stage(4, "shutdown and cancelling")
def test_shutdown_without_wait_returns_at_once_and_queued_calls_still_run(
    make_pool: Callable[[int], ThreadPool], gate: threading.Event
) -> None:
    pool = make_pool(1)
    blocker = pool.submit(gate.wait, 5)
    wait_until(blocker.running, timeout=3, what="the first call to start")
    queued = [pool.submit(lambda i=i: i * 10) for i in range(3)]
    closer = Background(lambda: pool.shutdown(wait=False), name="shutdown(wait=False)")
    closer.thread.join(3)
    assert not closer.thread.is_alive(), (
        "shutdown(wait=False) waited for a running call: without wait it only stops new submits"
    )
    with pytest.raises(RuntimeError):
        pool.submit(print, "too late")
    assert not any(f.cancelled() for f in queued), "without cancel_pending, queued calls are not cancelled"
    gate.set()
    assert [f.result(timeout=3) for f in queued] == [0, 10, 20], "queued calls still run after shutdown()"


@pytest.mark.stage(4, "shutdown and cancelling")
def test_a_with_block_gives_the_pool_and_on_exit_waits_for_queued_calls(
    make_pool: Callable[[int], ThreadPool], gate: threading.Event
) -> None:
    pool = make_pool(2)
    with pool as entered:
        assert entered is pool, f"`with pool as p` gave {entered!r}: __enter__ returns the pool itself"
    with pytest.raises(RuntimeError):
        pool.submit(print, "after the with block")
        pytest.fail("submit() after a with block must raise RuntimeError: leaving it shuts the pool down")

    finished: list[int] = []
    used: list[ThreadPool] = []

    def block() -> list[Future[None]]:
        with make_pool(2) as inner:
            used.append(inner)
            return [inner.submit(lambda i=i: (gate.wait(5), finished.append(i))[-1]) for i in range(4)]

    body = Background(block, name="with block")
    assert is_blocked(body.thread), (
        "leaving the with block returned while its calls were queued and running: __exit__ "
        "calls shutdown(wait=True)"
    )
    gate.set()
    futures = body.result()
    assert all(f.done() for f in futures) and sorted(finished) == [0, 1, 2, 3], (
        f"after the with block only calls {sorted(finished)} had finished: __exit__ waits for them all"
    )


@pytest.mark.stage(4, "shutdown and cancelling")
def test_a_program_that_never_calls_shutdown_can_still_exit() -> None:
    path = sys.modules[ThreadPool.__module__].__file__
    script = textwrap.dedent("""
        import importlib.util, sys, threading
        spec = importlib.util.spec_from_file_location("thread_pool_under_test", sys.argv[1])
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module
        spec.loader.exec_module(module)
        pool = module.ThreadPool(2)
        started = threading.Event()
        pool.submit(lambda: (started.set(), threading.Event().wait()))  # a call that never returns
        assert started.wait(5), "the call never started"
        print("main thread done", flush=True)
    """)
    try:
        child = subprocess.run([sys.executable, "-c", script, str(path)], capture_output=True,
                               text=True, timeout=5)
    except subprocess.TimeoutExpired:
        pytest.fail(
            "a program whose main thread ended without calling shutdown() was still running 5 s "
            "later: its pool's threads kept the interpreter alive (one idle, one stuck in a call). "
            "Start the workers as daemon threads (threading.Thread(..., daemon=True))"
        )
    assert child.returncode == 0 and "main thread done" in child.stdout, (
        f"the program failed (exit {child.returncode}):\n{child.stderr[-2000:]}"
    )
