"""Tests for the TCP proxy, against real asyncio backends, plain sockets, and requests over http.server."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import http.server
import os
import socket
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field

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

    async def make(backends: list[Address]) -> TCPProxy:
        proxy = TCPProxy(backends)
        proxies.append(proxy)
        await proxy.start()
        return proxy

    yield make
    for proxy in proxies:
        with contextlib.suppress(NotImplementedError):
            await asyncio.wait_for(proxy.close(), 5)


@pytest.fixture
def refused_address() -> Iterator[Address]:
    """A port bound by nobody's listener: connecting to it is refused (and nothing can take it)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        yield s.getsockname()[:2]


async def tag_of(address: Address) -> str:
    """Connects, reads the backend's name line, closes."""
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
            "did it connect to a backend at all? (a refused backend must be skipped, not fatal)"
        )
    return line.decode().strip()


@pytest.mark.asyncio
async def test_connections_go_to_the_backends_in_turn(start_backend, make_proxy) -> None:
    backends = [await start_backend(n, tagged_echo) for n in ("a", "b", "c")]
    proxy = await make_proxy([b.address for b in backends])
    tags = [await tag_of(proxy.address) for _ in range(9)]
    start = "abc".index(tags[0])
    expected = ["abc"[(start + i) % 3] for i in range(9)]
    assert tags == expected, (
        f"9 connections in a row reached backends {tags}; round robin over [a, b, c] gives {expected}: "
        "one backend per connection, the next one in the list each time"
    )


@pytest.mark.asyncio
async def test_a_backend_that_refuses_is_skipped(start_backend, make_proxy, refused_address) -> None:
    a, b = await start_backend("a", tagged_echo), await start_backend("b", tagged_echo)
    proxy = await make_proxy([a.address, refused_address, b.address])
    tags = [await tag_of(proxy.address) for _ in range(8)]
    assert set(tags) == {"a", "b"}, f"connections reached {tags}: both live backends must get traffic"


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


@pytest.mark.asyncio
async def test_http_passes_through_untouched_and_keep_alive_stays_on_one_backend(
    http_backends, make_proxy
) -> None:
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
