"""Tests for the process pool: chunking, order, errors, crashes, clean exit, and the GIL made visible."""

from __future__ import annotations

import concurrent.futures
import contextlib
import itertools
import os
import re
import signal
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import psutil
import pytest
from hypothesis import given
from hypothesis import strategies as st

from dojo.testing import Background

from .process_pool import CTX, ProcessPool, WorkerCrashed, chunked, thread_map

# --- work the pool runs: module-level functions, so they pickle by name -------------------------

# Synchronisation objects the workers inherit when they are forked. A fixture sets them before the
# pool is created (children forked earlier would not see them) and clears them afterwards.
_RENDEZVOUS: Any = None  # a multiprocessing Barrier: tasks that must run at the same time
# A multiprocessing Semaphore that lets a deliberately slow task finish. Not an Event: Event.set()
# waits for every sleeper to acknowledge its wake-up, and a terminated sleeper never does.
_RELEASE: Any = None

BURN = 150_000  # iterations of pure-Python arithmetic: about 15 ms on an idle core


def burn(n: int) -> int:
    """Pure-Python CPU work: it holds the GIL the whole time."""
    total = 0
    for i in range(n):
        total = (total + i * i) % 1_000_003
    return total


@dataclass(frozen=True)
class Trace:
    """What a worker recorded about one item it ran."""

    index: int
    pid: int
    thread: int
    start: float  # time.perf_counter(): CLOCK_MONOTONIC on Linux, comparable across processes
    end: float
    burn_start: float  # when the CPU work began (after the rendezvous)
    cpu: float  # seconds of CPU this thread used for the item (time.thread_time)
    met: bool  # True if it met its partner at the rendezvous (always True when it had none)


def traced(item: tuple[int, bool]) -> Trace:
    """Burn CPU and record who ran it and when; with `meet`, first wait for a partner task."""
    index, meet = item
    start, cpu = time.perf_counter(), time.thread_time()
    met = True
    if meet:
        try:
            _RENDEZVOUS.wait(timeout=5)
        except threading.BrokenBarrierError:
            met = False
    burn_start = time.perf_counter()
    burn(BURN)
    return Trace(
        index,
        os.getpid(),
        threading.get_ident(),
        start,
        time.perf_counter(),
        burn_start,
        time.thread_time() - cpu,
        met,
    )


def square(x: int) -> int:
    return x * x


def fail_on_three(x: int) -> int:
    if x == 3:
        raise ValueError(f"item {x} is bad")
    return x


# A call that waits for the slow chunk waits until the test releases it: the tests give it
# ABANDON_PATIENCE to show it does not, far longer than a correct pool needs on a loaded machine
# and far shorter than the slow chunk's own limit (a wrong pool is blocked, not slow).
ABANDON_PATIENCE = 20.0


def fail_or_wait(x: str) -> tuple[str, bool]:
    """'fail' raises at once; 'slow' waits (up to 60 s) until the test releases it."""
    if x == "fail":
        raise ValueError("the fast chunk failed")
    return x, _RELEASE.acquire(timeout=60)


def zero_finishes_last(x: int) -> int:
    """Of the items 0..5, item 0 finishes last: it waits for a permit from each of the others."""
    if x == 0:
        for _ in range(5):
            _RELEASE.acquire(timeout=5)
    else:
        _RELEASE.release()
    return x * x


def raise_base_exception(x: str) -> str:
    """SystemExit and KeyboardInterrupt are BaseExceptions, not Exceptions."""
    if x == "exit":
        raise SystemExit(3)
    if x == "interrupt":
        raise KeyboardInterrupt
    return x


def return_a_lock(x: int) -> Any:
    """Its result cannot be pickled, so it cannot travel back as it is."""
    return threading.Lock()


def return_a_lambda(x: int) -> Any:
    """Its result cannot be pickled either: functions pickle by name, and a lambda has none."""
    return lambda: x


def close_files_and_exit(x: int) -> int:
    """The worker closes every file it has (its pipe first), and dies a moment later."""
    os.closerange(3, 1 << 16)
    time.sleep(0.2)  # not a timing assertion: the EOF simply comes well before the exit code
    os._exit(5)


def exit_on_two(x: int) -> int:
    if x == 2:
        os._exit(7)  # the worker process dies on the spot, as after a segfault or an OOM kill
    return x


# --- fixtures ------------------------------------------------------------------------------------


@pytest.fixture
def rendezvous() -> Iterator[Any]:
    """A two-party barrier the workers inherit: two tasks pass it only by running at once."""
    global _RENDEZVOUS
    _RENDEZVOUS = CTX.Barrier(2)
    yield _RENDEZVOUS
    _RENDEZVOUS = None


@pytest.fixture
def release() -> Iterator[Callable[[], None]]:
    """Call it to let the slow task(s) of fail_or_wait finish (the semaphore is _RELEASE)."""
    global _RELEASE
    _RELEASE = semaphore = CTX.Semaphore(0)

    def release() -> None:
        for _ in range(4):
            semaphore.release()

    yield release
    release()
    _RELEASE = None


def live_children() -> dict[int, str]:
    """Child processes of this test process (zombies included: they are not reaped yet)."""
    found: dict[int, str] = {}
    for proc in psutil.Process().children(recursive=True):
        with contextlib.suppress(psutil.NoSuchProcess):  # it ended while we looked
            found[proc.pid] = proc.status()
    return found


def overlapping_pairs(traces: list[Trace], key: str) -> list[tuple[Trace, Trace]]:
    """Pairs of items run by different pids (or threads) whose [start, end] intervals overlap."""
    return [
        (a, b)
        for i, a in enumerate(traces)
        for b in traces[i + 1 :]
        if getattr(a, key) != getattr(b, key) and a.start < b.end and b.start < a.end
    ]


def cpus_busy(traces: list[Trace]) -> tuple[float, float]:
    """CPU seconds the items used, and the seconds during which at least one item was burning."""
    span, reach = 0.0, float("-inf")
    for t in sorted(traces, key=lambda t: t.burn_start):
        if t.end > reach:
            span += t.end - max(t.burn_start, reach)
            reach = t.end
    return sum(t.cpu for t in traces), span


def check_met(traces: list[Trace], where: str) -> None:
    lonely = [t.index for t in traces if not t.met]
    assert not lonely, (
        f"items {lonely} each waited 5 s at a rendezvous for a task of another chunk to run at the "
        f"same time, and none came: {where} ran the chunks one after another instead of at once"
    )


# --- chunking -------------------------------------------------------------------------------------


@pytest.mark.stage(1, "chunks and map")
@given(st.lists(st.integers(), max_size=40), st.integers(min_value=1, max_value=12))
def test_chunked_splits_into_consecutive_runs_of_size(items: list[int], size: int) -> None:
    chunks = chunked(items, size)
    expected = [items[i : i + size] for i in range(0, len(items), size)]  # brute-force oracle
    assert chunks == expected, f"chunked({items}, {size}) returned {chunks}, expected {expected}"


@pytest.mark.stage(1, "chunks and map")
def test_chunked_rejects_a_size_below_one() -> None:
    with pytest.raises(ValueError):
        chunked([1, 2, 3], 0)


# --- the process pool -------------------------------------------------------------------------------


@pytest.mark.stage(1, "chunks and map")
def test_map_returns_results_in_input_order_for_any_chunksize() -> None:
    with ProcessPool(3) as pool:
        for n in (0, 1, 7, 20):
            for chunksize in (1, 3, 8, 25):
                got = pool.map(square, iter(range(n)), chunksize=chunksize)  # any iterable
                assert got == [x * x for x in range(n)], (
                    f"map(square, range({n}), chunksize={chunksize}) returned {got}: results "
                    "must come back in input order, whichever worker finished first"
                )


@pytest.mark.stage(1, "chunks and map")
def test_results_keep_input_order_when_the_first_item_finishes_last(
    release: Callable[[], None],
) -> None:
    with ProcessPool(2) as pool:
        got = pool.map(zero_finishes_last, range(6), chunksize=1)
    assert got == [0, 1, 4, 9, 16, 25], (
        f"map() returned {got}: item 0 finished last, yet its result belongs first. Put each "
        "chunk's results at the chunk's index, not in the order they arrive"
    )


@pytest.mark.stage(1, "chunks and map")
def test_work_runs_in_worker_processes_not_in_the_caller(rendezvous: Any) -> None:
    with ProcessPool(2) as pool:
        workers = set(pool.pids)
        traces = pool.map(traced, [(0, True), (1, True)])  # the default chunksize is 1
    check_met(traces, "the pool with the default chunksize (1)")
    pids = {t.pid for t in traces}
    assert os.getpid() not in pids, "map() ran the function in the calling process, not a worker"
    assert pids <= workers, f"items ran in pids {pids}, but the pool's workers are {workers}"


@pytest.mark.stage(1, "chunks and map")
def test_a_chunk_is_one_message_run_by_one_worker_in_order(rendezvous: Any) -> None:
    """Items 0 and 4 open the two chunks and must meet: chunks, not single items, go to workers."""
    items = [(i, i in (0, 4)) for i in range(8)]
    with ProcessPool(2) as pool:
        traces = pool.map(traced, items, chunksize=4)
    check_met(traces, "the pool")
    for chunk in (traces[:4], traces[4:]):
        pids = [t.pid for t in chunk]
        assert len(set(pids)) == 1, (
            f"items {[t.index for t in chunk]} form one chunk (chunksize=4) and must run in one "
            f"worker, one after another, but ran in pids {pids}: send each chunk as one message"
        )
        for a, b in itertools.pairwise(chunk):
            assert a.end <= b.start, f"item {b.index} started before item {a.index} of its chunk ended"


@pytest.mark.stage(1, "chunks and map")
def test_processes_run_at_the_same_time_in_distinct_pids(rendezvous: Any) -> None:
    """Two chunks, two workers: the recorded intervals of different pids overlap."""
    with ProcessPool(2) as pool:
        traces = pool.map(traced, [(0, True), (1, False), (2, True), (3, False)], chunksize=2)
    check_met(traces, "the pool")
    pids = {t.pid for t in traces}
    assert len(pids) == 2, f"expected the two chunks in two worker processes, got pids {pids}"
    assert overlapping_pairs(traces, "pid"), "no two items from different processes overlapped in time: " + ", ".join(
        f"#{t.index} pid {t.pid} [{t.start:.4f}, {t.end:.4f}]" for t in traces
    )
    busy, span = cpus_busy(traces)
    print(f"processes: {busy / span:.2f} CPUs busy on average (about 2 on an idle 2-core machine)")


@pytest.mark.stage(3, "errors in the work")
def test_an_exception_in_a_worker_is_raised_by_map() -> None:
    with ProcessPool(2) as pool:
        try:
            got = pool.map(fail_on_three, range(6), chunksize=2)
        except ValueError as exc:
            assert "item 3 is bad" in str(exc), f"the worker's error lost its message: {exc!r}"
        else:
            pytest.fail(
                f"map() returned {got!r} instead of raising the ValueError a worker raised on item "
                "3: the exception was swallowed. Send it back from the worker and raise it in map()"
            )
        assert pool.map(square, [1, 2, 3]) == [1, 4, 9], "the pool must still work after an error"


@pytest.mark.stage(3, "errors in the work")
@pytest.mark.time_limit(2 * ABANDON_PATIENCE)
def test_map_fails_fast_and_late_results_never_leak_into_the_next_map(
    release: Callable[[], None], rendezvous: Any
) -> None:
    with ProcessPool(2) as pool:
        first = Background(pool.map, fail_or_wait, ["fail", "slow"], name="first-map")
        try:
            first.result(timeout=ABANDON_PATIENCE)
        except ValueError:
            pass  # the expected error, raised while the 'slow' chunk is still running
        except AssertionError:
            release()
            raise AssertionError(
                f"map() was still waiting {ABANDON_PATIENCE:.0f} s after a chunk failed, for a chunk "
                "held until the test lets it go: raise the first error as soon as it arrives instead "
                "of waiting for the other chunks"
            ) from None
        else:
            pytest.fail("map() did not raise the ValueError of the failed chunk")
        release()  # now the slow chunk finishes, and its (stale) result heads back
        # Items 0 and 1 must meet, so this call needs the worker that ran the slow chunk: that
        # worker's late result comes first on its pipe, before it can take a chunk of this call.
        stale = (
            "a stale result of the earlier map() that raised arrived late and was taken for one "
            "of this call's chunks. Tag every chunk with the call it belongs to and drop results "
            "of old calls"
        )
        second = Background(pool.map, traced, [(0, True), (1, True)], 1, name="second-map")
        try:
            got: list[Any] = second.result(timeout=6)
        except AssertionError:
            raise AssertionError(f"map() never returned, its count of chunks went wrong: {stale}") from None
        indexes = [t.index if isinstance(t, Trace) else t for t in got]
        assert indexes == [0, 1], f"map() returned results for items {indexes}, expected [0, 1]: {stale}"
        check_met(got, "the pool")
        assert pool.map(square, [1, 2, 3, 4]) == [1, 4, 9, 16], "later calls must work as well"


@pytest.mark.stage(4, "workers that crash")
def test_a_crashed_worker_raises_workercrashed_instead_of_hanging() -> None:
    pool = ProcessPool(2)
    try:
        call = Background(pool.map, exit_on_two, range(4), name="map")
        try:
            call.result(timeout=5)
        except WorkerCrashed as exc:
            assert re.search(r"\b7\b", str(exc)), f"say which worker died and its exit code (7): {exc}"
        except AssertionError:
            raise AssertionError(
                "map() was still waiting 5 s after a worker process died (exit code 7): its result "
                "will never come. Wait on each process's sentinel as well as on the results "
                "(multiprocessing.connection.wait) and raise WorkerCrashed"
            ) from None
        else:
            pytest.fail("map() returned although a worker died running item 2")
    finally:
        pool.close()


@pytest.mark.stage(2, "sizes and closing")
def test_no_worker_outlives_the_pool() -> None:
    with ProcessPool(3) as pool:
        pids = pool.pids
        assert len(set(pids)) == 3, f"ProcessPool(3) should start 3 workers, pids are {pids}"
        pool.map(square, range(10), chunksize=3)
        assert set(pids) <= set(live_children()), "the workers should be child processes of the caller"
    left = {pid: status for pid, status in live_children().items() if pid in pids}
    assert not left, (
        f"workers still exist after the with block: {left} (a 'zombie' has exited but was never "
        "joined). close() must stop every worker and join() it, so no worker outlives the pool"
    )


@pytest.mark.stage(2, "sizes and closing")
def test_close_closes_the_pipes_and_the_pool_refuses_more_work() -> None:
    def sockets() -> int:  # a duplex Pipe is a socketpair; one-way pipes are not counted here
        return len(psutil.Process().net_connections("unix"))

    before = sockets()
    pool = ProcessPool(3)
    assert pool.map(square, [1, 2, 3]) == [1, 4, 9]
    pool.close()
    assert sockets() == before, (
        f"{sockets() - before} unix sockets of the pool are still open after close(): close the "
        "pool's end of every pipe, or each pool leaks file descriptors"
    )
    pool.close()  # a second close() does nothing
    with pytest.raises(ValueError):
        pool.map(square, [1])  # the README: map() on a closed pool raises ValueError


@pytest.mark.stage(3, "errors in the work")
@pytest.mark.time_limit(3 * ABANDON_PATIENCE)
def test_close_does_not_wait_for_abandoned_work(release: Callable[[], None]) -> None:
    """After a map() failed fast, a worker may still run its chunk: close() stops it anyway."""
    pool = ProcessPool(2)
    pids = pool.pids
    try:
        with pytest.raises(ValueError):
            Background(pool.map, fail_or_wait, ["fail", "slow"], name="map").result(timeout=ABANDON_PATIENCE)
        closing = Background(pool.close, name="close")
        try:
            closing.result(timeout=ABANDON_PATIENCE)
        except AssertionError:
            raise AssertionError(
                "close() waited for a worker that was still running a chunk nobody will read "
                "(its map() had already raised): terminate busy workers instead"
            ) from None
    finally:
        release()
        pool.close()
    left = {pid: status for pid, status in live_children().items() if pid in pids}
    assert not left, f"workers still exist after close(): {left}; terminate and join them"


def oracle_error(fn: Callable[[Any], Any], items: list[Any]) -> type[BaseException]:
    """The exception type ProcessPoolExecutor.map raises for this work (the behaviour to match)."""
    with concurrent.futures.ProcessPoolExecutor(1, mp_context=CTX) as executor:
        try:
            list(executor.map(fn, items))
        except BaseException as exc:
            return type(exc)
    raise AssertionError(f"the oracle did not raise for {fn}")


@pytest.mark.stage(2, "sizes and closing")
def test_pool_size_and_chunk_size_are_checked_like_processpoolexecutor() -> None:
    with ProcessPool(1) as pool:
        assert len(pool.pids) == 1, f"ProcessPool(1) should start one worker, pids are {pool.pids}"
        assert pool.map(square, range(5), chunksize=2) == [0, 1, 4, 9, 16], "one worker does all the chunks"
        with pytest.raises(ValueError):  # ProcessPoolExecutor.map(chunksize=0) raises ValueError too
            pool.map(square, range(3), chunksize=0)
        assert pool.map(square, [3]) == [9], "a refused chunksize must leave the pool usable"
    with pytest.raises(ValueError):  # ProcessPoolExecutor(0) raises ValueError too
        ProcessPool(0)


@pytest.mark.stage(3, "errors in the work")
@pytest.mark.parametrize("item", ["exit", "interrupt"])
def test_a_base_exception_in_fn_is_raised_by_map_and_the_worker_survives(item: str) -> None:
    expected = oracle_error(raise_base_exception, [item])
    with ProcessPool(2) as pool:
        pids = sorted(pool.pids)
        try:
            got = Background(pool.map, raise_base_exception, ["ok", item, "ok"], name="map").result(timeout=5)
        except expected:
            pass
        except BaseException as exc:
            raise AssertionError(
                f"fn raised {expected.__name__} (a BaseException, not an Exception) and map() raised "
                f"{exc!r}: a worker must catch BaseException around fn, send it back and live on, as "
                "ProcessPoolExecutor does, not die of it"
            ) from None
        else:
            pytest.fail(f"map() returned {got!r}: the {expected.__name__} raised by fn was swallowed")
        assert pool.map(square, [1, 2, 3, 4]) == [1, 4, 9, 16], "the pool must stay usable"
        assert sorted(pool.pids) == pids, "the pool's workers changed"
        alive = {pid: status for pid, status in live_children().items() if pid in pids}
        assert sorted(alive) == pids and psutil.STATUS_ZOMBIE not in alive.values(), (
            f"workers {pids} after fn raised {expected.__name__}; still alive: {alive}. The worker "
            "loop must catch BaseException from fn, not let it end the process"
        )


@pytest.mark.stage(3, "errors in the work")
@pytest.mark.parametrize(
    ("what", "fn", "items"),
    [
        ("a lambda as the function", lambda x: x, [1, 2]),
        ("a lock as an item", square, [1, threading.Lock()]),
        ("a lock as the result", return_a_lock, [1]),
        ("a lambda as the result", return_a_lambda, [1, 2]),
    ],
)
def test_what_cannot_be_pickled_is_raised_by_map_and_the_pool_survives(
    what: str, fn: Callable[[Any], Any], items: list[Any]
) -> None:
    expected = oracle_error(fn, items)
    with ProcessPool(2) as pool:
        pids = sorted(pool.pids)
        try:
            got = Background(pool.map, fn, items, name="map").result(timeout=5)
        except expected:
            pass
        except AssertionError:
            raise AssertionError(
                f"map() was still waiting 5 s after {what} could not be pickled: the error must "
                "travel back (a worker sends the pickling error when its result cannot be sent)"
            ) from None
        except BaseException as exc:
            raise AssertionError(
                f"{what} cannot be pickled: map() raised {exc!r}, ProcessPoolExecutor raises "
                f"{expected.__name__}. Raise pickling's own error (in the caller, or sent back by "
                "the worker in place of the result); a worker must not die of it"
            ) from None
        else:
            pytest.fail(f"map() returned {got!r} although {what} cannot be pickled")
        assert pool.map(square, [1, 2, 3, 4]) == [1, 4, 9, 16], f"the pool must stay usable after {what}"
        assert sorted(pool.pids) == pids, "the pool's workers changed"


@pytest.mark.stage(4, "workers that crash")
def test_a_worker_whose_pipe_closes_before_it_exits_is_a_crash_too() -> None:
    """Reading its pipe can hit EOF before the sentinel reports the exit: that is the same crash."""
    pool = ProcessPool(1)
    try:
        try:
            got = Background(pool.map, close_files_and_exit, [1], name="map").result(timeout=5)
        except WorkerCrashed as exc:
            assert re.search(r"\b5\b", str(exc)), (
                f"say which worker died and its exit code (5): {exc}. Its pipe reported EOF before "
                "the process had exited: join() it (with a timeout) before reading the exit code"
            )
        except AssertionError:
            raise AssertionError("map() was still waiting 5 s after its only worker closed its pipe and died") from None
        except Exception as exc:
            raise AssertionError(
                f"map() raised {exc!r}: the worker's pipe reported EOF (it closed as the worker "
                "died) and that must be a WorkerCrashed, like a ready sentinel"
            ) from None
        else:
            pytest.fail(f"map() returned {got!r} although its worker died")
    finally:
        pool.close()


@pytest.mark.stage(4, "workers that crash")
def test_a_worker_killed_while_idle_breaks_the_pool() -> None:
    """The OOM killer does not wait for a chunk: the next map() reports the dead worker."""
    pool = ProcessPool(2)
    try:
        assert pool.map(square, [1, 2]) == [1, 4]
        victim = pool.pids[1]
        os.kill(victim, signal.SIGKILL)
        deadline = time.monotonic() + 5  # wait until it has exited: a zombie, not yet reaped
        while live_children().get(victim) not in (psutil.STATUS_ZOMBIE, None) and time.monotonic() < deadline:
            time.sleep(0.01)
        for attempt in ("the next", "a later"):
            try:
                got = Background(pool.map, square, range(4), name="map").result(timeout=5)
            except WorkerCrashed:
                pass
            except AssertionError:
                raise AssertionError(f"{attempt} map() was still waiting 5 s for a worker that was killed") from None
            except Exception as exc:
                raise AssertionError(
                    f"{attempt} map() raised {exc!r} after worker {victim} was killed while idle: writing "
                    "to a dead worker's pipe fails, and that too is a WorkerCrashed"
                ) from None
            else:
                pytest.fail(
                    f"{attempt} map() returned {got} after worker {victim} was killed: the pool is "
                    "broken (ProcessPoolExecutor raises BrokenProcessPool from then on)"
                )
    finally:
        pool.close()
    left = {pid: status for pid, status in live_children().items() if pid in pool.pids}
    assert not left, f"workers still exist after close() of a broken pool: {left}"


def _leave_a_pool_open(result: Any) -> None:
    """In a child process: use a pool, never close it, and return (the process then exits)."""
    pool = ProcessPool(2)
    result.put(pool.map(square, [1, 2]))


@pytest.mark.stage(2, "sizes and closing")
def test_a_pool_nobody_closed_does_not_keep_the_program_from_exiting() -> None:
    result = CTX.SimpleQueue()
    program = CTX.Process(target=_leave_a_pool_open, args=(result,))
    program.start()
    program.join(10)
    hung = program.is_alive()
    if hung:
        program.kill()
        program.join()
    assert not hung, (
        "a program that left a pool open did not exit in 10 s: at exit Python join()s every "
        "non-daemonic child, and the idle workers wait forever. Start the workers as daemons"
    )
    assert program.exitcode == 0 and result.get() == [1, 4], f"the program failed, exit code {program.exitcode}"


# --- threads: the GIL made visible ------------------------------------------------------------------


@pytest.mark.stage(5, "threads and the gil")
def test_thread_map_returns_results_in_order_and_raises_errors() -> None:
    assert thread_map(square, iter(range(10)), workers=3, chunksize=4) == [x * x for x in range(10)]
    with pytest.raises(ValueError, match="item 3"):
        thread_map(fail_on_three, range(6), workers=2)
    with pytest.raises(ValueError):  # as ThreadPoolExecutor.map(chunksize=0) does
        thread_map(square, range(3), workers=2, chunksize=0)


@pytest.mark.stage(5, "threads and the gil")
def test_threads_overlap_in_time_but_the_gil_lets_only_one_run_python(rendezvous: Any) -> None:
    """Same work on threads: concurrent (intervals overlap), but together they use one CPU at most."""
    traces = thread_map(traced, [(0, True), (1, False), (2, True), (3, False)], workers=2, chunksize=2)
    check_met(traces, "thread_map")
    # The default chunksize is 1: items 0 and 1 are two chunks, run at once by two threads.
    check_met(thread_map(traced, [(0, True), (1, True)], workers=2), "thread_map with the default chunksize (1)")
    assert {t.pid for t in traces} == {os.getpid()}, "thread_map must run in this process's threads"
    assert len({t.thread for t in traces}) == 2, "expected the two chunks on two threads"
    assert overlapping_pairs(traces, "thread"), "the two threads' items should overlap in time"
    # The GIL: one thread at a time runs Python bytecode, so however many threads burn CPU, the
    # process as a whole uses at most one CPU. Load on the machine can only lower this number.
    busy, span = cpus_busy(traces)
    print(f"threads: {busy / span:.2f} CPUs busy on average (at most 1: the GIL)")
    assert busy <= 1.3 * span, (
        f"the threads used {busy:.3f} s of CPU in {span:.3f} s: more than one CPU. That cannot "
        "happen for pure-Python work under the GIL; does thread_map use processes?"
    )
