"""Tests for the asyncio fan-out, against a real aiohttp server on 127.0.0.1 that counts requests."""

from __future__ import annotations

import asyncio
import gc
import socket
from collections.abc import AsyncIterator, Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
from aiohttp import web

from . import async_fanout
from .async_fanout import fetch, fetch_all


@dataclass
class Server:
    """A real HTTP server that records what it saw: in flight now, the peak, who started, who
    was cancelled because the client went away."""

    base: str = ""
    in_flight: int = 0
    peak: int = 0
    started: list[str] = field(default_factory=list)
    finished: list[str] = field(default_factory=list)
    abandoned: list[str] = field(default_factory=list)
    release: asyncio.Event = field(default_factory=asyncio.Event)

    def url(self, path: str) -> str:
        return f"{self.base}{path}"

    async def wait_for(
        self, what: str, predicate: Callable[[], bool], task: asyncio.Task[Any] | None = None
    ) -> None:
        """Poll the server's record until `predicate()` holds; fail saying `what` if it doesn't.

        With `task`, also fail (with the task's own error, if it raised) once the task is done.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 3.0
        while not predicate():
            if task is not None and task.done():
                got = await task  # re-raises what fetch_all raised
                pytest.fail(f"fetch_all returned {got!r} before {what}")
            if loop.time() > deadline:
                pytest.fail(
                    f"gave up after 3 s waiting for {what} "
                    f"(server: {self.in_flight} in flight, started {self.started})"
                )
            await asyncio.sleep(0.005)


def make_app(server: Server) -> web.Application:
    @web.middleware
    async def count(request: web.Request, handler: Any) -> web.StreamResponse:
        server.started.append(request.path)
        server.in_flight += 1
        server.peak = max(server.peak, server.in_flight)
        try:
            response = await handler(request)
        except asyncio.CancelledError:
            # aiohttp cancels a handler (handler_cancellation=True) when its client disconnects.
            server.abandoned.append(request.path)
            raise
        finally:
            server.in_flight -= 1
        server.finished.append(request.path)
        return response

    async def hello(request: web.Request) -> web.Response:
        await asyncio.sleep(int(request.query.get("delay_ms", "0")) / 1000)
        return web.Response(text=f"hello {request.match_info['i']}")

    async def hold(request: web.Request) -> web.Response:
        await server.release.wait()  # held until the test (or the fixture) lets go
        return web.Response(text=f"held {request.match_info['i']}")

    async def status(request: web.Request) -> web.Response:
        return web.Response(status=int(request.match_info["code"]), text="no")

    async def last_first(request: web.Request) -> web.Response:
        # /last-first/{i}?n=N answers only after every higher i has answered: completion order
        # is the reverse of the input order.
        i, n = int(request.match_info["i"]), int(request.query["n"])
        while not all(f"/last-first/{j}" in server.finished for j in range(i + 1, n)):
            await asyncio.sleep(0.005)
        await asyncio.sleep(0.02)  # and let the previous response reach the client first
        return web.Response(text=f"item {i}")

    app = web.Application(middlewares=[count])
    app.router.add_get("/hello/{i}", hello)
    app.router.add_get("/hold/{i}", hold)
    app.router.add_get("/status/{code}", status)
    app.router.add_get("/last-first/{i}", last_first)
    return app


@pytest_asyncio.fixture
async def server() -> AsyncIterator[Server]:
    """The server on a free port of 127.0.0.1, stopped (held requests released) after the test."""
    record = Server()
    runner = web.AppRunner(make_app(record), handler_cancellation=True, shutdown_timeout=1.0)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    record.base = f"http://{host}:{port}"
    try:
        yield record
    finally:
        record.release.set()
        await runner.cleanup()


@pytest_asyncio.fixture(autouse=True)
async def no_task_left_behind() -> AsyncIterator[None]:
    """After each test (and after the server stopped), cancel whatever tasks are left and
    collect garbage now: a task finalized at a random later moment logs a traceback from inside
    whatever is running then, and on CPython 3.11 that can break pytest's own AST parsing."""
    yield
    me = asyncio.current_task()
    left = [t for t in asyncio.all_tasks() if t is not me]
    for task in left:
        task.cancel()
    if left:
        await asyncio.wait(left, timeout=2)
    for task in left:
        if task.done() and not task.cancelled():
            task.exception()  # mark it read
    gc.collect()


@pytest_asyncio.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client:
        yield client


Spawn = Callable[[Coroutine[Any, Any, Any]], "asyncio.Task[Any]"]


@pytest_asyncio.fixture
async def spawn(server: Server, session: aiohttp.ClientSession) -> AsyncIterator[Spawn]:
    """create_task for the test; every task is cancelled and awaited after it (before the server
    and session go away), so none outlives the test and none dies with an unread exception."""
    tasks: list[asyncio.Task[Any]] = []

    def start(coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        tasks.append(asyncio.create_task(coro))
        return tasks[-1]

    yield start
    server.release.set()
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


def closed_port() -> int:
    """A port on 127.0.0.1 that nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def learner_tasks_running() -> list[asyncio.Task[Any]]:
    """Tasks still running code from async_fanout.py (the tasks fetch_all started)."""
    left = []
    for task in asyncio.all_tasks():
        code = getattr(task.get_coro(), "cr_code", None)
        if not task.done() and code is not None and code.co_filename == async_fanout.__file__:
            left.append(task)
    return left


# -- fetch ------------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_fetch_returns_the_body(server: Server, session: aiohttp.ClientSession) -> None:
    assert await fetch(session, server.url("/hello/1"), timeout=5) == "hello 1"


@pytest.mark.asyncio
async def test_fetch_raises_for_an_error_status(
    server: Server, session: aiohttp.ClientSession
) -> None:
    try:
        got = await fetch(session, server.url("/status/503"), timeout=5)
    except aiohttp.ClientResponseError as exc:
        assert exc.status == 503
    else:
        pytest.fail(
            f"fetch() returned {got!r} for a 503: an error status must raise "
            "ClientResponseError (response.raise_for_status())"
        )


@pytest.mark.asyncio
async def test_fetch_times_out_and_the_server_sees_the_request_abandoned(
    server: Server, session: aiohttp.ClientSession
) -> None:
    with pytest.raises(TimeoutError):
        await fetch(session, server.url("/hold/0"), timeout=0.2)
    await server.wait_for(
        "the server to see the timed-out request closed: a timeout must cancel the request "
        "(asyncio.timeout), not merely stop waiting for it",
        lambda: server.in_flight == 0,
    )
    assert server.abandoned == ["/hold/0"]


# -- fetch_all ----------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_never_more_than_limit_requests_in_flight_and_the_limit_is_used(
    server: Server, session: aiohttp.ClientSession, spawn: Spawn
) -> None:
    urls = [server.url(f"/hold/{i}") for i in range(12)]
    task = spawn(fetch_all(session, urls, limit=3, timeout=30))
    await server.wait_for(
        "3 requests in flight at once with limit=3 (are the calls started together, as tasks, "
        "rather than awaited one after another?)",
        lambda: server.in_flight >= 3, task,
    )
    await asyncio.sleep(0.1)  # room for a fan-out without a limit to send the rest
    assert server.in_flight == 3, (
        f"the server saw {server.in_flight} requests in flight at once with limit=3: "
        "at most `limit` requests may be in flight (an asyncio.Semaphore(limit) around each call)"
    )
    server.release.set()
    results = await task
    assert results == [f"held {i}" for i in range(12)], "one body per URL, in the URLs' order"
    assert server.peak == 3, f"peak in flight was {server.peak}, limit was 3"


@pytest.mark.asyncio
async def test_results_come_back_in_input_order_not_completion_order(
    server: Server, session: aiohttp.ClientSession
) -> None:
    urls = [server.url(f"/last-first/{i}?n=5") for i in range(5)]
    results = await fetch_all(session, urls, limit=5, timeout=10)
    assert server.finished == [f"/last-first/{i}" for i in (4, 3, 2, 1, 0)]
    assert results == [f"item {i}" for i in range(5)], (
        f"got {results}, but results must be in the order of the URLs even though the server "
        "answered them last-first (keep each task's place; don't collect with as_completed)"
    )


@pytest.mark.asyncio
async def test_one_failed_call_is_a_result_not_the_end_of_the_others(
    server: Server, session: aiohttp.ClientSession
) -> None:
    urls = [
        server.url("/hello/0"),
        server.url("/status/500"),
        f"http://127.0.0.1:{closed_port()}/nobody-home",
        server.url("/hello/3"),
    ]
    try:
        results = await fetch_all(session, urls, limit=2, timeout=5)
    except NotImplementedError:
        raise
    except Exception as exc:
        pytest.fail(
            f"fetch_all raised {exc!r} because one failed call raised: each URL's exception "
            "belongs in its own slot of the result list, and the other calls still complete"
        )
    assert results[0] == "hello 0" and results[3] == "hello 3", results
    assert isinstance(results[1], aiohttp.ClientResponseError) and results[1].status == 500, (
        f"slot 1 (a 500) holds {results[1]!r}, expected the ClientResponseError fetch() raised"
    )
    assert isinstance(results[2], aiohttp.ClientConnectionError), (
        f"slot 2 (nothing listening) holds {results[2]!r}, expected a ClientConnectionError"
    )


@pytest.mark.asyncio
async def test_a_failed_call_gives_back_exactly_one_slot(
    server: Server, session: aiohttp.ClientSession, spawn: Spawn
) -> None:
    urls = [server.url("/status/500")] * 3 + [server.url(f"/hold/{i}") for i in range(6)]
    task = spawn(fetch_all(session, urls, limit=2, timeout=30))
    await server.wait_for(
        "the failing calls to finish and two held requests to start",
        lambda: sum(p.startswith("/hold") for p in server.started) >= 2, task,
    )
    await asyncio.sleep(0.1)
    assert server.in_flight == 2, (
        f"after 3 calls failed, {server.in_flight} requests were in flight with limit=2: was a "
        "failing call's semaphore slot released twice (in an except and again in finally)? "
        "`async with semaphore:` releases exactly once on every path"
    )
    server.release.set()
    results = await task
    assert [type(r).__name__ for r in results] == ["ClientResponseError"] * 3 + ["str"] * 6, (
        f"expected 3 ClientResponseErrors then 6 bodies, in the URLs' order; got {results}"
    )


@pytest.mark.asyncio
async def test_a_timed_out_call_fails_alone_and_frees_its_slot(
    server: Server, session: aiohttp.ClientSession
) -> None:
    urls = [server.url("/hold/0"), server.url("/hello/1"), server.url("/hello/2")]
    results = await fetch_all(session, urls, limit=1, timeout=0.3)
    assert isinstance(results[0], TimeoutError), (
        f"slot 0 (a request the server never answers) holds {results[0]!r}, expected TimeoutError"
    )
    assert results[1:] == ["hello 1", "hello 2"], (
        f"the calls after the timed-out one gave {results[1:]}: the timeout is per call, and a "
        "timed-out call must give its slot back"
    )
    await server.wait_for(
        "the timed-out request to be closed at the server (cancel it, don't just stop waiting)",
        lambda: server.in_flight == 0,
    )


@pytest.mark.asyncio
async def test_the_timeout_starts_when_a_call_gets_its_slot_not_while_it_waits_for_one(
    server: Server, session: aiohttp.ClientSession
) -> None:
    # Each request takes 0.1 s at the server; with limit=1 the 5th waits at least 0.4 s in line.
    urls = [server.url(f"/hello/{i}?delay_ms=100") for i in range(5)]
    results = await fetch_all(session, urls, limit=1, timeout=0.4)
    timed_out = [i for i, r in enumerate(results) if isinstance(r, TimeoutError)]
    assert not timed_out, (
        f"calls {timed_out} timed out although each request took only 0.1 s of its 0.4 s: the "
        "timeout also counted the time spent waiting for a slot. Start the timeout inside "
        "`async with semaphore:`, around the request only"
    )
    assert results == [f"hello {i}" for i in range(5)], "one body per URL, in the URLs' order"


@pytest.mark.asyncio
async def test_cancelling_fetch_all_cancels_every_request_and_starts_no_more(
    server: Server, session: aiohttp.ClientSession, spawn: Spawn
) -> None:
    urls = [server.url(f"/hold/{i}") for i in range(6)]
    task = spawn(fetch_all(session, urls, limit=2, timeout=30))
    await server.wait_for("2 requests in flight", lambda: server.in_flight >= 2, task)
    task.cancel()
    await asyncio.wait({task}, timeout=3)  # a bound for the test, not a demand on speed
    swallowed = (
        "it swallowed CancelledError (catching BaseException per call?). Catch Exception, and "
        "let cancellation propagate"
    )
    if not task.done():
        pytest.fail(f"fetch_all was still running 3 s after it was cancelled: {swallowed}")
    if not task.cancelled():
        pytest.fail(f"fetch_all returned {task.result()!r} after it was cancelled: {swallowed}")
    await asyncio.sleep(0.1)  # time for anything left behind to start another request
    left = learner_tasks_running()
    assert not left, (
        f"{len(left)} task(s) of fetch_all still running after it was cancelled: cancel the "
        "tasks you started (a TaskGroup or gather does it for you), don't just stop awaiting"
    )
    assert len(server.started) == 2, (
        f"the server received {len(server.started)} requests, 2 before the cancel: after "
        "cancellation no new request may start"
    )
    await server.wait_for(
        "both in-flight requests to be closed after the cancel (their tasks cancelled)",
        lambda: server.in_flight == 0,
    )
    assert sorted(server.abandoned) == ["/hold/0", "/hold/1"]


@pytest.mark.asyncio
async def test_no_urls_no_requests(server: Server, session: aiohttp.ClientSession) -> None:
    assert await fetch_all(session, [], limit=3, timeout=5) == []
    assert await fetch_all(session, [server.url("/hello/9")], limit=3, timeout=5) == ["hello 9"]
    assert server.started == ["/hello/9"]
