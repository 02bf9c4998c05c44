"""The three concurrency models, watched from a real HTTP server (the peer) and from the OS."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import socket
import sys
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import psutil
import pytest

from dojo.testing import Background, wait_until

from .models_side_by_side import (
    aget,
    fetch_with_asyncio,
    fetch_with_processes,
    fetch_with_threads,
    get,
)

# Requests per job. 33 is more than any default ThreadPoolExecutor() (min(32, cpu_count + 4)
# workers); processes get one more than the CPU count, so a Pool() sized for the cores (at most
# 16 of them, to keep the forks cheap) cannot hold them all.
N_THREADS = 33
N_ASYNC = 33
N_PROCS = max(4, min((os.cpu_count() or 1) + 1, 17))
HOLD = 5.0  # liveness bounds: how long to wait for the first request to arrive,
STALL = 1.5  # and for the next one (a model that stops sending more is observed as it is)
RUN = 10.0  # liveness bound for a job to return once the peer has answered

_ITEM = re.compile(r"/item/(\d+)")


def ok(body: bytes) -> bytes:
    """A complete HTTP/1.1 200 response carrying `body`."""
    return (
        b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: "
        + str(len(body)).encode()
        + b"\r\nConnection: close\r\n\r\n"
        + body
    )


def status(code: int) -> bytes:
    return f"HTTP/1.1 {code} Oops\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".encode()


class Peer:
    """A real HTTP server on 127.0.0.1 (asyncio streams, one thread in the test process).

    It holds every request until the test releases them (after it has looked at the client with
    all of them in flight), then answers them one at a time in REVERSE URL order, each once the
    client has hung up on the previous one: the client sees the responses complete out of order.
    `replies[i]` overrides the answer to /item/i (raw bytes; None hangs up without answering).
    """

    def __init__(self) -> None:
        self.port = 0
        self.peak = 0
        self.arrivals = 0
        self.last_arrival = 0.0  # time.monotonic() of the latest request (liveness bound only)
        self.kept_open = 0  # clients still connected 3 s after they had their whole response
        self.replies: dict[int, bytes | None] = {}
        self._in_flight: dict[int, str] = {}  # client port -> path, while held
        self._held: list[tuple[int, int, asyncio.Event, asyncio.Event]] = []
        self._open = False
        self._guard = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._ready = threading.Event()
        self._thread = threading.Thread(target=asyncio.run, args=(self._main(),), daemon=True, name="peer")

    def url(self, i: int) -> str:
        return f"http://127.0.0.1:{self.port}/item/{i}"

    def body(self, i: int) -> bytes:
        return f"item {i}".encode()

    def __enter__(self) -> Peer:
        self._thread.start()
        assert self._ready.wait(10), "the test's HTTP server did not start"
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._loop is not None and self._stop is not None
        self.release()
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)

    def release(self) -> None:
        """Answer every held request (in reverse order) and every later one at once."""
        assert self._loop is not None
        asyncio.run_coroutine_threadsafe(self._release(), self._loop)

    def stalled(self, since: float) -> bool:
        """No new request for a while: HOLD s before the first, STALL s after the latest."""
        with self._guard:
            if not self.arrivals:
                return time.monotonic() - since > HOLD
            return time.monotonic() - self.last_arrival > STALL

    def held_ports(self) -> set[int]:
        with self._guard:
            return set(self._in_flight)

    async def _release(self) -> None:
        self._open = True
        held, self._held = sorted(self._held, reverse=True), []
        ordered = True
        for _, _, go, done in held:
            go.set()
            if ordered:
                try:
                    await asyncio.wait_for(done.wait(), 3)
                except TimeoutError:
                    ordered = False  # a client that never hangs up: answer the rest at once

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        done = asyncio.Event()
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            path = head.split(b" ", 2)[1].decode()
            match = _ITEM.fullmatch(path)
            i = int(match.group(1)) if match else -1
            port = writer.get_extra_info("peername")[1]
            with self._guard:
                self._in_flight[port] = path
                self.arrivals += 1
                self.last_arrival = time.monotonic()
                self.peak = max(self.peak, len(self._in_flight))
            if not self._open:
                go = asyncio.Event()
                self._held.append((i, self.arrivals, go, done))
                await go.wait()
            with self._guard:
                self._in_flight.pop(port, None)
            raw = self.replies[i] if i in self.replies else ok(self.body(i))
            if raw is not None:
                writer.write(raw)
                await writer.drain()
                writer.write_eof()
                # The client has the whole body once it hangs up (urllib keeps the socket of an
                # HTTPError open, so only a 200 is waited for).
                if raw.split(b"\r\n", 1)[0].split(b" ")[1:2] == [b"200"]:
                    try:
                        await asyncio.wait_for(reader.read(), 3)
                    except TimeoutError:
                        self.kept_open += 1
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            done.set()
            writer.close()

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        server = await asyncio.start_server(self._handle, "127.0.0.1", 0, backlog=128)
        self.port = server.sockets[0].getsockname()[1]
        self._ready.set()
        async with server:
            await self._stop.wait()


@pytest.fixture
def peer() -> Iterator[Peer]:
    with Peer() as srv:
        yield srv


def refused_url() -> str:
    """A URL on a local port nobody listens on: connect() is refused."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/item/0"


def run_asyncio(urls: list[str]) -> list[bytes]:
    return asyncio.run(fetch_with_asyncio(urls))


MODELS: dict[str, Callable[[list[str]], list[bytes]]] = {
    "threads": fetch_with_threads,
    "asyncio": run_asyncio,
    "processes": fetch_with_processes,
}
SIZES = {"threads": N_THREADS, "asyncio": N_ASYNC, "processes": N_PROCS}


def children() -> dict[int, str]:
    """This process's child processes (zombies included), with their state, from /proc."""
    found = {}
    for child in psutil.Process().children(recursive=True):
        with contextlib.suppress(psutil.NoSuchProcess):
            found[child.pid] = child.status()
    return found


def threads_in_http() -> set[int]:
    """Threads of this process blocked inside an HTTP request (a frame in http/client.py)."""
    blocked = set()
    for ident, frame in sys._current_frames().items():
        f = frame
        while f is not None:
            if f.f_code.co_filename.endswith(os.path.join("http", "client.py")):
                blocked.add(ident)
                break
            f = f.f_back
    return blocked


def socket_owners(server_port: int) -> dict[int, set[int]]:
    """Which PIDs (this process or its children) own the client end of each connection."""
    me = psutil.Process()
    owners: dict[int, set[int]] = {}
    for proc in [me, *me.children(recursive=True)]:
        try:
            conns = proc.net_connections(kind="tcp")
        except (psutil.NoSuchProcess, psutil.ZombieProcess, psutil.AccessDenied):
            continue
        for conn in conns:
            if conn.laddr and conn.raddr and conn.raddr.port == server_port:
                owners.setdefault(conn.laddr.port, set()).add(proc.pid)
    return owners


@dataclass
class Seen:
    """What a job looked like from the peer and from the OS."""

    model: str
    n: int  # requests the peer could possibly see in flight
    peak: int = 0
    done_early: bool = False  # the job returned/raised while requests were still held
    held_when_done: int = 0
    http_threads: set[int] = field(default_factory=set)
    new_threads: list[str] = field(default_factory=list)
    children: dict[int, str] = field(default_factory=dict)
    client_pids: dict[int, set[int]] = field(default_factory=dict)
    results: list[bytes] | None = None
    error: BaseException | None = None
    threads_left: list[str] = field(default_factory=list)
    children_left: dict[int, str] = field(default_factory=dict)
    kept_open: int = 0
    unclosed: list[str] = field(default_factory=list)  # ResourceWarnings: sockets left to the GC

    def describe(self) -> str:
        return (
            f"[peer's peak in flight {self.peak} of {self.n}; {len(self.http_threads)} thread(s) "
            f"blocked in an HTTP request; {len(self.new_threads)} new thread(s); "
            f"{len(self.children)} child process(es); {len(self.client_pids)} client socket(s)]"
        )


def observe(peer: Peer, model: str, urls: list[str], arriving: int | None = None, linger: float = 0) -> Seen:
    """Run the model on `urls`; look at it while the peer holds the requests; then release."""
    seen = Seen(model, len(urls) if arriving is None else arriving)
    # Python's own detector of leaked sockets: a socket or transport garbage-collected without
    # close() emits ResourceWarning("unclosed ...").
    # (No gc.collect() here: collecting a leaked multiprocessing.Pool runs its finalizer, which
    # can deadlock on a queue lock held by a worker that was killed.)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ResourceWarning)
        _run_and_watch(peer, seen, urls, linger)
    seen.unclosed = [
        str(w.message)
        for w in caught
        if issubclass(w.category, ResourceWarning)
        # a client socket of this peer's, or an asyncio transport (not the stdlib's own
        # unconnected sockets from a refused connect, collected whenever the GC gets to them)
        and any(word in str(w.message) for word in (f"raddr=('127.0.0.1', {peer.port})", "transport", "StreamWriter"))
    ]
    return seen


def _run_and_watch(peer: Peer, seen: Seen, urls: list[str], linger: float) -> None:
    model = seen.model
    job = MODELS[model]
    threads_before = {t.ident for t in threading.enumerate()}
    children_before = set(children())
    run = Background(job, urls, name="job-runner")
    try:
        # Liveness only: a model that never gets them all in flight is observed as it is.
        with contextlib.suppress(AssertionError):
            start = time.monotonic()
            wait_until(
                lambda: peer.peak >= seen.n or run.done or peer.stalled(start),
                timeout=HOLD + RUN,
                what="every request in flight",
            )
        if linger:
            # Proving that the job did NOT return while requests are held takes a wait: a job
            # that returns early does so within milliseconds of the failure.
            with contextlib.suppress(AssertionError):
                wait_until(lambda: run.done, timeout=linger, what="the job to return early")
        seen.done_early = run.done
        seen.held_when_done = len(peer.held_ports()) if run.done else 0
        seen.http_threads = threads_in_http()
        seen.new_threads = [
            t.name for t in threading.enumerate() if t.ident not in threads_before and t is not run.thread
        ]
        seen.children = {p: s for p, s in children().items() if p not in children_before}
        held = peer.held_ports()
        seen.client_pids = {port: pids for port, pids in socket_owners(peer.port).items() if port in held}
    finally:
        peer.release()
    try:
        seen.results = run.result(timeout=RUN)
    except AssertionError as exc:
        if not run.done:
            pytest.fail(
                f"{model}: the job did not return {RUN:.0f} s after the peer had answered every "
                "request: it waits for something that never comes. A child that failed sends "
                "nothing (waiting for N results from a Queue then waits forever: send the "
                "exception back, or watch the exit codes); join() before reading a child's pipe "
                f"deadlocks once it holds 64 KiB. {seen.describe()}"
            )
        seen.error = exc
    except Exception as exc:
        seen.error = exc
    seen.peak = peer.peak
    seen.kept_open = peer.kept_open
    # Right when the job has returned: nothing it started may still run.
    seen.threads_left = [
        t.name for t in threading.enumerate() if t.ident not in threads_before and t.is_alive() and t is not run.thread
    ]
    seen.children_left = {p: s for p, s in children().items() if p not in children_before}


SERIAL_CAUSE = {
    "threads": "start every thread before you join any (join() in the loop that starts them "
    "waits for each request in turn), and a pool needs max_workers=len(urls): "
    "ThreadPoolExecutor() has only min(32, cpu_count + 4) workers",
    "asyncio": "a coroutine does not run until it is awaited or wrapped in a task: awaiting one "
    "after another is sequential, and a blocking get() inside a coroutine freezes the whole event "
    "loop, and a Semaphore smaller than N is a pool capped below N. Start every aget() first "
    "(asyncio.gather, a TaskGroup, create_task), then await",
    "processes": "a Pool() is sized for the CPU count, so only that many children fly at once "
    "(Pool(processes=len(urls)), chunksize=1); starting and joining one child at a time is "
    "sequential",
}


def short(bodies: list[bytes] | None) -> str:
    if bodies is None:
        return "None"
    return "[" + ", ".join(repr(b) if len(b) <= 24 else f"<{len(b)} bytes>" for b in bodies) + "]"


def check_results(seen: Seen, want: list[bytes]) -> None:
    m = seen.model
    assert seen.error is None, f"{m}: every request succeeded, but the job raised {seen.error!r}. {seen.describe()}"
    got = seen.results
    assert isinstance(got, list), f"{m}: want a list of bodies, got {type(got).__name__}"
    if got != want and sorted(got) == sorted(want):
        pytest.fail(
            f"{m}: the bodies came back in the order the responses completed (the peer answered "
            f"the last URL first), not in URL order: keep each body at its URL's index.\n"
            f"want {short(want)}\n got {short(got)}"
        )
    assert got == want, f"{m}: want exactly the bodies the peer sent, in URL order.\n" + (
        f"want {short(want)}\n got {short(got)}"
    )


def check_overlap(seen: Seen) -> None:
    assert seen.peak >= seen.n, (
        f"only {seen.peak} of {seen.n} requests were in flight at once: the model serialises "
        f"them. {seen.model}: {SERIAL_CAUSE[seen.model]}. {seen.describe()}"
    )


def check_cleaned_up(seen: Seen) -> None:
    m = seen.model
    if m == "processes":
        zombies = sorted(p for p, s in seen.children_left.items() if s == psutil.STATUS_ZOMBIE)
        assert not zombies, (
            f"processes: child(ren) {zombies} are zombies after the job returned: a child that "
            "exited stays in the process table until its parent waits for it; join() every "
            "Process (a Pool's `with` block terminates and joins its workers)"
        )
        assert not seen.children_left, (
            f"processes: child process(es) {seen.children_left} still exist after the job "
            "returned: close and join the Pool (or its `with` block), join() every Process"
        )
    assert not seen.threads_left, (
        f"{m}: thread(s) {seen.threads_left} still running after the job returned: join every "
        "thread you start (leave the ThreadPoolExecutor's `with` block, shutdown(wait=True)); a "
        "thread that outlives the call is still working on a request nobody will read"
    )
    assert not seen.unclosed, (
        f"{m}: connection(s) were never closed, only garbage-collected: {seen.unclosed[:3]}. "
        "Close every socket when its request is done (aget: writer.close() in `finally`)"
    )
    assert not seen.kept_open, (
        f"{m}: {seen.kept_open} connection(s) stayed open after their whole response had arrived "
        "(the peer said Connection: close): every socket must be closed when its request is "
        "done (aget closes its writer in `finally`; urlopen's `with` closes the response)"
    )


def check_threads_model(seen: Seen) -> None:
    assert len(seen.http_threads) >= seen.n, (
        f"threads: {seen.n} blocking requests in flight need {seen.n} threads blocked in recv(), "
        f"one each; saw {len(seen.http_threads)} threads inside an HTTP request. {seen.describe()}"
    )
    assert not seen.children, f"threads: no child process expected, saw {seen.children}"
    pids = set().union(*seen.client_pids.values())
    assert pids == {os.getpid()}, (
        f"threads: every client socket should belong to this process ({os.getpid()}), got {pids}"
    )


def check_asyncio_model(seen: Seen) -> None:
    assert not seen.http_threads and not seen.new_threads, (
        f"asyncio: the requests ran on extra threads {seen.new_threads} "
        f"({len(seen.http_threads)} blocked in urllib): asyncio.to_thread/run_in_executor hand "
        "the blocking call to a thread pool (threads with extra steps). The event loop overlaps "
        "I/O on ONE thread: await aget(url)"
    )
    assert not seen.children, f"asyncio: no child process expected, saw {seen.children}"
    pids = set().union(*seen.client_pids.values())
    assert pids == {os.getpid()}, f"asyncio: sockets should all be in this process, got {pids}"


def check_processes_model(seen: Seen) -> None:
    owners = seen.client_pids
    assert all(len(p) == 1 for p in owners.values()), f"processes: socket owners {owners}"
    pids = {next(iter(p)) for p in owners.values()}
    assert os.getpid() not in pids, (
        "processes: requests were sent from this process, not from child processes "
        f"(client PIDs {sorted(pids)}, this process {os.getpid()})"
    )
    assert len(pids) == len(owners) == seen.n, (
        f"processes: want each of the {seen.n} requests sent from its own child process, got "
        f"client PIDs {sorted(pids)} for {len(owners)} socket(s)"
    )
    assert pids <= set(seen.children), f"processes: {pids} are not children of this process"
    assert not seen.http_threads, (
        "processes: threads of THIS process are blocked in HTTP requests: the children should make them"
    )


MODEL_CHECK = {
    "threads": check_threads_model,
    "asyncio": check_asyncio_model,
    "processes": check_processes_model,
}


@pytest.mark.stage(1, "bodies in url order")
@pytest.mark.parametrize("model", list(MODELS))
def test_every_request_is_in_flight_at_once_and_bodies_come_back_in_url_order(peer: Peer, model: str) -> None:
    n = SIZES[model]
    seen = observe(peer, model, [peer.url(i) for i in range(n)])
    check_overlap(seen)
    MODEL_CHECK[model](seen)
    check_results(seen, [peer.body(i) for i in range(n)])
    check_cleaned_up(seen)


@pytest.mark.stage(1, "bodies in url order")
@pytest.mark.parametrize("model", list(MODELS))
def test_no_urls_returns_an_empty_list_and_starts_nothing(model: str) -> None:
    threads_before = {t.ident for t in threading.enumerate()}
    children_before = set(children())
    try:
        got = Background(MODELS[model], []).result(RUN)
    except Exception as exc:
        pytest.fail(
            f"{model}: no URLs -> [] (a list), but it raised {exc!r}: zero requests is a job "
            "too (Pool(processes=0) and ThreadPoolExecutor(max_workers=0) refuse it)"
        )
    assert got == [] and isinstance(got, list), f"{model}: no URLs -> [] (a list), got {got!r}"
    left = [t.name for t in threading.enumerate() if t.ident not in threads_before and t.is_alive()]
    assert not left, f"{model}: no URLs, yet threads {left} are still running"
    extra = {p: s for p, s in children().items() if p not in children_before}
    assert not extra, f"{model}: no URLs, yet child processes {extra} are left behind"


@pytest.mark.stage(1, "bodies in url order")
@pytest.mark.parametrize("model", list(MODELS))
def test_one_url(peer: Peer, model: str) -> None:
    seen = observe(peer, model, [peer.url(7)])
    check_overlap(seen)
    MODEL_CHECK[model](seen)
    check_results(seen, [peer.body(7)])
    check_cleaned_up(seen)


@pytest.mark.stage(1, "bodies in url order")
@pytest.mark.parametrize("model", list(MODELS))
def test_a_url_listed_twice_is_fetched_twice(peer: Peer, model: str) -> None:
    # One request per entry of `urls`, not per distinct URL; the peer answers each with its own
    # body, so a model that fetched once and copied would show it too.
    served = iter(range(1000))

    def body(i: int) -> bytes:
        return f"item {i} #{next(served)}".encode()

    peer.body = body  # type: ignore[method-assign]
    urls = [peer.url(i) for i in (0, 1, 0, 2, 1)]
    seen = observe(peer, model, urls)
    assert peer.arrivals == len(urls), (
        f"{model}: each entry of urls is its own request: {len(urls)} entries (two listed twice) "
        f"but the peer saw {peer.arrivals} request(s). Fetching each distinct URL once and "
        "copying the body reports a resource that changed between requests wrongly"
    )
    check_overlap(seen)
    assert seen.error is None and seen.results is not None, f"{model}: raised {seen.error!r}"
    got = seen.results
    assert len(got) == 5 and len(set(got)) == 5, (
        f"{model}: each entry of urls is its own request with its own response; got {got!r}"
    )
    assert [b.split(b" #")[0] for b in got] == [f"item {i}".encode() for i in (0, 1, 0, 2, 1)], (
        f"{model}: want each body at its entry's index (URL order); got {got!r}"
    )
    check_cleaned_up(seen)


@pytest.mark.stage(1, "bodies in url order")
@pytest.mark.parametrize("model", list(MODELS))
def test_bodies_are_returned_byte_for_byte_binary_unicode_empty_and_large(peer: Peer, model: str) -> None:
    # Bigger than a pipe's 64 KiB buffer: a child cannot finish writing (or exit) until its
    # parent reads, so a parent that joins children before reading their results deadlocks.
    big = bytes(range(256)) * 4096  # 1 MiB, every byte value
    bodies = [
        b"",
        "ünïcødé ✓ 🧵 \u2028 строка".encode(),
        b"\x00\xff\r\n\r\n\x00 binary, with a blank line inside",
        big,
        big[::-1] + b"!",
    ]
    for i, body in enumerate(bodies):
        peer.replies[i] = ok(body)
    urls = [peer.url(i) for i in range(len(bodies))]
    threads_before = {t.ident for t in threading.enumerate()}
    run = Background(MODELS[model], urls, name="job-runner")
    peer.release()  # no holding here: this test is about the bytes
    try:
        got = run.result(RUN)
    except AssertionError as exc:
        if run.done:
            raise
        pytest.fail(
            f"{model}: did not return with 1 MiB bodies ({exc}). A child's pipe holds 64 KiB: "
            "the child cannot finish sending (and exit) until the parent reads it, so join() "
            "before reading deadlocks. Read every result first, then join"
        )
    assert isinstance(got, list) and len(got) == len(bodies), f"{model}: got {short(got)}"
    for i, (g, want) in enumerate(zip(got, bodies, strict=True)):
        assert g == want, (
            f"{model}: body {i} must come back byte for byte as the peer sent it (bytes, not "
            f"decoded, nothing added or lost): want {short([want])}, got {short([g])}"
        )
    left = [t.name for t in threading.enumerate() if t.ident not in threads_before and t.is_alive()]
    assert not left or model == "processes", f"{model}: threads left running: {left}"


ORACLE: dict[str, Callable[[str], object]] = {
    "threads": get,
    "asyncio": lambda url: asyncio.run(aget(url)),
}


def oracle_error(model: str, url: str) -> type[BaseException] | None:
    """The exception the given helper raises for `url` (None for processes: any exception)."""
    if model not in ORACLE:
        return None
    try:
        ORACLE[model](url)
    except Exception as exc:
        return type(exc)
    raise AssertionError(f"the oracle expected {url} to fail")


def not_implemented(model: str, error: BaseException | None) -> None:
    if isinstance(error, NotImplementedError):
        pytest.fail(f"{model}: not implemented yet ({error!r})")


def check_raised(seen: Seen, expected: type[BaseException] | None, what: str) -> None:
    m = seen.model
    not_implemented(m, seen.error)
    assert seen.error is not None, (
        f"{m}: {what}, yet the job returned {short(seen.results)}: a failed request must raise "
        "(a failure hidden as a missing or None body is a silent data loss)"
    )
    if expected is not None:
        assert type(seen.error) is expected, (
            f"{m}: {what}: want the failing request's own exception ({expected.__name__}, what "
            f"{'get' if m == 'threads' else 'aget'} raised), got {seen.error!r}"
        )


@pytest.mark.stage(2, "requests that fail")
@pytest.mark.parametrize("model", list(MODELS))
def test_a_500_raises_and_the_other_requests_are_finished_first(peer: Peer, model: str) -> None:
    n = 4
    bad = n - 1  # answered first
    peer.replies[bad] = status(500)
    seen = observe(peer, model, [peer.url(i) for i in range(n)])
    check_overlap(seen)
    check_raised(seen, oracle_error(model, peer.url(bad)), "one URL answered 500")
    check_cleaned_up(seen)


@pytest.mark.stage(2, "requests that fail")
@pytest.mark.parametrize("model", list(MODELS))
def test_a_refused_connection_raises_after_the_others_are_done(peer: Peer, model: str) -> None:
    dead = refused_url()
    urls = [peer.url(0), peer.url(1), dead, peer.url(3)]
    seen = observe(peer, model, urls, arriving=3, linger=STALL if model == "threads" else 0)
    if model == "threads":
        # asyncio and processes may cancel or kill the others as soon as one fails; a thread
        # cannot be stopped, so the threads model waits for them.
        not_implemented(model, seen.error)
        assert not seen.done_early, (
            f"threads: the job raised while {seen.held_when_done} request(s) were still in flight "
            "at the peer: it left their threads running. Wait for every thread (join them all, "
            "or leave the pool's `with` block) before raising the failure"
        )
    check_raised(seen, oracle_error(model, dead), "one URL's connection was refused")
    check_cleaned_up(seen)


@pytest.mark.stage(2, "requests that fail")
@pytest.mark.parametrize("model", list(MODELS))
def test_an_early_failure_while_the_others_still_send_large_bodies(peer: Peer, model: str) -> None:
    # The first URL is refused at once; the others answer with 1 MiB each. Whoever is still
    # sending must not be left blocked on a pipe nobody reads: the job raises, and every
    # thread and child is gone.
    big = bytes(range(256)) * 4096
    for i in range(1, 4):
        peer.replies[i] = ok(big)
    peer.release()
    threads_before = {t.ident for t in threading.enumerate()}
    children_before = set(children())
    run = Background(MODELS[model], [refused_url()] + [peer.url(i) for i in range(1, 4)])
    try:
        run.result(RUN)
    except AssertionError as exc:
        if not run.done:
            pytest.fail(
                f"{model}: after one request failed, the job never returned ({exc}): a child "
                "still sending a 1 MiB body blocks on a pipe nobody reads, and join() waits for "
                "it forever. Close your end of every pipe (the child gets EPIPE and exits), or "
                "read them all, before joining"
            )
        raise
    except Exception as exc:
        not_implemented(model, exc)
    else:
        pytest.fail(f"{model}: the first URL was refused, yet the job returned: it must raise")
    left = [t.name for t in threading.enumerate() if t.ident not in threads_before and t.is_alive()]
    assert not left, f"{model}: after the failure, threads {left} are still running: join them"
    extra = {p: s for p, s in children().items() if p not in children_before}
    assert not extra, f"{model}: after the failure, child processes {extra} are left behind: join() every one"


@pytest.mark.stage(3, "peers that misbehave")
@pytest.mark.parametrize("model", ["threads", "asyncio"])
def test_a_peer_that_hangs_up_without_answering_raises_oserror(peer: Peer, model: str) -> None:
    # get and aget raise OSError for a refused connection, a status other than 200, or no
    # status line at all (urllib: RemoteDisconnected; aget: "HTTP status ?").
    peer.replies[1] = None
    seen = observe(peer, model, [peer.url(i) for i in range(3)])
    check_raised(seen, None, "the peer hung up without answering one request")
    assert isinstance(seen.error, OSError), (
        f"{model}: a peer that hangs up without a status line is a failed request: "
        f"{'get' if model == 'threads' else 'aget'} raises OSError; got {seen.error!r}"
    )
    check_cleaned_up(seen)


@pytest.mark.stage(3, "peers that misbehave")
@pytest.mark.parametrize("model", ["threads", "asyncio"])
def test_a_terse_peer_bare_status_line_and_no_headers_is_a_success(peer: Peer, model: str) -> None:
    # HTTP/1.0 lets the reason phrase be empty and the headers absent: the body runs to the close.
    for i in range(3):
        peer.replies[i] = b"HTTP/1.0 200\r\n\r\n" + peer.body(i)
    seen = observe(peer, model, [peer.url(i) for i in range(3)])
    check_results(seen, [peer.body(i) for i in range(3)])


@pytest.mark.stage(3, "peers that misbehave")
@pytest.mark.parametrize("model", ["threads", "processes"])
def test_a_silent_peer_fails_the_request_after_get_s_timeout(model: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # get() passes its timeout to every socket operation: a peer that accepts and then says
    # nothing costs a worker `timeout` seconds, not forever. (Shortened here to 0.3 s.)
    monkeypatch.setattr(get, "__defaults__", (0.3,))
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()  # the kernel accepts the connection; nobody ever answers
        url = f"http://127.0.0.1:{silent.getsockname()[1]}/"
        run = Background(MODELS[model], [url])
        try:
            run.result(RUN)
        except AssertionError:
            if not run.done:
                pytest.fail(
                    f"{model}: a request to a silent peer never gave up: get() must pass its "
                    "timeout to urlopen (and the model must not wait forever for it)"
                )
            raise
        except Exception as exc:
            not_implemented(model, exc)
            return
        pytest.fail(f"{model}: a peer that never answers must make the call raise (a timeout)")
