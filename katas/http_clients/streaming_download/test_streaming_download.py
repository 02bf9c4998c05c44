"""Tests for the resumable download: Range after a break, 200 vs 206, the checksum, attempts, flat memory."""

from __future__ import annotations

import random
import threading
import time
import tracemalloc
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import requests
from hypothesis import given, settings
from hypothesis import strategies as st

from fixtures.flaky_server import (
    FlakyServer,
    GeneratedBody,
    Reply,
    closed_port,
    held,
    ok,
    ranged,
    stalled,
    status,
    truncated,
)

from .streaming_download import ChecksumMismatch, Download, DownloadFailed, download

MiB = 2**20
CHUNK = 64 * 1024  # the chunk size the README suggests; the tests break bodies on its multiples
# A stalled server is given up on after this many seconds without a byte (the timeout= passed);
# a client still waiting GENEROUS seconds later ignores the timeout.
STALL_TIMEOUT = 0.5
GENEROUS = 10.0
SMALL = GeneratedBody(1 * MiB + 12345, seed=1)  # an odd size: the last chunk is a partial one
# A TCP reset throws away what the server had written but not yet sent (up to its 4 MiB send
# buffer on Linux); breaking 8 MiB in makes sure the client got a good part of the body first.
MEDIUM = GeneratedBody(12 * MiB + 777, seed=3)
BIG = GeneratedBody(200 * MiB, seed=2)
# Peak traced memory may grow by at most this share of the body while downloading it: a streaming
# client needs a chunk or two (64 KiB each, under 1 % of 200 MiB); one holding the body needs 100 %.
MEMORY_SHARE = 0.05


@pytest.fixture
def session() -> Iterator[requests.Session]:
    with requests.Session() as s:
        yield s


@pytest.fixture
def fetch(session: requests.Session, tmp_path: Path) -> Callable[..., Download]:
    """Downloads a URL into tmp_path/<name> with download() and its defaults, or **kwargs."""

    def run(url: str, sha256: str, name: str = "file.bin", **kwargs: object) -> Download:
        return download(session, url, tmp_path / name, sha256=sha256, **kwargs)  # type: ignore[arg-type]

    return run


def chunked(body: bytes, piece: int) -> bytes:
    """`body` in Transfer-Encoding: chunked (RFC 9112 §7.1), `piece` bytes a chunk, with the last chunk."""
    out = bytearray()
    for start in range(0, len(body), piece):
        data = body[start : start + piece]
        out += b"%x\r\n" % len(data) + data + b"\r\n"
    return bytes(out + b"0\r\n\r\n")


def part_of(dest: Path) -> Path:
    return dest.with_name(dest.name + ".part")


def attempt(fn: Callable[[], Download]) -> Download | BaseException:
    """The result of fn(), or the exception it raised (the tests explain what went wrong)."""
    try:
        return fn()
    except Exception as exc:  # examined by the caller
        return exc


def ranges_asked(server: FlakyServer, path: str) -> list[str | None]:
    return [r.header("Range") for r in server.hits(path)]


def assert_downloaded(got: Download | BaseException, dest: Path, body: GeneratedBody, attempts: int) -> None:
    if isinstance(got, BaseException):
        raise AssertionError(f"download() raised {got!r}; expected it to succeed") from got
    assert got == Download(path=dest, size=len(body), sha256=body.sha256(), attempts=attempts), (
        f"download() returned {got}, expected the verified file's path, size, digest and {attempts} attempt(s)"
    )
    assert dest.read_bytes() == body.read(), f"{dest} does not hold the body the server sent"
    assert not part_of(dest).exists(), f"{part_of(dest).name} is still there: rename it to {dest.name}"


# ---- the plain case -----------------------------------------------------------------------------


@pytest.mark.stage(1, "a plain download")
@pytest.mark.parametrize("size", [0, 1, CHUNK, 3 * CHUNK + 1], ids=["empty", "one-byte", "one-chunk", "3-chunks-and-1"])
def test_downloads_the_body_into_dest_with_one_request(
    flaky_server: FlakyServer, fetch: Callable[..., Download], tmp_path: Path, size: int
) -> None:
    body = GeneratedBody(size, seed=size)
    url = flaky_server.script("/file", ranged(body))
    got = attempt(lambda: fetch(url, body.sha256()))
    assert_downloaded(got, tmp_path / "file.bin", body, attempts=1)
    assert ranges_asked(flaky_server, "/file") == [None], "the first request asks for the whole body"


@pytest.mark.stage(1, "a plain download")
@pytest.mark.parametrize("chunk_size", [None, 3072, 4096], ids=["default", "3072", "4096"])
def test_any_chunk_size_gives_the_same_file(
    flaky_server: FlakyServer, fetch: Callable[..., Download], tmp_path: Path, chunk_size: int | None
) -> None:
    # The break falls on a chunk boundary for each size: bytes of a chunk that was cut short never
    # reach the caller of iter_content (requests raises instead), so they can't count as "have".
    have = 3 * CHUNK
    url = flaky_server.script("/file", ranged(SMALL, cut="truncate", at=have), ranged(SMALL))
    kwargs = {} if chunk_size is None else {"chunk_size": chunk_size}
    got = attempt(lambda: fetch(url, SMALL.sha256(), **kwargs))
    assert ranges_asked(flaky_server, "/file") == [None, f"bytes={have}-"], (
        f"with chunk_size={chunk_size or 'the default'} the first answer broke after {have} "
        f"bytes, {have // (chunk_size or CHUNK)} whole chunks: resume with bytes={have}-, the "
        "count of bytes written, whatever the chunk size"
    )
    assert_downloaded(got, tmp_path / "file.bin", SMALL, attempts=2)


@pytest.mark.stage(1, "a plain download")
@pytest.mark.parametrize("code", [204, 206, 304, 401, 404, 429, 500, 503])
def test_a_first_answer_other_than_200_fails_at_once_and_leaves_no_file(
    flaky_server: FlakyServer, fetch: Callable[..., Download], tmp_path: Path, code: int
) -> None:
    size = len(SMALL)
    replies = {
        204: Reply(204, b""),
        206: status(206, SMALL.read(0, 1000), {"Content-Range": f"bytes 0-999/{size}"}),
        304: Reply(304, b""),
    }
    url = flaky_server.script("/missing", replies.get(code) or status(code))
    got = attempt(lambda: fetch(url, SMALL.sha256()))
    hits = len(flaky_server.hits("/missing"))
    assert isinstance(got, DownloadFailed) and not isinstance(got, ChecksumMismatch), (
        f"the server answered {code} to the first GET and download() gave {got!r}: anything but "
        "a 200 is DownloadFailed (check the status before you write a byte; a 206 to a request "
        "without Range is not the whole file)"
    )
    assert hits == 1, (
        f"the server answered {code} and got {hits} requests: an error status is final, not a "
        "broken connection. Only a break (ConnectionError, ChunkedEncodingError, Timeout) is "
        "tried again; don't catch DownloadFailed (or every Exception) inside the attempt loop"
    )
    assert not (tmp_path / "file.bin").exists(), f"a {code}'s error page was saved as the file"


@pytest.mark.stage(1, "a plain download")
@pytest.mark.parametrize("max_attempts", [0, -1])
def test_max_attempts_below_one_is_a_value_error(
    flaky_server: FlakyServer, fetch: Callable[..., Download], tmp_path: Path, max_attempts: int
) -> None:
    url = flaky_server.script("/file", ranged(SMALL))
    got = attempt(lambda: fetch(url, SMALL.sha256(), max_attempts=max_attempts))
    assert isinstance(got, ValueError), (
        f"max_attempts={max_attempts} allows no request at all: refuse it with ValueError before "
        f"sending anything; download() gave {got!r}"
    )
    assert flaky_server.hits("/file") == [], f"max_attempts={max_attempts}, yet a request was sent"
    assert not (tmp_path / "file.bin").exists()


# ---- resuming ----------------------------------------------------------------------------------


@pytest.mark.stage(2, "resuming")
def test_a_reset_mid_body_is_resumed_with_a_range_request(
    flaky_server: FlakyServer, fetch: Callable[..., Download], tmp_path: Path
) -> None:
    url = flaky_server.script("/file", ranged(MEDIUM, cut="reset", at=8 * MiB), ranged(MEDIUM))
    got = attempt(lambda: fetch(url, MEDIUM.sha256()))
    asked = ranges_asked(flaky_server, "/file")
    assert len(asked) == 2 and asked[1] is not None, (
        f"after the connection was reset 8 MiB into the body the client sent {asked} as Range "
        "headers: it restarted from byte 0 instead of resuming with Range: bytes=<bytes you "
        "have>-, and downloaded the first part twice"
    )
    assert_downloaded(got, tmp_path / "file.bin", MEDIUM, attempts=2)
    first, second = flaky_server.hits("/file")
    assert second.status == 206 and second.body_sent < len(MEDIUM) <= first.body_sent + second.body_sent


@pytest.mark.stage(2, "resuming")
def test_the_range_starts_at_the_next_byte_you_need(
    flaky_server: FlakyServer, fetch: Callable[..., Download], tmp_path: Path
) -> None:
    # A clean close after exactly 4 chunks: every one of those bytes reaches the client.
    have = 4 * CHUNK
    url = flaky_server.script("/file", ranged(SMALL, cut="truncate", at=have), ranged(SMALL))
    got = attempt(lambda: fetch(url, SMALL.sha256()))
    asked = ranges_asked(flaky_server, "/file")
    assert asked == [None, f"bytes={have}-"], (
        f"the server closed the connection after {have} bytes (positions 0..{have - 1}) of "
        f"{len(SMALL)}; the client then sent Range headers {asked}, expected [None, "
        f"'bytes={have}-']. Byte positions in a Range are zero-based and the range is inclusive "
        f"(RFC 9110 §14.1.2): the next byte you need is at position {have}, and 'bytes={have}-' "
        "asks for it and everything after"
    )
    assert_downloaded(got, tmp_path / "file.bin", SMALL, attempts=2)


@pytest.mark.stage(2, "resuming")
def test_a_chunked_body_cut_before_its_last_chunk_is_resumed(
    flaky_server: FlakyServer, fetch: Callable[..., Download], tmp_path: Path
) -> None:
    """Without a Content-Length, only the zero-length last chunk says the body is complete."""
    have = 2 * CHUNK
    # Transfer-Encoding: chunked takes precedence over the Content-Length the server adds (RFC
    # 9112 §6.3): the client reads chunks. The cut closes the connection 2 chunks of data in.
    encoded = chunked(SMALL.read(), piece=CHUNK)
    cut_at = encoded.index(SMALL.read(have, have + 16))  # where the 3rd chunk's data starts
    url = flaky_server.script(
        "/file",
        Reply(200, encoded, {"Transfer-Encoding": "chunked"}, cut="truncate", cut_at=cut_at),
        ranged(SMALL),
    )
    got = attempt(lambda: fetch(url, SMALL.sha256()))
    asked = ranges_asked(flaky_server, "/file")
    assert asked == [None, f"bytes={have}-"], (
        f"a chunked body was closed after {have} bytes of data, before its last (zero-length) "
        f"chunk; the client sent Range headers {asked}. requests raises ChunkedEncodingError for "
        f"that (it is not a ConnectionError): catch it and resume with bytes={have}-"
    )
    assert_downloaded(got, tmp_path / "file.bin", SMALL, attempts=2)


@pytest.mark.stage(2, "resuming")
def test_keeps_resuming_as_long_as_attempts_are_left(
    flaky_server: FlakyServer, fetch: Callable[..., Download], tmp_path: Path
) -> None:
    breaking = ranged(SMALL, cut="truncate", at=4 * CHUNK)  # each answer stops 4 chunks in
    url = flaky_server.script("/file", breaking, breaking, breaking, ranged(SMALL))
    got = attempt(lambda: fetch(url, SMALL.sha256(), max_attempts=5))
    assert_downloaded(got, tmp_path / "file.bin", SMALL, attempts=4)
    asked = ranges_asked(flaky_server, "/file")
    assert asked == [None, *(f"bytes={n * 4 * CHUNK}-" for n in (1, 2, 3))], (
        f"each resumed request must start where the bytes so far end (4 chunks more each time): "
        f"got Range headers {asked}"
    )


@pytest.mark.stage(2, "resuming")
def test_succeeds_on_the_last_attempt_allowed(
    flaky_server: FlakyServer, fetch: Callable[..., Download], tmp_path: Path
) -> None:
    breaking = ranged(SMALL, cut="truncate", at=4 * CHUNK)
    url = flaky_server.script("/file", breaking, breaking, ranged(SMALL))
    got = attempt(lambda: fetch(url, SMALL.sha256(), max_attempts=3))
    assert not isinstance(got, BaseException), (
        f"with max_attempts=3 the third request completed the body, yet download() gave {got!r}: "
        "max_attempts counts requests, the first one included, and the last one allowed may "
        "still succeed (an off-by-one in the attempt check)"
    )
    assert_downloaded(got, tmp_path / "file.bin", SMALL, attempts=3)


@pytest.mark.stage(2, "resuming")
@pytest.mark.parametrize("max_attempts", [1, 3, None], ids=["1", "3", "default-5"])
def test_gives_up_after_max_attempts(
    flaky_server: FlakyServer, fetch: Callable[..., Download], tmp_path: Path, max_attempts: int | None
) -> None:
    url = flaky_server.script("/file", ranged(SMALL, cut="truncate", at=CHUNK))  # breaks every time
    kwargs = {} if max_attempts is None else {"max_attempts": max_attempts}
    expected = 5 if max_attempts is None else max_attempts
    got = attempt(lambda: fetch(url, SMALL.sha256(), **kwargs))
    hits = len(flaky_server.hits("/file"))
    assert hits == expected, (
        f"max_attempts={expected}{' (the default)' if max_attempts is None else ''}, but the server "
        f"received {hits} requests: count every request, the first one included, and stop when "
        "they are used up"
    )
    assert isinstance(got, DownloadFailed) and not isinstance(got, ChecksumMismatch), (
        f"expected DownloadFailed after {expected} broken attempts, got {got!r}"
    )
    assert not (tmp_path / "file.bin").exists(), "an incomplete download must not appear at dest"


@pytest.mark.stage(3, "servers that ignore range")
def test_a_200_to_a_range_request_means_start_over(
    flaky_server: FlakyServer, fetch: Callable[..., Download], tmp_path: Path
) -> None:
    """A server MAY ignore Range (RFC 9110 §14.2): then its 200 carries the whole body again."""
    body = SMALL.read()
    url = flaky_server.script("/plain", truncated(body, at=4 * CHUNK), ok(body))  # no Range support
    got = attempt(lambda: fetch(url, SMALL.sha256()))
    asked = ranges_asked(flaky_server, "/plain")
    assert len(asked) == 2 and asked[1] is not None, f"expected a resumed request, Range headers: {asked}"
    assert not isinstance(got, BaseException), (
        f"download() raised {got!r}. The resumed request ({asked[1]}) was answered with 200, not "
        "206: the server ignored the Range and sent the whole body from byte 0. Appending it to "
        "the bytes you have duplicates them; start over instead (truncate the part file and "
        "start a fresh hash). Check the status of every response"
    )
    assert_downloaded(got, tmp_path / "file.bin", SMALL, attempts=2)


@pytest.mark.stage(3, "servers that ignore range")
def test_after_starting_over_the_next_range_counts_from_the_new_bytes(
    flaky_server: FlakyServer, fetch: Callable[..., Download], tmp_path: Path
) -> None:
    body = SMALL.read()
    url = flaky_server.script("/plain", truncated(body, at=4 * CHUNK), truncated(body, at=CHUNK), ok(body))
    got = attempt(lambda: fetch(url, SMALL.sha256()))
    asked = ranges_asked(flaky_server, "/plain")
    assert asked == [None, f"bytes={4 * CHUNK}-", f"bytes={CHUNK}-"], (
        f"the second answer was a 200 (Range ignored) that broke {CHUNK} bytes in, so the client "
        f"had {CHUNK} bytes, not {4 * CHUNK}: starting over resets the count of bytes you have. "
        f"Range headers sent: {asked}"
    )
    assert_downloaded(got, tmp_path / "file.bin", SMALL, attempts=3)


@pytest.mark.stage(3, "servers that ignore range")
def test_a_200_replaces_everything_even_with_a_shorter_body(
    flaky_server: FlakyServer, fetch: Callable[..., Download], tmp_path: Path
) -> None:
    """The file changed between the two requests; the checksum you hold is the new version's."""
    old, new = GeneratedBody(600_000, seed=11), GeneratedBody(200_000, seed=12)
    url = flaky_server.script("/plain", Reply(generated=old, cut="truncate", cut_at=400_000), Reply(generated=new))
    got = attempt(lambda: fetch(url, new.sha256()))
    dest = tmp_path / "file.bin"
    if dest.exists() and dest.stat().st_size != len(new):
        raise AssertionError(
            f"the resumed request got a 200 with a {len(new)}-byte body, after {400_000} bytes of "
            f"the old one; {dest.name} ended up {dest.stat().st_size} bytes long, and it passed the "
            "checksum because only the new bytes were hashed. Starting over must empty the part "
            "file: out.seek(0) alone keeps the old tail, truncate() it too"
        )
    assert_downloaded(got, dest, new, attempts=2)


@pytest.mark.stage(3, "servers that ignore range")
@pytest.mark.parametrize(
    "content_range",
    [
        "bytes 0-999/{size}",
        "bytes {ten}-{last}/{size}",
        "bytes {after}-{last}/{size}",
        "bytes {before}-{last}/{size}",
        None,
    ],
    ids=["earlier-bytes", "a-number-with-yours-as-prefix", "one-byte-later", "one-byte-earlier", "no-content-range"],
)
def test_a_206_for_other_bytes_is_refused(
    flaky_server: FlakyServer, fetch: Callable[..., Download], tmp_path: Path, content_range: str | None
) -> None:
    """Content-Range says which bytes a 206 carries; if they aren't the ones asked for, stop."""
    size, have = len(SMALL), CHUNK
    value = (
        None
        if content_range is None
        else content_range.format(size=size, last=size - 1, ten=10 * have, after=have + 1, before=have - 1)
    )
    first = 0 if value is None else int(value.split()[1].split("-")[0])
    end = 1000 if first == 0 and value is not None else size
    wrong = status(206, SMALL.read(first or have, end), {"Content-Range": value} if value else {})
    url = flaky_server.script("/file", ranged(SMALL, cut="truncate", at=have), wrong, ranged(SMALL))
    got = attempt(lambda: fetch(url, SMALL.sha256()))
    hits = len(flaky_server.hits("/file"))
    assert isinstance(got, DownloadFailed) and not isinstance(got, ChecksumMismatch), (
        f"after asking for bytes={have}- the client got a 206 with Content-Range {value!r}, and "
        f"the outcome was {got!r}. Those bytes don't line up with yours: raise DownloadFailed at "
        f"once. Compare the first position as a number with the {have} bytes you have (not a "
        "string prefix), and refuse a 206 that doesn't say which bytes it carries"
    )
    assert hits == 2, (
        f"a 206 for the wrong bytes is final ({hits} requests were sent): it says the server won't "
        "send what you need, so asking again is pointless. Raise DownloadFailed at once"
    )


@pytest.mark.stage(3, "servers that ignore range")
@pytest.mark.parametrize(
    "headers",
    [{"content-range": "bytes {have}-{last}/{size}"}, {"Content-Range": "bytes {have}-{last}/*"}],
    ids=["lower-case-header-name", "unknown-complete-length"],
)
def test_a_206_for_your_bytes_is_accepted_however_it_is_spelled(
    flaky_server: FlakyServer, fetch: Callable[..., Download], tmp_path: Path, headers: dict[str, str]
) -> None:
    size, have = len(SMALL), 2 * CHUNK
    spelled = {name: value.format(have=have, last=size - 1, size=size) for name, value in headers.items()}
    url = flaky_server.script("/file", ranged(SMALL, cut="truncate", at=have), status(206, SMALL.read(have), spelled))
    got = attempt(lambda: fetch(url, SMALL.sha256()))
    assert not isinstance(got, BaseException), (
        f"the resumed request got a 206 with {spelled}: exactly the bytes from {have} on, yet "
        f"download() gave {got!r}. Header names are case-insensitive (read response.headers, "
        "not a dict of them), and a complete length of '*' means the server doesn't know it "
        "(RFC 9110 §14.4): only the first position has to be yours"
    )
    assert_downloaded(got, tmp_path / "file.bin", SMALL, attempts=2)


@pytest.mark.stage(3, "servers that ignore range")
@pytest.mark.parametrize("code", [404, 416, 500, 503])
def test_any_other_answer_to_a_resumed_request_fails_at_once(
    flaky_server: FlakyServer, fetch: Callable[..., Download], tmp_path: Path, code: int
) -> None:
    size, have = len(SMALL), 2 * CHUNK
    answer = status(code, headers={"Content-Range": f"bytes */{size}"} if code == 416 else None)
    url = flaky_server.script("/file", ranged(SMALL, cut="truncate", at=have), answer, ranged(SMALL))
    got = attempt(lambda: fetch(url, SMALL.sha256()))
    hits = len(flaky_server.hits("/file"))
    assert isinstance(got, DownloadFailed) and not isinstance(got, ChecksumMismatch) and hits == 2, (
        f"the resumed request (bytes={have}-) was answered {code}; download() gave {got!r} after "
        f"{hits} requests. Only a 206 for your bytes or a 200 can continue a download; any other "
        "status is DownloadFailed at once, not a break to try again"
    )
    assert not (tmp_path / "file.bin").exists(), "an incomplete download must not appear at dest"


# ---- hanging hosts and stalled bodies -----------------------------------------------------------


def run_until(fn: Callable[[], Download], server: FlakyServer, gate: str) -> tuple[Download | BaseException, bool]:
    """fn() in a thread; if it hasn't returned after GENEROUS seconds, open `gate` and let it finish.

    Returns its outcome and whether the gate had to be opened (the client waited on a stalled
    server far longer than its timeout)."""
    outcome: list[Download | BaseException] = []
    worker = threading.Thread(target=lambda: outcome.append(attempt(fn)), daemon=True)
    worker.start()
    worker.join(GENEROUS)
    rescued = worker.is_alive()
    if rescued:
        server.release(gate)
        worker.join(GENEROUS)
    assert outcome, f"download() still hadn't returned {2 * GENEROUS:.0f} s after it started"
    return outcome[0], rescued


@pytest.mark.stage(4, "stalls and dead hosts")
@pytest.mark.parametrize("which", ["first", "resumed"])
def test_a_body_that_stalls_after_the_headers_is_resumed_once_timeout_passes(
    flaky_server: FlakyServer, fetch: Callable[..., Download], tmp_path: Path, which: str
) -> None:
    # "resumed": a break 2 chunks in; the resumed request gets a 200 (Range ignored) that stalls.
    have = 4 * CHUNK
    before = [ranged(SMALL, cut="truncate", at=2 * CHUNK)] if which == "resumed" else []
    url = flaky_server.script("/file", *before, stalled(SMALL.read(), at=have, gate="never"), ranged(SMALL))
    got, rescued = run_until(lambda: fetch(url, SMALL.sha256(), timeout=STALL_TIMEOUT), flaky_server, "never")
    assert not rescued, (
        f"the server sent the headers and {have} bytes of the {which} request's body, then "
        f"nothing; with timeout={STALL_TIMEOUT} the client was still waiting {GENEROUS:.0f} s "
        "later. Pass timeout= to every request, resumed ones too: requests applies it to each "
        "read of the body, and a read that times out mid-body raises ConnectionError, a break "
        "to resume"
    )
    asked = ranges_asked(flaky_server, "/file")
    expected = [None, *([f"bytes={2 * CHUNK}-"] if before else []), f"bytes={have}-"]
    assert asked == expected, (
        f"after a stall {have} bytes into the body the client sent Range headers {asked}: a read "
        f"timeout mid-body is a broken connection like any other, resume with bytes={have}-"
    )
    assert_downloaded(got, tmp_path / "file.bin", SMALL, attempts=len(expected))


@pytest.mark.stage(4, "stalls and dead hosts")
@pytest.mark.parametrize("which", ["first", "resumed"])
def test_a_host_that_never_answers_counts_as_a_broken_attempt(
    flaky_server: FlakyServer, fetch: Callable[..., Download], tmp_path: Path, which: str
) -> None:
    before = [ranged(SMALL, cut="truncate", at=2 * CHUNK)] if which == "resumed" else []
    url = flaky_server.script("/file", *before, held("never", ranged(SMALL)), ranged(SMALL))
    got, rescued = run_until(lambda: fetch(url, SMALL.sha256(), timeout=STALL_TIMEOUT), flaky_server, "never")
    assert not rescued, (
        f"the server accepted the {which} request and never answered; with "
        f"timeout={STALL_TIMEOUT} the client was still waiting {GENEROUS:.0f} s later: pass "
        "timeout= to every request, resumed ones too"
    )
    assert not isinstance(got, requests.RequestException), (
        f"the {which} request got no answer within timeout={STALL_TIMEOUT} and download() let "
        f"{got!r} escape: no answer in time is a broken attempt, to be tried again. requests "
        "raises ReadTimeout for it, which is not a ConnectionError: catch requests.Timeout too"
    )
    assert_downloaded(got, tmp_path / "file.bin", SMALL, attempts=3 if before else 2)


@pytest.mark.stage(4, "stalls and dead hosts")
def test_hosts_that_never_answer_or_refuse_end_in_download_failed(
    flaky_server: FlakyServer, fetch: Callable[..., Download]
) -> None:
    url = flaky_server.script("/file", held("never", ranged(SMALL)))
    got, rescued = run_until(
        lambda: fetch(url, SMALL.sha256(), timeout=STALL_TIMEOUT, max_attempts=2), flaky_server, "never"
    )
    assert not rescued, f"with timeout={STALL_TIMEOUT} the client waited on a silent server for good"
    refused = attempt(lambda: fetch(f"http://127.0.0.1:{closed_port()}/file", SMALL.sha256(), max_attempts=2))
    for what, outcome in [("never answered", got), ("refused the connection", refused)]:
        assert isinstance(outcome, DownloadFailed) and not isinstance(outcome, ChecksumMismatch), (
            f"the server {what} on every attempt and download() gave {outcome!r}: when the "
            "attempts are used up, whatever broke them, raise DownloadFailed (the caller catches "
            "one exception, not requests' whole family)"
        )
    assert len(flaky_server.hits("/file")) == 2, "max_attempts=2: two requests to the silent server"


@pytest.mark.stage(1, "a plain download")
def test_dest_does_not_exist_until_the_download_is_verified(
    flaky_server: FlakyServer, fetch: Callable[..., Download], tmp_path: Path
) -> None:
    """Observed mid-download, while the server holds the rest of the body back."""
    have = 4 * CHUNK
    name = "café 文件.iso"  # a Unicode name: the part file is the same name plus ".part"
    dest, part = tmp_path / name, tmp_path / (name + ".part")
    url = flaky_server.script("/file", stalled(SMALL.read(), at=have, gate="rest"))
    outcome: list[Download | BaseException] = []
    worker = threading.Thread(target=lambda: outcome.append(attempt(lambda: fetch(url, SMALL.sha256(), name=name))))
    worker.start()
    try:
        deadline = time.monotonic() + GENEROUS
        while not (part.exists() and part.stat().st_size > 0) and time.monotonic() < deadline and worker.is_alive():
            time.sleep(0.01)
        seen = sorted(p.name for p in tmp_path.iterdir())
        in_part = part.stat().st_size if part.exists() else None
    finally:
        flaky_server.release("rest")
        worker.join(2 * GENEROUS)
    assert name not in seen, (
        f"while the body was still arriving, {name!r} already existed: write to {part.name!r} and "
        "rename it to dest only once the checksum matches, so dest never holds a partial file"
    )
    assert in_part, (
        f"{have} bytes had been sent and the server was waiting, but {part.name!r} held none of "
        f"them (files there: {seen}): write each chunk to <dest>.part as it arrives"
    )
    assert outcome, "download() never returned after the server sent the rest"
    assert_downloaded(outcome[0], dest, SMALL, attempts=1)


# ---- against a model of the protocol -------------------------------------------------------------


def expected_run(size: int, script: list[tuple[bool, int | None]], max_attempts: int) -> tuple[list[int], bool]:
    """The Range starts a correct client asks for (0 for none), and whether it completes.

    Each reply is (honours_range, cut): a server that honours Range answers bytes=n- with the
    bytes from n; one that doesn't sends all of them. `cut` closes the connection cleanly after
    that many bytes of this response (every one of them reaches the client)."""
    have, starts = 0, []
    for number in range(max_attempts):
        honours_range, cut = script[min(number, len(script) - 1)]
        starts.append(have)
        begin = have if honours_range else 0
        sent = size - begin if cut is None else min(cut, size - begin)
        have = begin + sent
        if have == size:
            return starts, True
    return starts, False


@st.composite
def scripted_runs(draw: st.DrawFn) -> tuple[int, list[tuple[bool, int | None]], int, int]:
    chunk_size = draw(st.sampled_from([1000, 4096, CHUNK]))
    size = draw(st.integers(0, 150_000))
    # Cuts fall on chunk boundaries of the response: a chunk cut short never reaches the client.
    cuts = st.one_of(st.none(), st.integers(0, size // chunk_size + 1).map(lambda n: n * chunk_size))
    script = draw(st.lists(st.tuples(st.booleans(), cuts), min_size=1, max_size=5))
    return size, script, draw(st.integers(1, 6)), chunk_size


@pytest.mark.stage(5, "every schedule, flat memory")
def test_every_schedule_of_breaks_agrees_with_a_model_of_resuming(
    flaky_server: FlakyServer, session: requests.Session, tmp_path: Path
) -> None:
    runs = iter(range(10**6))

    @settings(max_examples=40, deadline=None, database=None)
    @given(scripted_runs())
    def check(run: tuple[int, list[tuple[bool, int | None]], int, int]) -> None:
        size, script, max_attempts, chunk_size = run
        body = GeneratedBody(size, seed=size)
        number = next(runs)
        path, dest = f"/run{number}", tmp_path / f"run{number}.bin"
        replies = [
            Reply(generated=body, ranges=honours, cut=None if cut is None else "truncate", cut_at=cut or 0)
            for honours, cut in script
        ]
        url = flaky_server.script(path, *replies)
        starts, completes = expected_run(size, script, max_attempts)
        got = attempt(
            lambda: download(session, url, dest, sha256=body.sha256(), max_attempts=max_attempts, chunk_size=chunk_size)
        )
        asked = [int(r.removeprefix("bytes=").rstrip("-")) if r else 0 for r in ranges_asked(flaky_server, path)]
        assert asked == starts, (
            f"a {size}-byte body served as {script} (honours Range?, cut after n bytes), "
            f"max_attempts={max_attempts}: the client asked for the bytes from {asked}, a correct one "
            f"from {starts}. Each request starts at the bytes you have; a 200 resets them to the "
            "bytes of that response; max_attempts counts every request"
        )
        if completes:
            assert_downloaded(got, dest, body, attempts=len(starts))
        else:
            assert isinstance(got, DownloadFailed) and not isinstance(got, ChecksumMismatch), (
                f"the body never completed in {max_attempts} attempts, download() gave {got!r}"
            )
            assert not dest.exists(), "an incomplete download must not appear at dest"

    check()


# ---- the checksum ------------------------------------------------------------------------------


@pytest.mark.stage(1, "a plain download")
def test_a_wrong_checksum_raises_and_keeps_no_file(
    flaky_server: FlakyServer, fetch: Callable[..., Download], tmp_path: Path
) -> None:
    impostor = GeneratedBody(len(SMALL), seed=99)  # same size, other bytes
    url = flaky_server.script("/file", ranged(impostor, cut="truncate", at=2 * CHUNK), ranged(impostor))
    got = attempt(lambda: fetch(url, SMALL.sha256()))
    assert isinstance(got, ChecksumMismatch), (
        f"the server sent {len(SMALL)} bytes whose SHA-256 is {impostor.sha256()[:16]}..., not "
        f"the expected {SMALL.sha256()[:16]}...; download() gave {got!r}, expected ChecksumMismatch"
    )
    dest = tmp_path / "file.bin"
    left = [p.name for p in (dest, part_of(dest)) if p.exists()]
    assert not left, (
        f"after a checksum mismatch {left} still exist: a file that failed its checksum is kept. "
        "Write to the .part file, delete it on a mismatch, and rename it to dest only once verified"
    )
    assert len(flaky_server.hits("/file")) == 2, (
        "a checksum mismatch is final: every byte arrived, asking again won't fix them"
    )


# ---- constant memory ---------------------------------------------------------------------------


@pytest.fixture
def big_dest(tmp_path: Path) -> Iterator[Path]:
    """Where the 200 MiB file goes; deleted afterwards (pytest keeps recent tmp dirs around)."""
    dest = tmp_path / "big.bin"
    yield dest
    for path in (dest, part_of(dest)):
        path.unlink(missing_ok=True)


@pytest.mark.stage(5, "every schedule, flat memory")
def test_memory_stays_flat_for_a_200_mib_body_with_a_reset(
    flaky_server: FlakyServer, fetch: Callable[..., Download], big_dest: Path
) -> None:
    expected = BIG.sha256()  # before tracing: the oracle's own work doesn't count
    url = flaky_server.script("/big", ranged(BIG, cut="reset", at=80 * MiB), ranged(BIG))
    was_tracing = tracemalloc.is_tracing()
    if not was_tracing:
        tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        got = attempt(lambda: fetch(url, expected, name=big_dest.name))
        growth = tracemalloc.get_traced_memory()[1] - before
    finally:
        if not was_tracing:
            tracemalloc.stop()
    assert growth < MEMORY_SHARE * len(BIG), (
        f"while downloading a {len(BIG) // MiB} MiB body, the peak of traced memory grew by "
        f"{growth / MiB:.1f} MiB ({growth / len(BIG):.0%} of the body; a streaming client needs "
        f"under {MEMORY_SHARE:.0%}): the client reads the whole body into memory "
        "(response.content, response.raw.read(), joining the chunks, a bytearray, or reading the "
        "file back to hash it). Write each chunk to the file and the hash, then let it go"
    )
    if isinstance(got, BaseException):
        raise AssertionError(f"download() raised {got!r}") from got
    dest = big_dest
    assert got.attempts == 2 and got.size == len(BIG) == dest.stat().st_size, got
    asked = ranges_asked(flaky_server, "/big")[1]
    assert asked is not None, "the reset at 80 MiB was not resumed with a Range request"
    resumed_at = int(asked.removeprefix("bytes=").rstrip("-"))
    # Spot checks (hashing 200 MiB again would double the test's time): the seam, and random blocks.
    rng = random.Random(len(BIG))
    with dest.open("rb") as f:
        for start in [0, max(0, resumed_at - 4096), *rng.sample(range(len(BIG) - 4096), 16)]:
            f.seek(start)
            assert f.read(8192) == BIG.read(start, start + 8192), f"{dest.name} differs at byte {start}"
