"""Tests for the asyncio fan-out, against a real aiohttp server on 127.0.0.1 that counts requests."""

from __future__ import annotations

import asyncio
import gc
import select
import socket
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
from aiohttp import web

from . import async_fanout
from .async_fanout import fetch, fetch_all

TEXTS = {"utf-8": "naïve café ✓", "iso-8859-1": "déjà vu, señor"}


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
        except (asyncio.CancelledError, ConnectionResetError):
            # aiohttp cancels a handler (handler_cancellation=True) when its client disconnects,
            # or a write to a client that went away fails.
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
        code = int(request.match_info["code"])
        return web.Response(status=code, text="" if code in (204, 304) else f"body of {code}")

    async def stall_body(request: web.Request) -> web.StreamResponse:
        # headers and the first bytes of the body at once, then nothing until released
        response = web.StreamResponse(headers={"Content-Type": "text/plain"})
        await response.prepare(request)
        await response.write(b"the first bytes, ")
        await server.release.wait()
        await response.write(b"then the rest")
        await response.write_eof()
        return response

    async def drip(request: web.Request) -> web.StreamResponse:
        # a body that keeps coming, one byte every 20 ms for 3 s: no pause is long, the whole is
        response = web.StreamResponse(headers={"Content-Type": "text/plain"})
        await response.prepare(request)
        for _ in range(150):
            await response.write(b".")
            await asyncio.sleep(0.02)
        await response.write_eof()
        return response

    async def chunks(request: web.Request) -> web.StreamResponse:
        # 64 KiB of text in 16 writes, a moment apart: the body arrives in pieces
        response = web.StreamResponse(headers={"Content-Type": "text/plain; charset=utf-8"})
        await response.prepare(request)
        for i in range(16):
            await response.write(str(i % 10).encode() * 4096)
            await asyncio.sleep(0.005)
        await response.write_eof()
        return response

    async def encoded(request: web.Request) -> web.Response:
        charset = request.match_info["charset"]
        return web.Response(body=TEXTS[charset].encode(charset),
                            headers={"Content-Type": f"text/plain; charset={charset}"})

    async def hang_up(request: web.Request) -> web.StreamResponse:
        # promises 100 bytes, sends 10, and closes the connection
        response = web.StreamResponse(headers={"Content-Type": "text/plain", "Content-Length": "100"})
        await response.prepare(request)
        await response.write(b"0123456789")
        assert request.transport is not None
        request.transport.close()
        return response

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
    app.router.add_get("/stall-body/{i}", stall_body)
    app.router.add_get("/drip/{i}", drip)
    app.router.add_get("/encoded/{charset}", encoded)
    app.router.add_get("/chunks/{i}", chunks)
    app.router.add_get("/hang-up/{i}", hang_up)
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


@pytest.mark.stage(1, "fetching one url")
@pytest.mark.asyncio
async def test_fetch_returns_the_body(server: Server, session: aiohttp.ClientSession) -> None:
    assert await fetch(session, server.url("/hello/1"), timeout=5) == "hello 1"


@pytest.mark.stage(1, "fetching one url")
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


@pytest.mark.stage(1, "fetching one url")
@pytest.mark.asyncio
async def test_fetch_decodes_the_body_with_the_charset_the_response_declares(
    server: Server, session: aiohttp.ClientSession
) -> None:
    for charset, text in TEXTS.items():
        got = await fetch(session, server.url(f"/encoded/{charset}"), timeout=5)
        assert got == text, (
            f"a body sent as {charset} came back as {got!r}, expected {text!r}: decode it with the "
            "charset its Content-Type declares (response.text() does), not always as UTF-8"
        )


@pytest.mark.stage(1, "fetching one url")
@pytest.mark.asyncio
async def test_fetch_returns_the_whole_body_however_many_pieces_it_arrives_in(
    server: Server, session: aiohttp.ClientSession
) -> None:
    got = await fetch(session, server.url("/chunks/0"), timeout=5)
    expected = "".join(str(i % 10) * 4096 for i in range(16))
    assert got == expected, (
        f"fetch() returned {len(got)} of the {len(expected)} characters the server sent in 16 "
        "pieces: read the whole body (await response.text()), not what has arrived so far"
    )


STATUSES = [200, 201, 203, 204, 299, 300, 399, 400, 401, 403, 404, 418, 429, 499, 500, 502, 503, 599]


@pytest.mark.stage(1, "fetching one url")
@pytest.mark.asyncio
async def test_every_status_from_400_up_raises_and_every_status_below_is_the_body(
    server: Server, session: aiohttp.ClientSession
) -> None:
    wrong = []
    for code in STATUSES:
        expected = ("raises ClientResponseError", code) if code >= 400 else (
            "returns", "" if code == 204 else f"body of {code}")
        try:
            got: tuple[str, object] = ("returns", await fetch(session, server.url(f"/status/{code}"), timeout=5))
        except aiohttp.ClientResponseError as exc:
            got = ("raises ClientResponseError", exc.status)
        if got != expected:
            wrong.append(f"{code}: {got[0]} {got[1]!r}, expected {expected[0]} {expected[1]!r}")
    assert not wrong, (
        "fetch() got these statuses wrong:\n  " + "\n  ".join(wrong) + "\nEvery status >= 400 "
        "is an error, 4xx (the request was wrong, unauthorised, not found, too many) as much as "
        "5xx (the server failed): raise ClientResponseError with that status for all of them "
        "(response.raise_for_status()). Below 400 the body is the answer, whatever the status"
    )


async def outcome(call: Coroutine[Any, Any, str], bound: float = 3.0) -> tuple[str, object]:
    """What the call did within `bound` seconds: returned, timed out, raised, or still waiting."""
    task = asyncio.ensure_future(call)
    await asyncio.wait({task}, timeout=bound)  # a bound for the test, not a demand on speed
    if not task.done():
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        return ("still waiting after 3 s", None)
    try:
        return ("returned", task.result())
    except (NotImplementedError, AssertionError):
        raise
    except TimeoutError as exc:
        return ("TimeoutError", exc)
    except Exception as exc:
        return ("raised", exc)


@pytest.fixture
def unanswered_port() -> Iterator[int]:
    """A port whose listener never completes another TCP handshake: its backlog is full."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port = int(listener.getsockname()[1])
    fillers: list[socket.socket] = []
    try:
        for _ in range(16):  # fill the accept queue until a probe connect stays pending
            probe = socket.socket()
            probe.setblocking(False)
            probe.connect_ex(("127.0.0.1", port))
            fillers.append(probe)
            _, writable, _ = select.select([], [probe], [], 0.1)
            if not writable:
                break
        else:
            pytest.fail("could not fill a listen backlog on 127.0.0.1 to stall a connect")
        yield port
    finally:
        for sock in fillers:
            sock.close()
        listener.close()


PHASES = {
    "connect": "the TCP handshake never completes",
    "headers": "the server never sends its headers",
    "body": "the server sends the headers and a few bytes of body, then stalls",
    "dripping body": "the server sends the body one byte every 20 ms for 3 s",
}


@pytest.mark.stage(2, "timeouts")
@pytest.mark.parametrize("phase", list(PHASES))
@pytest.mark.asyncio
async def test_the_timeout_covers_the_whole_exchange(
    server: Server, session: aiohttp.ClientSession, request: pytest.FixtureRequest, phase: str
) -> None:
    path = {"headers": "/hold/0", "body": "/stall-body/0", "dripping body": "/drip/0"}.get(phase)
    url = server.url(path) if path else f"http://127.0.0.1:{request.getfixturevalue('unanswered_port')}/never"
    what, value = await outcome(fetch(session, url, timeout=0.2))
    assert what == "TimeoutError", (
        f"fetch(timeout=0.2) when {PHASES[phase]}: {what} {str(value)[:60]!r}, expected "
        "TimeoutError. The timeout covers the whole exchange: connect, headers and the whole "
        "body (one deadline, not one per read: a per-read or headers-only timeout lets a slow "
        "body run on). Read the body inside `asyncio.timeout()` too"
    )
    if path:
        await server.wait_for(
            f"the timed-out request ({phase}) to be closed at the server: a timeout cancels the "
            "request, it does not merely stop waiting for it",
            lambda: server.in_flight == 0,
        )
        assert server.abandoned == [path]


@pytest.mark.stage(2, "timeouts")
@pytest.mark.parametrize("timeout", [0, -1])
@pytest.mark.asyncio
async def test_a_timeout_that_has_already_run_out_gets_no_answer(
    server: Server, session: aiohttp.ClientSession, timeout: float
) -> None:
    what, value = await outcome(fetch(session, server.url("/hello/0"), timeout=timeout))
    assert what == "TimeoutError", (
        f"fetch(timeout={timeout}) {what} {value!r}, expected TimeoutError: a timeout of 0 or "
        "less has already run out, it is not 'no timeout' (aiohttp's ClientTimeout treats 0 as "
        "none: test `timeout <= 0` yourself, or use asyncio.timeout())"
    )


# -- fetch_all ----------------------------------------------------------------------------------


@pytest.mark.stage(3, "fanning out")
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


@pytest.mark.stage(3, "fanning out")
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


@pytest.mark.stage(4, "failures in the fan-out")
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


@pytest.mark.stage(4, "failures in the fan-out")
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


@pytest.mark.stage(4, "failures in the fan-out")
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


@pytest.mark.stage(5, "slots and cancellation")
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


@pytest.mark.stage(5, "slots and cancellation")
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


@pytest.mark.stage(3, "fanning out")
@pytest.mark.asyncio
async def test_no_urls_no_requests(server: Server, session: aiohttp.ClientSession) -> None:
    assert await fetch_all(session, [], limit=3, timeout=5) == []
    assert await fetch_all(session, [server.url("/hello/9")], limit=3, timeout=5) == ["hello 9"]
    assert server.started == ["/hello/9"]


@pytest.mark.stage(3, "fanning out")
@pytest.mark.asyncio
async def test_a_limit_below_one_is_refused_before_any_request(
    server: Server, session: aiohttp.ClientSession
) -> None:
    for limit in (0, -1):
        with pytest.raises(ValueError):
            await fetch_all(session, [server.url("/hello/0")], limit=limit, timeout=5)
            pytest.fail(f"fetch_all(limit={limit}) must raise ValueError: no request could ever start")
    assert server.started == [], f"fetch_all with a limit below 1 sent requests: {server.started}"
    assert await fetch_all(session, [server.url("/hello/0")] * 2, limit=1, timeout=5) == ["hello 0"] * 2, (
        "limit=1 is the smallest limit there is: one request at a time"
    )


@pytest.mark.stage(4, "failures in the fan-out")
@pytest.mark.asyncio
async def test_every_error_status_and_misbehaving_peer_is_that_urls_result(
    server: Server, session: aiohttp.ClientSession
) -> None:
    urls = [
        server.url("/status/404"),
        server.url("/status/401"),
        server.url("/hello/2"),
        server.url("/hang-up/3"),
        "http://[::1/not-a-url",
        server.url("/status/302"),
        server.url("/status/503"),
    ]
    results = await fetch_all(session, urls, limit=3, timeout=5)
    shown = [r if isinstance(r, str) else type(r).__name__ for r in results]
    statuses = [getattr(r, "status", None) for r in results]
    assert statuses[0] == 404 and statuses[1] == 401 and statuses[6] == 503, (
        f"results {shown}: a 404, a 401 and a 503 each hold their ClientResponseError; a 4xx "
        "is an error as much as a 5xx (raise_for_status() raises for every status >= 400)"
    )
    assert results[2] == "hello 2" and results[5] == "body of 302", (
        f"results {shown}: the other URLs still give their bodies (a 302 without a Location "
        "is a status below 400: its body is the answer)"
    )
    assert isinstance(results[3], aiohttp.ClientError) and isinstance(results[4], aiohttp.ClientError), (
        f"results {shown}: a server that hangs up mid-body and a malformed URL each give "
        "their aiohttp.ClientError in their own slot"
    )


@pytest.mark.stage(5, "slots and cancellation")
@pytest.mark.asyncio
async def test_a_freed_slot_goes_to_the_next_url_at_once(
    server: Server, session: aiohttp.ClientSession, spawn: Spawn
) -> None:
    urls = [server.url("/hold/0")] + [server.url(f"/hello/{i}") for i in range(1, 6)]
    task = spawn(fetch_all(session, urls, limit=2, timeout=30))
    await server.wait_for(
        "the 5 quick requests to go through the second slot, one after another, while the "
        "first request is held: a slot freed by a finished request is taken at once by the next "
        "URL. Batches of `limit` (a gather per chunk of URLs) leave slots idle until the "
        "slowest request of the batch is done",
        lambda: len(server.finished) == 5, task,
    )
    assert server.in_flight == 1 and server.peak == 2
    server.release.set()
    assert await task == ["held 0"] + [f"hello {i}" for i in range(1, 6)]
