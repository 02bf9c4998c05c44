"""Tests for the WebSocket server: RFC 6455's examples, the websockets library as the oracle for
frames and for the protocol's rules, its asyncio client as the peer, and raw sockets for the
peers a library won't imitate."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import os
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
import pytest_asyncio
import websockets.exceptions as wse
from hypothesis import example, given, settings
from hypothesis import strategies as st
from websockets.asyncio.client import ClientConnection, connect
from websockets.frames import Close as WsClose
from websockets.frames import Frame as WsFrame
from websockets.frames import Opcode as WsOpcode
from websockets.protocol import Protocol as WsProtocol
from websockets.protocol import Side as WsSide
from websockets.protocol import State as WsState
from websockets.streams import StreamReader as WsStreamReader
from websockets.utils import accept_key as websockets_accept_key
from websockets.utils import apply_mask as websockets_apply_mask

from . import websocket_server as module
from .websocket_server import (
    ConnectionClosed,
    Frame,
    ProtocolError,
    WebSocketConnection,
    accept_key,
    encode_frame,
    handshake,
    read_frame,
    serve,
)

GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"  # RFC 6455 §1.3
RFC_KEY = "dGhlIHNhbXBsZSBub25jZQ=="  # §1.3: base64 of "the sample nonce"
RFC_ACCEPT = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
MASK = bytes.fromhex("37fa213d")  # the masking key of the §5.7 examples
BYTES_256 = bytes(range(256))
BYTES_64K = bytes(range(256)) * 256

# RFC 6455 §5.7 (docs/vectors.md §2.2): (name, opcode, payload, fin, mask, bytes on the wire, hint).
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


def websockets_frames(data: bytes) -> list[WsFrame]:
    """Every server frame in `data`, parsed by websockets (which rejects a masked server frame)."""
    reader = WsStreamReader()
    reader.feed_data(data)
    reader.feed_eof()
    frames = []
    while reader.buffer:
        parser = WsFrame.parse(reader.read_exact, mask=False)
        try:
            next(parser)
        except StopIteration as stop:
            frames.append(stop.value)
        except wse.ProtocolError as exc:
            pytest.fail(f"websockets rejects a frame the server sent ({exc}): server frames MUST NOT be masked (§5.1)")
        except EOFError:
            pytest.fail(f"the server's last frame is cut short: {bytes(reader.buffer[:16]).hex(' ')}")
    return frames


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


def close_payload(code: int, reason: bytes = b"") -> bytes:
    return code.to_bytes(2, "big") + reason


# --- the handshake key -------------------------------------------------------------------------


@pytest.mark.stage(1, "key and frame codec")
def test_accept_key_matches_the_rfc_example() -> None:
    got = accept_key(RFC_KEY)
    assert got == RFC_ACCEPT, (
        f"accept_key({RFC_KEY!r}) = {got!r}, expected {RFC_ACCEPT!r} (RFC 6455 §1.3): the base64 "
        f"of the 20-byte SHA-1 digest (not its hex) of the key text + GUID {GUID}"
    )


@pytest.mark.stage(1, "key and frame codec")
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


@pytest.mark.stage(1, "key and frame codec")
@pytest.mark.parametrize(("name", "opcode", "payload", "fin", "mask", "wire", "hint"), VECTORS, ids=VECTOR_IDS)
def test_encode_frame_produces_the_rfc_bytes(
    name: str, opcode: int, payload: bytes, fin: bool, mask: bytes | None, wire: bytes, hint: str
) -> None:
    got = encode_frame(opcode, payload, fin=fin, mask=mask)
    assert got == wire, (
        f"RFC 6455 §5.7 {name}: expected {wire[:16].hex(' ')} ({len(wire)} bytes), "
        f"got {got[:16].hex(' ')} ({len(got)} bytes). Hint: {hint}"
    )


@pytest.mark.stage(1, "key and frame codec")
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


@pytest.mark.stage(1, "key and frame codec")
@pytest.mark.parametrize("size", [0, 1, 125, 126, 127, 65535, 65536, 70000])
def test_encode_frame_uses_the_shortest_length_form_and_websockets_reads_it(size: int) -> None:
    payload = ramp(size)
    unmasked = encode_frame(0x2, payload)
    want = WsFrame(WsOpcode.BINARY, payload).serialize(mask=False)
    assert unmasked[:10] == want[:10], (
        f"a {size}-byte payload: header {unmasked[:10].hex(' ')}, websockets writes "
        f"{want[:10].hex(' ')}: 7-bit up to 125, 126 + 16-bit up to 65535, else 127 + 64-bit"
    )
    assert unmasked == want, f"a {size}-byte frame: the header is right but the payload differs"
    key = os.urandom(4)
    masked_wire = encode_frame(0x2, payload, mask=key)
    assert masked_wire[1] & 0x80, f"a {size}-byte frame with mask={key.hex()}: the MASK bit of byte 2 is not set"
    masked = websockets_parse(masked_wire, masked=True)
    assert bytes(masked.data) == payload, (
        f"websockets unmasked our {size}-byte masked frame to different bytes: the key follows the "
        "(extended) length, then each payload byte is XORed with key[i % 4]"
    )


@pytest.mark.stage(1, "key and frame codec")
@settings(max_examples=60, deadline=None)
@given(
    opcode=st.sampled_from(list(WsOpcode)),
    payload=st.binary(max_size=125) | st.integers(126, 70000).map(ramp),
    fin=st.booleans(),
)
def test_encode_frame_agrees_with_websockets(opcode: WsOpcode, payload: bytes, fin: bool) -> None:
    if opcode.value >= 0x8 and (len(payload) > 125 or not fin):
        return  # refused: see the next test
    want = WsFrame(opcode, payload, fin=fin).serialize(mask=False)
    got = encode_frame(opcode.value, payload, fin=fin)
    assert got[:10] == want[:10], (
        f"{opcode.name} frame, fin={fin}, {len(payload)} bytes: header {got[:10].hex(' ')}, websockets "
        f"writes {want[:10].hex(' ')}: the first byte is FIN (0x80) | opcode, nothing else"
    )
    assert got == want, f"{opcode.name} frame of {len(payload)} bytes: the header is right, the payload isn't"
    masked = websockets_parse(encode_frame(opcode.value, payload, fin=fin, mask=MASK), masked=True)
    assert (masked.opcode, masked.fin, bytes(masked.data)) == (opcode, fin, payload), (
        f"websockets reads our masked {opcode.name} frame as {masked}: the key follows the length"
    )


@pytest.mark.stage(4, "protocol errors and limits")
@pytest.mark.parametrize("opcode", [0x8, 0x9, 0xA], ids=["close", "ping", "pong"])
def test_encode_frame_refuses_control_frames_that_are_long_or_fragmented(opcode: int) -> None:
    at_limit = encode_frame(opcode, bytes(125))
    assert at_limit == WsFrame(WsOpcode(opcode), bytes(125)).serialize(mask=False), (
        f"a 125-byte control frame (opcode {opcode:#x}) is allowed: 125 is the limit, not past it"
    )
    with pytest.raises(ValueError):
        encode_frame(opcode, bytes(126))
    with pytest.raises(ValueError):
        encode_frame(opcode, b"", fin=False)
    fragment = encode_frame(0x1, b"Hel", fin=False)
    assert fragment == bytes.fromhex("010348656c"), "only control frames are never fragmented: text may be"


@pytest.mark.stage(1, "key and frame codec")
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


@pytest.mark.stage(1, "key and frame codec")
@pytest.mark.asyncio
@pytest.mark.parametrize("size", [5, 256, 65536], ids=["7bit", "16bit", "64bit"])
async def test_read_frame_waits_for_bytes_that_arrive_one_at_a_time(size: int) -> None:
    """TCP delivers a frame in pieces: readexactly(n) waits for n bytes, read(n) does not."""
    payload = ramp(size)
    wire = encode_frame(0x2, payload, mask=MASK)
    reader = asyncio.StreamReader()
    task = asyncio.create_task(read_frame(reader))
    try:
        # The header and key one byte at a time, the payload in pieces of 1000.
        header = len(wire) - size
        pieces = [wire[i : i + 1] for i in range(header)] + [wire[i : i + 1000] for i in range(header, len(wire), 1000)]
        for piece in pieces:
            assert not task.done() or task.exception() is None, (
                f"read_frame failed on a frame that arrived in pieces: {task.exception()!r}: "
                "read with readexactly(n), which waits for n bytes, not read(n)"
            )
            reader.feed_data(piece)
            await asyncio.sleep(0)
        frame = await asyncio.wait_for(task, 3)
    finally:
        task.cancel()
    assert frame.payload == payload, (
        f"a {size}-byte frame that arrived in pieces came back as {len(frame.payload)} different "
        "bytes: read(n) returns what has arrived, readexactly(n) waits for all n"
    )


@pytest.mark.stage(4, "protocol errors and limits")
@pytest.mark.parametrize(
    ("wire", "why"),
    [
        (bytes([0x09, 0x00]), "a ping with FIN=0: control frames are never fragmented (§5.5)"),
        (bytes([0x08, 0x00]), "a close with FIN=0: control frames are never fragmented (§5.5)"),
        (bytes([0x89, 0x7E, 0x00, 0x7E]) + bytes(126), "a 126-byte ping: control payloads are <= 125 bytes"),
        (bytes([0x8A, 0x7E, 0x00, 0x7E]) + bytes(126), "a 126-byte pong: control payloads are <= 125 bytes"),
        (bytes([0xC1, 0x00]), "RSV1 set while no extension was negotiated (§5.2)"),
        (bytes([0xA1, 0x00]), "RSV2 set while no extension was negotiated (§5.2)"),
        (bytes([0x91, 0x00]), "RSV3 set while no extension was negotiated (§5.2)"),
        *((bytes([0x80 | op, 0x00]), f"opcode {op:#x} is reserved (§5.2)") for op in (3, 4, 5, 6, 7, 0xB, 0xC, 0xF)),
        (
            bytes([0x82, 0x7F, 0x80]) + bytes(7),
            "a 64-bit length with its most significant bit set (§5.2: it MUST be 0)",
        ),
    ],
    ids=[
        "fragmented_ping",
        "fragmented_close",
        "long_ping",
        "long_pong",
        "rsv1",
        "rsv2",
        "rsv3",
        *(f"opcode_{op:#x}" for op in (3, 4, 5, 6, 7, 0xB, 0xC, 0xF)),
        "length_top_bit",
    ],
)
def test_read_frame_rejects_malformed_frames_with_1002(wire: bytes, why: str) -> None:
    try:
        decode(wire)
    except ProtocolError as exc:
        assert exc.code == 1002, f"{why}: ProtocolError code {exc.code}, expected 1002"
    except asyncio.IncompleteReadError:
        pytest.fail(f"{why}: read_frame waited for more bytes instead of raising ProtocolError(1002) on the header")
    except Exception as exc:
        pytest.fail(f"{why}: read_frame raised {exc!r} instead of ProtocolError(1002)")
    else:
        pytest.fail(f"{why}: read_frame returned a frame instead of raising ProtocolError(1002)")


@pytest.mark.stage(4, "protocol errors and limits")
@pytest.mark.parametrize("size", [0, 1, 125, 126, 65535, 65536], ids=lambda n: f"{n}B")
def test_read_frame_accepts_exactly_max_size_and_refuses_one_more(size: int) -> None:
    wire = encode_frame(0x2, ramp(size), mask=MASK)
    try:
        frame = decode(wire, max_size=size)
    except ProtocolError as exc:
        pytest.fail(f"a {size}-byte frame with max_size={size}: ProtocolError({exc.code}); max_size itself is allowed")
    assert frame.payload == ramp(size)
    with pytest.raises(ProtocolError) as caught:
        decode(encode_frame(0x2, ramp(size + 1), mask=MASK), max_size=size)
    assert caught.value.code == 1009, f"{size + 1} bytes with max_size={size}: code {caught.value.code}, expected 1009"
    assert decode(wire, max_size=None).payload == ramp(size), "max_size=None means no limit"


@pytest.mark.stage(4, "protocol errors and limits")
@pytest.mark.asyncio
@pytest.mark.parametrize(
    "announced", [1025, 65536, 1 << 40, 1 << 62, (1 << 63) - 1], ids=["16bit", "64bit", "1TiB", "2**62", "2**63-1"]
)
async def test_read_frame_refuses_an_oversized_frame_before_reading_its_payload(announced: int) -> None:
    reader = asyncio.StreamReader()
    # A masked binary frame announcing more than max_size: only the header and key ever arrive.
    if announced <= 0xFFFF:
        header = bytes([0x82, 0xFE]) + announced.to_bytes(2, "big")
    else:
        header = bytes([0x82, 0xFF]) + announced.to_bytes(8, "big")
    reader.feed_data(header + MASK)
    try:
        async with asyncio.timeout(3):
            await read_frame(reader, max_size=1024)
    except ProtocolError as exc:
        assert exc.code == 1009, (
            f"a frame announcing {announced} bytes (a valid length: only the 64th bit is forbidden) "
            f"with max_size=1024: ProtocolError code {exc.code}, expected 1009"
        )
    except TimeoutError:
        pytest.fail(
            f"read_frame waited for a {announced}-byte payload with max_size=1024: compare the "
            "announced length with max_size right after reading it, and raise ProtocolError(1009)"
        )
    else:
        pytest.fail(f"read_frame returned a frame with a {announced}-byte payload it never received")


# --- recv() against the websockets protocol as the oracle ---------------------------------------------


async def serve_bytes(wire: bytes, max_size: int = 2**20) -> tuple[list[str | bytes], int, bytes]:
    """Run the learner's connection on `wire` (then EOF): the messages recv() returned, the code
    of the ConnectionClosed that ended it, and every byte the server wrote."""
    ours, theirs = socket.socketpair()
    peer_reader, peer_writer = await asyncio.open_connection(sock=theirs)
    _, writer = await asyncio.open_connection(sock=ours)
    reader = asyncio.StreamReader()
    reader.feed_data(wire)
    reader.feed_eof()
    connection = WebSocketConnection(reader, writer, max_size)
    messages: list[str | bytes] = []
    code = -1
    try:
        async with asyncio.timeout(5):
            while True:
                messages.append(await connection.recv())
    except ConnectionClosed as exc:
        code = exc.code
    except TimeoutError:
        pytest.fail(f"recv() neither returned nor raised ConnectionClosed within 5 s (after {len(messages)} messages)")
    finally:
        writer.close()
    sent = await asyncio.wait_for(peer_reader.read(), 3)
    peer_writer.close()
    return messages, code, sent


def websockets_verdict(wire: bytes) -> tuple[list[str | bytes], int, list[WsFrame]]:
    """What the websockets server protocol makes of the same bytes: messages, code, frames sent."""
    protocol = WsProtocol(WsSide.SERVER, state=WsState.OPEN, max_size=None)
    protocol.receive_data(wire)
    protocol.receive_eof()
    messages: list[str | bytes] = []
    parts: list[bytes] = []
    kind = WsOpcode.CONT
    for frame in protocol.events_received():
        if frame.opcode in (WsOpcode.TEXT, WsOpcode.BINARY):
            kind, parts = frame.opcode, []
        if frame.opcode in (WsOpcode.TEXT, WsOpcode.BINARY, WsOpcode.CONT):
            parts.append(bytes(frame.data))
            if frame.fin:
                data = b"".join(parts)
                messages.append(data.decode() if kind is WsOpcode.TEXT else data)
    if protocol.close_rcvd is not None:
        code = protocol.close_rcvd.code
    elif protocol.close_sent is not None:
        code = protocol.close_sent.code
    else:
        code = 1006
    return messages, code, websockets_frames(b"".join(protocol.data_to_send()))


def summary(frames: list[WsFrame]) -> list[tuple[str, Any]]:
    """The server's frames as (kind, pong payload or close code): a Close's reason may differ."""
    out: list[tuple[str, Any]] = []
    for frame in frames:
        if frame.opcode is WsOpcode.CLOSE:
            data = bytes(frame.data)
            out.append(("close", int.from_bytes(data[:2], "big") if len(data) >= 2 else 1005 if not data else "1 byte"))
        else:
            out.append((frame.opcode.name.lower(), bytes(frame.data)))
    return out


VALID_CODES = [1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000, 4999]
INVALID_CODES = [0, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000, 65535]


@st.composite
def client_frames(draw: st.DrawFn) -> list[tuple[int, bytes, bool]]:
    """A stream of client frames, as (first byte, payload, masked): whole and fragmented messages
    with pings and pongs between their fragments, and the mistakes peers make."""
    frames: list[tuple[int, bytes, bool]] = []

    def control() -> tuple[int, bytes, bool]:
        return (draw(st.sampled_from([0x89, 0x8A])), draw(st.binary(max_size=12)), True)

    for _ in range(draw(st.integers(0, 5))):
        what = draw(st.sampled_from(["text", "binary", "text", "binary", "control", "junk", "close"]))
        if what in ("text", "binary"):
            data = draw(st.text(max_size=12)).encode() if what == "text" else draw(st.binary(max_size=12))
            cuts = sorted(draw(st.lists(st.integers(0, len(data)), max_size=3)))
            pieces = [data[a:b] for a, b in zip([0, *cuts], [*cuts, len(data)], strict=True)]
            for i, piece in enumerate(pieces):
                first = (0x1 if what == "text" else 0x2) if i == 0 else 0x0
                frames.append((first | 0x80 * (i == len(pieces) - 1), piece, True))
                if i < len(pieces) - 1 and draw(st.booleans()):
                    frames.append(control())
                if i < len(pieces) - 1 and draw(st.integers(0, 9)) == 0:
                    frames.append((0x81, b"intruder", True))  # a new message inside this one
        elif what == "control":
            frames.append(control())
        elif what == "junk":
            frames.append(
                draw(
                    st.sampled_from(
                        [
                            (0x80, b"stray", True),  # a continuation with no message
                            (0x81, b"unmasked", False),
                            (0xC1, b"rsv1", True),
                            (0x89, b"unmasked ping", False),
                            (0x88, b"\x03", True),  # a close payload of 1 byte
                        ]
                    )
                )
            )
        else:
            code = draw(st.sampled_from(VALID_CODES + INVALID_CODES))
            # A reason that isn't UTF-8 only with a valid code: which error wins is not fixed.
            bad_reason = st.just(b"\xff\xfe") if code in VALID_CODES else st.nothing()
            reason = draw(st.one_of(st.text(max_size=10).map(str.encode), bad_reason))
            frames.append((0x88, draw(st.sampled_from([b"", close_payload(code, reason)])), True))
    return frames


@pytest.mark.stage(4, "protocol errors and limits")
@settings(max_examples=150, deadline=None)
@given(frames=client_frames(), key=st.binary(min_size=4, max_size=4))
# always tried, not left to the draw: a ping between the fragments of one message
@example(frames=[(0x01, b"frag", True), (0x89, b"ping", True), (0x80, b"ment", True)], key=b"k3y!")
def test_recv_agrees_with_the_websockets_protocol(frames: list[tuple[int, bytes, bool]], key: bytes) -> None:
    wire = b"".join(
        bytes([first, 0x80 * masked | len(payload)])
        + (key + websockets_apply_mask(payload, key) if masked else payload)
        for first, payload, masked in frames
    )
    want_messages, want_code, want_frames = websockets_verdict(wire)
    messages, code, sent = asyncio.run(serve_bytes(wire))
    trace = ", ".join(f"{first:02x}:{payload!r}{'' if masked else ' unmasked'}" for first, payload, masked in frames)
    assert messages == want_messages, (
        f"client frames [{trace}]: recv() returned {messages}, websockets makes {want_messages} of them: "
        "a message is a text/binary frame plus continuations up to FIN=1; pings and pongs may come "
        "between the fragments and are not part of it"
    )
    got_frames = summary(websockets_frames(sent))
    want = summary(want_frames)
    # An empty Close may be answered with an empty Close or with 1000.
    if want and want[-1] == ("close", 1005) and got_frames and got_frames[-1] == ("close", 1000):
        got_frames[-1] = ("close", 1005)
    assert got_frames == want, (
        f"client frames [{trace}]: the server answered {got_frames}, websockets answers {want}: a pong "
        "with each ping's payload, in order; the peer's Close echoed with its code; a protocol "
        "error (unmasked frame, stray continuation, new message inside another, RSV bits, 1-byte "
        "close, invalid close code) fails with Close 1002, an invalid UTF-8 reason with 1007"
    )
    assert code == want_code, (
        f"client frames [{trace}]: recv() raised ConnectionClosed({code}), expected {want_code}: "
        "the peer's code (1005 if its Close had none), the code the server failed with, or 1006 "
        "when TCP ended without a Close"
    )


@pytest.mark.stage(4, "protocol errors and limits")
def test_close_codes_the_wire_allows_are_echoed_and_others_fail_with_1002() -> None:
    codes = [0, 999, *range(1000, 1017), 2000, 2999, 3000, 3999, 4000, 4999, 5000, 65535]
    wrong = []
    for code in codes:
        try:
            WsClose(code, "").check()  # the oracle: websockets' own check of a received code
            want = code
        except wse.ProtocolError:
            want = 1002
        _, got, sent = asyncio.run(serve_bytes(raw_frame(0x88, close_payload(code, b"bye"))))
        answer = summary(websockets_frames(sent))
        if answer != [("close", want)] or got != (code if want == code else 1002):
            wrong.append(f"Close {code}: answered {answer}, recv() raised {got}")
    assert not wrong, (
        f"{'; '.join(wrong)}. A Close may carry 1000-1003, 1007-1014 (echo it; recv() raises the "
        "peer's code) or 3000-4999; any other code is an invalid close code: fail with 1002 (§7.4)"
    )


@pytest.mark.stage(4, "protocol errors and limits")
@pytest.mark.parametrize(
    "text",
    [b"caf\xc3(", b"caf\xc3", b"\xed\xa0\x80", b"\xc0\xaf", b"\xf4\x90\x80\x80", b"\xff"],
    ids=["bad_continuation", "truncated_at_the_end", "surrogate", "overlong", "above_u10ffff", "ff"],
)
@pytest.mark.parametrize("fragmented", [False, True], ids=["whole", "fragmented"])
def test_invalid_utf8_text_fails_with_1007(text: bytes, fragmented: bool) -> None:
    with pytest.raises(UnicodeDecodeError):
        text.decode("utf-8")  # the oracle: Python's strict UTF-8 decoder
    if fragmented:
        wire = raw_frame(0x01, text[:1]) + raw_frame(0x89, b"ping") + raw_frame(0x80, text[1:])
    else:
        wire = raw_frame(0x81, text)
    messages, code, sent = asyncio.run(serve_bytes(wire))
    frames = summary(websockets_frames(sent))
    assert messages == [], f"recv() returned {messages} for the text {text!r}, which is not UTF-8"
    assert frames and frames[-1] == ("close", 1007), (
        f"a text message {text!r}{' in two fragments' if fragmented else ''}: the server sent "
        f"{frames}, expected it to fail the connection with Close 1007 (§8.1); decode strictly, "
        "on the whole message"
    )
    assert code == 1007, f"recv() raised ConnectionClosed({code}) after invalid UTF-8, expected 1007"


@pytest.mark.stage(4, "protocol errors and limits")
def test_max_size_counts_the_message_not_the_frame() -> None:
    at_limit = raw_frame(0x02, b"a" * 600) + raw_frame(0x80, b"b" * 424)
    messages, code, _ = asyncio.run(serve_bytes(at_limit, max_size=1024))
    assert messages == [b"a" * 600 + b"b" * 424], (
        f"two fragments of exactly max_size=1024 bytes in all: recv() gave {[len(m) for m in messages]} "
        f"and ConnectionClosed({code}); the limit is on the message and max_size itself is allowed"
    )
    over = raw_frame(0x02, b"a" * 600) + raw_frame(0x80, b"b" * 425)
    messages, code, sent = asyncio.run(serve_bytes(over, max_size=1024))
    assert (messages, code) == ([], 1009), (
        f"two fragments of 1025 bytes in all with max_size=1024: recv() gave {messages!r:.40} and "
        f"ConnectionClosed({code}), expected 1009: the limit is on the message, not each frame"
    )
    assert summary(websockets_frames(sent)) == [("close", 1009)], "fail the connection with a Close 1009 frame"


@pytest.mark.stage(3, "the closing handshake")
def test_recv_after_the_connection_closed_raises_again_with_the_same_code() -> None:
    async def go() -> list[int]:
        ours, theirs = socket.socketpair()
        _, writer = await asyncio.open_connection(sock=ours)
        peer_reader, peer_writer = await asyncio.open_connection(sock=theirs)
        reader = asyncio.StreamReader()
        reader.feed_data(raw_frame(0x88, close_payload(4001, b"bye")) + raw_frame(0x81, b"after the close"))
        reader.feed_eof()
        connection = WebSocketConnection(reader, writer)
        codes = []
        for _ in range(3):
            try:
                got = await asyncio.wait_for(connection.recv(), 3)
            except ConnectionClosed as exc:
                codes.append(exc.code)
            else:
                pytest.fail(f"recv() returned {got!r}, a frame that came after the peer's Close")
        with pytest.raises(ConnectionClosed):
            await connection.send("too late")
        await asyncio.wait_for(connection.close(), 3)  # nothing: it is already closed
        writer.close()
        peer_writer.close()
        frames = websockets_frames(await asyncio.wait_for(peer_reader.read(), 3))
        closes = [f for f in frames if f.opcode is WsOpcode.CLOSE]
        assert len(closes) == 1, (
            f"the server sent {len(closes)} Close frames: close() on a closed connection does nothing"
        )
        return codes

    codes = asyncio.run(go())
    assert codes == [4001, 4001, 4001], (
        f"recv() after the peer's Close 4001 raised ConnectionClosed with {codes}: once closed, every "
        "recv() raises it again, with the peer's code"
    )


@pytest.mark.stage(3, "the closing handshake")
def test_a_connection_dropped_without_a_close_is_1006() -> None:
    async def go() -> tuple[list[int], str]:
        ours, theirs = socket.socketpair()
        _, writer = await asyncio.open_connection(sock=ours)
        peer_reader, peer_writer = await asyncio.open_connection(sock=theirs)
        reader = asyncio.StreamReader()
        reader.feed_data(raw_frame(0x81, b"complete") + raw_frame(0x81, b"cut short")[:5])
        reader.feed_eof()  # TCP ends in the middle of a frame, no Close
        connection = WebSocketConnection(reader, writer)
        first = await asyncio.wait_for(connection.recv(), 3)
        assert first == "complete", f"the frame before the drop came back as {first!r}"
        codes = []
        for _ in range(2):
            try:
                got = await asyncio.wait_for(connection.recv(), 3)
            except ConnectionClosed as exc:
                codes.append(exc.code)
            else:
                pytest.fail(f"recv() returned {got!r} from a frame cut short by EOF")
        try:
            await asyncio.wait_for(connection.send("anyone there?"), 3)
        except ConnectionClosed:
            outcome = "ConnectionClosed"
        except Exception as exc:
            outcome = repr(exc)
        else:
            outcome = "sent"
        try:
            await asyncio.wait_for(connection.close(), 3)
        except Exception as exc:
            pytest.fail(f"close() on a connection whose TCP ended raised {exc!r}: it is already closed, do nothing")
        writer.close()
        sent = websockets_frames(await asyncio.wait_for(peer_reader.read(), 3))
        assert sent == [], f"the server wrote {sent} after TCP ended: close() on a closed connection does nothing"
        peer_writer.close()
        return codes, outcome

    codes, outcome = asyncio.run(go())
    assert codes == [1006, 1006], (
        f"TCP ended without a Close: recv() raised ConnectionClosed with {codes}, expected 1006 each "
        "time (the connection is closed, abnormally: remember it)"
    )
    assert outcome == "ConnectionClosed", f"send() on a connection whose TCP ended gave {outcome}: it is closed"


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
        if exc.rcvd is None and exc.sent is not None and exc.sent.code == 1002:
            pytest.fail(
                f"expected a Close frame with {code} ({why}); the websockets client rejected what the "
                f"server sent: {exc.sent.reason!r}"
            )
        assert exc.rcvd is not None, (
            f"expected a Close frame with {code} ({why}); {describe(exc)}: send the Close "
            "frame before closing TCP (§7.1.7)"
        )
        assert exc.rcvd.code == code, f"expected close code {code} ({why}); {describe(exc)}"
    else:
        pytest.fail(f"expected the server to close with {code} ({why}); it sent back {message!r:.60}")


@pytest.mark.stage(2, "upgrade and echo")
@pytest.mark.asyncio
@pytest.mark.parametrize("message", ["Hello", "", "héllo wörld ✓ 🎉", b"\x00\xff binary \xfe", b""])
async def test_echoes_text_as_text_and_binary_as_binary(start: Any, message: str | bytes) -> None:
    port = await start(Echo())
    async with client(port) as ws:
        await ws.send(message)
        got = await recv(ws)
    assert got == message, f"sent {message!r}, got back {got!r} (str is a text frame, bytes binary)"


@pytest.mark.stage(2, "upgrade and echo")
@pytest.mark.asyncio
async def test_echoes_many_messages_in_order_on_one_connection(start: Any) -> None:
    port = await start(Echo())
    async with client(port) as ws:
        for i in range(20):
            await ws.send(f"message {i}")
        got = [await recv(ws) for _ in range(20)]
    assert got == [f"message {i}" for i in range(20)]


@pytest.mark.stage(2, "upgrade and echo")
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


@pytest.mark.stage(2, "upgrade and echo")
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


@pytest.mark.stage(2, "upgrade and echo")
@pytest.mark.asyncio
async def test_a_character_split_across_two_fragments_is_valid_text(start: Any) -> None:
    port = await start(Echo())
    async with client(port) as ws:
        # "café": é is c3 a9, and the two bytes travel in different fragments.
        ws.transport.write(raw_frame(0x01, b"caf\xc3") + raw_frame(0x80, b"\xa9"))
        try:
            got = await asyncio.wait_for(ws.recv(), 3)
        except wse.ConnectionClosed as exc:
            pytest.fail(
                f"'café' with the two bytes of 'é' in two fragments: {describe(exc)}; a character "
                "may straddle fragments: check UTF-8 on the whole message, not on each fragment"
            )
    assert got == "café", f"got {got!r}: check UTF-8 on the whole message, not on each fragment"


@pytest.mark.stage(2, "upgrade and echo")
@pytest.mark.asyncio
@pytest.mark.parametrize("payload", [b"are you there?", b"", bytes(125)], ids=["text", "empty", "125_bytes"])
async def test_answers_a_ping_with_a_pong(start: Any, payload: bytes) -> None:
    port = await start(Echo())
    async with client(port) as ws:
        pong = await ws.ping(payload)
        try:
            latency = await asyncio.wait_for(pong, 3)
        except TimeoutError:
            pytest.fail(
                f"no pong within 3 s of a {len(payload)}-byte ping: answer each ping with a pong "
                "carrying its payload (§5.5.2)"
            )
        assert latency >= 0
        await ws.send("still here")
        assert await recv(ws) == "still here", "the connection broke after a ping"


@pytest.mark.stage(2, "upgrade and echo")
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
        ws.transport.write(raw_frame(0x8A, b"unsolicited") + raw_frame(0x80, b"lo"))  # a pong, then FIN=1
        got = await recv(ws)
    assert got == "Hello", f"the fragmented message around a ping and a pong came back as {got!r}"


@pytest.mark.stage(2, "upgrade and echo")
@pytest.mark.asyncio
async def test_a_frame_that_arrives_byte_by_byte_over_tcp_is_one_message(start: Any) -> None:
    port = await start(Echo())
    async with client(port) as ws:
        ws.transport.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for byte in raw_frame(0x81, "slow ✓".encode()):
            ws.transport.write(bytes([byte]))
            await asyncio.sleep(0.001)
        got = await recv(ws)
    assert got == "slow ✓", f"a frame that arrived one byte per segment came back as {got!r}: use readexactly(n)"


# --- closing --------------------------------------------------------------------------------------


@pytest.mark.stage(3, "the closing handshake")
@pytest.mark.asyncio
@pytest.mark.parametrize("code", [1000, 1001, 3000, 4999])
async def test_a_close_from_the_client_is_answered_with_the_same_code(start: Any, code: int) -> None:
    echo = Echo()
    port = await start(echo)
    async with client(port) as ws:
        await ws.send("hi")
        await recv(ws)
        await ws.close(code, "ça suffit")  # the echo carries the code; a reason cut mid-character isn't UTF-8
        rcvd = ws.protocol.close_rcvd
        assert rcvd is not None, "the server did not answer the client's Close with its own (§5.5.1)"
        assert rcvd.code == code, f"the server answered Close {code} with {rcvd.code}: echo the peer's code"
    ended = await asyncio.wait_for(echo.ended, 3)
    assert ended.code == code, f"recv() on the server raised ConnectionClosed({ended.code}), expected the peer's {code}"


@pytest.mark.stage(3, "the closing handshake")
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


@pytest.mark.stage(3, "the closing handshake")
@pytest.mark.asyncio
async def test_a_close_reason_of_123_bytes_fits_a_control_frame(start: Any) -> None:
    reason = "é" * 61 + "!"  # 123 bytes: with the 2-byte code, the 125 a control frame holds

    async def leave(connection: WebSocketConnection) -> None:
        await connection.close(4001, reason)

    port = await start(leave)
    async with client(port) as ws:
        with pytest.raises(wse.ConnectionClosed) as caught:
            await asyncio.wait_for(ws.recv(), 3)
    rcvd = caught.value.rcvd
    assert rcvd is not None and (rcvd.code, rcvd.reason) == (4001, reason), (
        f"close(4001, a 123-byte reason): {describe(caught.value)}; 2 bytes of code + 123 of reason "
        "is exactly the 125 bytes a control frame may carry"
    )


@pytest.mark.stage(3, "the closing handshake")
@pytest.mark.asyncio
async def test_a_handler_that_returns_closes_with_1000(start: Any) -> None:
    async def say_one_thing(connection: WebSocketConnection) -> None:
        await connection.send("one thing")

    port = await start(say_one_thing)
    async with client(port) as ws:
        assert await recv(ws) == "one thing"
        await expect_close(ws, 1000, "the handler returned: a normal closure")


@pytest.mark.stage(3, "the closing handshake")
@pytest.mark.asyncio
async def test_a_handler_that_raises_closes_with_1011(start: Any) -> None:
    async def crash(connection: WebSocketConnection) -> None:
        await connection.send("about to fail")
        raise RuntimeError("handler bug")

    port = await start(crash)
    async with client(port) as ws:
        assert await recv(ws) == "about to fail"
        await expect_close(ws, 1011, "the handler raised: an internal error (§7.4.1)")


class Raw:
    """A client on a plain socket: the upgrade by hand, frames parsed by websockets."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.buffer = WsStreamReader()

    @classmethod
    async def connect(cls, port: int, rcvbuf: int | None = None) -> Raw:
        sock = socket.socket()
        if rcvbuf is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)  # also stops autotuning
        sock.setblocking(False)
        await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", port))
        reader, writer = await asyncio.open_connection(sock=sock)
        lines = ["GET / HTTP/1.1", f"Host: 127.0.0.1:{port}", *(f"{k}: {v}" for k, v in GOOD_HEADERS.items())]
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode())
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 3)
        assert head.startswith(b"HTTP/1.1 101 "), f"the upgrade was answered with {head[:40]!r}"
        return cls(reader, writer)

    def send(self, first: int, payload: bytes) -> None:
        self.writer.write(raw_frame(first, payload))

    async def frame(self) -> WsFrame | None:
        """The next frame from the server, or None at EOF."""
        parser = WsFrame.parse(self.buffer.read_exact, mask=False)
        try:
            next(parser)
            while True:
                data = await self.reader.read(65536)
                if data:
                    self.buffer.feed_data(data)
                else:
                    self.buffer.feed_eof()
                parser.send(None)
        except StopIteration as stop:
            frame: WsFrame = stop.value
            return frame
        except EOFError:
            return None
        except wse.ProtocolError as exc:
            pytest.fail(f"websockets rejects a frame the server sent ({exc}): server frames MUST NOT be masked (§5.1)")

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(OSError):
            await self.writer.wait_closed()


async def no_eof_yet(raw: Raw, when: str) -> None:
    """A correct server sends nothing here; give a wrong one a moment to close TCP too early."""
    try:
        early = await asyncio.wait_for(raw.frame(), 0.1)
    except TimeoutError:
        return
    pytest.fail(
        f"{when}, the server sent {early or 'its FIN'}: after its Close it waits for the peer's "
        "Close (reading and dropping messages in flight), and only then closes TCP"
    )


@pytest.mark.stage(3, "the closing handshake")
@pytest.mark.asyncio
async def test_the_server_closes_tcp_once_the_closing_handshake_is_done(
    start: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(module, "CLOSE_TIMEOUT", 10.0)  # so that no deadline closes TCP for us
    returned = asyncio.Event()
    release = asyncio.Event()
    after: asyncio.Future[str] = asyncio.get_running_loop().create_future()

    async def leave(connection: WebSocketConnection) -> None:
        await connection.close(4000, "bye")
        returned.set()
        try:
            got = await connection.recv()
        except ConnectionClosed as exc:
            after.set_result(f"ConnectionClosed({exc.code})")
        else:
            after.set_result(repr(got))
        await release.wait()  # the handler lingers: close() itself must have closed TCP

    port = await start(leave)
    raw = await Raw.connect(port)
    try:
        frame = await asyncio.wait_for(raw.frame(), 3)
        assert frame is not None and frame.opcode is WsOpcode.CLOSE, f"close(4000) sent {frame} instead of a Close"
        assert WsClose.parse(frame.data) == WsClose(4000, "bye"), f"close(4000, 'bye') sent {frame.data!r}"
        await no_eof_yet(raw, "before the client answered the Close")
        raw.send(0x81, b"a message already in flight")  # dropped: the server is closing
        await no_eof_yet(raw, "after a message in flight, before the client's Close")
        assert not returned.is_set(), "close() returned before the peer's Close came back: wait for it (§7.1.2)"
        raw.send(0x88, close_payload(4000))
        try:
            last = await asyncio.wait_for(raw.frame(), 3)
        except TimeoutError:
            pytest.fail(
                "the closing handshake is done and the client waits for the server's FIN, but the "
                "server kept TCP open: close() closes TCP (write_eof() or close()), the server first, §7.1.1"
            )
        assert last is None, f"after the closing handshake the server sent {last}: nothing may follow a Close"
        await raw.close()  # now the client closes its end too
        try:
            await asyncio.wait_for(returned.wait(), 3)
        except TimeoutError:
            pytest.fail("close() did not return once both Close frames and both FINs had passed")
        got = await asyncio.wait_for(after, 3)
        assert got == "ConnectionClosed(4000)", (
            f"recv() after close(4000) answered by the peer's Close 4000 gave {got}: once closed, "
            "recv() raises ConnectionClosed with the code of the closing handshake"
        )
    finally:
        release.set()
        await raw.close()


@pytest.mark.stage(4, "protocol errors and limits")
@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("wire", "code"),
    [(raw_frame(0x88, close_payload(4000)), 4000), (raw_frame(0x81, b"unmasked", masked=False), 1002)],
    ids=["peer_close", "protocol_error"],
)
async def test_recv_closes_tcp_itself_while_the_handler_lingers(
    start: Any, monkeypatch: pytest.MonkeyPatch, wire: bytes, code: int
) -> None:
    monkeypatch.setattr(module, "CLOSE_TIMEOUT", 10.0)
    release = asyncio.Event()

    async def linger(connection: WebSocketConnection) -> None:
        with contextlib.suppress(ConnectionClosed):
            await connection.recv()
        await release.wait()  # cleaning up, say: TCP must be closed already

    port = await start(linger)
    raw = await Raw.connect(port)
    try:
        raw.writer.write(wire)
        frame = await asyncio.wait_for(raw.frame(), 3)
        assert frame is not None and frame.opcode is WsOpcode.CLOSE, f"the server answered {frame}, not a Close"
        assert summary([frame]) == [("close", code)], f"the server answered with {summary([frame])}"
        try:
            last = await asyncio.wait_for(raw.frame(), 3)
        except TimeoutError:
            pytest.fail(
                f"after its Close {code} the server kept TCP open while the handler was busy: once "
                "the Close frames have passed, recv() closes TCP (the server first) before it raises"
            )
        assert last is None, f"after its Close the server sent {last}"
    finally:
        release.set()
        await raw.close()


@pytest.mark.stage(3, "the closing handshake")
@pytest.mark.asyncio
async def test_close_gives_up_on_a_peer_that_never_answers(start: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(module, "CLOSE_TIMEOUT", 0.2)
    returned = asyncio.Event()

    async def leave(connection: WebSocketConnection) -> None:
        await connection.close(4000, "bye")
        returned.set()

    port = await start(leave)
    raw = await Raw.connect(port)
    try:
        frame = await asyncio.wait_for(raw.frame(), 3)
        assert frame is not None and frame.opcode is WsOpcode.CLOSE, f"close(4000) sent {frame} instead of a Close"
        # This peer never answers the Close (and never closes its end).
        try:
            after = await asyncio.wait_for(raw.frame(), 3)
        except TimeoutError:
            pytest.fail(
                "a peer that never answers the Close kept the connection open 3 s, with CLOSE_TIMEOUT "
                "= 0.2: wait for its Close at most CLOSE_TIMEOUT seconds, then close TCP anyway"
            )
        assert after is None, f"the server sent {after} after its Close"
        try:
            await asyncio.wait_for(returned.wait(), 3)
        except TimeoutError:
            pytest.fail("close() never returned to the handler when the peer didn't answer: bound every wait")
    finally:
        await raw.close()


@pytest.mark.stage(3, "the closing handshake")
@pytest.mark.asyncio
async def test_send_after_close_raises_connection_closed(start: Any) -> None:
    outcome: asyncio.Future[str] = asyncio.get_running_loop().create_future()

    async def close_then_send(connection: WebSocketConnection) -> None:
        await connection.close(1000)
        try:
            await connection.send("after close")
        except ConnectionClosed:
            outcome.set_result("ConnectionClosed")
        except Exception as exc:
            outcome.set_result(repr(exc))
        else:
            outcome.set_result("sent")

    port = await start(close_then_send)
    async with client(port) as ws:
        with pytest.raises(wse.ConnectionClosed):
            await asyncio.wait_for(ws.recv(), 3)
    got = await asyncio.wait_for(outcome, 3)
    assert got == "ConnectionClosed", f"send() after close() gave {got}: raise ConnectionClosed once closed"


@pytest.mark.stage(4, "protocol errors and limits")
@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("wire", "why"),
    [
        (raw_frame(0x81, b"Hello", masked=False), "an unmasked client frame: client frames MUST be masked (§5.1)"),
        (raw_frame(0x89, b"ping", masked=False), "an unmasked ping: client control frames are masked too (§5.1)"),
        (raw_frame(0x09, b"ping"), "a fragmented ping: control frames are never fragmented (§5.5)"),
        (raw_frame(0x89, bytes(126)), "a 126-byte ping: control payloads are at most 125 bytes (§5.5)"),
        (raw_frame(0xC1, b"Hi"), "RSV1 set with no extension negotiated (§5.2)"),
        (raw_frame(0x80, b"lo"), "a continuation frame with no message to continue (§5.4)"),
        (raw_frame(0x01, b"Hel") + raw_frame(0x81, b"lo"), "a new text frame inside a fragmented message (§5.4)"),
        (raw_frame(0x88, b"\x03"), "a Close whose payload is 1 byte: a code is 2 (§5.5.1)"),
        (raw_frame(0x88, close_payload(1005)), "a Close carrying 1005, a code never sent on the wire (§7.4.1)"),
    ],
    ids=[
        "unmasked",
        "unmasked_ping",
        "fragmented_ping",
        "long_ping",
        "rsv1",
        "stray_continuation",
        "interleaved_message",
        "close_1_byte",
        "close_1005",
    ],
)
async def test_protocol_errors_close_with_1002(start: Any, wire: bytes, why: str) -> None:
    echo = Echo()
    port = await start(echo)
    async with client(port) as ws:
        ws.transport.write(wire)
        await expect_close(ws, 1002, why)
    ended = await asyncio.wait_for(echo.ended, 3)
    assert ended.code == 1002, f"{why}: recv() raised ConnectionClosed({ended.code}), expected 1002"


@pytest.mark.stage(4, "protocol errors and limits")
@pytest.mark.asyncio
async def test_invalid_utf8_in_a_text_message_closes_with_1007(start: Any) -> None:
    port = await start(Echo())
    async with client(port) as ws:
        ws.transport.write(raw_frame(0x81, b"caf\xc3("))  # c3 must be followed by 80..bf
        await expect_close(ws, 1007, "a text message that is not UTF-8 (§8.1)")


@pytest.mark.stage(4, "protocol errors and limits")
@pytest.mark.asyncio
async def test_a_message_over_max_size_closes_with_1009(start: Any) -> None:
    port = await start(Echo(), max_size=1024)
    async with client(port) as ws:
        await ws.send(b"x" * 1024)
        assert await recv(ws) == b"x" * 1024, "a message of exactly max_size bytes is allowed"
        await ws.send(b"x" * 1025)
        await expect_close(ws, 1009, "1025 bytes with max_size=1024 (§7.4.1)")


@pytest.mark.stage(4, "protocol errors and limits")
@pytest.mark.asyncio
async def test_the_default_max_size_is_one_mebibyte(start: Any) -> None:
    port = await start(Echo())
    async with client(port) as ws:
        await ws.send(b"x" * (1 << 20))
        assert await recv(ws) == b"x" * (1 << 20), "serve()'s default max_size is 2**20: a 1 MiB message is allowed"
        await ws.send(b"x" * ((1 << 20) + 1))
        await expect_close(ws, 1009, "2**20 + 1 bytes with serve()'s default max_size=2**20")


@pytest.mark.stage(4, "protocol errors and limits")
@pytest.mark.asyncio
async def test_max_size_counts_all_fragments_of_a_message(start: Any) -> None:
    port = await start(Echo(), max_size=1024)
    async with client(port) as ws:
        await ws.send(["a" * 600, "a" * 600])
        await expect_close(ws, 1009, "two fragments of 600 bytes with max_size=1024: the limit is on the message")


@pytest.mark.stage(4, "protocol errors and limits")
@pytest.mark.asyncio
async def test_an_oversized_frame_is_refused_before_its_payload_arrives(start: Any) -> None:
    port = await start(Echo(), max_size=1024)
    async with client(port) as ws:
        # The header of a masked 1025-byte binary frame and its key; the payload never comes.
        ws.transport.write(bytes([0x82, 0xFE]) + (1025).to_bytes(2, "big") + MASK)
        await expect_close(ws, 1009, "a frame announcing 1025 bytes with max_size=1024: refuse it on its header")


# --- send(): backpressure and concurrency -----------------------------------------------------------


@pytest.mark.stage(5, "backpressure and concurrency")
@pytest.mark.asyncio
async def test_send_waits_while_the_client_is_not_reading(start: Any) -> None:
    count = 160
    chunk = 64 * 1024
    sent: list[int] = []

    async def flood(connection: WebSocketConnection) -> None:
        for i in range(count):
            await connection.send(i.to_bytes(4, "big") + bytes(chunk - 4))
            sent.append(i)

    port = await start(flood)
    raw = await Raw.connect(port, rcvbuf=16 * 1024)  # a small window that will not grow
    try:
        # The client reads nothing: wait until the handler has sent everything or stopped moving.
        stalled = 0
        for _ in range(100):
            before = len(sent)
            await asyncio.sleep(0.02)
            stalled = stalled + 1 if len(sent) == before else 0
            if len(sent) == count or stalled == 5:
                break
        assert len(sent) < count, (
            f"the handler sent all {count} x 64 KiB messages to a client that read none of them: "
            "send() must `await writer.drain()` so a slow peer slows its handler instead of "
            "piling 10 MiB into the server's memory"
        )
        got = []
        for _ in range(count):
            frame = await asyncio.wait_for(raw.frame(), 3)
            assert frame is not None, f"the connection ended after {len(got)} of {count} messages"
            got.append(int.from_bytes(frame.data[:4], "big"))
        assert got == list(range(count)), "the messages sent while the client was slow arrived out of order"
    finally:
        await raw.close()


@pytest.mark.stage(5, "backpressure and concurrency")
@pytest.mark.asyncio
async def test_connections_are_served_concurrently(start: Any) -> None:
    """Each connection has its own handler: one that waits must not hold up another."""
    arrived: dict[str, asyncio.Event] = {"first": asyncio.Event(), "second": asyncio.Event()}

    async def rendezvous(connection: WebSocketConnection) -> None:
        name = await connection.recv()
        assert isinstance(name, str)
        arrived[name].set()
        other = "second" if name == "first" else "first"
        await asyncio.wait_for(arrived[other].wait(), 3)
        await connection.send(f"{name} met {other}")

    port = await start(rendezvous)
    async with client(port) as first, client(port) as second:
        await first.send("first")
        await second.send("second")
        got = (await recv(first), await recv(second))
    assert got == ("first met second", "second met first"), (
        f"two connections whose handlers wait for each other got {got}: serve() must run a "
        "handler per connection concurrently (asyncio.start_server does)"
    )


# --- the HTTP upgrade ---------------------------------------------------------------------------------


GOOD_HEADERS = {
    "Upgrade": "websocket",
    "Connection": "Upgrade",
    "Sec-WebSocket-Key": RFC_KEY,
    "Sec-WebSocket-Version": "13",
}


def request(headers: dict[str, str] | list[tuple[str, str]], request_line: str = "GET /chat HTTP/1.1") -> bytes:
    pairs = list(headers.items()) if isinstance(headers, dict) else headers
    lines = [request_line, "Host: example.com", *(f"{k}: {v}" for k, v in pairs)]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def parse_response(head: bytes) -> tuple[int, dict[str, str]]:
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    response = {}
    for line in filter(None, header_lines):
        name, _, value = line.partition(":")
        response[name.strip().lower()] = value.strip()
    return int(status_line.split()[1]), response


async def upgrade(port: int, raw_request: bytes) -> tuple[int, dict[str, str], bool]:
    """Send `raw_request`; return the status, the response headers, and whether the server
    closed the connection within 3 s after a refusal."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(raw_request)
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 3)
        except (asyncio.IncompleteReadError, TimeoutError):
            pytest.fail(f"no complete HTTP response to the upgrade request {raw_request!r:.200}")
        status, response = parse_response(head)
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
        with contextlib.suppress(OSError):
            await writer.wait_closed()


@pytest.mark.stage(2, "upgrade and echo")
@pytest.mark.asyncio
async def test_the_upgrade_is_answered_with_101_and_the_accept_key(start: Any) -> None:
    port = await start(Echo())
    status, headers, _ = await upgrade(port, request(GOOD_HEADERS))
    assert status == 101, f"a valid upgrade request got {status}, expected 101 Switching Protocols"
    assert headers.get("upgrade", "").lower() == "websocket", f"Upgrade header: {headers.get('upgrade')!r}"
    assert "upgrade" in headers.get("connection", "").lower(), f"Connection header: {headers.get('connection')!r}"
    want = base64.b64encode(hashlib.sha1((RFC_KEY + GUID).encode()).digest()).decode()
    assert headers.get("sec-websocket-accept") == want == RFC_ACCEPT, (
        f"Sec-WebSocket-Accept: {headers.get('sec-websocket-accept')!r}, expected {RFC_ACCEPT!r}"
    )


ODD_BUT_VALID = [
    (
        [
            ("upgrade", "WebSocket"),
            ("connection", "keep-alive, Upgrade"),  # what Firefox sends
            ("sec-websocket-key", RFC_KEY),
            ("SEC-WEBSOCKET-VERSION", "13"),
        ],
        "lower- and upper-case header names, 'WebSocket', and Firefox's 'Connection: keep-alive, Upgrade'",
    ),
    (
        [
            ("Upgrade", "websocket"),
            ("Connection", "keep-alive"),
            ("Connection", "upgrade"),
            ("Sec-WebSocket-Key", RFC_KEY),
            ("Sec-WebSocket-Version", "13"),
        ],
        "Connection sent twice (keep-alive, then upgrade): a repeated header is one comma-separated list",
    ),
    (
        [
            ("Upgrade", "websocket"),
            ("Connection", "Upgrade"),
            ("Connection", "keep-alive"),
            ("Sec-WebSocket-Key", RFC_KEY),
            ("Sec-WebSocket-Version", "13"),
        ],
        "Connection sent twice (Upgrade, then keep-alive): a repeated header is one comma-separated list",
    ),
    (
        [
            ("Upgrade", "websocket"),
            ("Connection", "Upgrade,keep-alive"),
            ("Sec-WebSocket-Key", RFC_KEY),
            ("Sec-WebSocket-Version", " 13"),
            ("Origin", "http://example.com"),
        ],
        "'Upgrade,keep-alive' without a space, extra whitespace, and an extra header",
    ),
]


@pytest.mark.stage(2, "upgrade and echo")
@pytest.mark.asyncio
@pytest.mark.parametrize(("headers", "why"), ODD_BUT_VALID, ids=["cases", "repeated", "repeated_reversed", "spacing"])
async def test_header_names_and_tokens_are_case_insensitive_lists(
    start: Any, headers: list[tuple[str, str]], why: str
) -> None:
    port = await start(Echo())
    status, response, _ = await upgrade(port, request(headers))
    assert status == 101, (
        f"got {status} for {why}: header names and these tokens are case-insensitive, and Connection "
        "is a comma-separated list of tokens"
    )
    assert response.get("sec-websocket-accept") == RFC_ACCEPT, "the accept value of an odd-looking request"


def without(name: str) -> list[tuple[str, str]]:
    return [(k, v) for k, v in GOOD_HEADERS.items() if k != name]


def replacing(name: str, value: str) -> list[tuple[str, str]]:
    return [(k, value if k == name else v) for k, v in GOOD_HEADERS.items()]


BAD_REQUESTS = [
    ("no_key", request(without("Sec-WebSocket-Key")), 400, "no Sec-WebSocket-Key"),
    ("short_key", request(replacing("Sec-WebSocket-Key", "c2hvcnQ=")), 400, "a key of 5 bytes, not 16"),
    (
        "17_byte_key",
        request(replacing("Sec-WebSocket-Key", base64.b64encode(bytes(17)).decode())),
        400,
        "a key of 17 bytes, not 16",
    ),
    ("not_base64_key", request(replacing("Sec-WebSocket-Key", "!" * 22 + "==")), 400, "a key that is not base64"),
    (
        "junk_in_key",
        request(replacing("Sec-WebSocket-Key", RFC_KEY[:8] + "!" + RFC_KEY[8:])),
        400,
        "the RFC's key with a '!' inside: not base64 (b64decode(validate=True); without it, junk is skipped)",
    ),
    ("no_upgrade", request(without("Upgrade")), 400, "no Upgrade: websocket"),
    ("upgrade_h2c", request(replacing("Upgrade", "h2c")), 400, "Upgrade: h2c, not websocket"),
    ("no_connection", request(without("Connection")), 400, "no Connection: Upgrade"),
    ("connection_close", request(replacing("Connection", "close")), 400, "Connection: close, no Upgrade token"),
    ("post", request(GOOD_HEADERS, "POST /chat HTTP/1.1"), 400, "a POST: the upgrade is a GET (§4.1)"),
    ("http_1_0", request(GOOD_HEADERS, "GET /chat HTTP/1.0"), 400, "HTTP/1.0: the upgrade is HTTP/1.1 (§4.1)"),
    ("version_8", request(replacing("Sec-WebSocket-Version", "8")), 426, "version 8"),
    ("version_14", request(replacing("Sec-WebSocket-Version", "14")), 426, "version 14"),
]
BAD_CASES = [case[1:] for case in BAD_REQUESTS]
BAD_CASE_IDS = [case[0] for case in BAD_REQUESTS]


@pytest.mark.stage(4, "protocol errors and limits")
@pytest.mark.asyncio
@pytest.mark.parametrize(("raw_request", "status", "why"), BAD_CASES, ids=BAD_CASE_IDS)
async def test_a_bad_upgrade_request_is_refused(start: Any, raw_request: bytes, status: int, why: str) -> None:
    port = await start(Echo())
    got, response, closed = await upgrade(port, raw_request)
    assert got == status, f"{why}: got HTTP {got}, expected {status} (RFC 6455 §4.2.1, §4.4)"
    if status == 426:
        assert response.get("sec-websocket-version") == "13", "a 426 names the version: Sec-WebSocket-Version: 13"
    assert closed, f"{why}: after refusing, close the connection"


async def call_handshake(pieces: list[bytes]) -> tuple[bool, bytes, asyncio.StreamReader]:
    """handshake() on a request fed in `pieces` (b"" for EOF): its result, the response, the reader."""
    ours, theirs = socket.socketpair()
    _, writer = await asyncio.open_connection(sock=ours)
    peer_reader, peer_writer = await asyncio.open_connection(sock=theirs)
    reader = asyncio.StreamReader()
    task = asyncio.create_task(handshake(reader, writer))
    try:
        for piece in pieces:
            if piece:
                reader.feed_data(piece)
            else:
                reader.feed_eof()
            for _ in range(3):
                await asyncio.sleep(0)
        result = await asyncio.wait_for(task, 3)
    except TimeoutError:
        pytest.fail("handshake() did not return on a complete request: read up to the blank line (\\r\\n\\r\\n)")
    finally:
        task.cancel()
        writer.close()
    response = await asyncio.wait_for(peer_reader.read(), 3)
    peer_writer.close()
    return result, response, reader


@pytest.mark.stage(2, "upgrade and echo")
@pytest.mark.asyncio
async def test_handshake_reads_a_request_that_arrives_byte_by_byte() -> None:
    wire = request(GOOD_HEADERS)
    frame = raw_frame(0x81, b"right behind the request")
    result, response, reader = await call_handshake([wire[i : i + 1] for i in range(len(wire))] + [frame])
    status, headers = parse_response(response.split(b"\r\n\r\n")[0])
    assert (status, result) == (101, True), (
        f"a request that arrived one byte at a time got HTTP {status} and handshake() returned {result!r}: "
        "keep reading until the blank line, then answer 101 and return True"
    )
    assert headers.get("sec-websocket-accept") == RFC_ACCEPT
    assert response.endswith(b"\r\n\r\n"), "the 101 response is a head only: it ends with the blank line"
    after = await asyncio.wait_for(read_frame(reader), 3)
    assert after.payload == b"right behind the request", (
        "the bytes after the request's blank line are the first frame: read the head with "
        "readuntil(b'\\r\\n\\r\\n') and leave the rest in the reader"
    )


@pytest.mark.stage(4, "protocol errors and limits")
@pytest.mark.asyncio
@pytest.mark.parametrize(("raw_request", "status", "why"), BAD_CASES, ids=BAD_CASE_IDS)
async def test_handshake_returns_false_after_a_refusal(raw_request: bytes, status: int, why: str) -> None:
    result, response, _ = await call_handshake([raw_request])
    got, _ = parse_response(response.split(b"\r\n\r\n")[0])
    assert (got, result) == (status, False), (
        f"{why}: handshake() answered HTTP {got} and returned {result!r}, expected {status} and False "
        "(False tells serve() not to run the handler)"
    )


@pytest.mark.stage(4, "protocol errors and limits")
@pytest.mark.asyncio
async def test_handshake_refuses_a_connection_that_ends_before_the_blank_line() -> None:
    result, response, _ = await call_handshake([request(GOOD_HEADERS)[:40], b""])
    assert (response[:12], result) == (b"HTTP/1.1 400", False), (
        f"a request cut off before its blank line (the client half-closed): handshake() answered "
        f"{response[:12]!r} and returned {result!r}, expected a 400 and False: catch "
        "asyncio.IncompleteReadError from readuntil"
    )
