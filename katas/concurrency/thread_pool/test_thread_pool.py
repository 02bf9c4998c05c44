"""Tests for the thread pool: futures, parallelism, order, exceptions, shutdown, and idle CPU."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator

import pytest

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
    for pool in pools:
        closer = Background(lambda p=pool: p.shutdown(wait=True, cancel_pending=True))
        closer.thread.join(5)  # bounded: a broken shutdown must not hang the teardown


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


def test_result_with_a_timeout_raises_timeout_error_while_pending() -> None:
    future: Future[int] = Future()
    with pytest.raises(TimeoutError):
        future.result(timeout=0.05)
    with pytest.raises(TimeoutError):
        future.exception(timeout=0.05)
    assert not future.done()


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


def test_a_running_or_finished_future_cannot_be_cancelled() -> None:
    future: Future[int] = Future()
    assert future.set_running() and future.running()
    assert future.cancel() is False, "cancel() on a running future must return False"
    assert not future.cancelled()
    future.set_result(1)
    assert future.cancel() is False, "cancel() on a finished future must return False"
    assert future.result() == 1


# -- the pool ---------------------------------------------------------------------------------


def test_submit_runs_the_call_on_a_worker_thread_and_returns_its_value(
    make_pool: Callable[[int], ThreadPool],
) -> None:
    pool = make_pool(2)

    def call(x: int, *, y: int) -> tuple[int, threading.Thread]:
        return x * y, threading.current_thread()

    value, thread = pool.submit(call, 6, y=7).result(timeout=5)
    assert value == 42
    assert thread is not threading.current_thread(), "the call ran in the caller's thread"


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
