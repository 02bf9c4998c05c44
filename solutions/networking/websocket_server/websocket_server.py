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
    # The key is hashed as the text it is (not base64-decoded), with the GUID appended; the
    # answer is the base64 of the 20 raw digest bytes, not of the hex string.
    digest = hashlib.sha1((client_key + GUID).encode("ascii")).digest()
    return base64.b64encode(digest).decode("ascii")


def apply_mask(data: bytes, mask: bytes) -> bytes:
    """XOR `data` with the 4-byte `mask` repeated (§5.3); masking twice gives `data` back."""
    if not data:
        return b""
    # One big-integer XOR instead of a Python loop per byte: a 1 MiB message stays fast.
    key = mask * (len(data) // 4) + mask[: len(data) % 4]
    return (int.from_bytes(data, "big") ^ int.from_bytes(key, "big")).to_bytes(len(data), "big")


def encode_frame(opcode: int, payload: bytes, fin: bool = True, mask: bytes | None = None) -> bytes:
    """The bytes of one frame (§5.2): the header, then the payload, masked if `mask` is given.

    >>> encode_frame(Opcode.TEXT, b"Hello").hex(" ")
    '81 05 48 65 6c 6c 6f'
    """
    if opcode >= Opcode.CLOSE and (len(payload) > 125 or not fin):
        raise ValueError("control frames carry at most 125 bytes and are never fragmented")
    if mask is not None and len(mask) != 4:
        raise ValueError(f"the masking key is 4 bytes, got {len(mask)}")
    first = (0x80 if fin else 0) | opcode
    mask_bit = 0x80 if mask is not None else 0
    n = len(payload)
    # The shortest of the three length forms MUST be used, all in network (big-endian) order.
    if n <= 125:
        header = struct.pack("!BB", first, mask_bit | n)
    elif n <= 0xFFFF:
        header = struct.pack("!BBH", first, mask_bit | 126, n)
    else:
        header = struct.pack("!BBQ", first, mask_bit | 127, n)
    if mask is None:
        return header + payload
    return header + mask + apply_mask(payload, mask)


async def read_frame(reader: asyncio.StreamReader, max_size: int | None = None) -> Frame:
    """Read one frame from `reader`, waiting for as many bytes as it takes.

    Raises ProtocolError(1002) for reserved bits, an unknown opcode, a fragmented or oversized
    control frame or a 64-bit length with its top bit set; ProtocolError(1009) if the payload is
    longer than `max_size` (checked before reading it); asyncio.IncompleteReadError on EOF.
    """
    # readexactly, never read(n): read(n) returns whatever has arrived, possibly less than n.
    first, second = await reader.readexactly(2)
    fin = bool(first & 0x80)
    if first & 0x70:
        raise ProtocolError(CloseCode.PROTOCOL_ERROR, "reserved bits set, no extension negotiated")
    opcode = first & 0x0F
    if opcode not in Opcode._value2member_map_:
        raise ProtocolError(CloseCode.PROTOCOL_ERROR, f"unknown opcode {opcode:#x}")
    masked = bool(second & 0x80)
    length = second & 0x7F
    if length == 126:
        (length,) = struct.unpack("!H", await reader.readexactly(2))
    elif length == 127:
        (length,) = struct.unpack("!Q", await reader.readexactly(8))
        if length >> 63:
            raise ProtocolError(CloseCode.PROTOCOL_ERROR, "64-bit length with its top bit set")
    if opcode >= Opcode.CLOSE:
        if not fin:
            raise ProtocolError(CloseCode.PROTOCOL_ERROR, "fragmented control frame")
        if length > 125:
            raise ProtocolError(CloseCode.PROTOCOL_ERROR, "control frame longer than 125 bytes")
    # Checked on the header, before reading: a peer must not make us buffer 2**63 bytes.
    if max_size is not None and length > max_size:
        raise ProtocolError(CloseCode.MESSAGE_TOO_BIG, f"message longer than {max_size} bytes")
    key = await reader.readexactly(4) if masked else None
    payload = await reader.readexactly(length)
    if key is not None:
        payload = apply_mask(payload, key)
    return Frame(opcode, payload, fin, masked)


def _http_response(status: str, extra_headers: str = "", body: str = "") -> bytes:
    data = body.encode()
    return (
        f"HTTP/1.1 {status}\r\n{extra_headers}Content-Type: text/plain\r\n"
        f"Content-Length: {len(data)}\r\nConnection: close\r\n\r\n"
    ).encode() + data


async def handshake(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
    """Read the HTTP/1.1 Upgrade request and answer it (§4.2); True once 101 was sent.

    Answers 400 Bad Request to a request that is not a valid WebSocket upgrade and 426 Upgrade
    Required (with `Sec-WebSocket-Version: 13`) to an unsupported version; False then.
    """
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except (asyncio.IncompleteReadError, asyncio.LimitOverrunError):
        writer.write(_http_response("400 Bad Request", body="incomplete or oversized request\n"))
        return False
    request_line, *lines = head.decode("latin-1").split("\r\n")
    headers: dict[str, str] = {}
    for line in filter(None, lines):
        name, _, value = line.partition(":")
        # Header names are case-insensitive; a repeated header is a comma-separated list.
        key = name.strip().lower()
        headers[key] = f"{headers[key]}, {value.strip()}" if key in headers else value.strip()

    def tokens(name: str) -> set[str]:
        # Connection is a list ("keep-alive, Upgrade" from Firefox); tokens are case-insensitive.
        return {t.strip().lower() for t in headers.get(name, "").split(",")}

    problem = ""
    method, _, rest = request_line.partition(" ")
    if method != "GET" or not rest.endswith(" HTTP/1.1"):
        problem = "a WebSocket upgrade is a GET over HTTP/1.1"
    elif "websocket" not in tokens("upgrade"):
        problem = "missing Upgrade: websocket"
    elif "upgrade" not in tokens("connection"):
        problem = "missing Connection: Upgrade"
    else:
        key = headers.get("sec-websocket-key", "")
        try:
            valid_key = len(base64.b64decode(key, validate=True)) == 16
        except binascii.Error:
            valid_key = False
        if not valid_key:
            problem = "Sec-WebSocket-Key must be the base64 of 16 bytes"
    if problem:
        writer.write(_http_response("400 Bad Request", body=problem + "\n"))
        return False
    if headers.get("sec-websocket-version") != "13":
        # §4.4: tell the client which version this server speaks.
        writer.write(_http_response("426 Upgrade Required", "Sec-WebSocket-Version: 13\r\n", "only version 13\n"))
        return False
    writer.write(
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Accept: " + accept_key(key).encode() + b"\r\n\r\n"
    )
    await writer.drain()
    return True


class WebSocketConnection:
    """The server's end of one WebSocket connection, after the handshake."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, max_size: int = 2**20) -> None:
        self._reader = reader
        self._writer = writer
        self.max_size = max_size
        self.close_code: int | None = None  # set once the connection is closed
        self.close_reason = ""
        self._close_sent = False

    async def recv(self) -> str | bytes:
        """The next whole message: str for text, bytes for binary.

        Reassembles fragments, answers pings with pongs, checks that text is UTF-8, and raises
        ConnectionClosed once the connection is closed (by the peer, or because the peer broke
        the protocol: 1002, 1007, 1009).
        """
        if self.close_code is not None:
            raise ConnectionClosed(self.close_code, self.close_reason)
        try:
            return await self._recv_message()
        except ProtocolError as exc:
            await self._fail(exc.code, exc.reason)
        except (asyncio.IncompleteReadError, ConnectionError):
            # TCP ended without a closing handshake: 1006, which is never sent on the wire.
            self._finish(1006, "connection lost")
        raise self._closed()

    async def _recv_message(self) -> str | bytes:
        kind: int | None = None  # the opcode of the message being reassembled
        parts: list[bytes] = []
        size = 0
        while True:
            # Limit each frame to what is left of max_size: the total of the fragments counts.
            frame = await read_frame(self._reader, self.max_size - size)
            if not frame.masked:
                # §5.1: a server MUST close on an unmasked client frame.
                raise ProtocolError(CloseCode.PROTOCOL_ERROR, "client frames must be masked")
            if frame.opcode == Opcode.PING:
                # Control frames may come between fragments; answer at once, same payload.
                await self._write(Opcode.PING + 1, frame.payload)
            elif frame.opcode == Opcode.PONG:
                pass  # an answer to a ping we didn't send: ignore it (§5.5.3)
            elif frame.opcode == Opcode.CLOSE:
                await self._answer_close(frame.payload)
                raise self._closed()
            elif frame.opcode == Opcode.CONTINUATION and kind is None:
                raise ProtocolError(CloseCode.PROTOCOL_ERROR, "continuation with no message")
            elif frame.opcode != Opcode.CONTINUATION and kind is not None:
                raise ProtocolError(CloseCode.PROTOCOL_ERROR, "new message inside a fragmented one")
            else:
                kind = frame.opcode if kind is None else kind
                parts.append(frame.payload)
                size += len(frame.payload)
                if frame.fin:
                    # Each fragment is a piece of one message: a character may straddle two, so
                    # decode only the whole.
                    data = b"".join(parts)
                    if kind == Opcode.BINARY:
                        return data
                    try:
                        return data.decode("utf-8")
                    except UnicodeDecodeError:
                        raise ProtocolError(CloseCode.INVALID_DATA, "text is not UTF-8") from None

    async def send(self, message: str | bytes) -> None:
        """Send one message, as a single unmasked frame: text for str, binary for bytes."""
        if self._close_sent or self.close_code is not None:
            raise self._closed()
        if isinstance(message, str):
            await self._write(Opcode.TEXT, message.encode("utf-8"))
        else:
            await self._write(Opcode.BINARY, bytes(message))

    async def close(self, code: int = CloseCode.NORMAL, reason: str = "") -> None:
        """Start the closing handshake: send a Close frame, wait for the peer's, close TCP.

        Does nothing if the connection is already closed.
        """
        if self.close_code is not None or self._close_sent:
            return
        await self._send_close(code, reason)
        # Messages still in flight are dropped; the peer answers our Close with its own.
        try:
            async with asyncio.timeout(CLOSE_TIMEOUT):
                while True:
                    frame = await read_frame(self._reader)
                    if frame.opcode == Opcode.CLOSE:
                        break
        except (ProtocolError, asyncio.IncompleteReadError, ConnectionError, TimeoutError):
            pass
        self._finish(code, reason)
        await self._linger()

    async def _answer_close(self, payload: bytes) -> None:
        """The peer started the closing handshake: echo its code, then close TCP (§5.5.1)."""
        if len(payload) == 1:
            raise ProtocolError(CloseCode.PROTOCOL_ERROR, "close payload of 1 byte")
        code = struct.unpack("!H", payload[:2])[0] if payload else None
        # §7.4: the codes defined for the wire (1012-1014 registered with IANA since), and
        # 3000-4999 for libraries and applications; 1005, 1006 and 1015 are never sent.
        if code is not None and not ((1000 <= code <= 1014 and code not in (1004, 1005, 1006)) or 3000 <= code <= 4999):
            raise ProtocolError(CloseCode.PROTOCOL_ERROR, f"invalid close code {code}")
        try:
            reason = payload[2:].decode("utf-8")
        except UnicodeDecodeError:
            raise ProtocolError(CloseCode.INVALID_DATA, "close reason is not UTF-8") from None
        if not self._close_sent:
            with contextlib.suppress(ConnectionError):
                await self._write(Opcode.CLOSE, payload[:2])
        # 1005: the peer's Close had no status code (the code itself is never sent).
        self._finish(code or 1005, reason)
        await self._linger()

    async def _fail(self, code: int, reason: str) -> None:
        """Fail the connection (§7.1.7): send Close with `code`, then close TCP."""
        if not self._close_sent:
            with contextlib.suppress(ConnectionError):
                await self._send_close(code, reason)
        self._finish(code, reason)
        await self._linger()

    async def _send_close(self, code: int, reason: str) -> None:
        self._close_sent = True
        # §5.5.1: a 2-byte big-endian status code, then a UTF-8 reason (125 bytes in all).
        await self._write(Opcode.CLOSE, struct.pack("!H", code) + reason.encode("utf-8")[:123])

    def _closed(self) -> ConnectionClosed:
        """What recv() and send() raise once closed (1006 while our own Close is on its way)."""
        return ConnectionClosed(self.close_code or 1006, self.close_reason)

    def _finish(self, code: int, reason: str) -> None:
        if self.close_code is None:
            self.close_code, self.close_reason = code, reason

    async def _linger(self) -> None:
        """Close TCP the polite way: our FIN first (§7.1.1), then read what is left until theirs.

        Closing a socket that still has unread data makes the kernel send a reset, which can
        destroy our Close frame before the peer reads it.
        """
        with contextlib.suppress(OSError, RuntimeError, TimeoutError):
            if self._writer.can_write_eof():
                self._writer.write_eof()
            async with asyncio.timeout(CLOSE_TIMEOUT):
                while await self._reader.read(65536):
                    pass
        self._writer.close()  # serve() waits for it to be closed

    async def _write(self, opcode: int, payload: bytes) -> None:
        # One write() per frame, so a pong sent from recv() never lands inside another frame.
        # Server frames are never masked (§5.1).
        self._writer.write(encode_frame(opcode, payload))
        await self._writer.drain()


Handler = Callable[[WebSocketConnection], Awaitable[None]]


async def serve(handler: Handler, host: str, port: int, *, max_size: int = 2**20) -> asyncio.Server:
    """Start a WebSocket server on host:port; `handler(connection)` runs once per connection.

    When the handler returns the server closes with 1000; if it raises, with 1011. The caller
    closes the returned asyncio.Server (port 0 picks a free port: see server.sockets).
    """

    async def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            if not await handshake(reader, writer):
                return
            connection = WebSocketConnection(reader, writer, max_size)
            try:
                await handler(connection)
            except ConnectionClosed:
                return
            except Exception:
                await connection.close(CloseCode.INTERNAL_ERROR, "handler failed")
                return
            await connection.close(CloseCode.NORMAL)
        finally:
            # Whatever happened (a cancelled task too), the socket is closed.
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()

    return await asyncio.start_server(on_connect, host, port)
