"""An asyncio pipeline: stages of workers joined by bounded queues, with shutdown and errors.

Alternative: no sentinels. Workers loop forever and mark each item task_done(); a drainer waits
for the producer, then for each queue in turn to be joined (every item in it handled) and
cancels that stage's idle workers. asyncio.wait(FIRST_EXCEPTION) watches everything, and a
finally block cancels and awaits whatever is left.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterable, Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["PipelineError", "Stage", "run_pipeline"]


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
    if capacity < 1 or not stages or any(s.workers < 1 for s in stages):
        raise ValueError("need capacity >= 1 and at least one stage, each with >= 1 worker")
    queues: list[asyncio.Queue[Any]] = [asyncio.Queue(capacity) for _ in stages]
    results: list[Any] = []

    async def produce() -> None:
        items = aiter(source)
        try:
            while not (stop is not None and stop.is_set()):
                try:
                    item = await anext(items)
                except StopAsyncIteration:
                    return
                await queues[0].put(item)
        finally:
            if hasattr(items, "aclose"):
                await items.aclose()

    async def work(index: int) -> None:
        inbox = queues[index]
        while True:
            item = await inbox.get()
            try:
                output = await stages[index].fn(item)
            except Exception as exc:
                raise PipelineError(stages[index].name, item) from exc
            if index == len(stages) - 1:
                results.append(output)
            else:
                await queues[index + 1].put(output)
            inbox.task_done()

    producer = asyncio.create_task(produce())
    crews = [[asyncio.create_task(work(i)) for _ in range(s.workers)] for i, s in enumerate(stages)]

    async def drain() -> None:
        await producer
        for queue, crew in zip(queues, crews, strict=True):
            await queue.join()  # everything that entered this stage has left it
            for worker in crew:
                worker.cancel()

    drainer = asyncio.create_task(drain())
    everyone = [producer, drainer, *(w for crew in crews for w in crew)]
    try:
        while not drainer.done():
            done, _ = await asyncio.wait(everyone, return_when=asyncio.FIRST_EXCEPTION)
            failed = [t for t in done if not t.cancelled() and t.exception() is not None]
            if failed:
                error = producer.exception() if producer in failed else failed[0].exception()
                assert error is not None
                raise error
            everyone = [t for t in everyone if not t.done()]
    finally:
        for task in everyone:
            task.cancel()
        await asyncio.gather(*everyone, return_exceptions=True)
    return results
