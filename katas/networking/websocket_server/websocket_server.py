"""An RFC 6455 WebSocket server on asyncio streams: the upgrade handshake, framing, the closing handshake."""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import enum
import hashlib
import struct
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

# RFC 6455 §1.3: the fixed GUID appended to the client's key before hashing.
GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

# How long a closing endpoint waits for the peer's part of the closing handshake.
CLOSE_TIMEOUT = 2.0


class Opcode(enum.IntEnum):
    """Frame opcodes (§5.2); 0x8 and above are control frames."""

    CONTINUATION = 0x0
    TEXT = 0x1
    BINARY = 0x2
    CLOSE = 0x8
    PING = 0x9
    PONG = 0xA


class CloseCode(enum.IntEnum):
    """The close status codes this server sends (§7.4.1)."""

    NORMAL = 1000
    GOING_AWAY = 1001
    PROTOCOL_ERROR = 1002
    INVALID_DATA = 1007
    MESSAGE_TOO_BIG = 1009
    INTERNAL_ERROR = 1011


@dataclass(frozen=True)
class Frame:
    """One decoded frame: `payload` is already unmasked; `masked` says whether it came masked."""

    opcode: int
    payload: bytes
    fin: bool = True
    masked: bool = False


class ProtocolError(Exception):
    """The peer broke the protocol: fail the connection with close code `code` (1002, 1007, 1009)."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(f"{code} {reason}")
        self.code = code
        self.reason = reason


class ConnectionClosed(Exception):
    """The WebSocket connection is closed; `code` is the status code of the close (1006: abnormal)."""

    def __init__(self, code: int, reason: str = "") -> None:
        super().__init__(f"connection closed: {code} {reason}".rstrip())
        self.code = code
        self.reason = reason


def accept_key(client_key: str) -> str:
    """The Sec-WebSocket-Accept value for a Sec-WebSocket-Key (§4.2.2, step 5.4).

    >>> accept_key("dGhlIHNhbXBsZSBub25jZQ==")
    's3pPLMBiTxaQ9kYGzzhZRbK+xOo='
    """
    # TODO: base64 of the SHA-1 digest of the key followed by GUID.
    raise NotImplementedError("accept_key")


def apply_mask(data: bytes, mask: bytes) -> bytes:
    """XOR `data` with the 4-byte `mask` repeated (§5.3); masking twice gives `data` back."""
    # TODO: byte i is XORed with mask[i % 4] (a 1 MiB message must stay fast).
    raise NotImplementedError("apply_mask")


def encode_frame(opcode: int, payload: bytes, fin: bool = True, mask: bytes | None = None) -> bytes:
    """The bytes of one frame (§5.2): the header, then the payload, masked if `mask` is given.

    Raises ValueError for a control frame (opcode >= 0x8) over 125 bytes or with fin=False.
    A payload of n bytes: 7-bit length up to 125, 126 + 16 bits up to 65535, else 127 + 64 bits.

    >>> encode_frame(Opcode.TEXT, b"Hello").hex(" ")
    '81 05 48 65 6c 6c 6f'
    """
    # TODO: FIN|opcode, then MASK|length in the shortest of the 7-, 16- and 64-bit forms
    # (big-endian), then the masking key and the masked payload, or the payload as is.
    raise NotImplementedError("encode_frame")


async def read_frame(reader: asyncio.StreamReader, max_size: int | None = None) -> Frame:
    """Read one frame from `reader`, waiting for as many bytes as it takes.

    Raises ProtocolError(1002) for reserved bits, an unknown opcode, a fragmented or oversized
    control frame or a 64-bit length with its top bit set; ProtocolError(1009) if the payload is
    longer than `max_size` (checked on the header, before waiting for the payload; None: no
    limit); asyncio.IncompleteReadError on EOF.

    >>> # 81 85 37 fa 21 3d 7f 9f 4d 51 58  ->  Frame(0x1, b"Hello", fin=True, masked=True)
    """
    # TODO: the 2-byte header, the extended length if any, the checks, the masking key if the
    # MASK bit is set, then the payload (unmasked before it is returned).
    raise NotImplementedError("read_frame")


async def handshake(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
    """Read the HTTP/1.1 Upgrade request and answer it (§4.2); True once 101 was sent.

    Reads up to the blank line and no further: the bytes after it are the first frames. Header
    names are case-insensitive, Upgrade and Connection are comma-separated lists of
    case-insensitive tokens, and a header sent twice is one list.

    Answers 400 Bad Request to a request that is not a valid WebSocket upgrade (not a GET over
    HTTP/1.1, no `websocket` token in Upgrade, no `Upgrade` token in Connection, a
    Sec-WebSocket-Key that is not the base64 of 16 bytes, a request that ends before its blank
    line) and 426 Upgrade Required (with `Sec-WebSocket-Version: 13`) to a version other than
    13; False then (the caller closes the connection).
    """
    # TODO: read the head up to the blank line, parse the headers, check them, write the
    # response (101 with Upgrade, Connection and Sec-WebSocket-Accept).
    raise NotImplementedError("handshake")


class WebSocketConnection:
    """The server's end of one WebSocket connection, after the handshake."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, max_size: int = 2**20) -> None:
        self._reader = reader
        self._writer = writer
        self.max_size = max_size
        self.close_code: int | None = None  # set once the connection is closed
        self.close_reason = ""
        # TODO: whatever else you need to track (was our Close frame sent?).

    async def recv(self) -> str | bytes:
        """The next whole message: str for text, bytes for binary.

        Reassembles fragments, answers pings with pongs (also between fragments), ignores
        pongs, checks that text is UTF-8 (on the whole message), and raises ConnectionClosed on
        this and every later call once the connection is closed: with the peer's code (1005 if
        its Close had none; its Close is answered with the same code), 1006 if TCP ended without
        a Close, or 1002 / 1007 / 1009 after failing the connection because the peer broke the
        protocol (see the README's table).
        """
        # TODO: read frames until a message is complete; handle control frames on the way;
        # on a ProtocolError send a Close frame with its code, close TCP, raise ConnectionClosed.
        raise NotImplementedError("WebSocketConnection.recv")

    async def send(self, message: str | bytes) -> None:
        """Send one message, as a single unmasked frame: text for str, binary for bytes.

        Waits (drain) while the peer isn't reading; raises ConnectionClosed once closed.
        """
        # TODO: raise ConnectionClosed if closed; otherwise write one frame and drain.
        raise NotImplementedError("WebSocketConnection.send")

    async def close(self, code: int = CloseCode.NORMAL, reason: str = "") -> None:
        """Start the closing handshake: send a Close frame, wait for the peer's, close TCP.

        Waits at most CLOSE_TIMEOUT seconds (read it when you wait: the tests change it) for the
        peer's Close, dropping messages still in flight. Does nothing if already closed.
        """
        # TODO: the Close frame (2-byte big-endian code + UTF-8 reason), then wait (at most
        # CLOSE_TIMEOUT) for the peer's Close, then close the TCP connection.
        raise NotImplementedError("WebSocketConnection.close")


Handler = Callable[[WebSocketConnection], Awaitable[None]]


async def serve(handler: Handler, host: str, port: int, *, max_size: int = 2**20) -> asyncio.Server:
    """Start a WebSocket server on host:port; `handler(connection)` runs once per connection.

    Connections are served concurrently. When the handler returns the server closes with
    1000; if it raises, with 1011; a refused upgrade just closes the connection. The caller
    closes the returned asyncio.Server (port 0 picks a free port: see server.sockets).
    """
    # TODO: asyncio.start_server with a callback that does the handshake, runs the handler,
    # closes the WebSocket, and always closes the socket in the end.
    raise NotImplementedError("serve")
