"""Tests for chunked coding (against h11), SSE (WHATWG vectors, round trips) and a live aiohttp stream."""

from __future__ import annotations

import asyncio
import codecs
import itertools
import logging
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

import aiohttp
import h11
import pytest
import pytest_asyncio
from aiohttp import web
from hypothesis import given, settings
from hypothesis import strategies as st

from .http_streaming import (
    ChunkedDecoder,
    Event,
    Source,
    SSEParser,
    encode_chunk,
    format_event,
    last_chunk,
    sse_handler,
)

# docs/vectors.md §5.1: the MDN example, byte for byte what h11 0.16 emits.
MDN_BODY = b"7\r\nMozilla\r\n11\r\nDeveloper Network\r\n0\r\n\r\n"
WIKI_BODY = b"4;name=val\r\nWiki\r\n5\r\npedia\r\n0\r\nExpires: never\r\n\r\n"

bodies = st.lists(st.binary(min_size=1, max_size=300), max_size=6)
field_names = st.sampled_from(["Expires", "X-Checksum", "Server-Timing", "etag"])
field_values = st.text(alphabet="abcdefghij0123456789 =;/-", max_size=20).map(str.strip)
trailer_lists = st.lists(st.tuples(field_names, field_values), max_size=3)
S = TypeVar("S", bytes, str)


def split_at(data: S, cuts: list[int]) -> list[S]:
    """`data` cut into pieces at the given offsets (any order, repeats allowed: empty pieces)."""
    points: list[int] = sorted(min(c, len(data)) for c in cuts)
    bounds = [0, *points, len(data)]
    return [data[a:b] for a, b in itertools.pairwise(bounds)]


SPLIT_ANYWHERE = (
    "bytes arrive split anywhere (inside the size line, the data, the CRLF): a chunk does not "
    "arrive in one feed, so keep state between feeds"
)


def decode_in_pieces(pieces: list[bytes]) -> tuple[bytes, ChunkedDecoder]:
    """Feed a valid body piece by piece; a ValueError on it fails the test with the pieces."""
    decoder = ChunkedDecoder()
    out = []
    for i, piece in enumerate(pieces):
        try:
            out.extend(decoder.feed(piece))
        except ValueError as exc:
            shown = [p if len(p) <= 80 else p[:30] + b"<%d bytes>" % (len(p) - 60) + p[-30:] for p in pieces]
            pytest.fail(
                f"feed() raised ValueError({exc}) on piece {i} of a valid body fed as "
                f"{shown!r}:\n{SPLIT_ANYWHERE}"
            )
    return b"".join(out), decoder


# --- h11, the independent implementation --------------------------------------------------------


def h11_decode(body: bytes) -> tuple[bytes, list[tuple[str, str]], bool]:
    """What h11 makes of `body` as the chunked body of a response: (data, trailers, complete)."""
    client = h11.Connection(h11.CLIENT)
    client.send(h11.Request(method="GET", target="/", headers=[("Host", "example")]))
    client.send(h11.EndOfMessage())
    client.receive_data(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + body)
    data, trailers, complete = b"", [], False
    while True:
        event = client.next_event()
        if event is h11.NEED_DATA or event is h11.PAUSED:
            break
        if isinstance(event, h11.Data):
            data += event.data
        elif isinstance(event, h11.EndOfMessage):
            trailers = [(n.decode(), v.decode()) for n, v in event.headers]
            complete = True
            break
    return data, trailers, complete


def h11_encode(parts: list[bytes], trailers: list[tuple[str, str]]) -> bytes:
    """The chunked body h11 sends for `parts` then `trailers` (the response head cut off)."""
    server = h11.Connection(h11.SERVER)
    server.receive_data(b"GET / HTTP/1.1\r\nHost: example\r\n\r\n")
    assert isinstance(server.next_event(), h11.Request)
    server.send(h11.Response(status_code=200, headers=[("Transfer-Encoding", "chunked")]))
    out = b"".join(server.send(h11.Data(data=p)) or b"" for p in parts)
    return out + (server.send(h11.EndOfMessage(headers=trailers)) or b"")


# --- chunked: encoding ----------------------------------------------------------------------------


@pytest.mark.stage(1, "chunked encoding")
def test_chunks_match_the_mdn_vector_byte_for_byte() -> None:
    got = encode_chunk(b"Mozilla") + encode_chunk(b"Developer Network") + last_chunk()
    assert got == MDN_BODY, (
        f"expected {MDN_BODY!r}\n     got {got!r}\n"
        "the chunk size is hex (RFC 9112 chunk-size = 1*HEXDIG): 17 bytes is `11`, not `17`"
    )


@pytest.mark.stage(1, "chunked encoding")
def test_an_empty_write_sends_no_chunk() -> None:
    assert encode_chunk(b"") == b"", (
        "encode_chunk(b'') must return b'': a zero-size chunk `0\\r\\n` is the last-chunk, "
        "so the peer would think the body ended"
    )


@pytest.mark.stage(1, "chunked encoding")
def test_last_chunk_carries_trailers() -> None:
    assert last_chunk([("Expires", "never")]) == b"0\r\nExpires: never\r\n\r\n"
    assert last_chunk([]) == last_chunk() == b"0\r\n\r\n"


@pytest.mark.stage(1, "chunked encoding")
@settings(max_examples=60, deadline=None)
@given(parts=bodies, trailers=trailer_lists)
def test_h11_decodes_your_encoding_and_you_emit_its_exact_bytes(
    parts: list[bytes], trailers: list[tuple[str, str]]
) -> None:
    wire = b"".join(encode_chunk(p) for p in parts) + last_chunk(trailers)
    data, got_trailers, complete = h11_decode(wire)
    assert complete, f"h11 did not see the end of the body in {wire[-40:]!r}"
    assert data == b"".join(parts), "h11 decoded different bytes: are the chunk sizes hex?"
    assert got_trailers == [(n.lower(), v) for n, v in trailers]
    expected = h11_encode(parts, trailers)
    assert wire == expected, (
        f"h11 sends {expected[:80]!r}...\n  you sent {wire[:80]!r}...\n"
        "lowercase hex size without leading zeros, CRLF, data, CRLF"
    )


# --- chunked: decoding ------------------------------------------------------------------------------


@pytest.mark.stage(2, "chunked decoding")
def test_decodes_the_mdn_vector_fed_one_byte_at_a_time() -> None:
    decoder = ChunkedDecoder()
    out = []
    for i in range(len(MDN_BODY)):
        assert not decoder.finished, f"finished after only {i} of {len(MDN_BODY)} bytes"
        try:
            out.extend(decoder.feed(MDN_BODY[i : i + 1]))
        except ValueError as exc:
            pytest.fail(f"fed byte by byte, byte {i} raised ValueError({exc}): {SPLIT_ANYWHERE}")
    assert b"".join(out) == b"MozillaDeveloper Network", (
        f"fed byte by byte, got {b''.join(out)!r}: {SPLIT_ANYWHERE}"
    )
    assert decoder.finished
    assert all(out), "feed() must not return empty pieces"


@pytest.mark.stage(2, "chunked decoding")
def test_decodes_the_vector_fed_whole() -> None:
    decoder = ChunkedDecoder()
    assert b"".join(decoder.feed(MDN_BODY)) == b"MozillaDeveloper Network"
    assert decoder.finished and decoder.trailers == []


@pytest.mark.stage(2, "chunked decoding")
def test_extensions_are_ignored_and_trailers_parsed() -> None:
    data, decoder = decode_in_pieces([WIKI_BODY])
    assert data == b"Wikipedia", f"`4;name=val` is size 4 with an extension to ignore; got {data!r}"
    assert decoder.trailers == [("expires", "never")], decoder.trailers
    assert decoder.finished
    assert h11_decode(WIKI_BODY) == (b"Wikipedia", [("expires", "never")], True)


@pytest.mark.stage(2, "chunked decoding")
def test_uppercase_hex_and_leading_zeros_are_sizes_too() -> None:
    body = b"A\r\n0123456789\r\n0010\r\n" + b"x" * 16 + b"\r\n0\r\n\r\n"
    data, decoder = decode_in_pieces([body])
    assert data == b"0123456789" + b"x" * 16 and decoder.finished


@pytest.mark.stage(2, "chunked decoding")
def test_finished_only_after_the_final_crlf() -> None:
    decoder = ChunkedDecoder()
    decoder.feed(WIKI_BODY[:-2])
    assert not decoder.finished, "the body ends with the CRLF after the trailer section"
    decoder.feed(WIKI_BODY[-2:])
    assert decoder.finished


@pytest.mark.stage(2, "chunked decoding")
@settings(max_examples=80, deadline=None)
@given(parts=bodies, trailers=trailer_lists, data=st.data())
def test_decodes_what_h11_sends_split_anywhere(
    parts: list[bytes], trailers: list[tuple[str, str]], data: st.DataObject
) -> None:
    wire = h11_encode(parts, trailers)
    cuts = data.draw(st.lists(st.integers(0, len(wire)), max_size=12), label="cuts")
    pieces = split_at(wire, cuts)
    got, decoder = decode_in_pieces(pieces)
    assert got == b"".join(parts), (
        f"fed {pieces!r}\ndecoded {got!r}\nexpected {b''.join(parts)!r}\n{SPLIT_ANYWHERE}"
    )
    assert decoder.finished
    assert decoder.trailers == [(n.lower(), v) for n, v in trailers]


@pytest.mark.stage(2, "chunked decoding")
@settings(max_examples=40, deadline=None)
@given(
    parts=st.lists(st.sampled_from([b"\r\n", b"0\r\n\r\n", b"5\r\n", b";", b":"]), min_size=1),
    data=st.data(),
)
def test_chunk_data_that_looks_like_framing_is_just_data(
    parts: list[bytes], data: st.DataObject
) -> None:
    wire = b"".join(encode_chunk(p) for p in parts) + last_chunk()
    cuts = data.draw(st.lists(st.integers(0, len(wire)), max_size=6), label="cuts")
    got, decoder = decode_in_pieces(split_at(wire, cuts))
    assert got == b"".join(parts), "count data bytes by the size: never search the data for CRLF"
    assert decoder.finished


@pytest.mark.stage(3, "malformed chunks")
@pytest.mark.parametrize(
    "body",
    [b"zz\r\n", b"\r\n", b"-1\r\n", b"0x5\r\nhello\r\n", b"+5\r\nhello\r\n", b"1_0\r\n"],
    ids=["not-hex", "empty", "negative", "0x-prefix", "plus-sign", "underscore"],
)
def test_a_size_that_is_not_hex_digits_is_rejected(body: bytes) -> None:
    with pytest.raises(ValueError):
        ChunkedDecoder().feed(body)
        pytest.fail(f"accepted the size line {body!r}: chunk-size is 1*HEXDIG (int(x, 16) is lax)")


@pytest.mark.stage(3, "malformed chunks")
def test_chunk_data_must_end_with_crlf() -> None:
    with pytest.raises(ValueError):
        ChunkedDecoder().feed(b"3\r\nabcXY\r\n0\r\n\r\n")
        pytest.fail("3 bytes of data then `XY`: the CRLF after chunk data is missing")


@pytest.mark.stage(3, "malformed chunks")
def test_an_endless_size_line_is_rejected_before_its_crlf() -> None:
    decoder = ChunkedDecoder()
    with pytest.raises(ValueError):
        for _ in range(200):
            decoder.feed(b"1" * 100)
        pytest.fail(
            "buffered 20000 bytes of one size line without complaint: raise ValueError once the "
            "line passes max_line, or a peer makes you buffer forever"
        )


@pytest.mark.stage(3, "malformed chunks")
def test_a_long_extension_within_the_limit_is_fine() -> None:
    data, decoder = decode_in_pieces([b"5;" + b"x" * 1000 + b"\r\nhello\r\n0\r\n\r\n"])
    assert data == b"hello" and decoder.finished


@pytest.mark.stage(3, "malformed chunks")
def test_data_after_the_end_is_rejected() -> None:
    decoder = ChunkedDecoder()
    decoder.feed(MDN_BODY)
    with pytest.raises(ValueError):
        decoder.feed(b"7\r\n")
        pytest.fail("accepted bytes after the last-chunk and the final CRLF")


@pytest.mark.stage(3, "malformed chunks")
def test_a_line_of_exactly_max_line_bytes_is_fine_and_one_more_is_refused_at_once() -> None:
    """The default max_line is 4096: a size or trailer line of 4096 bytes (its CRLF not counted)
    passes however it is split, even with the CR in one feed and the LF in the next."""
    size_line = b"5;" + b"x" * 4094
    trailer = b"X-Pad: " + b"p" * 4089
    assert len(size_line) == len(trailer) == 4096
    body = size_line + b"\r\nhello\r\n0\r\n" + trailer + b"\r\n\r\n"
    for cut in (len(size_line), len(size_line) + 1, len(body) - 4, len(body) - 3):
        data, decoder = decode_in_pieces([body[:cut], body[cut:]])
        assert (data, decoder.finished) == (b"hello", True)
        assert decoder.trailers == [("x-pad", "p" * 4089)]
    for line in (size_line, b"5\r\nhello\r\n0\r\n" + trailer):
        decoder = ChunkedDecoder()
        with pytest.raises(ValueError):
            decoder.feed(line + b"x")  # 4097 bytes of one line, no CRLF yet
            pytest.fail(
                "4097 bytes of one line buffered without a ValueError: the default max_line is "
                "4096, and a line longer than it is refused as soon as it is that long"
            )
    decoder = ChunkedDecoder(max_line=3)
    assert decoder.feed(b"abc") == [] and decoder.feed(b"\r\nxyz") == [b"xyz"], "a 3-byte line fits max_line=3"
    decoder = ChunkedDecoder(max_line=1)  # every line of this body is one byte or empty
    assert decoder.feed(b"5\r\nhello\r\n0\r\n\r\n") == [b"hello"] and decoder.finished, (
        "with max_line=1 the lines `5`, `0` and the empty last one all fit: only a line's own bytes count"
    )


@pytest.mark.stage(3, "malformed chunks")
@pytest.mark.parametrize("after", [b"\rX", b"\nX", b"X\n", b"\r\r"])
def test_anything_but_crlf_after_chunk_data_is_rejected(after: bytes) -> None:
    for pieces in ([b"3\r\nabc" + after], [b"3\r\nabc" + after[:1], after[1:]]):
        decoder = ChunkedDecoder()
        with pytest.raises(ValueError):
            for piece in pieces:
                decoder.feed(piece)
            pytest.fail(
                f"3 bytes of data then {after!r} fed as {pieces!r} were accepted: both bytes after "
                "chunk data must be CR LF, checked one by one (a count that is off shows up here)"
            )


@pytest.mark.stage(3, "malformed chunks")
@pytest.mark.parametrize(
    "line",
    [b"NoColon", b": no name", b"Name : value", b" Name: value", b"\tName: value"],
    ids=["no_colon", "empty_name", "space_before_colon", "leading_space", "leading_tab"],
)
def test_a_malformed_trailer_line_is_rejected(line: bytes) -> None:
    with pytest.raises(ValueError):
        ChunkedDecoder().feed(b"0\r\n" + line + b"\r\n\r\n")
        pytest.fail(
            f"accepted the trailer line {line!r}: a field line is name, colon, value, with no "
            "whitespace around the name (RFC 9112 §5.1; a lenient parser disagrees with a strict one)"
        )


# --- SSE: formatting -------------------------------------------------------------------------------


@pytest.mark.stage(4, "server-sent events")
def test_format_event_vectors() -> None:
    assert format_event("YHOO\n+2\n10") == "data: YHOO\ndata: +2\ndata: 10\n\n", (
        "each line of data is its own `data: ` line, and the event ends with a blank line"
    )
    assert format_event("hi", event="greet", id="7", retry=5000) == (
        "event: greet\nid: 7\nretry: 5000\ndata: hi\n\n"
    )
    assert format_event("") == "data: \n\n"
    assert format_event(" third event") == "data:  third event\n\n"


@pytest.mark.stage(4, "server-sent events")
@pytest.mark.parametrize(
    "kwargs",
    [{"event": "a\nb"}, {"id": "1\r2"}, {"id": "1\x002"}, {"retry": -1}],
    ids=["newline-in-event", "cr-in-id", "nul-in-id", "negative-retry"],
)
def test_format_event_rejects_what_cannot_be_sent(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        format_event("x", **kwargs)
        pytest.fail(f"format_event accepted {kwargs}: it would inject a field or be ignored")


# --- SSE: parsing, WHATWG examples (docs/vectors.md §5.2) ---------------------------------------------


def parse_all(*pieces: str) -> tuple[list[Event], SSEParser]:
    parser = SSEParser()
    events = [e for p in pieces for e in parser.feed(p)]
    return events, parser


@pytest.mark.stage(4, "server-sent events")
def test_multi_line_data_is_one_event() -> None:
    events, _ = parse_all("data: YHOO\ndata: +2\ndata: 10\n\n")
    assert events == [Event("YHOO\n+2\n10")], (
        f"got {events!r}: data lines accumulate (joined with LF, the final LF removed) and only "
        "a blank line dispatches the event"
    )


@pytest.mark.stage(4, "server-sent events")
def test_spec_example_ids_and_exactly_one_space() -> None:
    stream = (
        ": test stream\n\ndata: first event\nid: 1\n\ndata:second event\nid\n\n"
        "data:  third event\n\n"
    )
    events, parser = parse_all(stream)
    assert events == [
        Event("first event", last_event_id="1"),
        Event("second event", last_event_id=""),
        Event(" third event", last_event_id=""),
    ], (
        f"got {events!r}\nonly ONE space after the colon is removed (`data:  third event` keeps "
        "' third event'); a bare `id` line resets the last event ID to ''"
    )
    assert parser.last_event_id == ""


@pytest.mark.stage(4, "server-sent events")
def test_empty_data_events_and_the_unterminated_tail() -> None:
    events, _ = parse_all("data\n\ndata\ndata\n\ndata:")
    assert events == [Event(""), Event("\n")], (
        f"got {events!r}: `data` without colon appends '' + LF; one trailing LF is removed, "
        "not all; the last block has no blank line after it, so it is never dispatched"
    )


@pytest.mark.stage(4, "server-sent events")
def test_the_space_after_the_colon_is_optional() -> None:
    events, _ = parse_all("data:test\n\ndata: test\n\n")
    assert events == [Event("test"), Event("test")]


@pytest.mark.stage(4, "server-sent events")
def test_retry_takes_ascii_digits_only() -> None:
    events, parser = parse_all("retry: 5000\nretry: 1a\nretry: -1\nretry: \u0663\ndata: x\n\n")
    assert parser.retry == 5000, (
        f"retry is {parser.retry!r}: only values of ASCII digits count ('1a', '-1' and the "
        "Arabic-Indic digit '\u0663' are ignored: str.isdigit() and int() accept the latter)"
    )
    assert events == [Event("x")]


@pytest.mark.stage(4, "server-sent events")
def test_mixed_line_ends_cr_lf_and_crlf() -> None:
    events, _ = parse_all("event: e\r\nid: 1\rdata: one\ndata: two\r\n\r\n")
    assert events == [Event("one\ntwo", type="e", last_event_id="1")], (
        f"got {events!r}: lines end with CRLF, LF, or a CR alone (`id: 1\\rdata: one`)"
    )


@pytest.mark.stage(4, "server-sent events")
def test_a_cr_only_stream() -> None:
    events, _ = parse_all("data: a\rdata: b\r\rdata: c\r\r")
    assert events == [Event("a\nb"), Event("c")], (
        f"got {events!r}: a CR alone is a line end, so `\\r\\r` ends an event"
    )


@pytest.mark.stage(4, "server-sent events")
def test_crlf_split_across_feeds_is_one_line_end() -> None:
    events, _ = parse_all("data: a\r", "\ndata: b\r", "\n\r", "\n")
    assert events == [Event("a\nb")], (
        f"got {events!r}: a CR at the end of one feed and the LF starting the next are one "
        "line end (CRLF), not a line end and a blank line"
    )


@pytest.mark.stage(4, "server-sent events")
def test_only_a_blank_line_dispatches() -> None:
    parser = SSEParser()
    assert parser.feed("data: a\n\ndata: b\n") == [Event("a")]
    assert parser.feed("data: c\n") == [], "no blank line yet: `b` and `c` are still one event"
    assert parser.feed("\n") == [Event("b\nc")]


@pytest.mark.stage(4, "server-sent events")
def test_a_leading_bom_is_ignored_once() -> None:
    events, _ = parse_all("\ufeffdata: a\n\n", "\ufeffdata: b\n\n")
    assert events == [Event("a")], (
        f"got {events!r}: one BOM at the very start of the stream is skipped; later, "
        "'\\ufeffdata' is an unknown field name"
    )


@pytest.mark.stage(4, "server-sent events")
def test_id_persists_and_nul_ids_are_ignored() -> None:
    events, parser = parse_all("id: 7\ndata: a\n\ndata: b\n\nid: 8\x009\ndata: c\n\n")
    assert events == [
        Event("a", last_event_id="7"),
        Event("b", last_event_id="7"),
        Event("c", last_event_id="7"),
    ], f"got {events!r}: the last event ID persists across events; an id with NUL is ignored"
    assert parser.last_event_id == "7"


@pytest.mark.stage(4, "server-sent events")
def test_event_type_resets_and_empty_blocks_do_not_fire() -> None:
    events, parser = parse_all("event: add\ndata: 1\n\ndata: 2\n\nevent: x\nid: 3\n\ndata: 4\n\n")
    assert events == [
        Event("1", type="add"),
        Event("2"),
        Event("4", last_event_id="3"),
    ], f"got {events!r}: a block without data fires nothing (but still sets the last event ID)"
    assert parser.last_event_id == "3"


@pytest.mark.stage(4, "server-sent events")
def test_field_names_are_case_sensitive_and_unknown_ones_ignored() -> None:
    events, _ = parse_all("Data: no\nfoo: bar\ndata: yes\n\n")
    assert events == [Event("yes")]


# --- SSE: round trips ------------------------------------------------------------------------------

sse_text = st.text(st.characters(codec="utf-8"), max_size=40)
sse_field = sse_text.filter(lambda s: not re.search(r"[\r\n\x00]", s))
sse_events = st.lists(
    st.tuples(
        sse_text,
        st.none() | sse_field,
        st.none() | sse_field,
        st.none() | st.integers(0, 10**9),
    ),
    min_size=1,
    max_size=4,
)


def with_line_ends(text: str, choices: list[str]) -> str:
    """Replace every LF of `text` with the next of `choices` (CRLF, CR or LF), never letting a
    lone CR be followed by an LF line end (that pair would read as one CRLF)."""
    out, k, prev = [], 0, ""
    for ch in text:
        if ch != "\n":
            out.append(ch)
            prev = ch
            continue
        end = choices[k % len(choices)] if choices else "\n"
        k += 1
        if prev == "\r" and end == "\n":
            end = "\r\n"
        out.append(end)
        prev = end[-1]
    return "".join(out)


@pytest.mark.stage(4, "server-sent events")
@settings(max_examples=120, deadline=None)
@given(events=sse_events, data=st.data())
def test_round_trip_format_then_parse_split_anywhere(
    events: list[tuple[str, str | None, str | None, int | None]], data: st.DataObject
) -> None:
    stream = ": hello\n" + "".join(
        format_event(d, event=e, id=i, retry=r) for d, e, i, r in events
    )
    ends = data.draw(st.lists(st.sampled_from(["\r\n", "\r", "\n"]), max_size=8), label="ends")
    stream = with_line_ends(stream, ends)
    if data.draw(st.booleans(), label="bom"):
        stream = "\ufeff" + stream
    cuts = data.draw(st.lists(st.integers(0, len(stream)), max_size=10), label="cuts")
    pieces = split_at(stream, cuts)

    expected, last_id, retry = [], "", None
    for d, e, i, r in events:
        last_id = i if i is not None else last_id
        retry = r if r is not None else retry
        expected.append(Event(re.sub(r"\r\n|\r", "\n", d), e or "message", last_id))

    got, parser = parse_all(*pieces)
    assert got == expected, (
        f"the stream {stream!r}\nfed as {pieces!r}\nparsed to {got!r}\nexpected  {expected!r}\n"
        "(data lines joined with LF; one space after the colon removed; any line end)"
    )
    assert parser.retry == retry
    assert parser.last_event_id == last_id


# --- the endpoint: a real aiohttp server and client -----------------------------------------------

Serve = Callable[..., Awaitable[str]]
READ_TIMEOUT = 5.0  # deadlock detection only: a working handler answers in milliseconds


@pytest_asyncio.fixture
async def serve() -> AsyncIterator[Serve]:
    """serve(source) runs sse_handler(source) at GET / on a free port of 127.0.0.1 -> its URL."""
    runners: list[web.AppRunner] = []

    async def start(source: Source, middlewares: tuple[Any, ...] = (), cancel_on_leave: bool = True) -> str:
        app = web.Application(middlewares=middlewares)
        app.router.add_get("/", sse_handler(source))
        # handler_cancellation: a handler stuck on a source is cancelled when the client leaves
        # (aiohttp's default is not to: then the handler learns it from a write that fails)
        runner = web.AppRunner(app, handler_cancellation=cancel_on_leave, shutdown_timeout=0.5)
        await runner.setup()
        runners.append(runner)
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        host, port = runner.addresses[0][:2]
        return f"http://{host}:{port}/"

    try:
        yield start
    finally:
        for runner in runners:
            await runner.cleanup()


async def read_event(resp: aiohttp.ClientResponse, what: str) -> bytes:
    try:
        return await asyncio.wait_for(resp.content.readuntil(b"\n\n"), READ_TIMEOUT)
    except TimeoutError:
        pytest.fail(what)


async def stream_ticks(
    resp: aiohttp.ClientResponse,
    n: int,
    delivered: list[asyncio.Event],
    buffering: Callable[[int], str],
) -> None:
    """Read the n ticks one by one, releasing the source's next tick after each."""
    for i in range(n):
        block = await read_event(resp, buffering(i))
        assert block == f"id: {i}\ndata: tick {i}\n\n".encode(), f"event {i}: got {block!r}"
        delivered[i].set()
    rest = await asyncio.wait_for(resp.content.read(), READ_TIMEOUT)
    assert rest == b"", f"after the last event the body must end; got {rest!r}"


@pytest.mark.stage(5, "the streaming endpoint")
@pytest.mark.asyncio
async def test_each_event_is_flushed_before_the_next_is_produced(serve: Serve) -> None:
    n = 4
    delivered = [asyncio.Event() for _ in range(n)]
    produced: list[int] = []

    async def source(last_event_id: str | None) -> AsyncIterator[str]:
        for i in range(n):
            if i:
                await delivered[i - 1].wait()  # like a live feed: the next tick comes later
            produced.append(i)
            yield f"id: {i}\ndata: tick {i}\n\n"

    def buffering(i: int) -> str:
        return (
            f"event {i} never reached the client (the source produced {produced} so far and "
            f"will produce event {i + 1} only after the client got event {i}): the handler is "
            "buffering. Send the headers first, then write (and so flush) each event as the "
            "source yields it; never collect them into one body"
        )

    url = await serve(source)
    async with aiohttp.ClientSession() as session:
        try:
            resp = await asyncio.wait_for(session.get(url), READ_TIMEOUT)
        except TimeoutError:
            pytest.fail(f"no response headers either: {buffering(0)}")
        async with resp:
            await stream_ticks(resp, n, delivered, buffering)


@pytest.mark.stage(5, "the streaming endpoint")
@pytest.mark.asyncio
async def test_headers_go_out_before_the_first_event(serve: Serve) -> None:
    headers_seen = asyncio.Event()

    async def source(last_event_id: str | None) -> AsyncIterator[str]:
        await headers_seen.wait()  # the first event exists only once the client has the headers
        yield "data: first\n\n"

    url = await serve(source)
    async with aiohttp.ClientSession() as session:
        try:
            resp = await asyncio.wait_for(session.get(url), READ_TIMEOUT)
        except TimeoutError:
            pytest.fail(
                "no response headers while the source had no event yet: prepare() the "
                "StreamResponse (send status and headers) before waiting for the first event"
            )
        async with resp:
            headers_seen.set()
            assert resp.status == 200
            assert resp.headers.get("Content-Type", "").startswith("text/event-stream"), (
                f"Content-Type is {resp.headers.get('Content-Type')!r}: EventSource only "
                "accepts text/event-stream"
            )
            assert resp.headers.get("Cache-Control") == "no-cache", resp.headers
            assert resp.headers.get("X-Accel-Buffering") == "no", (
                "send X-Accel-Buffering: no, or an nginx in front buffers the stream"
            )
            assert "Content-Length" not in resp.headers, "a stream has no length up front"
            assert resp.headers.get("Transfer-Encoding") == "chunked", resp.headers
            assert await read_event(resp, "the first event never arrived") == b"data: first\n\n"


@pytest.mark.stage(5, "the streaming endpoint")
@pytest.mark.asyncio
@pytest.mark.parametrize("sent", [None, "41"])
async def test_last_event_id_reaches_the_source(serve: Serve, sent: str | None) -> None:
    seen: list[str | None] = []

    async def source(last_event_id: str | None) -> AsyncIterator[str]:
        seen.append(last_event_id)
        yield format_event("resumed", id="42")

    url = await serve(source)
    headers = {"Last-Event-ID": sent} if sent is not None else {}
    async with aiohttp.ClientSession() as session, session.get(url, headers=headers) as resp:
        body = await asyncio.wait_for(resp.content.read(), READ_TIMEOUT)
    assert seen == [sent], (
        f"the source was called with {seen!r}: pass the request's Last-Event-ID header "
        "(None without one), so a reconnecting client resumes after the last event it saw"
    )
    assert body == b"id: 42\ndata: resumed\n\n"


@pytest.mark.stage(5, "the streaming endpoint")
@pytest.mark.asyncio
async def test_a_live_stream_parses_back_with_your_parser(serve: Serve) -> None:
    """The whole chain: format_event -> your handler -> TCP (chunked) -> your parser."""
    sent = [("a\nb", "tick", "1"), (" lead", None, "2"), ("", None, None), ("ü€", "x", "3")]

    async def source(last_event_id: str | None) -> AsyncIterator[str]:
        for data, event, id in sent:
            yield format_event(data, event=event, id=id)

    url = await serve(source)
    parser, decoder, events = SSEParser(), codecs.getincrementaldecoder("utf-8")(), []
    async with aiohttp.ClientSession() as session, session.get(url) as resp:
        async for raw in resp.content.iter_any():
            events.extend(parser.feed(decoder.decode(raw)))
    assert events == [
        Event("a\nb", "tick", "1"),
        Event(" lead", "message", "2"),
        Event("", "message", "2"),
        Event("ü€", "x", "3"),
    ], events


@pytest.mark.stage(5, "the streaming endpoint")
@pytest.mark.asyncio
async def test_when_the_client_leaves_the_source_is_closed_before_the_handler_ends(serve: Serve) -> None:
    """A source holding a subscription or a cursor must be closed by the handler (aclose()), at
    once, not whenever the garbage collector finalizes the abandoned generator."""
    log: list[str] = []

    @web.middleware
    async def note_the_end(request: web.Request, handler: Any) -> web.StreamResponse:
        try:
            return await handler(request)
        finally:
            log.append("handler ended")

    async def source(last_event_id: str | None) -> AsyncIterator[str]:
        try:
            for i in itertools.count():
                yield format_event(f"tick {i}")
                await asyncio.sleep(0.01)
        finally:
            log.append("source closed")

    url = await serve(source, middlewares=(note_the_end,), cancel_on_leave=False)
    async with aiohttp.ClientSession() as session, session.get(url) as resp:
        for i in range(2):
            assert await read_event(resp, f"event {i} never arrived") == f"data: tick {i}\n\n".encode()
    # the client is gone: the handler's next write fails
    loop = asyncio.get_running_loop()
    deadline = loop.time() + READ_TIMEOUT
    while len(log) < 2 and loop.time() < deadline:
        await asyncio.sleep(0.01)
    assert log == ["source closed", "handler ended"], (
        f"after the client left, the events were {log}: when the stream ends for any reason (the "
        "source is done, it failed, or a write to a client that left failed), close the source "
        "(await its aclose() in a finally) before the handler ends"
    )


@pytest.mark.stage(5, "the streaming endpoint")
@pytest.mark.asyncio
async def test_a_complete_stream_leaves_no_error_in_the_servers_log(
    serve: Serve, caplog: pytest.LogCaptureFixture
) -> None:
    async def source(last_event_id: str | None) -> AsyncIterator[str]:
        yield format_event("only")

    url = await serve(source)
    with caplog.at_level(logging.WARNING, logger="aiohttp"):
        async with aiohttp.ClientSession() as session, session.get(url) as resp:
            assert await asyncio.wait_for(resp.content.read(), READ_TIMEOUT) == b"data: only\n\n"
        await asyncio.sleep(0.05)  # the server finishes the request after the client has the body
    problems = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert not problems, (
        f"aiohttp logged {problems} for a stream that went well: the handler returns the "
        "StreamResponse it prepared, once it has ended it"
    )
