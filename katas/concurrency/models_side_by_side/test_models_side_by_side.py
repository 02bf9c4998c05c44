"""Tests for the three concurrency models, watched from a real HTTP server and from the OS (psutil)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import psutil
import pytest
from aiohttp import web

from dojo.testing import Background, wait_until

from .models_side_by_side import fetch_with_asyncio, fetch_with_processes, fetch_with_threads

N = 4  # requests per job; more than the 2 cores of the CI machine


class HoldingServer:
    """A real aiohttp server on 127.0.0.1, run in one thread, that records requests in flight.

    Each request is held until the test lets go (release()): the test waits for N in flight,
    looks at the client's threads, processes and sockets while they wait, then releases them.
    """

    def __init__(self) -> None:
        self.port = 0
        self.peak = 0
        self.in_flight: dict[int, str] = {}  # client port -> path, while the request is held
        self.served: list[str] = []
        self._guard = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._gate: asyncio.Event | None = None
        self._stop: asyncio.Event | None = None
        self._ready = threading.Event()
        self._thread = threading.Thread(target=asyncio.run, args=(self._main(),), daemon=True,
                                        name="holding-server")

    def url(self, i: int) -> str:
        return f"http://127.0.0.1:{self.port}/item/{i}"

    def __enter__(self) -> HoldingServer:
        self._thread.start()
        assert self._ready.wait(10), "the test server did not start"
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._loop is not None and self._stop is not None
        self.release()
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)

    def release(self) -> None:
        """Let every held request (and every later one) through."""
        assert self._loop is not None and self._gate is not None
        self._loop.call_soon_threadsafe(self._gate.set)

    def held_ports(self) -> set[int]:
        with self._guard:
            return set(self.in_flight)

    async def _item(self, request: web.Request) -> web.Response:
        assert self._gate is not None
        peer = request.transport.get_extra_info("peername") if request.transport else None
        client_port = peer[1] if peer else -1
        with self._guard:
            self.in_flight[client_port] = request.path
            self.peak = max(self.peak, len(self.in_flight))
        try:
            await self._gate.wait()
        finally:
            with self._guard:
                self.in_flight.pop(client_port, None)
        self.served.append(request.path)
        return web.Response(body=f"item {request.match_info['i']}".encode())

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._gate, self._stop = asyncio.Event(), asyncio.Event()
        app = web.Application()
        app.router.add_get("/item/{i}", self._item)
        runner = web.AppRunner(app, handle_signals=False)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self._ready.set()
        try:
            await self._stop.wait()
        finally:
            await runner.cleanup()


@pytest.fixture
def server() -> Iterator[HoldingServer]:
    with HoldingServer() as srv:
        yield srv


@dataclass
class Seen:
    """What the job looked like from outside while its requests were held at the server."""

    peak: int = 0
    new_threads: list[str] = field(default_factory=list)  # Python threads besides the runner
    children: list[int] = field(default_factory=list)  # child PIDs of the test process
    client_pids: dict[int, set[int]] = field(default_factory=dict)  # client port -> owner PIDs
    results: list[bytes] = field(default_factory=list)

    def describe(self) -> str:
        return (f"server peak in flight {self.peak} of {N}, {len(self.new_threads)} new "
                f"thread(s), {len(self.children)} child process(es), client sockets "
                f"{len(self.client_pids)}")


def socket_owners(server_port: int, ports: set[int]) -> dict[int, set[int]]:
    """Which PIDs (this process or its children) own the client end of each connection."""
    me = psutil.Process()
    owners: dict[int, set[int]] = {port: set() for port in ports}
    for proc in [me, *me.children(recursive=True)]:
        try:
            conns = proc.net_connections(kind="tcp")
        except (psutil.NoSuchProcess, psutil.ZombieProcess):
            continue
        for conn in conns:
            if conn.laddr and conn.raddr and conn.raddr.port == server_port \
                    and conn.laddr.port in owners:
                owners[conn.laddr.port].add(proc.pid)
    return owners


def observe(server: HoldingServer, job: Callable[[list[str]], list[bytes]]) -> Seen:
    """Run `job` on N of the server's URLs and record what exists while the requests are held."""
    urls = [server.url(i) for i in range(N)]
    before = {t.ident for t in threading.enumerate()}
    run = Background(job, urls, name="job-runner")
    seen = Seen()
    try:
        # Liveness only: a client that never gets N requests in flight is given a few seconds,
        # then observed as it is.
        with contextlib.suppress(AssertionError):
            wait_until(lambda: server.peak >= N or run.done, timeout=8, what="N in flight")
        ports = server.held_ports()
        seen.new_threads = [t.name for t in threading.enumerate()
                            if t.ident not in before and t is not run.thread]
        seen.children = [p.pid for p in psutil.Process().children(recursive=True)]
        seen.client_pids = socket_owners(server.port, ports)
    finally:
        server.release()
    seen.results = run.result(timeout=15)
    seen.peak = server.peak
    return seen


def check_overlap_and_results(seen: Seen, model: str, where: str) -> None:
    assert seen.peak == N, (
        f"{model}: the server saw at most {seen.peak} of {N} requests in flight at once, so "
        f"the job did not overlap its I/O ({where}). [{seen.describe()}]"
    )
    assert seen.results == [f"item {i}".encode() for i in range(N)], (
        f"{model}: want the bodies in URL order, got {seen.results!r}"
    )
    assert len(seen.client_pids) == N, f"{model}: want {N} client sockets: {seen.client_pids}"


def no_children_left() -> bool:
    return not psutil.Process().children(recursive=True)


def test_threads_overlap_in_one_process(server: HoldingServer) -> None:
    seen = observe(server, fetch_with_threads)
    check_overlap_and_results(
        seen, "threads", "start every thread before you join any: join() in the same loop "
        "as start() waits for each request in turn")
    assert len(seen.new_threads) >= N - 1, (
        f"threads: {N} blocking requests at once need {N} threads blocked in recv(); "
        f"saw new threads {seen.new_threads}"
    )
    assert not seen.children, f"threads: no child process expected, saw {seen.children}"
    pids = set().union(*seen.client_pids.values())
    assert pids == {os.getpid()}, (
        f"threads: every socket should belong to this process ({os.getpid()}), got {pids}"
    )


def test_threads_are_gone_when_the_job_returns(server: HoldingServer) -> None:
    server.release()  # this test is about cleaning up, not overlapping: no holding
    before = {t.ident for t in threading.enumerate()}
    assert Background(fetch_with_threads, [server.url(i) for i in range(N)]).result(10)
    left = [t.name for t in threading.enumerate() if t.ident not in before and t.is_alive()]
    assert not left, f"threads still running after fetch_with_threads returned: {left} (join them)"


def test_asyncio_overlaps_on_one_thread(server: HoldingServer) -> None:
    seen = observe(server, lambda urls: asyncio.run(fetch_with_asyncio(urls)))
    check_overlap_and_results(
        seen, "asyncio", "a blocking call such as get() or time.sleep() inside a coroutine "
        "freezes the whole event loop; use `await aget(url)` and start them together with "
        "asyncio.gather or a TaskGroup, not one `await` after another")
    assert not seen.new_threads, (
        f"asyncio: the requests overlapped, but on extra threads {seen.new_threads}: "
        "asyncio.to_thread/run_in_executor hand the blocking call to a thread pool (threads "
        "with extra steps). The event loop overlaps I/O on ONE thread: await aget(url)"
    )
    assert not seen.children, f"asyncio: no child process expected, saw {seen.children}"
    pids = set().union(*seen.client_pids.values())
    assert pids == {os.getpid()}, f"asyncio: sockets should all be in this process, got {pids}"


def test_processes_overlap_in_separate_processes(server: HoldingServer) -> None:
    seen = observe(server, fetch_with_processes)
    check_overlap_and_results(
        seen, "processes", f"{N} requests at once need {N} processes; a Pool() is sized for "
        "the CPU count, and starting and joining one process at a time is sequential")
    owners = [pids for pids in seen.client_pids.values()]
    assert all(len(p) == 1 for p in owners), f"processes: socket owners {seen.client_pids}"
    pids = {next(iter(p)) for p in owners}
    assert os.getpid() not in pids and len(pids) == N, (
        f"processes: want each request sent from its own child process, got client PIDs "
        f"{sorted(pids)} (this process is {os.getpid()})"
    )
    assert pids <= set(seen.children), f"processes: {pids} are not children of this process"


def test_processes_are_reaped_when_the_job_returns(server: HoldingServer) -> None:
    server.release()
    assert Background(fetch_with_processes, [server.url(i) for i in range(N)]).result(15)
    try:
        wait_until(no_children_left, timeout=5, what="the worker processes to exit")
    except AssertionError:
        left = [(p.pid, p.status()) for p in psutil.Process().children(recursive=True)]
        pytest.fail(
            f"child processes still exist after fetch_with_processes returned: {left}. A child "
            "that has exited stays a zombie until its parent joins (waits for) it: join every "
            "Process, or use the Pool in a `with` block (an unjoined child is a zombie)"
        )
