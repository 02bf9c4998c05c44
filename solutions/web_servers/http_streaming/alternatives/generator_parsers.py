"""HTTP streaming formats, another design: parsers as generators that are sent bytes (or text)
and pull what they need, the handler closing its source with contextlib.aclosing."""

from __future__ import annotations

import contextlib
import re
import string
from collections.abc import AsyncIterator, Awaitable, Callable, Generator
from dataclasses import dataclass

from aiohttp import web

# --- chunked transfer coding --------------------------------------------------------------------


def encode_chunk(data: bytes) -> bytes:
    return f"{len(data):x}\r\n".encode() + data + b"\r\n" if data else b""


def last_chunk(trailers: list[tuple[str, str]] | None = None) -> bytes:
    out = bytearray(b"0\r\n")
    for name, value in trailers or ():
        out += name.encode("latin-1") + b": " + value.encode("latin-1") + b"\r\n"
    return bytes(out + b"\r\n")


_HEX = set(string.hexdigits.encode())
_FIELD_NAME = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")

# What a generator step needs: ("line", None), ("bytes", n) for up to n body bytes, ("exact", n).
Need = tuple[str, int]


class ChunkedDecoder:
    def __init__(self, max_line: int = 4096) -> None:
        self.max_line = max_line
        self.finished = False
        self.trailers: list[tuple[str, str]] = []
        self._buf = b""
        self._out: list[bytes] = []
        self._steps = self._body()
        self._need: Need = next(self._steps)

    def feed(self, data: bytes) -> list[bytes]:
        if self.finished:
            if data:
                raise ValueError("bytes after the end of the chunked body")
            return []
        self._buf += data
        self._out = []
        while not self.finished:
            kind, n = self._need
            if kind == "line":
                end = self._buf.find(b"\r\n")
                if end < 0:
                    if len(self._buf) - self._buf.endswith(b"\r") > self.max_line:  # a CR may be half a CRLF
                        raise ValueError("line too long")
                    break
                if end > self.max_line:
                    raise ValueError("line too long")
                value, self._buf = self._buf[:end], self._buf[end + 2 :]
            elif kind == "bytes":
                if not self._buf:
                    break
                value, self._buf = self._buf[:n], self._buf[n:]
            else:  # exact: the CRLF after chunk data, checked byte by byte as it comes
                if self._buf[:n] != b"\r\n"[: len(self._buf[:n])]:
                    raise ValueError("chunk data not followed by CRLF")
                if len(self._buf) < n:
                    break
                value, self._buf = self._buf[:n], self._buf[n:]
            try:
                self._need = self._steps.send(value)
            except StopIteration:
                self.finished = True
                if self._buf:
                    raise ValueError("bytes after the end of the chunked body") from None
        return self._out

    def _body(self) -> Generator[Need, bytes, None]:
        while True:
            line = yield ("line", 0)
            size = line.partition(b";")[0].rstrip(b" \t")
            if not size or not _HEX.issuperset(size):
                raise ValueError(f"bad chunk size {line!r}")
            left = int(size, 16)
            if left == 0:
                break
            while left:
                piece = yield ("bytes", left)
                self._out.append(piece)
                left -= len(piece)
            yield ("exact", 2)
        while line := (yield ("line", 0)):
            name, colon, value = line.partition(b":")
            if not colon or not _FIELD_NAME.fullmatch(name):
                raise ValueError(f"bad trailer line {line!r}")
            self.trailers.append((name.decode().lower(), value.strip(b" \t").decode("latin-1")))


# --- Server-Sent Events --------------------------------------------------------------------------


@dataclass(frozen=True)
class Event:
    data: str
    type: str = "message"
    last_event_id: str = ""


def format_event(data: str, event: str | None = None, id: str | None = None, retry: int | None = None) -> str:
    if any(v is not None and ("\r" in v or "\n" in v) for v in (event, id)):
        raise ValueError("event and id must be one line")
    if id is not None and "\x00" in id:
        raise ValueError("id must not contain NUL")
    if retry is not None and retry < 0:
        raise ValueError("retry must not be negative")
    out = ""
    for name, value in (("event", event), ("id", id), ("retry", retry)):
        if value is not None:
            out += f"{name}: {value}\n"
    return out + "".join(f"data: {line}\n" for line in re.split("\r\n|\r|\n", data)) + "\n"


class SSEParser:
    def __init__(self) -> None:
        self.last_event_id = ""
        self.retry: int | None = None
        self._events: list[Event] = []
        self._lines = self._interpret()
        next(self._lines)
        self._text = ""
        self._first = True
        self._after_cr = False  # the last line end seen was a CR at the end of a feed

    def feed(self, text: str) -> list[Event]:
        if not text:
            return []
        if self._first:
            self._first = False
            text = text.removeprefix("\ufeff")
        if self._after_cr:
            self._after_cr = False
            text = text.removeprefix("\n")  # the LF of a CRLF split across feeds
        self._text += text
        self._events = []
        while match := _LINE_END.search(self._text):
            line, self._text = self._text[: match.start()], self._text[match.end() :]
            self._after_cr = match.group() == "\r" and not self._text
            self._lines.send(line)
        return self._events

    def _interpret(self) -> Generator[None, str, None]:
        data: list[str] = []
        kind, ident = "", ""
        while True:
            line = yield
            if not line:
                self.last_event_id = ident
                if data:
                    self._events.append(Event("\n".join(data), kind or "message", ident))
                data, kind = [], ""
            elif line[0] != ":":
                name, _, value = line.partition(":")
                value = value[1:] if value[:1] == " " else value
                if name == "data":
                    data.append(value)
                elif name == "event":
                    kind = value
                elif name == "id" and "\x00" not in value:
                    ident = value
                elif name == "retry" and value.isascii() and value.isdigit():
                    self.retry = int(value)


_LINE_END = re.compile("\r\n|\r|\n")


# --- the endpoint --------------------------------------------------------------------------------

Source = Callable[[str | None], AsyncIterator[str]]
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def sse_handler(source: Source) -> Handler:
    async def handler(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        response.content_type = "text/event-stream"
        response.headers["Cache-Control"] = "no-cache"
        response.headers["X-Accel-Buffering"] = "no"
        await response.prepare(request)
        # aclosing: the source's finally runs when we leave this block, however we leave it
        async with contextlib.aclosing(source(request.headers.get("Last-Event-ID"))) as events:  # type: ignore[type-var]
            async for text in events:
                await response.write(text.encode())
        await response.write_eof()
        return response

    return handler
