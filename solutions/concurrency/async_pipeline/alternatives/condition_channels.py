"""An asyncio pipeline: stages of workers joined by bounded queues, with shutdown and errors.

Alternative: hand-made closable channels (a deque under an asyncio.Condition) instead of
asyncio.Queue and sentinels: the last worker of a stage to leave closes the next channel, and
get() on a closed, empty channel says "done". A TaskGroup owns the tasks.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterable, Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["PipelineError", "Stage", "run_pipeline"]

DONE = object()


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


class Channel:
    """A bounded FIFO: put() waits for room, get() for an item or close()."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.items: deque[Any] = deque()
        self.closed = False
        self.changed = asyncio.Condition()

    async def put(self, item: Any) -> None:
        async with self.changed:
            await self.changed.wait_for(lambda: len(self.items) < self.capacity)
            self.items.append(item)
            self.changed.notify_all()

    async def get(self) -> Any:
        async with self.changed:
            await self.changed.wait_for(lambda: self.items or self.closed)
            if not self.items:
                return DONE
            item = self.items.popleft()
            self.changed.notify_all()
            return item

    async def close(self) -> None:
        async with self.changed:
            self.closed = True
            self.changed.notify_all()


async def run_pipeline(
    source: AsyncIterable[Any],
    stages: Sequence[Stage],
    *,
    capacity: int,
    stop: asyncio.Event | None = None,
) -> list[Any]:
    if capacity < 1 or not stages or any(s.workers < 1 for s in stages):
        raise ValueError("need capacity >= 1 and at least one stage, each with >= 1 worker")
    channels = [Channel(capacity) for _ in stages]
    results: list[Any] = []
    left = [s.workers for s in stages]

    async def produce() -> None:
        items = aiter(source)
        try:
            while stop is None or not stop.is_set():
                try:
                    item = await anext(items)
                except StopAsyncIteration:
                    break
                await channels[0].put(item)
        finally:
            close = getattr(items, "aclose", None)
            if close is not None:
                await close()
        await channels[0].close()

    async def work(index: int) -> None:
        stage = stages[index]
        while (item := await channels[index].get()) is not DONE:
            try:
                output = await stage.fn(item)
            except Exception as exc:
                raise PipelineError(stage.name, item) from exc
            if index + 1 == len(stages):
                results.append(output)
            else:
                await channels[index + 1].put(output)
        left[index] -= 1
        if left[index] == 0 and index + 1 < len(stages):
            await channels[index + 1].close()

    try:
        async with asyncio.TaskGroup() as group:
            group.create_task(produce())
            for index, stage in enumerate(stages):
                for _ in range(stage.workers):
                    group.create_task(work(index))
    except BaseExceptionGroup as failure:
        raise failure.exceptions[0] from failure.exceptions[0].__cause__
    return results
