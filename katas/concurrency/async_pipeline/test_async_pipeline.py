"""Tests for the async pipeline: every item through every stage, backpressure, stop, errors."""

from __future__ import annotations

import asyncio
import gc
from collections import Counter
from collections.abc import AsyncIterator, Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

import pytest
import pytest_asyncio
from hypothesis import given, settings
from hypothesis import strategies as st

from . import async_pipeline
from .async_pipeline import PipelineError, Stage, run_pipeline

# A bound on how long a test waits for run_pipeline to finish: a liveness check that turns a
# deadlock into a clear message. Correct runs take milliseconds.
PATIENCE = 3.0


@dataclass
class Source:
    """An async generator of 0, 1, 2, ... that records what was taken and whether it was closed."""

    limit: int | None = None  # None: endless
    fail_after: int | None = None  # raise after yielding this many items
    taken: list[int] = field(default_factory=list)
    closed: bool = False
    error: RuntimeError = field(default_factory=lambda: RuntimeError("the source broke"))
    close_steps: int = 0  # turns of the event loop its cleanup takes (a connection to close)

    async def items(self) -> AsyncIterator[int]:
        try:
            i = 0
            while self.limit is None or i < self.limit:
                if self.fail_after is not None and i == self.fail_after:
                    raise self.error
                self.taken.append(i)
                yield i
                i += 1
        finally:
            for _ in range(self.close_steps):
                await asyncio.sleep(0)
            self.closed = True


def learner_tasks_running() -> list[asyncio.Task[Any]]:
    """Tasks still running code from async_pipeline.py (the producer and the workers)."""
    left = []
    for task in asyncio.all_tasks():
        code = getattr(task.get_coro(), "cr_code", None)
        if not task.done() and code is not None and code.co_filename == async_pipeline.__file__:
            left.append(task)
    return left


Spawn = Callable[[Coroutine[Any, Any, Any]], "asyncio.Task[Any]"]


@pytest_asyncio.fixture
async def spawn() -> AsyncIterator[Spawn]:
    """create_task for the test; every task and anything it left behind is cancelled after it."""
    tasks: list[asyncio.Task[Any]] = []

    def start(coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        tasks.append(asyncio.create_task(coro))
        return tasks[-1]

    yield start
    leftovers = [*tasks, *learner_tasks_running()]
    for task in leftovers:
        task.cancel()
    if leftovers:
        await asyncio.wait(leftovers, timeout=2)
    for task in leftovers:
        if task.done() and not task.cancelled():
            task.exception()  # read, so it is not logged from a finalizer later
    gc.collect()  # finalize now, not in the middle of pytest's own work


async def finish(task: asyncio.Task[Any], what: str) -> Any:
    """The task's result; fails with `what` if it is still running after PATIENCE seconds."""
    await asyncio.wait({task}, timeout=PATIENCE)
    if not task.done():
        pytest.fail(f"run_pipeline was still running {PATIENCE:g} s after {what}")
    return task.result()


async def settle(task: asyncio.Task[Any]) -> None:
    """Let every task run until all of them are blocked (a few turns of the event loop); the
    pipeline `task` must still be running then (its own error, if it raised one)."""
    for _ in range(50):
        await asyncio.sleep(0)
    if task.done():
        got = task.result()  # re-raises what run_pipeline raised
        pytest.fail(f"run_pipeline returned {got!r} while a stage was still blocked")


def stage(name: str, fn: Callable[[Any], Any], workers: int = 1) -> Stage:
    async def run(x: Any) -> Any:
        await asyncio.sleep(0)  # a real suspension point, so workers interleave
        return fn(x)

    return Stage(name, run, workers)


# -- every item, through every stage ------------------------------------------------------------


@pytest.mark.stage(1, "every item through")
@pytest.mark.asyncio
async def test_every_item_passes_through_every_stage_once(spawn: Spawn) -> None:
    source = Source(limit=50)
    stages = [stage("inc", lambda x: x + 1, 2), stage("square", lambda x: x * x, 3)]
    task = spawn(run_pipeline(source.items(), stages, capacity=2))
    got = await finish(task, "the source ran out (is every worker told that the input is over?)")
    assert Counter(got) == Counter((x + 1) ** 2 for x in range(50)), (
        "each of the 50 items must come out exactly once, after both stages"
    )
    assert source.closed


@pytest.mark.stage(1, "every item through")
@given(
    items=st.lists(st.integers(-1000, 1000), max_size=30),
    shape=st.lists(st.tuples(st.sampled_from(["inc", "double", "neg"]), st.integers(1, 3)), min_size=1, max_size=3),
    capacity=st.integers(1, 3),
)
@settings(max_examples=40, deadline=None)
def test_matches_applying_the_stages_one_after_another(
    items: list[int], shape: list[tuple[str, int]], capacity: int
) -> None:
    """Brute-force oracle: the pipeline computes the same multiset as plain function calls."""
    fns: dict[str, Callable[[int], int]] = {
        "inc": lambda x: x + 1,
        "double": lambda x: 2 * x,
        "neg": lambda x: -x,
    }

    async def source() -> AsyncIterator[int]:
        for x in items:
            yield x

    async def main() -> list[Any]:
        stages = [stage(name, fns[name], workers) for name, workers in shape]
        return await asyncio.wait_for(run_pipeline(source(), stages, capacity=capacity), 5)

    expected = []
    for x in items:
        for name, _ in shape:
            x = fns[name](x)
        expected.append(x)
    got = asyncio.run(main())
    assert Counter(got) == Counter(expected), (
        f"items {items}, stages {shape}, capacity {capacity}: expected {sorted(expected)}, got {sorted(got)}"
    )


@pytest.mark.stage(3, "workers and backpressure")
@pytest.mark.asyncio
async def test_each_stage_runs_its_workers_at_the_same_time(spawn: Spawn) -> None:
    gate = asyncio.Event()
    busy = peak = 0

    async def slow(x: int) -> int:
        nonlocal busy, peak
        busy += 1
        peak = max(peak, busy)
        await gate.wait()
        busy -= 1
        return x

    source = Source(limit=9)
    task = spawn(run_pipeline(source.items(), [Stage("slow", slow, 3)], capacity=9))
    await settle(task)
    assert peak == 3, (
        f"{peak} calls of a stage with workers=3 ran at once, expected 3: start `workers` "
        "tasks per stage, all reading the same queue"
    )
    gate.set()
    assert sorted(await finish(task, "the gate opened")) == list(range(9))


# -- backpressure -----------------------------------------------------------------------------


@pytest.mark.stage(3, "workers and backpressure")
@pytest.mark.parametrize("capacity", [1, 3])
@pytest.mark.asyncio
async def test_a_stalled_stage_stops_the_source_being_read(spawn: Spawn, capacity: int) -> None:
    permits = asyncio.Semaphore(0)
    free = False
    done: list[int] = []

    async def stuck(x: int) -> int:
        if not free:
            await permits.acquire()
        done.append(x)
        return x

    source = Source(limit=1000)
    stages = [stage("fast", lambda x: x, 2), Stage("stuck", stuck, 1)]
    task = spawn(run_pipeline(source.items(), stages, capacity=capacity))
    await settle(task)
    # What can be taken while "stuck" holds its item: 1 in its hands, `capacity` in its queue,
    # 2 held by "fast" workers waiting for room, `capacity` in the first queue, 1 held by the
    # producer.
    bound = 1 + capacity + 2 + capacity + 1
    taken = len(source.taken)
    assert taken <= bound, (
        f"the source was read {taken} times while the last stage was stuck on its first item; "
        f"with capacity={capacity} at most {bound} items can be in the pipeline. No "
        "backpressure: are the queues bounded (asyncio.Queue(capacity)) and does everyone "
        "await put()?"
    )
    await settle(task)
    assert len(source.taken) == taken, "the source kept being read while the pipeline was full"
    peak = 0
    for _ in range(20):  # the last stage finishes one item at a time
        permits.release()
        await settle(task)
        peak = max(peak, len(source.taken) - len(done))
    assert len(done) == 20, (
        f"20 items were let through the last stage one at a time, {len(done)} finished: a "
        "worker must take the next item from its queue as soon as it is free"
    )
    assert peak <= bound, (
        f"with the last stage finishing one item at a time, up to {peak} items were in flight "
        f"(taken, not finished); at most {bound} fit in the queues and workers. Backpressure "
        "must hold all along, not only until the first stall"
    )
    free = True
    permits.release()
    got = await finish(task, "the stuck stage was released")
    assert sorted(got) == list(range(1000))


# -- shutdown -------------------------------------------------------------------------------


@pytest.mark.stage(3, "workers and backpressure")
@pytest.mark.asyncio
async def test_the_end_of_input_reaches_every_worker_of_every_stage(spawn: Spawn) -> None:
    source = Source(limit=5)
    stages = [stage("a", lambda x: x, 3), stage("b", lambda x: x, 2), stage("c", lambda x: x, 4)]
    task = spawn(run_pipeline(source.items(), stages, capacity=1))
    await asyncio.wait({task}, timeout=PATIENCE)
    if not task.done():
        left = [t.get_coro().__qualname__ for t in learner_tasks_running()]
        pytest.fail(
            f"run_pipeline still running {PATIENCE:g} s after the source ran out; tasks still "
            f"waiting: {left}. Every worker must learn that its input is over: one sentinel per "
            "worker (a single sentinel ends a single worker), passed on when a stage's last "
            "worker finishes"
        )
    assert sorted(task.result()) == list(range(5))
    left = learner_tasks_running()
    assert not left, f"run_pipeline returned but left {len(left)} task(s) running"


@pytest.mark.stage(2, "refusals and stop")
@pytest.mark.asyncio
async def test_stop_finishes_the_items_already_taken_and_takes_no_more(spawn: Spawn) -> None:
    stop = asyncio.Event()
    seen = 0

    def note(x: int) -> int:
        nonlocal seen
        seen += 1
        if seen == 10:
            stop.set()
        return x * 10

    source = Source()  # endless
    stages = [stage("note", note, 2), stage("slow", lambda x: x, 1)]
    task = spawn(run_pipeline(source.items(), stages, capacity=4, stop=stop))
    got = await finish(task, "stop was set (does the producer check it before each item?)")
    taken = list(source.taken)
    assert sorted(got) == [x * 10 for x in taken], (
        f"took {len(taken)} items from the source but returned {len(got)} results: after stop, "
        "the items already taken must still flow through every stage; none may be lost in a "
        "queue (drain them, then end the workers with sentinels, rather than cancelling)"
    )
    assert source.closed, "the source was not closed after stop: call its aclose()"
    left = learner_tasks_running()
    assert not left, f"run_pipeline returned but left {len(left)} task(s) running"


@pytest.mark.stage(4, "errors and cancellation")
@pytest.mark.asyncio
async def test_cancelling_run_pipeline_cancels_every_task_and_closes_the_source(
    spawn: Spawn,
) -> None:
    gate = asyncio.Event()
    cancelled: list[int] = []

    async def stuck(x: int) -> int:
        try:
            await gate.wait()
        except asyncio.CancelledError:
            cancelled.append(x)
            raise
        return x

    source = Source()
    task = spawn(run_pipeline(source.items(), [Stage("stuck", stuck, 2)], capacity=2))
    await settle(task)
    task.cancel()
    await asyncio.wait({task}, timeout=PATIENCE)
    assert task.cancelled(), "cancelling run_pipeline must end it with CancelledError"
    left = learner_tasks_running()
    assert not left, f"{len(left)} task(s) left running after run_pipeline was cancelled"
    assert source.closed, "the source was not closed when run_pipeline was cancelled"
    assert sorted(cancelled) == [0, 1], (
        f"two calls were in flight when run_pipeline was cancelled; {sorted(cancelled)} saw "
        "CancelledError: cancelling the pipeline must cancel the work in flight"
    )


# -- errors ---------------------------------------------------------------------------------


@pytest.mark.stage(4, "errors and cancellation")
@pytest.mark.asyncio
async def test_a_stage_error_stops_the_pipeline_and_names_the_stage_and_item(
    spawn: Spawn,
) -> None:
    boom = ValueError("bad record")

    def check(x: int) -> int:
        if x == 7:
            raise boom
        return x

    source = Source(limit=1000)
    stages = [stage("parse", lambda x: x, 2), stage("check", check, 1), stage("save", lambda x: x)]
    task = spawn(run_pipeline(source.items(), stages, capacity=1))
    await asyncio.wait({task}, timeout=PATIENCE)
    if not task.done():
        pytest.fail(
            f"run_pipeline still running {PATIENCE:g} s after stage 'check' raised on item 7 "
            "(deadlock?): when a worker dies, nobody drains its queue and the producer stays "
            "blocked on a full queue forever. Let the error end the run and cancel the others "
            "(a TaskGroup does)"
        )
    error = task.exception()
    assert error is not None, (
        "run_pipeline returned normally although stage 'check' raised: the error was "
        "swallowed. Raise PipelineError('check', 7) from it"
    )
    assert isinstance(error, PipelineError), (
        f"run_pipeline raised {error!r}; expected PipelineError (a TaskGroup raises an "
        "ExceptionGroup: take the error out of it)"
    )
    assert (error.stage, error.item) == ("check", 7)
    assert error.__cause__ is boom, "the stage's own exception must be the __cause__ (raise ... from exc)"
    taken = len(source.taken)
    assert taken < 50, f"the source was read {taken} times: after an error, stop taking input"
    assert source.closed, "the source was not closed after the error: call its aclose()"
    left = learner_tasks_running()
    assert not left, f"{len(left)} task(s) left running after the error: cancel them"


@pytest.mark.stage(4, "errors and cancellation")
@pytest.mark.asyncio
async def test_an_error_in_the_source_propagates_unchanged(spawn: Spawn) -> None:
    source = Source(limit=100, fail_after=5)
    task = spawn(run_pipeline(source.items(), [stage("copy", lambda x: x, 2)], capacity=2))
    await asyncio.wait({task}, timeout=PATIENCE)
    if not task.done():
        pytest.fail(
            f"run_pipeline still running {PATIENCE:g} s after the source raised (deadlock?): "
            "the workers are waiting for input that will never come"
        )
    assert task.exception() is source.error, f"expected the source's own RuntimeError, got {task.exception()!r}"
    left = learner_tasks_running()
    assert not left, (
        f"{len(left)} task(s) left running after the source failed: the workers still wait "
        "for input. Cancel them (a TaskGroup does when one of its tasks raises)"
    )


# -- the contract's corners -------------------------------------------------------------------


@pytest.mark.stage(3, "workers and backpressure")
@pytest.mark.asyncio
async def test_outputs_come_back_in_the_order_they_finished(spawn: Spawn) -> None:
    gates = [asyncio.Event() for _ in range(3)]
    started: list[int] = []

    async def held(x: int) -> int:
        started.append(x)
        await gates[x].wait()
        return x

    source = Source(limit=3)
    task = spawn(run_pipeline(source.items(), [Stage("held", held, 3)], capacity=3))
    await settle(task)
    assert sorted(started) == [0, 1, 2], f"three workers should hold items 0-2; started {started}"
    for x in (2, 0):
        gates[x].set()
        await settle(task)
    gates[1].set()
    got = await finish(task, "every item was released")
    assert got == [2, 0, 1], (
        f"items finished in the order 2, 0, 1 but came back as {got}: the README promises "
        "outputs in the order they finished (append as each one leaves the last stage; "
        "don't sort, don't keep the input order)"
    )


@pytest.mark.stage(3, "workers and backpressure")
@pytest.mark.asyncio
async def test_stages_work_at_the_same_time(spawn: Spawn) -> None:
    """Stage 1 won't finish item 1 until stage 2 has started on item 0."""
    second_has_0 = asyncio.Event()

    async def first(x: int) -> int:
        if x == 1:
            await second_has_0.wait()
        return x

    async def second(x: int) -> int:
        if x == 0:
            second_has_0.set()
        return x

    source = Source(limit=3)
    stages = [Stage("first", first), Stage("second", second)]
    task = spawn(run_pipeline(source.items(), stages, capacity=1))
    got = await finish(
        task,
        "stage 1 waited for stage 2 to start on item 0: the stages must run at the same time, "
        "each stage's workers reading its queue while the stage before still works",
    )
    assert sorted(got) == [0, 1, 2]


@pytest.mark.stage(1, "every item through")
@pytest.mark.asyncio
async def test_a_stage_has_one_worker_unless_told_otherwise(spawn: Spawn) -> None:
    busy = peak = 0

    async def count(x: int) -> int:
        nonlocal busy, peak
        busy += 1
        peak = max(peak, busy)
        await asyncio.sleep(0)
        busy -= 1
        return x

    source = Source(limit=6)
    task = spawn(run_pipeline(source.items(), [Stage("one", count)], capacity=6))
    assert sorted(await finish(task, "the source ran out")) == list(range(6))
    assert peak == 1, f"Stage(name, fn) has workers=1, yet {peak} calls ran at once"


@pytest.mark.stage(2, "refusals and stop")
@pytest.mark.parametrize(
    ("capacity", "workers", "why"),
    [
        (0, (1, 1), "capacity=0: a queue that holds nothing"),
        (-1, (1, 1), "capacity=-1"),
        (1, (), "no stages at all"),
        (1, (1, 0), "a stage with workers=0 (nobody would drain its queue)"),
        (1, (-1, 1), "a stage with workers=-1"),
    ],
)
@pytest.mark.asyncio
async def test_impossible_pipelines_are_refused_before_reading(
    capacity: int, workers: tuple[int, ...], why: str
) -> None:
    source = Source(limit=5)
    stages = [stage(f"s{i}", lambda x: x, w) for i, w in enumerate(workers)]
    with pytest.raises(ValueError):
        await asyncio.wait_for(run_pipeline(source.items(), stages, capacity=capacity), PATIENCE)
        pytest.fail(f"{why} must raise ValueError: the pipeline could never run")
    assert source.taken == [], f"{why}: refuse before taking anything from the source"


@pytest.mark.stage(1, "every item through")
@pytest.mark.asyncio
async def test_smallest_pipeline_and_an_empty_source(spawn: Spawn) -> None:
    source = Source(limit=0)
    task = spawn(run_pipeline(source.items(), [stage("s", lambda x: x, 1)], capacity=1))
    assert await finish(task, "an empty source ran out at once") == []
    assert source.closed, "the source was not closed: call its aclose() at the end too"
    assert not learner_tasks_running()
    one = Source(limit=1)
    task = spawn(run_pipeline(one.items(), [stage("s", lambda x: x + 1, 1)], capacity=1))
    assert await finish(task, "a one-item source ran out") == [1]


@pytest.mark.stage(2, "refusals and stop")
@pytest.mark.asyncio
async def test_stop_already_set_takes_nothing(spawn: Spawn) -> None:
    stop = asyncio.Event()
    stop.set()
    source = Source()
    task = spawn(run_pipeline(source.items(), [stage("s", lambda x: x, 2)], capacity=2, stop=stop))
    got = await finish(task, "stop was already set")
    assert (got, source.taken) == ([], []), (
        f"stop was set before the run, yet {len(source.taken)} item(s) were taken: check stop "
        "BEFORE taking each item, the first one included"
    )
    assert not learner_tasks_running()


class NoClose:
    """An async iterator with no aclose(): a plain class, not a generator."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.i = 0

    def __aiter__(self) -> NoClose:
        return self

    async def __anext__(self) -> int:
        if self.i == self.n:
            raise StopAsyncIteration
        self.i += 1
        return self.i - 1


@pytest.mark.stage(1, "every item through")
@pytest.mark.asyncio
async def test_a_source_without_aclose_is_fine(spawn: Spawn) -> None:
    task = spawn(run_pipeline(NoClose(4), [stage("s", lambda x: x, 2)], capacity=1))
    got = await finish(task, "the source ran out")
    assert sorted(got) == [0, 1, 2, 3], f"got {got}: a source is any async iterable; close it only if it has aclose()"


@pytest.mark.stage(4, "errors and cancellation")
@pytest.mark.asyncio
async def test_a_stage_error_cancels_the_calls_still_running(spawn: Spawn) -> None:
    """Item 0 hangs in stage 'a'; item 1 fails in stage 'b'. The hanging call must be cancelled."""
    cancelled: list[str] = []
    hang = asyncio.Event()

    async def a(x: int) -> int:
        if x == 0:
            try:
                await hang.wait()
            except asyncio.CancelledError:
                cancelled.append("a")
                raise
        return x

    async def b(x: int) -> int:
        if x == 1:
            raise KeyError(x)
        return x

    source = Source(limit=100)
    task = spawn(run_pipeline(source.items(), [Stage("a", a, 2), Stage("b", b)], capacity=1))
    await asyncio.wait({task}, timeout=PATIENCE)
    if not task.done():
        pytest.fail(
            f"run_pipeline still running {PATIENCE:g} s after stage 'b' raised while stage 'a' "
            "was busy: an error must cancel every other task, busy ones too"
        )
    error = task.exception()
    assert isinstance(error, PipelineError) and (error.stage, error.item) == ("b", 1), error
    assert isinstance(error.__cause__, KeyError)
    assert cancelled == ["a"], (
        "stage 'a' was still working on item 0 when stage 'b' failed; that call must see "
        "CancelledError (errors in one stage cancel the others), not run on or be abandoned"
    )
    assert not learner_tasks_running()


@pytest.mark.stage(4, "errors and cancellation")
@pytest.mark.parametrize("ending", ["a stage raised", "the caller cancelled", "the source raised"])
@pytest.mark.asyncio
async def test_nothing_is_still_cleaning_up_when_run_pipeline_ends(spawn: Spawn, ending: str) -> None:
    """Cancelled work and the source's own cleanup take a few turns of the loop; run_pipeline
    must wait for them, not cancel and walk away."""
    cleaned: list[str] = []
    at_the_end: list[tuple[bool, list[str]]] = []
    hang = asyncio.Event()

    async def slow(x: int) -> int:
        if x == 0:
            try:
                await hang.wait()
            except asyncio.CancelledError:
                for _ in range(5):  # closing a connection, say
                    await asyncio.sleep(0)
                cleaned.append("stage")
                raise
        if x == 1 and ending == "a stage raised":
            raise KeyError(x)
        return x

    source = Source(limit=100, close_steps=5, fail_after=3 if ending == "the source raised" else None)

    async def observed() -> list[Any]:
        try:
            return await run_pipeline(source.items(), [Stage("slow", slow, 2)], capacity=1)
        finally:
            at_the_end.append((source.closed, list(cleaned)))

    task = spawn(observed())
    if ending == "the caller cancelled":
        await settle(task)
        task.cancel()
    await asyncio.wait({task}, timeout=PATIENCE)
    assert task.done(), f"run_pipeline still running {PATIENCE:g} s after {ending}"
    closed, stage_cleaned = at_the_end[0]
    assert closed and stage_cleaned == ["stage"], (
        f"when run_pipeline ended ({ending}) the source was "
        f"{'closed' if closed else 'still closing'} and the cancelled stage call had "
        f"{'finished' if stage_cleaned else 'not finished'} its cleanup: cancel the other "
        "tasks AND wait for them (a TaskGroup does), and await aclose(); nothing may outlive "
        "run_pipeline"
    )
