"""Tests for aiohttp fan-out: limits seen by real servers, results in order, errors in place, fail-fast."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any

import pytest

from fixtures.flaky_server import FlakyServer, closed_port, delayed, held, ok, peak_overlap, status

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


@pytest.mark.stage(1, "results in order")
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


@pytest.mark.stage(2, "errors in place")
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


@pytest.mark.stage(3, "concurrency limits")
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


@pytest.mark.stage(4, "fail fast and cancel")
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


@pytest.mark.stage(2, "errors in place")
@pytest.mark.asyncio
async def test_every_status_from_400_up_is_an_error_and_below_it_a_body(
    flaky_server: FlakyServer,
) -> None:
    codes = [200, 299, 399, 400, 404, 418, 500, 503, 599]
    urls = [flaky_server.script(f"/s{code}", status(code, f"body {code}".encode())) for code in codes]
    results = await asyncio.wait_for(fetch_all(urls, limit=4, per_host=4), 8.0)
    for code, url, got in zip(codes, urls, results, strict=True):
        if code < 400:
            assert got == f"body {code}".encode(), (
                f"a {code} answer gave {got!r}: any status below 400 is a success, its body the result"
            )
        else:
            assert isinstance(got, FetchError) and got.status == code and got.url == url, (
                f"a {code} answer gave {got!r}, expected FetchError(url, {code}): status >= 400 is "
                "an error, in its place in the results"
            )


@pytest.mark.stage(2, "errors in place")
@pytest.mark.asyncio
async def test_connection_errors_and_timeouts_become_fetch_errors_without_a_status(
    flaky_server: FlakyServer,
) -> None:
    refused = f"http://127.0.0.1:{closed_port()}/nobody"
    stuck = flaky_server.script("/stuck", held("never"))
    fine = flaky_server.script("/fine", ok(b"fine"))
    try:
        results = await asyncio.wait_for(
            fetch_all([refused, stuck, fine], limit=3, per_host=3, timeout=0.3), 8.0
        )
    except TimeoutError:
        raise AssertionError(
            "fetch_all(timeout=0.3) was still waiting for a server that never answers 8 s later: "
            "give the ClientSession a ClientTimeout(total=timeout) (or bound each request)"
        ) from None
    except BaseExceptionGroup as group:
        raise AssertionError(
            f"fetch_all raised {group!r} (fail_fast is off): a request's timeout or connection "
            "error must become FetchError(url, None) in its place; catch aiohttp.ClientError and "
            "TimeoutError around each request"
        ) from None
    for index, what in ((0, "a refused connection"), (1, "a request past its 0.3 s timeout")):
        got = results[index]
        assert isinstance(got, FetchError) and got.status is None and got.url == [refused, stuck][index], (
            f"{what} gave {got!r}, expected FetchError(url, None) in its place: catch "
            "aiohttp.ClientError and TimeoutError per request"
        )
    assert results[2] == b"fine", f"the healthy URL gave {results[2]!r}: one failure stops nothing"


@pytest.mark.stage(3, "concurrency limits")
@pytest.mark.asyncio
async def test_the_timeout_is_per_request_not_counted_while_queued(
    flaky_server: FlakyServer,
) -> None:
    """Two answers taking 0.5 s each, one at a time (limit=1), with timeout=0.8."""
    urls = [flaky_server.script(f"/slow{i}", delayed(0.5, ok(b"slow"))) for i in range(2)]
    results: object
    try:
        results = await asyncio.wait_for(fetch_all(urls, limit=1, per_host=1, timeout=0.8), 8.0)
    except NotImplementedError:
        raise
    except BaseException as exc:  # a TimeoutError, or an ExceptionGroup around one
        results = exc
    assert results == [b"slow", b"slow"], (
        f"got {results!r}: each request took 0.5 s of its 0.8 s, but the second one waited 0.5 s "
        "for a slot first. The timeout bounds a request, from when it is sent: don't start its "
        "clock while it queues for a slot (no wait_for around the semaphores; and aiohttp's "
        "ClientTimeout(total=...) counts the wait for a connection, so a TCPConnector with limits "
        "can't be the queue)"
    )


@pytest.mark.stage(3, "concurrency limits")
@pytest.mark.parametrize("limit, per_host", [(1, 4), (4, 1), (2, 5)])
@pytest.mark.asyncio
async def test_one_host_never_gets_more_than_the_smaller_limit(
    limit: int, per_host: int, flaky_server: FlakyServer
) -> None:
    bound = min(limit, per_host)
    urls = [flaky_server.script(f"/r{i}", held("go", ok(b"r"))) for i in range(5)]
    async with background(fetch_all(urls, limit=limit, per_host=per_host)) as task:
        try:
            await eventually(
                lambda: flaky_server.held_count() >= bound, f"{bound} requests in flight", task=task
            )
            await asyncio.sleep(SETTLE)  # room for extra requests to show up, if any would
            in_flight = flaky_server.held_count()
        finally:
            flaky_server.release("go")
        results = await finish(task)
    assert in_flight == bound and flaky_server.peak_in_flight <= bound, (
        f"limit={limit}, per_host={per_host}, 5 URLs on one host: {in_flight} in flight at once "
        f"(peak {flaky_server.peak_in_flight}), expected {bound}, the smaller of the two bounds"
    )
    assert results == [b"r"] * 5


@pytest.mark.stage(1, "results in order")
@pytest.mark.asyncio
async def test_the_same_url_twice_gets_two_requests_and_two_results(
    flaky_server: FlakyServer,
) -> None:
    url = flaky_server.script("/dup", ok(b"first"), ok(b"second"))
    results = await asyncio.wait_for(fetch_all([url, url], limit=1, per_host=1), 8.0)
    assert sorted(results) == [b"first", b"second"], (  # type: ignore[type-var]
        f"the same URL twice gave {results}: results belong to positions in `urls`, not to URLs "
        "(a dict keyed by URL gives both positions one answer)"
    )
    assert len(flaky_server.hits("/dup")) == 2


@pytest.mark.stage(1, "results in order")
@pytest.mark.asyncio
async def test_no_urls_no_requests() -> None:
    assert await asyncio.wait_for(fetch_all([], limit=2, per_host=1), 5.0) == []


@pytest.mark.stage(3, "concurrency limits")
@pytest.mark.parametrize("limit, per_host", [(0, 1), (1, 0), (-1, 2), (2, -1)])
@pytest.mark.asyncio
async def test_a_limit_below_one_is_refused(limit: int, per_host: int, flaky_server: FlakyServer) -> None:
    url = flaky_server.script("/x", ok())
    try:
        got: object = await asyncio.wait_for(fetch_all([url], limit=limit, per_host=per_host), 1.0)
    except ValueError:
        return
    except TimeoutError:
        got = "still waiting 1 s later"
    except BaseException as exc:  # e.g. an ExceptionGroup around a ValueError from a task
        got = exc
    raise AssertionError(
        f"fetch_all(limit={limit}, per_host={per_host}) gave {got!r}: a semaphore with no slot "
        "makes every request wait forever. Raise ValueError when limit or per_host is below 1, "
        "before starting anything"
    )


@pytest.mark.stage(4, "fail fast and cancel")
@pytest.mark.asyncio
async def test_fail_fast_raises_a_connection_error_too_and_returns_when_all_is_well(
    flaky_server: FlakyServer,
) -> None:
    fine = [flaky_server.script(f"/ok{i}", ok(f"ok{i}".encode())) for i in range(3)]
    results = await asyncio.wait_for(fetch_all(fine, limit=2, per_host=2, fail_fast=True), 8.0)
    assert results == [b"ok0", b"ok1", b"ok2"], f"fail_fast=True with no failure must return {results}"
    refused = f"http://127.0.0.1:{closed_port()}/nobody"
    try:
        got: object = await asyncio.wait_for(
            fetch_all([fine[0], refused], limit=2, per_host=2, fail_fast=True), 8.0
        )
    except FetchError as exc:
        assert exc.url == refused and exc.status is None, f"raised {exc!r}, expected the refused URL's"
        return
    raise AssertionError(f"fail_fast=True and a refused connection, but fetch_all gave {got!r}")


@pytest.mark.stage(4, "fail fast and cancel")
@pytest.mark.asyncio
async def test_cancelling_fetch_all_cancels_and_awaits_every_request(
    flaky_server: FlakyServer,
) -> None:
    urls = [flaky_server.script(f"/hang/{i}", held("never")) for i in range(4)]
    task = asyncio.create_task(fetch_all(urls, limit=2, per_host=2))
    try:
        await eventually(lambda: flaky_server.held_count() >= 2, "2 requests in flight", task=task)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    leftovers = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
    assert not leftovers, (
        f"{len(leftovers)} task(s) still running after fetch_all was cancelled and awaited: "
        "when fetch_all ends, by returning, raising or being cancelled, its tasks must be done "
        "(asyncio.TaskGroup waits for them; gather cancels them but returns before they finish)"
    )
    for request in flaky_server.requests:
        await eventually(
            lambda request=request: request.aborted,  # type: ignore[misc]
            f"the server to see the client hang up on {request.path}",
            timeout=3.0,
        )
    assert len(flaky_server.requests) == 2, "the URLs not started when cancelled must never be sent"
