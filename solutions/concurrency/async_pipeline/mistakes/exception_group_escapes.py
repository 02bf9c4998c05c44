"""An asyncio pipeline: stages of workers joined by bounded queues, with shutdown and errors."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterable, Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["PipelineError", "Stage", "run_pipeline"]

END = object()  # the sentinel a worker reads as "no more input"


@dataclass(frozen=True)
class Stage:
    """One step of the pipeline: `workers` tasks each apply `fn` to one item at a time."""

    name: str
    fn: Callable[[Any], Awaitable[Any]]
    workers: int = 1


class PipelineError(Exception):
    """A stage raised: which stage, on which item; the stage's own exception is the __cause__."""

    def __init__(self, stage: str, item: Any) -> None:
        super().__init__(f"stage {stage!r} failed on item {item!r}")
        self.stage = stage
        self.item = item


async def run_pipeline(
    source: AsyncIterable[Any],
    stages: Sequence[Stage],
    *,
    capacity: int,
    stop: asyncio.Event | None = None,
) -> list[Any]:
    """Feed every item of `source` through `stages` in turn; return the last stage's outputs.

    - Bounded queues (asyncio.Queue(capacity)) join the source to the first stage and each
      stage to the next: when a stage falls behind, the queues fill up and the source is read
      no faster than the slowest stage (backpressure). Stages run concurrently, each with its
      own `workers`. Outputs come back in the order they finished.
    - End of input: when the source is exhausted, every item already taken flows through every
      stage, then all workers finish and run_pipeline returns.
    - `stop`: once set, no further item is taken from the source (checked before each one); the
      items already taken are finished and returned, as at end of input.
    - Errors: if a stage raises on an item, run_pipeline raises PipelineError(stage.name, item)
      from that exception; if the source raises, its exception propagates unchanged. Either way
      the source is read no further, every other worker is cancelled, nothing is left running.
    - The source is closed (`aclose()`, if it has one) before run_pipeline returns or raises.

    >>> async def numbers():
    ...     for i in range(5):
    ...         yield i
    >>> async def double(x): return 2 * x
    >>> sorted(await run_pipeline(numbers(), [Stage("double", double, 2)], capacity=2))
    [0, 2, 4, 6, 8]  # doctest: +SKIP
    """
    if capacity < 1 or not stages or any(s.workers < 1 for s in stages):
        raise ValueError("need capacity >= 1 and at least one stage, each with >= 1 worker")
    # One queue in front of each stage. Bounded: a put() into a full queue waits, so a slow stage
    # stalls the one before it, and so on back to the source (backpressure). An unbounded queue
    # would let a fast producer read the whole source into memory.
    queues: list[asyncio.Queue[Any]] = [asyncio.Queue(capacity) for _ in stages]
    results: list[Any] = []
    still_working = [stage.workers for stage in stages]

    async def end_of_input_for(index: int) -> None:
        """The input of stage `index + 1` is over once every worker of stage `index` is done."""
        still_working[index] -= 1
        if still_working[index] == 0 and index + 1 < len(stages):
            # One sentinel per worker: each worker consumes exactly one and leaves, so a single
            # sentinel would end one worker and leave the others waiting on get() forever.
            for _ in range(stages[index + 1].workers):
                await queues[index + 1].put(END)

    async def produce() -> None:
        items = aiter(source)
        try:
            # `stop` is checked before each item is taken, so nothing is read and then dropped.
            while stop is None or not stop.is_set():
                try:
                    item = await anext(items)
                except StopAsyncIteration:
                    break
                await queues[0].put(item)
        finally:
            # Close the source now (its `finally` blocks run, its connections close) rather
            # than whenever the garbage collector finds it: on end, on stop, on error.
            aclose = getattr(items, "aclose", None)
            if aclose is not None:
                await aclose()
        for _ in range(stages[0].workers):
            await queues[0].put(END)

    async def work(index: int) -> None:
        stage, inbox = stages[index], queues[index]
        outbox = queues[index + 1] if index + 1 < len(stages) else None
        while True:
            item = await inbox.get()
            if item is END:
                await end_of_input_for(index)
                return
            try:
                output = await stage.fn(item)
            except Exception as exc:
                # Raising (not logging and going on) ends this worker's task; the TaskGroup
                # then cancels every other task, including a producer blocked on a full queue
                # that this worker would otherwise never drain again.
                raise PipelineError(stage.name, item) from exc
            if outbox is None:
                results.append(output)
            else:
                await outbox.put(output)

    async with asyncio.TaskGroup() as group:
        group.create_task(produce())
        for index, stage in enumerate(stages):
            for _ in range(stage.workers):
                group.create_task(work(index))
    return results
