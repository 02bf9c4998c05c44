"""An asyncio pipeline: stages of workers joined by bounded queues, with shutdown and errors.

Alternative: no queues and no long-lived workers. Each item gets its own task that walks it
through the stages; a Semaphore(workers) per stage caps the calls of that stage, and one more
Semaphore caps the items in flight at what the queues and workers of the classic design hold
(capacity per stage plus one per worker), so the source is read no faster than the pipeline
drains. A TaskGroup holds the producer and every item task.
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
    crews = [asyncio.Semaphore(stage.workers) for stage in stages]
    room = asyncio.Semaphore(capacity * len(stages) + sum(stage.workers for stage in stages))
    results: list[Any] = []

    async def carry(item: Any) -> None:
        try:
            for stage, crew in zip(stages, crews, strict=True):
                async with crew:
                    try:
                        item_out = await stage.fn(item)
                    except Exception as exc:
                        raise PipelineError(stage.name, item) from exc
                item = item_out
            results.append(item)
        finally:
            room.release()

    async def produce(group: asyncio.TaskGroup) -> None:
        items = aiter(source)
        try:
            while True:
                await room.acquire()  # wait for room before taking the next item
                if stop is not None and stop.is_set():
                    room.release()
                    return
                try:
                    item = await anext(items)
                except StopAsyncIteration:
                    room.release()
                    return
                group.create_task(carry(item))
        finally:
            if hasattr(items, "aclose"):
                await items.aclose()

    try:
        async with asyncio.TaskGroup() as group:
            group.create_task(produce(group))
    except BaseExceptionGroup as failure:
        first = failure.exceptions[0]
        raise first from first.__cause__
    return results
