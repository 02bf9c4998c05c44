"""Tests for the WebSocket server: RFC 6455 vectors, then the real `websockets` client against it."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
import pytest_asyncio
import websockets.exceptions as wse
from hypothesis import given, settings
from hypothesis import strategies as st
from websockets.asyncio.client import ClientConnection, connect
from websockets.frames import Frame as WsFrame
from websockets.frames import Opcode as WsOpcode
from websockets.streams import StreamReader as WsStreamReader
from websockets.utils import accept_key as websockets_accept_key
from websockets.utils import apply_mask as websockets_apply_mask

from .websocket_server import (
    ConnectionClosed,
    Frame,
    ProtocolError,
    WebSocketConnection,
    accept_key,
    encode_frame,
    read_frame,
    serve,
)

GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"  # RFC 6455 §1.3
RFC_KEY = "dGhlIHNhbXBsZSBub25jZQ=="  # §1.3: base64 of "the sample nonce"
RFC_ACCEPT = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
MASK = bytes.fromhex("37fa213d")  # the masking key of the §5.7 examples
BYTES_256 = bytes(range(256))
BYTES_64K = bytes(range(256)) * 256

# RFC 6455 §5.7 (VECTORS.md §2.2): (name, opcode, payload, fin, mask, bytes on the wire, hint).
VECTORS = [
    (
        "unmasked text 'Hello'",
        0x1,
        b"Hello",
        True,
        None,
        bytes.fromhex("810548656c6c6f"),
        "first byte FIN|opcode, second byte MASK|length",
    ),
    (
        "masked text 'Hello'",
        0x1,
        b"Hello",
        True,
        MASK,
        bytes.fromhex("818537fa213d7f9f4d5158"),
        "after the 4-byte key, each payload byte is XORed with key[i % 4]: unmask it (§5.3)",
    ),
    (
        "first fragment 'Hel'",
        0x1,
        b"Hel",
        False,
        None,
        bytes.fromhex("010348656c"),
        "FIN=0 on every fragment but the last",
    ),
    (
        "last fragment 'lo'",
        0x0,
        b"lo",
        True,
        None,
        bytes.fromhex("80026c6f"),
        "a continuation frame has opcode 0 and FIN=1 when it ends the message",
    ),
    ("unmasked ping 'Hello'", 0x9, b"Hello", True, None, bytes.fromhex("890548656c6c6f"), "ping is opcode 0x9"),
    (
        "masked pong 'Hello'",
        0xA,
        b"Hello",
        True,
        MASK,
        bytes.fromhex("8a8537fa213d7f9f4d5158"),
        "pong is opcode 0xA; masked like any other frame",
    ),
    ("close 1000", 0x8, b"\x03\xe8", True, None, bytes.fromhex("880203e8"), "the status code is 2 bytes, big-endian"),
    (
        "256-byte binary (16-bit length)",
        0x2,
        BYTES_256,
        True,
        None,
        bytes.fromhex("827e0100") + BYTES_256,
        "length 126 means: the real length follows as a 16-bit big-endian integer ('!H')",
    ),
    (
        "64 KiB binary (64-bit length)",
        0x2,
        BYTES_64K,
        True,
        None,
        bytes.fromhex("827f0000000000010000") + BYTES_64K,
        "length 127 means: the real length follows as a 64-bit big-endian integer ('!Q')",
    ),
]
VECTOR_IDS = [v[0] for v in VECTORS]


def ramp(n: int) -> bytes:
    """n bytes counting 0, 1, ... 255, 0, 1, ...: big payloads without randomness."""
    return (BYTES_256 * (n // 256 + 1))[:n]


def decode(data: bytes, max_size: int | None = None) -> Frame:
    """read_frame over a reader holding exactly `data` (then EOF)."""

    async def go() -> Frame:
        reader = asyncio.StreamReader()
        reader.feed_data(data)
        reader.feed_eof()
        return await read_frame(reader, max_size)

    return asyncio.run(go())


def websockets_parse(data: bytes, *, masked: bool) -> WsFrame:
    """The websockets library's own frame parser, run over `data`."""
    reader = WsStreamReader()
    reader.feed_data(data)
    reader.feed_eof()
    parser = WsFrame.parse(reader.read_exact, mask=masked)
    try:
        next(parser)
    except StopIteration as stop:
        frame: WsFrame = stop.value
    else:
        pytest.fail(f"websockets could not parse a whole frame from {data[:16].hex(' ')}...")
    leftover = len(reader.buffer)
    assert leftover == 0, f"{leftover} bytes left over after the frame: is the length right?"
    return frame


def raw_frame(first: int, payload: bytes, *, masked: bool = True, length: int | None = None) -> bytes:
    """A client frame built by hand (first byte = FIN|RSV|opcode), to send what a library won't."""
    n = len(payload) if length is None else length
    head = bytes([first]) + (
        bytes([0x80 * masked | n]) if n <= 125 else bytes([0x80 * masked | 126]) + n.to_bytes(2, "big")
    )
    if not masked:
        return head + payload
    key = os.urandom(4)
    return head + key + websockets_apply_mask(payload, key)


# --- the handshake key -------------------------------------------------------------------------


def test_accept_key_matches_the_rfc_example() -> None:
    got = accept_key(RFC_KEY)
    assert got == RFC_ACCEPT, (
        f"accept_key({RFC_KEY!r}) = {got!r}, expected {RFC_ACCEPT!r} (RFC 6455 §1.3): the base64 "
        f"of the 20-byte SHA-1 digest (not its hex) of the key text + GUID {GUID}"
    )


@settings(max_examples=50, deadline=None)
@given(st.binary(min_size=16, max_size=16))
def test_accept_key_agrees_with_the_websockets_library(nonce: bytes) -> None:
    key = base64.b64encode(nonce).decode()
    want = websockets_accept_key(key)
    got = accept_key(key)
    assert got == want, (
        f"accept_key({key!r}) = {got!r}, websockets computes {want!r}: base64 of the 20-byte SHA-1 digest of key + GUID"
    )


# --- the frame codec ---------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "opcode", "payload", "fin", "mask", "wire", "hint"), VECTORS, ids=VECTOR_IDS)
def test_encode_frame_produces_the_rfc_bytes(
    name: str, opcode: int, payload: bytes, fin: bool, mask: bytes | None, wire: bytes, hint: str
) -> None:
    got = encode_frame(opcode, payload, fin=fin, mask=mask)
    assert got == wire, (
        f"RFC 6455 §5.7 {name}: expected {wire[:16].hex(' ')} ({len(wire)} bytes), "
        f"got {got[:16].hex(' ')} ({len(got)} bytes). Hint: {hint}"
    )


@pytest.mark.parametrize(("name", "opcode", "payload", "fin", "mask", "wire", "hint"), VECTORS, ids=VECTOR_IDS)
def test_read_frame_decodes_the_rfc_bytes(
    name: str, opcode: int, payload: bytes, fin: bool, mask: bytes | None, wire: bytes, hint: str
) -> None:
    try:
        frame = decode(wire)
    except asyncio.IncompleteReadError as exc:
        pytest.fail(
            f"RFC 6455 §5.7 {name}: read_frame wanted {exc.expected} more bytes than the frame "
            f"has ({len(wire)} bytes in all). Hint: {hint}"
        )
    got = (frame.opcode, frame.fin, frame.masked, frame.payload)
    want = (opcode, fin, mask is not None, payload)
    assert got[:3] == want[:3], f"RFC 6455 §5.7 {name}: (opcode, fin, masked) = {got[:3]}, expected {want[:3]}"
    assert frame.payload == payload, (
        f"RFC 6455 §5.7 {name}: payload {frame.payload[:16]!r} ({len(frame.payload)} bytes), "
        f"expected {payload[:16]!r} ({len(payload)} bytes). Hint: {hint}"
    )


@pytest.mark.parametrize("size", [0, 125, 126, 127, 65535, 65536, 70000])
def test_encode_frame_uses_the_shortest_length_form_and_websockets_reads_it(size: int) -> None:
    payload = os.urandom(size)
    unmasked = encode_frame(0x2, payload)
    want = WsFrame(WsOpcode.BINARY, payload).serialize(mask=False)
    assert unmasked[:10] == want[:10], (
        f"a {size}-byte payload: header {unmasked[:10].hex(' ')}, websockets writes "
        f"{want[:10].hex(' ')}: 7-bit up to 125, 126 + 16-bit up to 65535, else 127 + 64-bit"
    )
    assert unmasked == want
    masked = websockets_parse(encode_frame(0x2, payload, mask=os.urandom(4)), masked=True)
    assert bytes(masked.data) == payload, "websockets unmasked our masked frame to different bytes"


@settings(max_examples=60, deadline=None)
@given(
    opcode=st.sampled_from([WsOpcode.TEXT, WsOpcode.BINARY, WsOpcode.CONT]),
    payload=st.one_of(st.binary(max_size=300), st.integers(65530, 65540).map(ramp)),
    fin=st.booleans(),
    masked=st.booleans(),
)
def test_read_frame_reads_whatever_websockets_writes(opcode: WsOpcode, payload: bytes, fin: bool, masked: bool) -> None:
    wire = WsFrame(opcode, payload, fin=fin).serialize(mask=masked)
    frame = decode(wire)
    assert (frame.opcode, frame.fin, frame.masked) == (opcode.value, fin, masked)
    assert frame.payload == payload, (
        f"{len(payload)}-byte {'masked' if masked else 'unmasked'} frame written by websockets: "
        f"read_frame returned {len(frame.payload)} bytes, different from what was sent"
    )


@pytest.mark.asyncio
async def test_read_frame_waits_for_bytes_that_arrive_one_at_a_time() -> None:
    """TCP delivers a frame in pieces: readexactly(n) waits for n bytes, read(n) does not."""
    wire = encode_frame(0x2, BYTES_256, mask=MASK)
    reader = asyncio.StreamReader()
    task = asyncio.create_task(read_frame(reader))
    try:
        for byte in wire:
            reader.feed_data(bytes([byte]))
            await asyncio.sleep(0)
        frame = await asyncio.wait_for(task, 3)
    finally:
        task.cancel()
    assert frame.payload == BYTES_256, "a frame that arrived byte by byte was decoded wrongly"


@pytest.mark.parametrize(
    ("wire", "why"),
    [
        (bytes([0x09, 0x00]), "a ping with FIN=0: control frames are never fragmented (§5.5)"),
        (bytes([0x89, 0x7E, 0x00, 0x7E]) + bytes(126), "a 126-byte ping: control payloads are <= 125 bytes"),
        (bytes([0xC1, 0x00]), "RSV1 set while no extension was negotiated (§5.2)"),
        (bytes([0x83, 0x00]), "opcode 0x3 is reserved (§5.2)"),
    ],
    ids=["fragmented_ping", "long_ping", "rsv1", "reserved_opcode"],
)
def test_read_frame_rejects_malformed_frames_with_1002(wire: bytes, why: str) -> None:
    with pytest.raises(ProtocolError) as caught:
        decode(wire)
    assert caught.value.code == 1002, f"{why}: ProtocolError code {caught.value.code}, expected 1002"


@pytest.mark.asyncio
async def test_read_frame_refuses_an_oversized_frame_before_reading_its_payload() -> None:
    reader = asyncio.StreamReader()
    # A masked binary frame announcing 1 TiB: only the header (and key) ever arrive.
    reader.feed_data(bytes([0x82, 0xFF]) + (1 << 40).to_bytes(8, "big") + MASK)
    try:
        async with asyncio.timeout(3):
            await read_frame(reader, max_size=1 << 20)
    except ProtocolError as exc:
        assert exc.code == 1009, f"a frame over max_size: ProtocolError code {exc.code}, expected 1009"
    except TimeoutError:
        pytest.fail(
            "read_frame waited for a 1 TiB payload: compare the announced length with max_size "
            "right after reading it, and raise ProtocolError(1009)"
        )
    else:
        pytest.fail("read_frame returned a frame with a 1 TiB payload it never received")


# --- the server, against the real websockets client ----------------------------------------------

Handler = Callable[[WebSocketConnection], Awaitable[None]]


class Echo:
    """Echoes every message and records how the server's recv() ended."""

    def __init__(self) -> None:
        self.ended: asyncio.Future[ConnectionClosed] = asyncio.get_running_loop().create_future()

    async def __call__(self, connection: WebSocketConnection) -> None:
        try:
            while True:
                await connection.send(await connection.recv())
        except ConnectionClosed as exc:
            if not self.ended.done():
                self.ended.set_result(exc)
            raise


@pytest_asyncio.fixture
async def start() -> AsyncIterator[Callable[..., Awaitable[int]]]:
    """Starts the learner's server on 127.0.0.1 (a free port); closes it and its tasks after."""
    servers: list[asyncio.Server] = []

    async def _start(handler: Handler, **kwargs: Any) -> int:
        server = await serve(handler, "127.0.0.1", 0, **kwargs)
        servers.append(server)
        port: int = server.sockets[0].getsockname()[1]
        return port

    yield _start
    for server in servers:
        server.close()
        await server.wait_closed()
    # Python 3.11's Server.close() leaves accepted connections alone: let their tasks finish
    # (the clients are gone by now), and cancel any that don't.
    others = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
    if others:
        _, pending = await asyncio.wait(others, timeout=3)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)


def client(port: int, **kwargs: Any) -> connect:
    """The websockets client, with short timeouts so a silent server fails fast."""
    options: dict[str, Any] = {"open_timeout": 3, "close_timeout": 1, "ping_interval": None, "max_size": None}
    return connect(f"ws://127.0.0.1:{port}/", **(options | kwargs))


def describe(exc: wse.ConnectionClosed) -> str:
    sent = f"{exc.sent.code} {exc.sent.reason!r}" if exc.sent else "nothing"
    rcvd = f"{exc.rcvd.code} {exc.rcvd.reason!r}" if exc.rcvd else "no Close frame"
    return f"the client received {rcvd} and sent {sent}"


async def recv(ws: ClientConnection) -> str | bytes:
    """The next message the client receives, or a failure that says why the connection ended."""
    try:
        async with asyncio.timeout(3):
            return await ws.recv()
    except TimeoutError:
        pytest.fail("the server sent nothing back within 3 s")
    except wse.ConnectionClosed as exc:
        hint = ""
        if exc.sent and exc.sent.code == 1002:
            hint = (
                " (the websockets client found a protocol error in the server's frames:"
                " server frames MUST NOT be masked)"
            )
        pytest.fail(f"the connection closed instead of delivering a message: {describe(exc)}{hint}")


async def expect_close(ws: ClientConnection, code: int, why: str) -> None:
    """The server must answer with a Close frame carrying `code`."""
    try:
        async with asyncio.timeout(3):
            message = await ws.recv()
    except TimeoutError:
        pytest.fail(f"expected the server to close with {code} ({why}); it did nothing for 3 s")
    except wse.ConnectionClosed as exc:
        assert exc.rcvd is not None, (
            f"expected a Close frame with {code} ({why}); {describe(exc)}: send the Close "
            "frame before closing TCP (§7.1.7)"
        )
        assert exc.rcvd.code == code, f"expected close code {code} ({why}); {describe(exc)}"
    else:
        pytest.fail(f"expected the server to close with {code} ({why}); it sent back {message!r:.60}")


@pytest.mark.asyncio
@pytest.mark.parametrize("message", ["Hello", "", "héllo wörld ✓ 🎉", b"\x00\xff binary \xfe", b""])
async def test_echoes_text_as_text_and_binary_as_binary(start: Any, message: str | bytes) -> None:
    port = await start(Echo())
    async with client(port) as ws:
        await ws.send(message)
        got = await recv(ws)
    assert got == message, f"sent {message!r}, got back {got!r} (str is a text frame, bytes binary)"


@pytest.mark.asyncio
async def test_echoes_many_messages_in_order_on_one_connection(start: Any) -> None:
    port = await start(Echo())
    async with client(port) as ws:
        for i in range(20):
            await ws.send(f"message {i}")
        got = [await recv(ws) for _ in range(20)]
    assert got == [f"message {i}" for i in range(20)]


@pytest.mark.asyncio
@pytest.mark.parametrize("size", [126, 65535, 65536, 1 << 20], ids=["16bit", "16bit_max", "64bit", "1MiB"])
async def test_echoes_large_messages_with_16_and_64_bit_lengths(start: Any, size: int) -> None:
    port = await start(Echo())
    text = "".join(chr(0x41 + i % 26) for i in range(size))
    data = os.urandom(size)
    async with client(port) as ws:
        await ws.send(text)
        got_text = await recv(ws)
        await ws.send(data)
        got_data = await recv(ws)
    assert got_text == text, f"a {size}-byte text message came back as {len(got_text)} characters, different"
    assert got_data == data, f"a {size}-byte binary message came back as {len(got_data)} bytes, different"


@pytest.mark.asyncio
async def test_reassembles_a_message_the_client_sends_in_fragments(start: Any) -> None:
    port = await start(Echo())
    async with client(port) as ws:
        await ws.send(["Hel", "lo", ", ", "world"])  # websockets: one frame per fragment
        got = await recv(ws)
        assert got == "Hello, world", (
            f"a text message sent as 4 fragments came back as {got!r}: a fragment is not a "
            "message, collect payloads until the frame with FIN=1 (§5.4)"
        )
        await ws.send([b"\x00\x01", b"", b"\x02"])
        got_bytes = await recv(ws)
    assert got_bytes == b"\x00\x01\x02", f"a fragmented binary message came back as {got_bytes!r}"


@pytest.mark.asyncio
async def test_a_character_split_across_two_fragments_is_valid_text(start: Any) -> None:
    port = await start(Echo())
    async with client(port) as ws:
        # "café": é is c3 a9, and the two bytes travel in different fragments.
        ws.transport.write(raw_frame(0x01, b"caf\xc3") + raw_frame(0x80, b"\xa9"))
        got = await recv(ws)
    assert got == "café", f"got {got!r}: check UTF-8 on the whole message, not on each fragment"


@pytest.mark.asyncio
async def test_answers_a_ping_with_a_pong(start: Any) -> None:
    port = await start(Echo())
    async with client(port) as ws:
        pong = await ws.ping(b"are you there?")
        try:
            latency = await asyncio.wait_for(pong, 3)
        except TimeoutError:
            pytest.fail("no pong within 3 s of a ping: answer each ping with a pong carrying its payload (§5.5.2)")
        assert latency >= 0
        await ws.send("still here")
        assert await recv(ws) == "still here", "the connection broke after a ping"


@pytest.mark.asyncio
async def test_answers_a_ping_that_arrives_between_two_fragments(start: Any) -> None:
    port = await start(Echo())
    async with client(port) as ws:
        ws.transport.write(raw_frame(0x01, b"Hel"))  # text, FIN=0
        pong = await ws.ping(b"mid-message")  # control frames may be injected between fragments
        try:
            await asyncio.wait_for(pong, 3)
        except TimeoutError:
            pytest.fail("no pong for a ping sent in the middle of a fragmented message (§5.4, §5.5.2)")
        ws.transport.write(raw_frame(0x80, b"lo"))  # continuation, FIN=1
        got = await recv(ws)
    assert got == "Hello", f"the fragmented message around the ping came back as {got!r}"


# --- closing --------------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_a_close_from_the_client_is_answered_with_the_same_code(start: Any) -> None:
    echo = Echo()
    port = await start(echo)
    async with client(port) as ws:
        await ws.send("hi")
        await recv(ws)
        await ws.close(1000, "client is done")
        rcvd = ws.protocol.close_rcvd
        assert rcvd is not None, "the server did not answer the client's Close with its own (§5.5.1)"
        assert rcvd.code == 1000, f"the server answered Close 1000 with {rcvd.code}"
    ended = await asyncio.wait_for(echo.ended, 3)
    assert ended.code == 1000, f"recv() on the server raised ConnectionClosed({ended.code}), expected 1000"


@pytest.mark.asyncio
async def test_the_server_can_close_with_a_code_and_reason(start: Any) -> None:
    async def greet_and_leave(connection: WebSocketConnection) -> None:
        await connection.send("bye soon")
        await connection.close(4000, "done here")

    port = await start(greet_and_leave)
    async with client(port) as ws:
        assert await recv(ws) == "bye soon"
        with pytest.raises(wse.ConnectionClosed) as caught:
            await asyncio.wait_for(ws.recv(), 3)
    rcvd = caught.value.rcvd
    assert rcvd is not None, f"no Close frame from close(4000, 'done here'): {describe(caught.value)}"
    assert (rcvd.code, rcvd.reason) == (4000, "done here"), describe(caught.value)


@pytest.mark.asyncio
async def test_a_handler_that_returns_closes_with_1000(start: Any) -> None:
    async def say_one_thing(connection: WebSocketConnection) -> None:
        await connection.send("one thing")

    port = await start(say_one_thing)
    async with client(port) as ws:
        assert await recv(ws) == "one thing"
        await expect_close(ws, 1000, "the handler returned: a normal closure")


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("wire", "why"),
    [
        (raw_frame(0x81, b"Hello", masked=False), "an unmasked client frame: client frames MUST be masked (§5.1)"),
        (raw_frame(0x09, b"ping"), "a fragmented ping: control frames are never fragmented (§5.5)"),
        (raw_frame(0x89, bytes(126)), "a 126-byte ping: control payloads are at most 125 bytes (§5.5)"),
        (raw_frame(0xC1, b"Hi"), "RSV1 set with no extension negotiated (§5.2)"),
        (raw_frame(0x80, b"lo"), "a continuation frame with no message to continue (§5.4)"),
        (raw_frame(0x01, b"Hel") + raw_frame(0x81, b"lo"), "a new text frame inside a fragmented message (§5.4)"),
    ],
    ids=["unmasked", "fragmented_ping", "long_ping", "rsv1", "stray_continuation", "interleaved_message"],
)
async def test_protocol_errors_close_with_1002(start: Any, wire: bytes, why: str) -> None:
    echo = Echo()
    port = await start(echo)
    async with client(port) as ws:
        ws.transport.write(wire)
        await expect_close(ws, 1002, why)
    ended = await asyncio.wait_for(echo.ended, 3)
    assert ended.code == 1002, f"{why}: recv() raised ConnectionClosed({ended.code}), expected 1002"


@pytest.mark.asyncio
async def test_invalid_utf8_in_a_text_message_closes_with_1007(start: Any) -> None:
    port = await start(Echo())
    async with client(port) as ws:
        ws.transport.write(raw_frame(0x81, b"caf\xc3("))  # c3 must be followed by 80..bf
        await expect_close(ws, 1007, "a text message that is not UTF-8 (§8.1)")


@pytest.mark.asyncio
async def test_a_message_over_max_size_closes_with_1009(start: Any) -> None:
    port = await start(Echo(), max_size=1024)
    async with client(port) as ws:
        await ws.send(b"x" * 1024)
        assert await recv(ws) == b"x" * 1024, "a message of exactly max_size bytes is allowed"
        await ws.send(b"x" * 1025)
        await expect_close(ws, 1009, "1025 bytes with max_size=1024 (§7.4.1)")


@pytest.mark.asyncio
async def test_max_size_counts_all_fragments_of_a_message(start: Any) -> None:
    port = await start(Echo(), max_size=1024)
    async with client(port) as ws:
        await ws.send(["a" * 600, "a" * 600])
        await expect_close(ws, 1009, "two fragments of 600 bytes with max_size=1024: the limit is on the message")


# --- the HTTP upgrade, over a raw socket ------------------------------------------------------------


async def upgrade(port: int, headers: dict[str, str]) -> tuple[int, dict[str, str], bool]:
    """Send a GET with `headers`; return the status, the response headers, and whether the
    server closed the connection within 3 s after a refusal."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        lines = ["GET /chat HTTP/1.1", f"Host: 127.0.0.1:{port}", *(f"{k}: {v}" for k, v in headers.items())]
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode())
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 3)
        except (asyncio.IncompleteReadError, TimeoutError):
            pytest.fail(f"no complete HTTP response to an upgrade request with headers {headers}")
        status_line, *header_lines = head.decode("latin-1").split("\r\n")
        status = int(status_line.split()[1])
        response = {}
        for line in filter(None, header_lines):
            name, _, value = line.partition(":")
            response[name.strip().lower()] = value.strip()
        closed = False
        if status != 101:
            try:
                await asyncio.wait_for(reader.read(), 3)  # the body, then EOF
                closed = True
            except TimeoutError:
                pass
        return status, response, closed
    finally:
        writer.close()
        await writer.wait_closed()


GOOD_HEADERS = {
    "Upgrade": "websocket",
    "Connection": "Upgrade",
    "Sec-WebSocket-Key": RFC_KEY,
    "Sec-WebSocket-Version": "13",
}


@pytest.mark.asyncio
async def test_the_upgrade_is_answered_with_101_and_the_accept_key(start: Any) -> None:
    port = await start(Echo())
    status, headers, _ = await upgrade(port, GOOD_HEADERS)
    assert status == 101, f"a valid upgrade request got {status}, expected 101 Switching Protocols"
    assert headers.get("upgrade", "").lower() == "websocket", f"Upgrade header: {headers.get('upgrade')!r}"
    assert headers.get("connection", "").lower() == "upgrade", f"Connection header: {headers.get('connection')!r}"
    want = base64.b64encode(hashlib.sha1((RFC_KEY + GUID).encode()).digest()).decode()
    assert headers.get("sec-websocket-accept") == want == RFC_ACCEPT, (
        f"Sec-WebSocket-Accept: {headers.get('sec-websocket-accept')!r}, expected {RFC_ACCEPT!r}"
    )


@pytest.mark.asyncio
async def test_header_names_and_tokens_are_case_insensitive_lists(start: Any) -> None:
    port = await start(Echo())
    status, _, _ = await upgrade(
        port,
        {
            "upgrade": "WebSocket",
            "connection": "keep-alive, Upgrade",  # what Firefox sends
            "sec-websocket-key": RFC_KEY,
            "SEC-WEBSOCKET-VERSION": "13",
        },
    )
    assert status == 101, (
        f"got {status} for 'connection: keep-alive, Upgrade' and 'upgrade: WebSocket': header "
        "names and these tokens are case-insensitive, and Connection is a comma-separated list"
    )


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("drop", "replace", "status", "why"),
    [
        ("Sec-WebSocket-Key", {}, 400, "no Sec-WebSocket-Key"),
        (None, {"Sec-WebSocket-Key": "c2hvcnQ="}, 400, "a key that is not 16 bytes of base64"),
        ("Upgrade", {}, 400, "no Upgrade: websocket"),
        ("Connection", {}, 400, "no Connection: Upgrade"),
        (None, {"Sec-WebSocket-Version": "8"}, 426, "version 8: answer 426 with Sec-WebSocket-Version: 13"),
    ],
    ids=["no_key", "short_key", "no_upgrade", "no_connection", "old_version"],
)
async def test_a_bad_upgrade_request_is_refused(
    start: Any, drop: str | None, replace: dict[str, str], status: int, why: str
) -> None:
    port = await start(Echo())
    headers = {k: v for k, v in GOOD_HEADERS.items() if k != drop} | replace
    got, response, closed = await upgrade(port, headers)
    assert got == status, f"{why}: got HTTP {got}, expected {status} (RFC 6455 §4.2.1, §4.4)"
    if status == 426:
        assert response.get("sec-websocket-version") == "13", "a 426 names the version: Sec-WebSocket-Version: 13"
    assert closed, f"{why}: after refusing, close the connection"
