"""HTTP streaming formats by hand: chunked transfer coding, Server-Sent Events, an SSE endpoint."""

from __future__ import annotations

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
    # TODO: size line, data, CRLF.
    raise NotImplementedError("encode_chunk")


def last_chunk(trailers: list[tuple[str, str]] | None = None) -> bytes:
    """The end of a chunked body: `0` CRLF, one `Name: value` CRLF per trailer, then CRLF.

    >>> last_chunk([("Expires", "never")])
    b'0\\r\\nExpires: never\\r\\n\\r\\n'
    """
    # TODO: last-chunk, trailer section, final CRLF.
    raise NotImplementedError("last_chunk")


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
        # TODO: a buffer for bytes not consumed yet, and where you are: size line, chunk data
        # (and how much of it is left), the CRLF after the data, or the trailer section.

    def feed(self, data: bytes) -> list[bytes]:
        """Consume `data`; return the body bytes it completed."""
        # TODO: a loop that advances through the states while the buffer holds enough bytes.
        raise NotImplementedError("ChunkedDecoder.feed")


# ---------------------------------------------------------------------------------------------
# Server-Sent Events (WHATWG HTML §9.2.5-9.2.6)
# ---------------------------------------------------------------------------------------------

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
    # TODO: validate, then the optional fields, the data lines, and the blank line.
    raise NotImplementedError("format_event")


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
        # TODO: the partial line, the data / event type / last event ID buffers, whether the
        # BOM check has happened, and whether the previous feed ended with a CR.

    def feed(self, text: str) -> list[Event]:
        """Consume `text` (any split, any of the three line ends); return the events dispatched."""
        # TODO: split into lines (a CR at the end of one feed and an LF at the start of the
        # next are one line end), process each complete line, keep the incomplete rest.
        raise NotImplementedError("SSEParser.feed")


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
    # TODO: return an async handler: a web.StreamResponse, prepare(), write each event, and
    # close the source in a finally.
    raise NotImplementedError("sse_handler")
