"""An RFC 6455 WebSocket server on asyncio streams: the upgrade handshake, framing, the closing handshake."""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import enum
import hashlib
import struct
from collections.abc import Awaitable, Callable, Iterator
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


# Design: no readexactly anywhere. The frame layout lives in a sans-I/O parser over a bytearray
# (parse_frame: a Frame and how many bytes it used, or None while the buffer holds less). The
# connection feeds its own buffer with read(65536) chunks; read_frame feeds a local one with
# read(n) of exactly what the parser still lacks, so it never takes bytes of the next frame.
# The handshake reads the request line by line with readline().

_MAX_HEADER_LINES = 100


def apply_mask(data: bytes, mask: bytes) -> bytes:
    """XOR `data` with the 4-byte `mask` repeated (§5.3); masking twice gives `data` back."""
    n = len(data)
    # 8 bytes at a time would need a loop; one little-endian integer of the whole thing does not.
    key = (mask * (n // 4 + 1))[:n]
    return (int.from_bytes(data, "little") ^ int.from_bytes(key, "little")).to_bytes(n, "little")


def encode_frame(opcode: int, payload: bytes, fin: bool = True, mask: bytes | None = None) -> bytes:
    """The bytes of one frame (§5.2): the header, then the payload, masked if `mask` is given."""
    if opcode >= Opcode.CLOSE and not (fin and len(payload) <= 125):
        raise ValueError("control frames are at most 125 bytes and never fragmented")
    b0 = opcode | (fin << 7)
    m = 0 if mask is None else 0x80
    n = len(payload)
    for limit, code, fmt in ((125, n, ""), (0xFFFF, 126, "H"), (2**64 - 1, 127, "Q")):
        if n <= limit:
            header = struct.pack("!BB" + fmt, b0, m | code, *((n,) if fmt else ()))
            break
    return header + (payload if mask is None else mask + apply_mask(payload, mask))


def parse_frame(buffer: bytes | bytearray, max_size: int | None = None) -> tuple[Frame, int] | int:
    """Parse one frame at the start of `buffer`: (frame, bytes used), or how many bytes the
    whole frame needs at least when the buffer holds fewer. Raises ProtocolError on the header."""
    if len(buffer) < 2:
        return 2
    b0, b1 = buffer[0], buffer[1]
    if b0 & 0x70:
        raise ProtocolError(CloseCode.PROTOCOL_ERROR, "RSV bits without an extension")
    opcode, fin = b0 & 0x0F, bool(b0 >> 7)
    if opcode not in set(Opcode):
        raise ProtocolError(CloseCode.PROTOCOL_ERROR, "reserved opcode")
    if opcode >= Opcode.CLOSE and (not fin or b1 & 0x7F > 125):
        raise ProtocolError(CloseCode.PROTOCOL_ERROR, "control frame fragmented or over 125 bytes")
    extra = {126: 2, 127: 8}.get(b1 & 0x7F, 0)
    if len(buffer) < 2 + extra:
        return 2 + extra
    length = int.from_bytes(buffer[2 : 2 + extra], "big") if extra else b1 & 0x7F
    if length > 2**63 - 1:
        raise ProtocolError(CloseCode.PROTOCOL_ERROR, "64-bit length with its top bit set")
    if max_size is not None and length > max_size:
        raise ProtocolError(CloseCode.MESSAGE_TOO_BIG, "frame over max_size")
    start = 2 + extra + (4 if b1 & 0x80 else 0)
    end = start + length
    if len(buffer) < end:
        return end
    payload = bytes(buffer[start:end])
    if b1 & 0x80:
        payload = apply_mask(payload, bytes(buffer[start - 4 : start]))
    return Frame(opcode, payload, fin, bool(b1 & 0x80)), end


async def read_frame(reader: asyncio.StreamReader, max_size: int | None = None) -> Frame:
    """Read one frame from `reader`, waiting for as many bytes as it takes."""
    buffer = bytearray()
    while True:
        result = parse_frame(buffer, max_size)
        if not isinstance(result, int):
            return result[0]
        while len(buffer) < result:
            chunk = await reader.read(result - len(buffer))  # never more than this frame needs
            if not chunk:
                raise asyncio.IncompleteReadError(bytes(buffer), result)
            buffer += chunk


def _header_tokens(fields: list[tuple[str, str]], name: str) -> Iterator[str]:
    for key, value in fields:
        if key == name:
            yield from (token.strip().lower() for token in value.split(","))


async def handshake(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
    """Read the HTTP/1.1 Upgrade request and answer it (§4.2); True once 101 was sent."""
    lines: list[str] = []
    complete = False
    with contextlib.suppress(ValueError):  # a line over the reader's limit
        while len(lines) < _MAX_HEADER_LINES:
            line = await reader.readline()
            if not line.endswith(b"\n"):
                break  # EOF before the blank line
            text = line.decode("latin-1").rstrip("\r\n")
            if not text:
                complete = True
                break
            lines.append(text)
    if not (complete and lines):
        writer.write(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
        return False
    fields = [(k.strip().lower(), v.strip()) for k, _, v in (line.partition(":") for line in lines[1:])]
    keys = [v for k, v in fields if k == "sec-websocket-key"]
    try:
        key_ok = len(keys) == 1 and len(binascii.a2b_base64(keys[0], strict_mode=True)) == 16
    except binascii.Error:
        key_ok = False
    method, _, rest = lines[0].partition(" ")
    valid = (
        method == "GET"
        and rest.rpartition(" ")[2] == "HTTP/1.1"
        and "websocket" in _header_tokens(fields, "upgrade")
        and "upgrade" in _header_tokens(fields, "connection")
        and key_ok
    )
    if not valid:
        writer.write(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
        return False
    if list(_header_tokens(fields, "sec-websocket-version")) != ["13"]:
        writer.write(b"HTTP/1.1 426 Upgrade Required\r\nSec-WebSocket-Version: 13\r\nContent-Length: 0\r\n\r\n")
        return False
    writer.write(
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Accept: %s\r\n\r\n" % accept_key(keys[0]).encode()
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
        self._buffer = bytearray()
        self._state = "open"  # open -> closing (our Close sent) -> closed

    async def _next_frame(self, max_size: int | None) -> Frame:
        while True:
            result = parse_frame(self._buffer, max_size)
            if not isinstance(result, int):
                frame, used = result
                del self._buffer[:used]
                return frame
            chunk = await self._reader.read(65536)
            if not chunk:
                raise asyncio.IncompleteReadError(bytes(self._buffer), None)
            self._buffer += chunk

    async def recv(self) -> str | bytes:
        """The next whole message: str for text, bytes for binary."""
        while self.close_code is None:
            try:
                message = await self._message()
            except ProtocolError as exc:
                if self._state == "open":
                    with contextlib.suppress(ConnectionError):
                        await self._send_close(exc.code, exc.reason)
                await self._terminate(exc.code, exc.reason)
            except (asyncio.IncompleteReadError, ConnectionError):
                await self._terminate(1006, "no Close frame")
            else:
                if message is not None:
                    return message
        raise ConnectionClosed(self.close_code, self.close_reason)

    async def _message(self) -> str | bytes | None:
        """One whole message, or None once the peer's Close was handled."""
        first: Frame | None = None
        data = bytearray()
        while True:
            # Control frames (at most 125 bytes) may come between fragments: allow them even
            # when the message has used up max_size, and check the data frames' total below.
            frame = await self._next_frame(max(self.max_size - len(data), 125))
            if not frame.masked:
                raise ProtocolError(CloseCode.PROTOCOL_ERROR, "unmasked frame from a client")
            match frame.opcode:
                case Opcode.PING:
                    await self._send(Opcode.PONG, frame.payload)
                    continue
                case Opcode.PONG:
                    continue
                case Opcode.CLOSE:
                    await self._peer_close(frame.payload)
                    return None
            if (first is None) != (frame.opcode != Opcode.CONTINUATION):
                raise ProtocolError(CloseCode.PROTOCOL_ERROR, "fragments out of order")
            first = first or frame
            data += frame.payload
            if len(data) > self.max_size:
                raise ProtocolError(CloseCode.MESSAGE_TOO_BIG, "message over max_size")
            if frame.fin:
                break
        if first.opcode == Opcode.BINARY:
            return bytes(data)
        try:
            return data.decode()
        except UnicodeDecodeError as exc:
            raise ProtocolError(CloseCode.INVALID_DATA, str(exc)) from None

    async def _peer_close(self, payload: bytes) -> None:
        if len(payload) == 1:
            raise ProtocolError(CloseCode.PROTOCOL_ERROR, "close payload of one byte")
        if not payload:
            code, reason = 1005, ""
        else:
            (code,) = struct.unpack_from("!H", payload)
            if code < 1000 or 1015 <= code < 3000 or code >= 5000 or code in (1004, 1005, 1006):
                raise ProtocolError(CloseCode.PROTOCOL_ERROR, "close code not allowed on the wire")
            try:
                reason = payload[2:].decode()
            except UnicodeDecodeError:
                raise ProtocolError(CloseCode.INVALID_DATA, "close reason not UTF-8") from None
        if self._state == "open":
            self._state = "closing"
            with contextlib.suppress(ConnectionError):
                await self._send(Opcode.CLOSE, payload[:2])
        await self._terminate(code, reason)

    async def send(self, message: str | bytes) -> None:
        """Send one message, as a single unmasked frame: text for str, binary for bytes."""
        if self._state != "open":
            raise ConnectionClosed(self.close_code or 1006, self.close_reason)
        text = isinstance(message, str)
        await self._send(Opcode.TEXT if text else Opcode.BINARY, message.encode() if text else message)

    async def close(self, code: int = CloseCode.NORMAL, reason: str = "") -> None:
        """Start the closing handshake: send a Close frame, wait for the peer's, close TCP."""
        if self._state != "open":
            return
        await self._send_close(code, reason)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + CLOSE_TIMEOUT
        with contextlib.suppress(ProtocolError, asyncio.IncompleteReadError, ConnectionError, TimeoutError):
            while True:  # skip whatever the peer sent before its Close
                frame = await asyncio.wait_for(self._next_frame(None), max(0.0, deadline - loop.time()))
                if frame.opcode == Opcode.CLOSE:
                    break
        await self._terminate(code, reason)

    async def _send_close(self, code: int, reason: str) -> None:
        self._state = "closing"
        await self._send(Opcode.CLOSE, code.to_bytes(2, "big") + reason.encode()[:123])

    async def _terminate(self, code: int, reason: str) -> None:
        if self.close_code is None:
            self.close_code, self.close_reason = code, reason
        self._state = "closed"
        # Half-close, wait for the peer's FIN (discarding what it sends), then close.
        with contextlib.suppress(OSError, RuntimeError):
            self._writer.write_eof()
        with contextlib.suppress(OSError, TimeoutError):
            async with asyncio.timeout(CLOSE_TIMEOUT):
                while await self._reader.read(65536):
                    pass
        self._writer.close()
        with contextlib.suppress(OSError):
            await self._writer.wait_closed()

    async def _send(self, opcode: int, payload: bytes) -> None:
        self._writer.write(encode_frame(opcode, payload))  # the whole frame in one write()
        await self._writer.drain()


Handler = Callable[[WebSocketConnection], Awaitable[None]]


async def serve(handler: Handler, host: str, port: int, *, max_size: int = 2**20) -> asyncio.Server:
    """Start a WebSocket server on host:port; `handler(connection)` runs once per connection."""

    async def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            if await handshake(reader, writer):
                connection = WebSocketConnection(reader, writer, max_size)
                code = CloseCode.NORMAL
                try:
                    await handler(connection)
                except ConnectionClosed:
                    pass
                except Exception:
                    code = CloseCode.INTERNAL_ERROR
                await connection.close(code)
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()

    return await asyncio.start_server(on_connect, host, port)
