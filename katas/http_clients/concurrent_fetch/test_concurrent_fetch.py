"""Tests for aiohttp fan-out: limits seen by real servers, results in order, errors in place, fail-fast."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any

import pytest

from fixtures.flaky_server import FlakyServer, held, ok, peak_overlap, status

from .concurrent_fetch import FetchError, fetch_all

SETTLE = 0.3  # seconds to watch for requests that must NOT arrive


Results = list[bytes | FetchError]


@contextlib.asynccontextmanager
async def background(coro: Coroutine[Any, Any, Results]) -> AsyncIterator[asyncio.Task[Results]]:
    """Run `coro` as a task; on the way out, cancel it if needed and collect its outcome."""
    task = asyncio.create_task(coro)
    try:
        yield task
    finally:
        if not task.done():
            task.cancel()
        with contextlib.suppress(BaseException):  # retrieved, so never "exception never retrieved"
            await task


async def eventually(
    predicate: Callable[[], bool],
    what: str,
    timeout: float = 5.0,
    task: asyncio.Task[Results] | None = None,
) -> None:
    """Poll `predicate` without blocking the event loop; if `task` ends early, surface its outcome."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if task is not None and task.done():
            outcome = task.result()  # raises the task's error, e.g. NotImplementedError
            raise AssertionError(f"fetch_all returned {outcome!r} before {what}")
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up after {timeout} s waiting for {what}")
        await asyncio.sleep(0.01)


async def finish(task: asyncio.Task[Results]) -> Results:
    try:
        return await asyncio.wait_for(asyncio.shield(task), 8.0)
    except TimeoutError as exc:
        raise AssertionError("fetch_all still running 8 s after every response was released") from exc


@pytest.mark.asyncio
async def test_results_come_back_in_input_order_whatever_order_they_finish_in(
    flaky_server: FlakyServer,
) -> None:
    urls = [flaky_server.script(f"/item/{i}", held(f"g{i}", ok(f"item-{i}".encode()))) for i in range(5)]
    async with background(fetch_all(urls, limit=5, per_host=5)) as task:
        try:
            await eventually(
                lambda: flaky_server.held_count() == 5, "all 5 requests to be in flight", task=task
            )
            for i in reversed(range(5)):  # answer the last URL first
                flaky_server.release(f"g{i}")
                await eventually(
                    lambda i=i: flaky_server.hits(f"/item/{i}")[0].finished_at is not None,  # type: ignore[misc]
                    f"/item/{i} to be answered",
                )
                await asyncio.sleep(0.05)
        finally:
            for i in range(5):
                flaky_server.release(f"g{i}")
        results = await finish(task)
    assert results == [f"item-{i}".encode() for i in range(5)], (
        f"got {results}: results must be in the order of `urls`, not the order requests finished "
        "(as_completed gives completion order; store each result at its URL's index)"
    )


@pytest.mark.asyncio
async def test_errors_take_their_place_in_the_results_without_stopping_the_rest(
    flaky_server: FlakyServer,
) -> None:
    urls = [
        flaky_server.script("/a", ok(b"A")),
        flaky_server.script("/missing", status(404)),
        flaky_server.script("/b", ok(b"B")),
        flaky_server.script("/broken", status(500)),
    ]
    results = await asyncio.wait_for(fetch_all(urls, limit=2, per_host=2), 8.0)
    assert results[0] == b"A" and results[2] == b"B", f"got {results}"
    for index, code in ((1, 404), (3, 500)):
        got = results[index]
        assert isinstance(got, FetchError) and got.status == code and got.url == urls[index], (
            f"result {index} should be FetchError(url, {code}), got {got!r}"
        )


@pytest.mark.asyncio
async def test_in_flight_requests_stay_within_the_per_host_and_overall_limits() -> None:
    with FlakyServer() as a, FlakyServer() as b:
        urls = [a.script(f"/a{i}", held("go", ok(b"a"))) for i in range(6)]
        urls += [b.script(f"/b{i}", held("go", ok(b"b"))) for i in range(6)]
        async with background(fetch_all(urls, limit=3, per_host=2)) as task:
            try:
                try:
                    await eventually(
                        lambda: a.held_count() + b.held_count() >= 3, "3 requests in flight", task=task
                    )
                except AssertionError as exc:
                    raise AssertionError(
                        f"only {a.held_count()} + {b.held_count()} requests in flight with limit=3, "
                        "per_host=2 and 6 URLs on each of 2 hosts. If host A's URLs queue for A's "
                        "slots while holding global slots, host B starves: take the per-host slot "
                        "first, then the global one (and don't await requests one at a time)"
                    ) from exc
                await asyncio.sleep(SETTLE)  # room for extra requests to show up, if any would
                now_a, now_b = a.held_count(), b.held_count()
            finally:
                a.release("go")
                b.release("go")
            results = await finish(task)
        assert (now_a, now_b) in ((2, 1), (1, 2)), (
            f"in flight at once: {now_a} on host A, {now_b} on host B; expected 3 in all (limit=3) "
            "and at most 2 per host (per_host=2)"
        )
        assert results == [b"a"] * 6 + [b"b"] * 6
        peaks = (a.peak_in_flight, b.peak_in_flight, peak_overlap(a.requests + b.requests))
        assert peaks[0] <= 2 and peaks[1] <= 2 and peaks[2] <= 3, (
            f"peak in flight over the whole run: host A {peaks[0]}, host B {peaks[1]}, both "
            f"{peaks[2]}; the limits are per_host=2, limit=3"
        )


@pytest.mark.asyncio
async def test_fail_fast_raises_the_first_error_and_cancels_everything_else(
    flaky_server: FlakyServer,
) -> None:
    urls = [flaky_server.script(f"/slow/{i}", held("never")) for i in range(8)]
    urls[2] = flaky_server.script("/boom", status(500))
    try:
        await asyncio.wait_for(fetch_all(urls, limit=3, per_host=3, fail_fast=True), 5.0)
    except FetchError as exc:
        assert exc.status == 500 and exc.url == urls[2], f"raised {exc!r}, expected the 500 of /boom"
    except TimeoutError:
        raise AssertionError(
            "fail_fast=True, /boom answered 500 at once, but fetch_all was still waiting for the "
            "other (stuck) requests 5 s later: the first error must cancel the rest"
        ) from None
    except BaseExceptionGroup as group:
        raise AssertionError(
            f"raised {group!r}: unwrap the group and raise the FetchError itself (except* FetchError)"
        ) from None
    else:
        raise AssertionError("fail_fast=True and /boom answered 500, but fetch_all did not raise")
    # No grace period: a TaskGroup has already waited for every cancelled task to finish.
    leftovers = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
    assert not leftovers, (
        f"{len(leftovers)} task(s) still running after fetch_all raised: asyncio.gather raises the "
        "first error but does not cancel the others; use asyncio.TaskGroup (or cancel and await them)"
    )
    slow = [r for r in flaky_server.requests if r.path.startswith("/slow/")]
    assert len(slow) < 7, f"{len(slow)} of the 7 slow URLs were sent after the failure: cancel the ones not started"
    for request in slow:
        await eventually(
            lambda request=request: request.aborted,  # type: ignore[misc]
            f"the server to see the client hang up on {request.path} (cancelled requests must "
            "close their connection)",
            timeout=3.0,
        )
