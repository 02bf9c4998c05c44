"""Tests for the TCP proxy, against real asyncio backends, plain sockets, and requests over http.server."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import hashlib
import http.server
import os
import socket
import threading
import time
import warnings
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import psutil
import pytest
import pytest_asyncio
import requests

from .tcp_proxy import TCPProxy

Address = tuple[str, int]


@dataclass
class Backend:
    """A real TCP server on 127.0.0.1 that records its connections and how each one ended."""

    name: str
    server: asyncio.Server | None = None
    connections: int = 0
    ended: int = 0  # connections whose reads ended (EOF or reset)
    sent: int = 0  # bytes its handlers managed to hand to the proxy (write + drain)
    received: int = 0  # bytes its handlers read
    tasks: set[asyncio.Task[None]] = field(default_factory=set)

    @property
    def address(self) -> Address:
        assert self.server is not None
        host, port = self.server.sockets[0].getsockname()[:2]
        return host, port


Handler = Callable[[Backend, asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


async def tagged_echo(b: Backend, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Says its name on a line, then echoes every byte back, with backpressure."""
    writer.write(f"{b.name}\n".encode())
    while data := await reader.read(65536):
        writer.write(data)
        await writer.drain()
    writer.write_eof()


async def sha256_after_eof(b: Backend, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Reads until the client's EOF, then answers the SHA-256 of all it got: needs a half-close."""
    digest = hashlib.sha256()
    while data := await reader.read(65536):
        digest.update(data)
    writer.write(digest.hexdigest().encode())
    await writer.drain()


async def never_reads(b: Backend, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Accepts and then reads nothing, ever (until the test ends): a stuck consumer."""
    await asyncio.Event().wait()


async def holds(b: Backend, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Reads and discards until its connection ends, which it counts in `ended`."""
    writer.write(f"{b.name}\n".encode())
    with contextlib.suppress(ConnectionError):
        while await reader.read(65536):
            pass


@pytest_asyncio.fixture
async def start_backend() -> AsyncIterator[Callable[[str, Handler], Awaitable[Backend]]]:
    started: list[Backend] = []

    async def start(name: str, handler: Handler) -> Backend:
        b = Backend(name)

        async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            task = asyncio.current_task()
            assert task is not None
            b.tasks.add(task)
            b.connections += 1
            try:
                await handler(b, reader, writer)
            except ConnectionError:
                pass
            finally:
                b.ended += 1
                writer.transport.abort()
                b.tasks.discard(task)

        b.server = await asyncio.start_server(serve, "127.0.0.1", 0)
        # Small kernel buffers on the backend's side (accepted sockets inherit them from the
        # listener): the bytes a stalled relay can hide in sockets stay far below the payloads.
        for option in (socket.SO_SNDBUF, socket.SO_RCVBUF):
            b.server.sockets[0].setsockopt(socket.SOL_SOCKET, option, 64 * 1024)
        started.append(b)
        return b

    yield start
    for b in started:
        assert b.server is not None
        b.server.close()
        for task in list(b.tasks):
            task.cancel()
        await asyncio.gather(*b.tasks, return_exceptions=True)


@pytest_asyncio.fixture
async def make_proxy() -> AsyncIterator[Callable[..., Awaitable[TCPProxy]]]:
    """Builds and starts proxies inside the test (so the stub fails there), closes them after."""
    proxies: list[TCPProxy] = []

    async def make(backends: list[Address], **options: float) -> TCPProxy:
        proxy = TCPProxy(backends, **options)
        proxies.append(proxy)
        await proxy.start()
        return proxy

    yield make
    for proxy in proxies:
        with contextlib.suppress(NotImplementedError):
            await asyncio.wait_for(proxy.close(), 5)


@pytest.fixture
def silent_address() -> Iterator[Address]:
    """A backend that never answers a SYN: its accept queue is full (backlog 0, one connection
    queued and never accepted), so the kernel drops every new SYN and connect() just waits."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        address = listener.getsockname()[:2]
        with socket.create_connection(address, timeout=5):  # fills the queue
            probe = socket.socket()
            probe.settimeout(0.2)
            with probe, pytest.raises(TimeoutError):  # the fixture's own check: new SYNs go unanswered
                probe.connect(address)
            yield address


@pytest.fixture
def refused_address() -> Iterator[Address]:
    """A port bound by nobody's listener: connecting to it is refused (and nothing can take it)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        yield s.getsockname()[:2]


REFUSED_IS_SKIPPED = "a refused backend must be skipped, not fatal"


async def tag_of(address: Address, skipped: str = REFUSED_IS_SKIPPED) -> str:
    """Connects, reads the backend's name line, closes. `skipped`: what the proxy should have
    done with the backends that failed, said if the client is closed without a greeting."""
    reader, writer = await asyncio.open_connection(*address)
    try:
        line = await asyncio.wait_for(reader.readline(), 5)
    except TimeoutError:
        pytest.fail(
            "connected through the proxy, but the backend's greeting line never arrived within 5 s: "
            "relay backend->client at the same time as client->backend (the backend speaks first)"
        )
    finally:
        writer.close()
    if not line:
        pytest.fail(
            "the proxy accepted the connection and then closed it without a byte from any backend: "
            f"did it connect to a backend at all? ({skipped})"
        )
    return line.decode().strip()


@pytest.mark.stage(1, "relaying in turn")
@pytest.mark.asyncio
async def test_connections_go_to_the_backends_in_turn(start_backend, make_proxy) -> None:
    backends = [await start_backend(n, tagged_echo) for n in ("a", "b", "c")]
    proxy = await make_proxy([b.address for b in backends])
    tags = [await tag_of(proxy.address) for _ in range(9)]
    expected = list("abcabcabc")
    assert tags == expected, (
        f"9 connections in a row reached backends {tags}; round robin over [a, b, c] gives {expected}: "
        "one backend per connection, the next one in the list each time, starting with the first"
    )


@pytest.mark.stage(2, "backends that fail")
@pytest.mark.asyncio
async def test_a_backend_that_refuses_is_skipped(start_backend, make_proxy, refused_address) -> None:
    a, b = await start_backend("a", tagged_echo), await start_backend("b", tagged_echo)
    proxy = await make_proxy([a.address, refused_address, b.address])
    tags = [await tag_of(proxy.address) for _ in range(8)]
    assert set(tags) == {"a", "b"}, f"connections reached {tags}: both live backends must get traffic"


@pytest.mark.stage(2, "backends that fail")
@pytest.mark.asyncio
async def test_when_every_backend_refuses_the_client_is_closed(make_proxy, refused_address) -> None:
    proxy = await make_proxy([refused_address, refused_address])
    reader, writer = await asyncio.open_connection(*proxy.address)
    try:
        got = await asyncio.wait_for(reader.read(), 5)
    except ConnectionResetError:
        got = b""
    except TimeoutError:
        pytest.fail("no backend accepted, yet the proxy kept the client's connection open: close it")
    finally:
        writer.close()
    assert got == b""


@pytest.mark.stage(3, "both directions at once")
@pytest.mark.asyncio
async def test_megabytes_flow_both_ways_at_once(start_backend, make_proxy) -> None:
    """A client that writes and reads at the same time, through an echo: a full-duplex relay."""
    echo = await start_backend("echo", tagged_echo)
    proxy = await make_proxy([echo.address])
    payload = os.urandom(5 * 1024 * 1024)
    reader, writer = await asyncio.open_connection(*proxy.address)
    echo_flowing = asyncio.Event()

    async def send() -> None:
        for i in range(0, len(payload), 65536):
            if i == 1024 * 1024:  # the echo of the first MB must be on its way back by now
                try:
                    await asyncio.wait_for(echo_flowing.wait(), 5)
                except TimeoutError:
                    pytest.fail(
                        "deadlock: 1 MB sent through the proxy and not one byte of its echo came back "
                        "in 5 s. The proxy must pump client->backend and backend->client concurrently "
                        "(two tasks), not one direction after the other: with a bigger payload the echo "
                        "fills the direction nobody reads, and everything stops"
                    )
            writer.write(payload[i : i + 65536])
            await writer.drain()
        writer.write_eof()

    async def receive() -> bytes:
        await reader.readline()  # the backend's name
        chunks = []
        while chunk := await reader.read(65536):
            chunks.append(chunk)
            echo_flowing.set()
        return b"".join(chunks)

    try:
        _, echoed = await asyncio.wait_for(asyncio.gather(send(), receive()), 10)
    except TimeoutError:
        pytest.fail(
            "deadlock: 5 MB sent while reading the echo, and after 10 s the transfer was still stuck. "
            "The proxy must pump client->backend and backend->client concurrently (two tasks), not "
            "one direction after the other: the echo fills the direction nobody reads, and everything stops"
        )
    finally:
        writer.close()
    assert len(echoed) == len(payload), f"echoed {len(echoed)} bytes of {len(payload)}"
    assert echoed == payload, "the bytes came back changed: the proxy must relay them untouched"


def nc_minus_n(address: Address, data: bytes) -> bytes:
    """What `nc -N` does: send, shut the write side (EOF), read the answer until the server closes."""
    with socket.create_connection(address, timeout=5) as s:
        s.sendall(data)
        s.shutdown(socket.SHUT_WR)
        chunks = []
        while chunk := s.recv(65536):
            chunks.append(chunk)
        return b"".join(chunks)


@pytest.mark.stage(3, "both directions at once")
@pytest.mark.asyncio
async def test_half_close_reaches_the_backend_and_its_answer_comes_back(start_backend, make_proxy) -> None:
    hasher = await start_backend("sha256", sha256_after_eof)
    proxy = await make_proxy([hasher.address])
    data = os.urandom(1024 * 1024 + 7)
    try:
        answer = await asyncio.to_thread(nc_minus_n, proxy.address, data)
    except TimeoutError:
        pytest.fail(
            "the client shut its write side and then waited 5 s for an answer: the EOF never reached "
            "the backend. Pass it on with backend_writer.write_eof()"
        )
    assert answer == hashlib.sha256(data).hexdigest().encode(), (
        f"after a half-close the client got {answer[:80]!r}, expected the sha256 of what it sent: "
        "the backend answers only after EOF, so on the client's EOF call write_eof() on the backend "
        "side (a half-close) and keep relaying; closing the backend connection loses its reply"
    )
    assert hasher.connections == 1


@pytest.mark.stage(3, "both directions at once")
@pytest.mark.asyncio
async def test_a_backend_that_stops_reading_slows_the_sender(start_backend, make_proxy) -> None:
    """Backpressure: bytes the backend won't take must stay in bounded buffers, so the client's send blocks."""
    stuck = await start_backend("stuck", never_reads)
    proxy = await make_proxy([stuck.address])
    _, writer = await asyncio.open_connection(*proxy.address)
    limit, sent, chunk = 96 * 1024 * 1024, 0, b"x" * 65536
    try:
        while sent < limit:
            writer.write(chunk)
            try:
                await asyncio.wait_for(writer.drain(), 1.5)
            except TimeoutError:
                break  # the client's send is blocked: the pressure reached it, as it should
            sent += len(chunk)
    finally:
        writer.transport.abort()
    assert sent < limit, (
        f"the client sent all {sent >> 20} MB to a backend that reads nothing, and never had to wait: "
        "the proxy buffered it all in memory (no backpressure). After writer.write(data), "
        "`await writer.drain()` before reading more"
    )


@pytest.mark.stage(4, "resets and leftovers")
@pytest.mark.asyncio
async def test_a_client_reset_closes_the_backend_connection(start_backend, make_proxy) -> None:
    holder = await start_backend("holder", holds)
    proxy = await make_proxy([holder.address])
    reader, writer = await asyncio.open_connection(*proxy.address)
    assert await asyncio.wait_for(reader.readline(), 5) == b"holder\n"
    sock = writer.get_extra_info("socket")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    writer.transport.abort()  # linger 0: the close sends RST, an error, not an EOF
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 5
    while holder.ended == 0 and loop.time() < deadline:
        await asyncio.sleep(0.01)
    assert holder.ended == 1, (
        "the client's connection was reset, yet 5 s later the backend connection was still open: "
        "when one side fails, close the other (an error in one pump must end its partner too)"
    )


@pytest.mark.stage(5, "closing the proxy")
@pytest.mark.asyncio
async def test_close_ends_every_connection_and_leaves_nothing_running(start_backend, make_proxy) -> None:
    holder = await start_backend("holder", holds)
    proxy = await make_proxy([holder.address])
    address = proxy.address
    clients = [await asyncio.open_connection(*address) for _ in range(3)]
    for reader, _ in clients:
        assert await asyncio.wait_for(reader.readline(), 5) == b"holder\n"

    await asyncio.wait_for(proxy.close(), 5)

    left = asyncio.all_tasks() - {asyncio.current_task()} - holder.tasks
    assert not left, f"after close() these tasks were still running: {left}"
    for reader, writer in clients:
        try:
            rest = await asyncio.wait_for(reader.read(), 5)
        except ConnectionResetError:
            rest = b""
        except TimeoutError:
            pytest.fail("a client connection stayed open after close(): close every live connection")
        finally:
            writer.close()
        assert rest == b""
    with pytest.raises(ConnectionRefusedError):
        await asyncio.open_connection(*address)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 5
    while holder.ended < 3 and loop.time() < deadline:
        await asyncio.sleep(0.01)
    assert holder.ended == 3, f"{3 - holder.ended} backend connections still open after close()"


class Tagged(http.server.BaseHTTPRequestHandler):
    """Keep-alive HTTP/1.1: answers with its server's name, the client port it sees, and the request."""

    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        headers = "".join(f"{k}: {v}\n" for k, v in self.headers.items())
        reply = f"{self.server.name} {self.client_address[1]}\n{headers}\n".encode() + body  # type: ignore[attr-defined]
        self.send_response(200)
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def http_backends() -> Iterator[list[Address]]:
    servers = []
    for name in ("web1", "web2"):
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Tagged)
        server.daemon_threads = True
        server.name = name  # type: ignore[attr-defined]
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
    yield [s.server_address[:2] for s in servers]  # type: ignore[misc]
    for s in servers:
        s.shutdown()
        s.server_close()


def three_posts(url: str, body: bytes) -> list[requests.Response]:
    with requests.Session() as session:
        return [session.post(url, data=body, headers={"X-Test": "kept"}, timeout=5) for _ in range(3)]


@pytest.mark.stage(1, "relaying in turn")
@pytest.mark.asyncio
async def test_http_passes_through_untouched_and_keep_alive_stays_on_one_backend(http_backends, make_proxy) -> None:
    proxy = await make_proxy(http_backends)
    host, port = proxy.address
    url = f"http://{host}:{port}/upload"
    body = bytes(range(256)) * 40
    first = await asyncio.to_thread(three_posts, url, body)
    second = await asyncio.to_thread(three_posts, url, body)
    for r in first + second:
        assert r.status_code == 200
        head, _, echoed = r.content.partition(b"\n\n")
        assert echoed == body, "the request body reached the backend changed"
        assert b"X-Test: kept" in head and b"X-Forwarded-For" not in head, (
            f"the backend saw headers {head!r}: an L4 proxy relays bytes, it adds or drops no header"
        )
    lines = [[r.content.split(b"\n", 1)[0] for r in session] for session in (first, second)]
    for session in lines:
        assert len(set(session)) == 1, (
            f"one keep-alive session's requests reached {session}: one TCP connection is paired "
            "with one backend connection, so every request on it goes to the same backend"
        )
    names = {session[0].split()[0] for session in lines}
    assert names == {b"web1", b"web2"}, f"two sessions reached {names}: round robin per connection"


# --- the contract's other rows: construction, failover, both directions, ends ------------------------


@pytest.mark.stage(1, "relaying in turn")
@pytest.mark.asyncio
async def test_a_proxy_needs_at_least_one_backend_and_an_address_once_started(start_backend) -> None:
    with pytest.raises(ValueError):
        TCPProxy([])
    a = await start_backend("a", tagged_echo)
    proxy = TCPProxy([a.address], port=0)
    with pytest.raises(RuntimeError):
        _ = proxy.address  # nothing listens before start()
    await proxy.start()
    try:
        host, port = proxy.address
        assert host == "127.0.0.1" and port != 0, f"address after start() was {(host, port)}: the port the OS chose"
        assert await tag_of((host, port)) == "a"
    finally:
        await asyncio.wait_for(proxy.close(), 5)
    await asyncio.wait_for(proxy.close(), 5)  # a second close() is harmless


@pytest.mark.stage(1, "relaying in turn")
@pytest.mark.asyncio
async def test_close_before_start_is_harmless() -> None:
    proxy = TCPProxy([("127.0.0.1", 9)])
    await asyncio.wait_for(proxy.close(), 5)
    with pytest.raises(RuntimeError):
        _ = proxy.address


@pytest.mark.stage(2, "backends that fail")
@pytest.mark.asyncio
async def test_round_robin_goes_on_past_a_refused_backend(start_backend, make_proxy, refused_address) -> None:
    a, b = await start_backend("a", tagged_echo), await start_backend("b", tagged_echo)
    proxy = await make_proxy([a.address, refused_address, b.address])
    tags = [await tag_of(proxy.address) for _ in range(6)]
    assert tags == list("ababab"), (
        f"with [a, refused, b], six connections reached {tags}: the refused backend is skipped and the "
        "turn moves past every backend tried, so the live ones alternate (a refused one must not hand "
        "its share to its successor)"
    )


@pytest.mark.stage(2, "backends that fail")
@pytest.mark.asyncio
async def test_a_silent_backend_is_skipped_after_the_connect_timeout(start_backend, make_proxy, silent_address) -> None:
    a = await start_backend("a", tagged_echo)
    proxy = await make_proxy([silent_address, a.address], connect_timeout=0.3)
    timed_out = (
        "a backend whose connect ran past connect_timeout must be skipped like one that refused: "
        "the TimeoutError from wait_for means 'try the next backend', not 'give up on the client'"
    )
    try:
        tags = await asyncio.wait_for(asyncio.gather(*(tag_of(proxy.address, timed_out) for _ in range(2))), 5)
    except TimeoutError:
        pytest.fail(
            "the first backend never answers the SYN (its accept queue is full, as with a backend that "
            "hangs or a firewall that drops packets), and 5 s later no client had reached the live "
            "one: bound each connect by connect_timeout (asyncio.wait_for) and then try the next"
        )
    assert tags == ["a", "a"], f"the clients reached {tags}"


@pytest.mark.stage(2, "backends that fail")
@pytest.mark.asyncio
async def test_when_every_backend_is_silent_the_client_is_closed(make_proxy, silent_address) -> None:
    proxy = await make_proxy([silent_address, silent_address], connect_timeout=0.2)
    reader, writer = await asyncio.open_connection(*proxy.address)
    try:
        got = await asyncio.wait_for(reader.read(), 5)
    except ConnectionResetError:
        got = b""
    except TimeoutError:
        pytest.fail("no backend answered within connect_timeout, yet the client stayed connected for 5 s")
    finally:
        writer.close()
    assert got == b""


async def floods(b: Backend, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Sends FLOOD bytes as fast as the proxy takes them, counting what it managed to hand over."""
    chunk = b"y" * 65536
    while b.sent < FLOOD:
        writer.write(chunk)
        await writer.drain()
        b.sent += len(chunk)
    await asyncio.Event().wait()


FLOOD = 64 * 1024 * 1024


@pytest.mark.stage(3, "both directions at once")
@pytest.mark.asyncio
async def test_a_client_that_stops_reading_slows_the_backend(start_backend, make_proxy) -> None:
    """Backpressure the other way: a download nobody reads must stay in bounded buffers."""
    source = await start_backend("source", floods)
    proxy = await make_proxy([source.address])
    client = socket.socket()
    client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
    client.connect(proxy.address)  # and never reads
    loop = asyncio.get_running_loop()
    try:
        last, still_since = -1, loop.time()
        while source.sent < FLOOD and loop.time() - still_since < 1.0:
            await asyncio.sleep(0.05)
            if source.sent != last:
                last, still_since = source.sent, loop.time()
    finally:
        client.close()
    assert source.sent <= FLOOD // 2, (
        f"a client that reads nothing: the backend pushed {source.sent >> 20} MiB into the proxy before "
        "it had to wait. The proxy read all that from the backend and held it for the client: "
        "backpressure must work in both directions (await drain() after writing to the client too, "
        "so the proxy stops reading the backend while the client doesn't read)"
    )


async def greets_then_listens(b: Backend, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Speaks first and half-closes (EOF), then counts what the client still sends until its EOF."""
    writer.write(b"banner, and that is all I will say\n")
    await writer.drain()
    writer.write_eof()
    while data := await reader.read(65536):
        b.received += len(data)


@pytest.mark.stage(3, "both directions at once")
@pytest.mark.asyncio
async def test_a_half_close_from_the_backend_reaches_the_client_and_the_client_can_still_send(
    start_backend, make_proxy
) -> None:
    listener = await start_backend("listener", greets_then_listens)
    proxy = await make_proxy([listener.address])
    reader, writer = await asyncio.open_connection(*proxy.address)
    try:
        said = await asyncio.wait_for(reader.read(), 5)
    except TimeoutError:
        pytest.fail(
            "the backend sent a line and its EOF; 5 s later the client had not seen the EOF: "
            "pass a half-close on, from the backend to the client too (write_eof)"
        )
    assert said == b"banner, and that is all I will say\n", f"the client got {said!r} before the EOF"
    data = os.urandom(1024 * 1024)
    lesson = (
        "An EOF from one side ends one direction only: write_eof() on the other side and keep "
        "relaying the direction still open"
    )
    try:
        writer.write(data)
        await writer.drain()
        writer.write_eof()
    except ConnectionError as exc:
        pytest.fail(
            f"after the backend's EOF the client could not send any more ({exc!r}): the proxy "
            f"closed its connection. {lesson}"
        )
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 5
    while listener.ended == 0 and loop.time() < deadline:
        await asyncio.sleep(0.01)
    writer.close()
    assert listener.received == len(data), (
        f"after the backend's EOF the client sent {len(data)} bytes and its own EOF; the backend got "
        f"{listener.received}. {lesson}"
    )


async def resets_after_greeting(b: Backend, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    writer.write(b"about to crash\n")
    await writer.drain()
    await asyncio.sleep(0.05)
    sock = writer.get_extra_info("socket")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    writer.transport.abort()  # linger 0: RST


@pytest.mark.stage(4, "resets and leftovers")
@pytest.mark.asyncio
async def test_a_backend_reset_closes_the_client_connection(start_backend, make_proxy) -> None:
    crasher = await start_backend("crasher", resets_after_greeting)
    proxy = await make_proxy([crasher.address])
    reader, writer = await asyncio.open_connection(*proxy.address)
    try:
        assert await asyncio.wait_for(reader.readline(), 5) == b"about to crash\n"
        rest = await asyncio.wait_for(reader.read(), 5)
    except ConnectionResetError:
        rest = b""
    except TimeoutError:
        pytest.fail(
            "the backend reset its connection, yet 5 s later the client's was still open: when "
            "one side fails, close the other"
        )
    finally:
        writer.close()
    assert rest == b""


def proxy_tasks(*ignored: set[asyncio.Task[Any]]) -> set[asyncio.Task[Any]]:
    """The running tasks, but the test's own and those in `ignored`."""
    mine: set[Any] = {asyncio.current_task()}
    for tasks in ignored:
        mine |= tasks
    return {t for t in asyncio.all_tasks() if t not in mine and not t.done()}


@pytest.mark.stage(4, "resets and leftovers")
@pytest.mark.asyncio
async def test_a_finished_connection_leaves_nothing_behind_and_loses_no_byte(start_backend, make_proxy) -> None:
    """Both directions done: both sockets closed, the connection's task over, every byte delivered."""
    hasher = await start_backend("sha256", sha256_after_eof)
    proxy = await make_proxy([hasher.address])
    idle = proxy_tasks()  # a running proxy may keep a task of its own (an accept loop): that one stays
    data = os.urandom(3 * 1024 * 1024)
    answer = await asyncio.wait_for(asyncio.to_thread(nc_minus_n, proxy.address, data), 10)
    assert answer == hashlib.sha256(data).hexdigest().encode()
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 5
    while proxy_tasks(hasher.tasks, idle) and loop.time() < deadline:
        await asyncio.sleep(0.01)
    left = proxy_tasks(hasher.tasks, idle)
    assert not left, (
        f"both directions of the only connection are done, yet these tasks still run: {left}. When both "
        "pumps have ended, close both sockets and let the connection's task finish"
    )


@pytest.mark.stage(5, "closing the proxy")
@pytest.mark.asyncio
async def test_close_does_not_wait_for_a_connect_in_progress(make_proxy, silent_address) -> None:
    proxy = await make_proxy([silent_address], connect_timeout=30)
    reader, writer = await asyncio.open_connection(*proxy.address)
    await asyncio.sleep(0.1)  # the proxy is now waiting for the silent backend's answer
    try:
        await asyncio.wait_for(proxy.close(), 5)
    except TimeoutError:
        pytest.fail(
            "close() waited for a connect to a silent backend (connect_timeout 30 s): cancel "
            "every connection task, including one still connecting"
        )
    try:
        rest = await asyncio.wait_for(reader.read(), 5)
    except ConnectionResetError:
        rest = b""
    except TimeoutError:
        pytest.fail("after close() the client whose backend was still connecting stayed connected")
    finally:
        writer.close()
    assert rest == b""
    assert not proxy_tasks(), f"after close() these tasks still run: {proxy_tasks()}"


# --- what a long-running proxy must not accumulate, and turns taken on arrival -------------------------


def proxy_sockets(port: int, *backends: Backend) -> list[Any]:
    """The connected TCP sockets of the proxy listening on `port`, in this process: those accepted
    on its port and those it opened to a backend (the test's clients and the backends' excluded)."""
    backend_ports = {b.address[1] for b in backends}
    return [
        c
        for c in psutil.Process().net_connections(kind="tcp")
        if c.raddr and (c.laddr.port == port or c.raddr.port in backend_ports)
    ]


async def until(condition: Callable[[], object], seconds: float = 5.0) -> None:
    """Waits until `condition()` is true, at most `seconds` (the caller then asserts it)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while not condition() and loop.time() < deadline:
        await asyncio.sleep(0.01)


@pytest.mark.stage(1, "relaying in turn")
@pytest.mark.asyncio
async def test_the_defaults_are_localhost_and_a_port_the_os_picks(start_backend) -> None:
    a = await start_backend("a", tagged_echo)
    proxies = [TCPProxy([a.address]), TCPProxy([a.address])]
    try:
        for proxy in proxies:
            await proxy.start()
        addresses = [proxy.address for proxy in proxies]
        assert all(host == "127.0.0.1" and port > 1024 for host, port in addresses) and len(set(addresses)) == 2, (
            f"two proxies built without host or port listen on {addresses}: the defaults are host "
            "127.0.0.1 and port 0, a free port the OS picks (so two never collide)"
        )
        assert [await tag_of(address) for address in addresses] == ["a", "a"]
    finally:
        for proxy in proxies:
            with contextlib.suppress(NotImplementedError):
                await asyncio.wait_for(proxy.close(), 5)


def ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


@pytest.mark.stage(1, "relaying in turn")
@pytest.mark.skipif(not ipv6_loopback(), reason="this machine has no IPv6 loopback (::1)")
@pytest.mark.asyncio
async def test_a_proxy_on_ipv6_loopback_relays_to_an_ipv4_backend(start_backend, make_proxy) -> None:
    a = await start_backend("a", tagged_echo)
    proxy = await make_proxy([a.address], host="::1")
    host, port = proxy.address
    assert (host, port != 0) == ("::1", True), (
        f"a proxy listening on ::1 gives address {proxy.address}: (host, port), the first two fields of "
        "the socket's name (an IPv6 name has four: host, port, flowinfo, scope id)"
    )
    assert await tag_of((host, port)) == "a", "the L4 proxy relays from an IPv6 client to an IPv4 backend"


@pytest.mark.stage(2, "backends that fail")
@pytest.mark.asyncio
async def test_a_connection_arriving_while_another_waits_on_a_silent_backend_takes_the_next_turn(
    start_backend, make_proxy, silent_address
) -> None:
    b, c = await start_backend("b", tagged_echo), await start_backend("c", tagged_echo)
    proxy = await make_proxy([silent_address, b.address, c.address], connect_timeout=30)
    first = await asyncio.open_connection(*proxy.address)

    def connecting_to_silent() -> bool:
        return any(s.raddr and tuple(s.raddr)[:2] == silent_address for s in psutil.Process().net_connections("tcp"))

    await until(connecting_to_silent)
    assert connecting_to_silent(), "the first connection's turn is the first backend (the silent one)"
    try:
        # Shorter than tag_of's own 5 s, whose message is about something else.
        tags = await asyncio.wait_for(sequential_tags(proxy.address, 2), 4)
    except TimeoutError:
        pytest.fail(
            "while the first connection waits on a silent backend (connect_timeout 30 s), the next two "
            "clients, one after the other, got no answer in 4 s: one waited on the silent backend too. "
            "Each connection takes its turn when it arrives, so the next one starts at the next backend"
        )
    finally:
        first[1].close()
    assert tags == ["b", "c"], (
        f"while the first connection waits on the silent backend of [silent, b, c], the next two reached "
        f"{tags}: each connection takes its turn on arrival (the second starts at b, the third at c)"
    )


async def sequential_tags(address: Address, count: int) -> list[str]:
    return [await tag_of(address) for _ in range(count)]


def sends_when_told(go: asyncio.Event) -> Handler:
    async def handler(b: Backend, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Once `go` is set, sends DOWNLOAD bytes, every one out of its own buffers, then EOF."""
        await go.wait()
        writer.transport.set_write_buffer_limits(0)  # drain() returns only once all is in the kernel
        for i in range(0, DOWNLOAD, 65536):
            writer.write(bytes([i // 65536 % 256]) * 65536)
            await writer.drain()
        b.sent = DOWNLOAD
        writer.write_eof()
        await reader.read()

    return handler


DOWNLOAD = 2 * 1024 * 1024


def read_slowly(client: socket.socket) -> bytes:
    """Reads to the end in small bites, pausing between them: a client on a slow link."""
    chunks = []
    with client:
        client.settimeout(10)
        while chunk := client.recv(4096):
            chunks.append(chunk)
            time.sleep(0.0002)
    return b"".join(chunks)


@pytest.mark.stage(4, "resets and leftovers")
@pytest.mark.asyncio
async def test_bytes_still_buffered_when_both_sides_are_done_are_delivered(start_backend, make_proxy) -> None:
    go = asyncio.Event()
    source = await start_backend("source", sends_when_told(go))
    proxy = await make_proxy([source.address])
    port = proxy.address[1]
    client = socket.socket()
    client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    client.connect(proxy.address)
    client.shutdown(socket.SHUT_WR)  # done sending at once; the download goes on
    await until(lambda: any(c.laddr.port == port for c in proxy_sockets(port)))
    for accepted in proxy_sockets(port):
        # As on a slow link: the kernel holds little, so the rest waits in the proxy's own buffer.
        with socket.socket(fileno=os.dup(accepted.fd)) as towards_client:
            towards_client.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    go.set()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ResourceWarning)
        got = await asyncio.wait_for(asyncio.to_thread(read_slowly, client), 30)
        expected = b"".join(bytes([i % 256]) * 65536 for i in range(DOWNLOAD // 65536))
        assert len(got) == DOWNLOAD and got == expected, (
            f"the backend sent {DOWNLOAD} bytes and closed; the slowly reading client got {len(got)}"
            f"{'' if len(got) != DOWNLOAD else ', changed'}. When both directions are done, close the sockets "
            "with close(), which sends what is still buffered first; abort() is for errors (it drops it)"
        )
        await until(lambda: not proxy_sockets(port, source))
        gc.collect()  # a socket nobody closed is closed here, with a ResourceWarning
        await asyncio.sleep(0)
        unclosed = [str(w.message) for w in caught if issubclass(w.category, ResourceWarning)]
        assert not proxy_sockets(port, source) and not unclosed, (
            f"the connection is over in both directions, yet the proxy still holds {proxy_sockets(port, source)} "
            f"or left them to the garbage collector ({unclosed}): close both sockets once both pumps are done "
            "(a long-running proxy would run out of descriptors)"
        )


@pytest.mark.stage(5, "closing the proxy")
@pytest.mark.asyncio
async def test_close_releases_the_sockets_of_a_client_that_stopped_reading(start_backend, make_proxy) -> None:
    source = await start_backend("source", floods)
    proxy = await make_proxy([source.address])
    port = proxy.address[1]
    client = socket.socket()
    client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
    client.connect(proxy.address)  # and never reads: the proxy's buffer towards it stays full
    try:
        last = -1
        while source.sent != last:  # until the flood stalls against the client's full buffers
            last = source.sent
            await asyncio.sleep(0.2)
        await asyncio.wait_for(proxy.close(), 5)
        await until(lambda: not proxy_sockets(port, source))
        assert not proxy_sockets(port, source), (
            f"after close() the proxy still holds {proxy_sockets(port, source)}: a graceful close() of a "
            "writer whose peer doesn't read waits for a flush that never comes. On close() and on errors, "
            "abort the transports (writer.transport.abort())"
        )
    finally:
        client.close()


@pytest.mark.stage(4, "resets and leftovers")
@pytest.mark.asyncio
async def test_finished_connections_leave_no_task_object_behind(start_backend, make_proxy) -> None:
    a = await start_backend("a", tagged_echo)
    proxy = await make_proxy([a.address])
    port = proxy.address[1]

    def finished_tasks() -> int:
        gc.collect()
        return sum(1 for o in gc.get_objects() if isinstance(o, asyncio.Task) and o.done())

    before = finished_tasks()
    for _ in range(40):
        assert await tag_of(proxy.address) == "a"
    await until(lambda: not proxy_sockets(port, a))
    kept = finished_tasks() - before
    assert kept < 20, (
        f"40 finished connections left {kept} finished tasks alive: a record of live connections must "
        "forget each one when it ends (discard it from the set), or a long-running proxy grows forever"
    )


@pytest.mark.stage(2, "backends that fail")
@pytest.mark.asyncio
async def test_a_connection_no_backend_takes_ends_without_an_unhandled_error(make_proxy, refused_address) -> None:
    loop = asyncio.get_running_loop()
    errors: list[dict[str, Any]] = []
    previous = loop.get_exception_handler()
    loop.set_exception_handler(lambda _, context: errors.append(context))
    try:
        proxy = await make_proxy([refused_address])
        for _ in range(3):
            reader, writer = await asyncio.open_connection(*proxy.address)
            with contextlib.suppress(ConnectionResetError):
                await asyncio.wait_for(reader.read(), 5)
            writer.close()
        await asyncio.wait_for(proxy.close(), 5)
        gc.collect()  # a task whose exception nobody retrieved reports it when it is collected
        await asyncio.sleep(0)
    finally:
        loop.set_exception_handler(previous)
    raised = [c.get("exception") or c["message"] for c in errors]
    assert not errors, (
        f"closing a client no backend would take raised inside the proxy: {raised}. "
        "Every path of a connection (no backend at all included) must end cleanly"
    )
