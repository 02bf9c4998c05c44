"""HTTP streaming formats, another design: the event stream read one character at a time, the
chunked decoder scanning from where its last search stopped, the source closed in an except/else."""

from __future__ import annotations

import enum
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

from aiohttp import web

# ---------------------------------------------------------------------------------------------
# Chunked transfer coding (RFC 9112 §7.1)
# ---------------------------------------------------------------------------------------------


def encode_chunk(data: bytes) -> bytes:
    """One chunk: the size in lowercase hex, CRLF, the data, CRLF.

    >>> encode_chunk(b"Developer Network")
    b'11\\r\\nDeveloper Network\\r\\n'

    An empty `data` gives b"" (a chunk of size 0 would be read as the end of the body).
    """
    # The size is hex (RFC 9112 chunk-size = 1*HEXDIG): 17 bytes is `11`, not `17`. An empty
    # write must send nothing, or the peer reads `0\r\n` as the last-chunk.
    if not data:
        return b""
    return b"%x\r\n%s\r\n" % (len(data), data)


def last_chunk(trailers: list[tuple[str, str]] | None = None) -> bytes:
    """The end of a chunked body: `0` CRLF, one `Name: value` CRLF per trailer, then CRLF.

    >>> last_chunk([("Expires", "never")])
    b'0\\r\\nExpires: never\\r\\n\\r\\n'
    """
    # last-chunk, then the trailer section (field lines like a header block), then the CRLF
    # that ends the body: without trailers that is the familiar `0\r\n\r\n`.
    fields = b"".join(f"{name}: {value}\r\n".encode("latin-1") for name, value in trailers or [])
    return b"0\r\n" + fields + b"\r\n"


_HEXDIGITS = frozenset(b"0123456789abcdefABCDEF")


class _State(enum.Enum):
    SIZE = "size line"
    DATA = "chunk data"
    DATA_END = "CRLF after chunk data"
    TRAILERS = "trailer section"
    DONE = "done"


class ChunkedDecoder:
    """Incremental decoder of a chunked body: feed it bytes as they arrive, split anywhere.

    >>> d = ChunkedDecoder()
    >>> d.feed(b"7\\r\\nMozi"), d.feed(b"lla\\r\\n0\\r\\n\\r\\n"), d.finished
    ([b'Mozi'], [b'lla'], True)

    - `feed(data)` returns the body bytes completed by this feed, in order (non-empty pieces;
      a chunk split across feeds may come out in several pieces).
    - Chunk extensions (`;name=value` after the size) are ignored.
    - `trailers` holds the trailer fields as (lower-cased name, value without surrounding
      spaces), once they have arrived; `finished` turns True after the final CRLF.
    - ValueError for: a size that is not 1*HEXDIG, chunk data not followed by exactly CR LF, a
      trailer line without a colon, with an empty name or whitespace around the name, a size or
      trailer line longer than `max_line` bytes, its CRLF not counted (raised as soon as the
      buffered line is too long, not when its CRLF finally arrives; exactly `max_line` is fine,
      even with its CR and LF in different feeds), data after the end.
    """

    def __init__(self, max_line: int = 4096) -> None:
        self.max_line = max_line
        self.finished = False
        self.trailers: list[tuple[str, str]] = []
        # A state machine over one buffer: TCP delivers bytes, not chunks, so every state must
        # be able to stop half-way and resume on the next feed.
        self._buf = bytearray()
        self._state = _State.SIZE
        self._remaining = 0  # bytes of the current chunk's data still to come
        self._scanned = 0  # where the next CRLF search starts: the bytes before hold none

    def feed(self, data: bytes) -> list[bytes]:
        """Consume `data`; return the body bytes it completed."""
        if self._state is _State.DONE:
            if data:
                raise ValueError(f"{len(data)} bytes after the end of the chunked body")
            return []
        self._buf += data
        out: list[bytes] = []
        # Each pass either makes progress or breaks out to wait for more bytes.
        while True:
            if self._state is _State.SIZE:
                line = self._take_line()
                if line is None:
                    break
                self._remaining = _parse_size(line)
                self._state = _State.DATA if self._remaining else _State.TRAILERS
            elif self._state is _State.DATA:
                if not self._buf:
                    break
                # Hand out what has arrived now (a streaming decoder must not wait for the
                # whole chunk: one chunk may be gigabytes).
                piece = bytes(self._buf[: self._remaining])
                del self._buf[: len(piece)]
                self._remaining -= len(piece)
                out.append(piece)
                if self._remaining == 0:
                    self._state = _State.DATA_END
            elif self._state is _State.DATA_END:
                if not b"\r\n".startswith(bytes(self._buf[:2])):
                    raise ValueError(f"chunk data not followed by CRLF: got {bytes(self._buf[:2])!r}")
                if len(self._buf) < 2:
                    break  # a lone CR so far: the LF may be in the next feed
                del self._buf[:2]
                self._state = _State.SIZE
            elif self._state is _State.TRAILERS:
                line = self._take_line()
                if line is None:
                    break
                if line == b"":  # the empty line that ends the body
                    self._state = _State.DONE
                    self.finished = True
                    if self._buf:
                        raise ValueError(f"{len(self._buf)} bytes after the end of the chunked body")
                    break
                self.trailers.append(_parse_field(line))
        return out

    def _take_line(self) -> bytes | None:
        """The next CRLF-terminated line without its CRLF, or None if it is not complete yet."""
        end = self._buf.find(b"\r\n", self._scanned)
        if end < 0:
            # No CRLF up to here; a last CR may still be half of one, so search again from it.
            self._scanned = max(0, len(self._buf) - 1)
            if len(self._buf) - self._buf.endswith(b"\r") > self.max_line:
                raise ValueError(f"{self._state.value} longer than {self.max_line} bytes")
            return None
        self._scanned = 0
        if end > self.max_line:
            raise ValueError(f"{self._state.value} longer than {self.max_line} bytes")
        line = bytes(self._buf[:end])
        del self._buf[: end + 2]
        return line


def _parse_size(line: bytes) -> int:
    """The chunk size from `chunk-size [ chunk-ext ]`, extensions ignored."""
    size = line.split(b";", 1)[0].rstrip(b" \t")  # BWS may precede the `;`
    # int(x, 16) alone also takes "0x5", "+5", " 5" and "1_0": check the digits first.
    if not size or not _HEXDIGITS.issuperset(size):
        raise ValueError(f"bad chunk size line {line!r}: the size must be hex digits")
    return int(size, 16)


def _parse_field(line: bytes) -> tuple[str, str]:
    """A trailer field line `name: value` as (lower-cased name, value without OWS)."""
    name, colon, value = line.partition(b":")
    if not colon or not name or name != name.strip():
        raise ValueError(f"bad trailer field line {line!r}")
    return name.decode("ascii").lower(), value.strip(b" \t").decode("latin-1")


# ---------------------------------------------------------------------------------------------
# Server-Sent Events (WHATWG HTML §9.2.5-9.2.6)
# ---------------------------------------------------------------------------------------------

# The three line ends of the event stream format; CRLF first, so it counts as one line end.
_LINE_END = re.compile(r"\r\n|\r|\n")
_BOM = "\ufeff"


@dataclass(frozen=True)
class Event:
    """A dispatched event, as EventSource hands it to `onmessage`/`addEventListener`."""

    data: str
    type: str = "message"
    last_event_id: str = ""


def format_event(
    data: str, event: str | None = None, id: str | None = None, retry: int | None = None
) -> str:
    """One event in the text/event-stream format, fields in this order, LF line ends.

    >>> format_event("YHOO\\n+2\\n10")
    'data: YHOO\\ndata: +2\\ndata: 10\\n\\n'
    >>> format_event("hi", event="greet", id="7", retry=5000)
    'event: greet\\nid: 7\\nretry: 5000\\ndata: hi\\n\\n'

    Each line of `data` (split at CRLF, CR or LF: all three end a line on the wire) becomes its
    own `data: ` line, so a parser gives the lines back joined with LF. ValueError if `event`
    or `id` contains CR or LF, if `id` contains NUL, or if `retry` is negative.
    """
    # A newline inside event/id would start a new field on the wire (injection); a NUL in id
    # makes every parser silently ignore the field.
    for name, value in (("event", event), ("id", id)):
        if value is not None and ("\r" in value or "\n" in value):
            raise ValueError(f"{name} must not contain CR or LF: {value!r}")
    if id is not None and "\0" in id:
        raise ValueError(f"id must not contain NUL: {id!r}")
    if retry is not None and retry < 0:
        raise ValueError(f"retry must be a non-negative number of milliseconds, got {retry}")
    lines = []
    if event is not None:
        lines.append(f"event: {event}")
    if id is not None:
        lines.append(f"id: {id}")
    if retry is not None:
        lines.append(f"retry: {retry}")
    # Split on exactly the parser's three line ends. str.splitlines() would be wrong twice: it
    # also splits at \v, \f, \x1c-\x1e, \x85, \u2028, \u2029, and it drops a trailing newline.
    # "One space after the colon" keeps leading spaces of the data intact (the parser strips one).
    lines.extend(f"data: {line}" for line in _LINE_END.split(data))
    return "\n".join(lines) + "\n\n"


class SSEParser:
    """Incremental event stream parser, following the WHATWG interpretation rules exactly.

    >>> p = SSEParser()
    >>> p.feed("data: YHOO\\ndata: +2\\n"), p.feed("data: 10\\n\\n")
    ([], [Event(data='YHOO\\n+2\\n10', type='message', last_event_id='')])

    `last_event_id` (the last dispatched event's ID, kept across events) and `retry` (the
    reconnection time in ms, None until a valid `retry` field) are readable at any time.
    """

    def __init__(self) -> None:
        self.last_event_id = ""
        self.retry: int | None = None
        # The spec's three buffers. The ID buffer is never reset on dispatch: an event without
        # an `id` field inherits the previous one, which is what Last-Event-ID resumes from.
        self._data = ""
        self._type = ""
        self._id = ""
        self._partial = ""  # an incomplete line, waiting for its line end
        self._started = False  # the BOM may only be stripped at the very start of the stream
        self._after_cr = False  # the last feed ended with CR: an LF next is part of that end

    def feed(self, text: str) -> list[Event]:
        """One character at a time: CR ends a line (an LF right after it, even in the next feed,
        belongs to it), LF ends a line, anything else extends the line."""
        events: list[Event] = []
        for char in text:
            if not self._started:
                self._started = True
                if char == _BOM:
                    continue
            if self._after_cr:
                self._after_cr = False
                if char == "\n":
                    continue
            if char in "\r\n":
                self._after_cr = char == "\r"
                line, self._partial = self._partial, ""
                event = self._process(line)
                if event is not None:
                    events.append(event)
            else:
                self._partial += char
        return events

    def _process(self, line: str) -> Event | None:
        """Interpret one line; return the event if it was the blank line dispatching one."""
        if line == "":
            return self._dispatch()
        if line.startswith(":"):
            return None  # a comment (often a keep-alive ping)
        field, colon, value = line.partition(":")
        if colon and value.startswith(" "):
            value = value[1:]  # exactly one space: "data:  x" keeps " x"
        if field == "event":
            self._type = value
        elif field == "data":
            self._data += value + "\n"
        elif field == "id" and "\0" not in value:
            self._id = value  # an id with NUL is ignored as a whole
        elif field == "retry" and value and all("0" <= c <= "9" for c in value):
            # ASCII digits only: str.isdigit() and int() also accept "²" or "٣".
            self.retry = int(value)
        # Any other field name (they are case-sensitive: "Data" too) is ignored.
        return None

    def _dispatch(self) -> Event | None:
        self.last_event_id = self._id
        if self._data == "":
            self._type = ""  # e.g. a block of only `id:` or `event:` lines: nothing fires
            return None
        event = Event(
            data=self._data.removesuffix("\n"),  # every data line added an LF: drop the last
            type=self._type or "message",
            last_event_id=self.last_event_id,
        )
        self._data = self._type = ""
        return event


# ---------------------------------------------------------------------------------------------
# A streaming endpoint (aiohttp)
# ---------------------------------------------------------------------------------------------

# Called with the request's Last-Event-ID header (None without one); yields formatted events.
Source = Callable[[str | None], AsyncIterator[str]]
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def sse_handler(source: Source) -> Handler:
    """An aiohttp handler that streams `source(last_event_id)` as text/event-stream.

    Headers `Content-Type: text/event-stream`, `Cache-Control: no-cache` and
    `X-Accel-Buffering: no` go out before the first event exists; each event the source
    yields (a string, e.g. from format_event) reaches the client before the next is asked
    for; the response ends when the source is exhausted, and the handler returns it. However
    the stream ends (source done or failed, a write failed because the client left), the
    source is closed (`await aclose()`) before the handler ends.

        app.router.add_get("/events", sse_handler(ticks))
    """

    async def handler(request: web.Request) -> web.StreamResponse:
        # A StreamResponse, not a web.Response: the body is not known up front. No
        # Content-Length, so aiohttp frames it with chunked coding over HTTP/1.1.
        response = web.StreamResponse(
            headers={
                "Content-Type": "text/event-stream",
                "Cache-Control": "no-cache",  # no cache may store (and replay) a live stream
                "X-Accel-Buffering": "no",  # tells nginx not to buffer this response
            }
        )
        # prepare() sends the status line and headers now: the client's EventSource counts
        # as open, even if the first event takes minutes.
        await response.prepare(request)
        events = source(request.headers.get("Last-Event-ID"))
        try:
            async for text in events:
                await response.write(text.encode("utf-8"))
        except BaseException:
            await events.aclose()  # type: ignore[attr-defined]  # the client left, or the source failed
            raise
        else:
            await events.aclose()  # type: ignore[attr-defined]  # already finished: a no-op, kept for symmetry
        await response.write_eof()
        return response

    return handler
