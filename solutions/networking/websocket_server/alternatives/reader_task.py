"""An RFC 6455 WebSocket server on asyncio streams: the upgrade handshake, framing, the closing handshake."""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import enum
import hashlib
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


# Design: a reader task per connection owns the socket's read side. It answers pings, notices the
# peer's Close even while the handler only sends, and hands whole messages to recv() through a
# queue. The codec uses int.from_bytes / to_bytes instead of struct, and masks with 256-entry
# translation tables, one per key byte, on every fourth byte (no big-integer XOR).

_XOR_TABLES = [bytes(b ^ k for b in range(256)) for k in range(256)]
_VALID_CLOSE_CODES = frozenset(range(1000, 1015)) - {1004, 1005, 1006}


def accept_key(client_key: str) -> str:
    """The Sec-WebSocket-Accept value for a Sec-WebSocket-Key (§4.2.2, step 5.4)."""
    return base64.b64encode(hashlib.sha1(client_key.encode("ascii") + GUID.encode("ascii")).digest()).decode()


def apply_mask(data: bytes, mask: bytes) -> bytes:
    """XOR `data` with the 4-byte `mask` repeated (§5.3); masking twice gives `data` back."""
    out = bytearray(data)
    for i in range(4):
        out[i::4] = bytes(data[i::4]).translate(_XOR_TABLES[mask[i]])
    return bytes(out)


def encode_frame(opcode: int, payload: bytes, fin: bool = True, mask: bytes | None = None) -> bytes:
    """The bytes of one frame (§5.2): the header, then the payload, masked if `mask` is given."""
    control = opcode & 0x8
    if control and len(payload) > 125:
        raise ValueError(f"a control frame carries at most 125 bytes, not {len(payload)}")
    if control and not fin:
        raise ValueError("a control frame cannot be fragmented")
    n = len(payload)
    mask_bit = 0 if mask is None else 0x80
    head = bytearray([(0x80 if fin else 0x00) | opcode])
    if n < 126:
        head.append(mask_bit | n)
    elif n < 1 << 16:
        head.append(mask_bit | 126)
        head += n.to_bytes(2, "big")
    else:
        head.append(mask_bit | 127)
        head += n.to_bytes(8, "big")
    if mask is None:
        return bytes(head) + payload
    return bytes(head) + mask + apply_mask(payload, mask)


async def read_frame(reader: asyncio.StreamReader, max_size: int | None = None) -> Frame:
    """Read one frame from `reader`, waiting for as many bytes as it takes."""
    head = await reader.readexactly(2)
    if head[0] & 0b0111_0000:
        raise ProtocolError(CloseCode.PROTOCOL_ERROR, "RSV bit set")
    opcode = head[0] & 0x0F
    if opcode not in (0x0, 0x1, 0x2, 0x8, 0x9, 0xA):
        raise ProtocolError(CloseCode.PROTOCOL_ERROR, "reserved opcode")
    fin = head[0] >= 0x80
    masked = head[1] >= 0x80
    length = head[1] & 0x7F
    if opcode & 0x8 and (length > 125 or not fin):
        raise ProtocolError(CloseCode.PROTOCOL_ERROR, "bad control frame")
    if length > 125:
        length = int.from_bytes(await reader.readexactly(2 if length == 126 else 8), "big")
        if length >= 1 << 63:
            raise ProtocolError(CloseCode.PROTOCOL_ERROR, "64-bit length with the top bit set")
    if max_size is not None and length > max_size:
        raise ProtocolError(CloseCode.MESSAGE_TOO_BIG, "frame too big")
    key = await reader.readexactly(4) if masked else b""
    payload = await reader.readexactly(length)
    return Frame(opcode, apply_mask(payload, key) if masked else payload, fin, masked)


async def handshake(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
    """Read the HTTP/1.1 Upgrade request and answer it (§4.2); True once 101 was sent."""

    def refuse(status: str, extra: str = "") -> bool:
        writer.write(f"HTTP/1.1 {status}\r\n{extra}Content-Length: 0\r\nConnection: close\r\n\r\n".encode())
        return False

    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except (asyncio.IncompleteReadError, asyncio.LimitOverrunError):
        return refuse("400 Bad Request")
    lines = head.decode("latin-1").split("\r\n")
    fields: dict[str, list[str]] = {}
    for line in lines[1:]:
        if ":" in line:
            name, value = line.split(":", 1)
            fields.setdefault(name.strip().lower(), []).extend(v.strip() for v in value.split(","))

    def has(name: str, token: str) -> bool:
        return token in (v.lower() for v in fields.get(name, []))

    parts = lines[0].split(" ")
    key = ",".join(fields.get("sec-websocket-key", []))
    try:
        key_ok = len(base64.b64decode(key.encode("ascii"), validate=True)) == 16
    except (binascii.Error, UnicodeEncodeError):
        key_ok = False
    if len(parts) != 3 or parts[0] != "GET" or parts[2] != "HTTP/1.1":
        return refuse("400 Bad Request")
    if not (has("upgrade", "websocket") and has("connection", "upgrade") and key_ok):
        return refuse("400 Bad Request")
    if fields.get("sec-websocket-version") != ["13"]:
        return refuse("426 Upgrade Required", "Sec-WebSocket-Version: 13\r\n")
    writer.write(
        (
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Accept: {accept_key(key)}\r\n\r\n"
        ).encode()
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
        self._messages: asyncio.Queue[str | bytes | None] = asyncio.Queue()
        self._close_sent = False
        self._peer_closed = asyncio.Event()
        self._write_lock = asyncio.Lock()
        self._reading = asyncio.get_running_loop().create_task(self._read_loop())

    async def recv(self) -> str | bytes:
        """The next whole message: str for text, bytes for binary."""
        message = await self._messages.get()
        if message is None:
            self._messages.put_nowait(None)  # every later recv() sees the end too
            raise ConnectionClosed(self.close_code or 1006, self.close_reason)
        return message

    async def send(self, message: str | bytes) -> None:
        """Send one message, as a single unmasked frame: text for str, binary for bytes."""
        if self._close_sent or self.close_code is not None:
            raise ConnectionClosed(self.close_code or 1006, self.close_reason)
        if isinstance(message, str):
            await self._write(encode_frame(Opcode.TEXT, message.encode()))
        else:
            await self._write(encode_frame(Opcode.BINARY, message))

    async def close(self, code: int = CloseCode.NORMAL, reason: str = "") -> None:
        """Start the closing handshake: send a Close frame, wait for the peer's, close TCP."""
        if self._close_sent or self.close_code is not None:
            return
        await self._send_close(code, reason)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._peer_closed.wait(), CLOSE_TIMEOUT)
        self._end(code, reason)
        await self._shutdown()

    async def _read_loop(self) -> None:
        try:
            await self._read_messages()
        except ProtocolError as exc:
            if not self._close_sent:
                with contextlib.suppress(ConnectionError):
                    await self._send_close(exc.code, exc.reason)
            self._end(exc.code, exc.reason)
        except (asyncio.IncompleteReadError, ConnectionError):
            self._end(1006, "connection lost")
        finally:
            self._peer_closed.set()
        await self._shutdown()

    async def _read_messages(self) -> None:
        parts: list[bytes] = []
        kind: int | None = None
        while True:
            budget = self.max_size - sum(map(len, parts))
            frame = await read_frame(self._reader, max(budget, 125))
            if not frame.masked:
                raise ProtocolError(CloseCode.PROTOCOL_ERROR, "unmasked client frame")
            if frame.opcode == Opcode.CLOSE:
                await self._on_close(frame.payload)
                return
            if frame.opcode == Opcode.PING:
                await self._write(encode_frame(Opcode.PONG, frame.payload))
                continue
            if frame.opcode == Opcode.PONG:
                continue
            if (frame.opcode == Opcode.CONTINUATION) != (kind is not None):
                raise ProtocolError(CloseCode.PROTOCOL_ERROR, "bad fragmentation")
            if len(frame.payload) > budget:
                raise ProtocolError(CloseCode.MESSAGE_TOO_BIG, "message too big")
            kind = kind if kind is not None else frame.opcode
            parts.append(frame.payload)
            if not frame.fin:
                continue
            data, parts, opcode, kind = b"".join(parts), [], kind, None
            if self._close_sent:
                continue  # we are closing: messages in flight are dropped
            if opcode == Opcode.TEXT:
                try:
                    self._messages.put_nowait(data.decode("utf-8"))
                except UnicodeDecodeError:
                    raise ProtocolError(CloseCode.INVALID_DATA, "invalid UTF-8") from None
            else:
                self._messages.put_nowait(data)

    async def _on_close(self, payload: bytes) -> None:
        if len(payload) == 1:
            raise ProtocolError(CloseCode.PROTOCOL_ERROR, "1-byte close payload")
        code = int.from_bytes(payload[:2], "big") if payload else 1005
        if payload and not (code in _VALID_CLOSE_CODES or 3000 <= code < 5000):
            raise ProtocolError(CloseCode.PROTOCOL_ERROR, "invalid close code")
        try:
            reason = payload[2:].decode("utf-8")
        except UnicodeDecodeError:
            raise ProtocolError(CloseCode.INVALID_DATA, "close reason not UTF-8") from None
        if not self._close_sent:
            self._close_sent = True
            with contextlib.suppress(ConnectionError):
                await self._write(encode_frame(Opcode.CLOSE, payload[:2]))
        self._end(code, reason)

    async def _send_close(self, code: int, reason: str) -> None:
        self._close_sent = True
        await self._write(encode_frame(Opcode.CLOSE, code.to_bytes(2, "big") + reason.encode()[:123]))

    def _end(self, code: int, reason: str) -> None:
        if self.close_code is None:
            self.close_code, self.close_reason = code, reason
        self._messages.put_nowait(None)

    async def _shutdown(self) -> None:
        # Our FIN first, then drain what the peer still sends until its FIN, so that closing
        # never turns into a reset that could destroy our Close frame.
        with contextlib.suppress(OSError, RuntimeError):
            if self._writer.can_write_eof() and not self._writer.is_closing():
                self._writer.write_eof()
        if asyncio.current_task() is not self._reading:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(self._reading), CLOSE_TIMEOUT)
        else:
            with contextlib.suppress(OSError, TimeoutError, asyncio.IncompleteReadError):
                async with asyncio.timeout(CLOSE_TIMEOUT):
                    while await self._reader.read(65536):
                        pass
        self._writer.close()
        with contextlib.suppress(OSError):
            await self._writer.wait_closed()

    async def _write(self, data: bytes) -> None:
        # The reader task's pongs and the handler's messages share the socket: one frame at a time.
        async with self._write_lock:
            self._writer.write(data)
            await self._writer.drain()


Handler = Callable[[WebSocketConnection], Awaitable[None]]


async def serve(handler: Handler, host: str, port: int, *, max_size: int = 2**20) -> asyncio.Server:
    """Start a WebSocket server on host:port; `handler(connection)` runs once per connection."""

    async def session(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connection = None
        try:
            if await handshake(reader, writer):
                connection = WebSocketConnection(reader, writer, max_size)
                try:
                    await handler(connection)
                except ConnectionClosed:
                    pass
                except Exception:
                    await connection.close(CloseCode.INTERNAL_ERROR, "handler error")
                else:
                    await connection.close()
        finally:
            if connection is not None:
                connection._reading.cancel()
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()

    return await asyncio.start_server(session, host, port)
