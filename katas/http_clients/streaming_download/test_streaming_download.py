"""Tests for the resumable download: Range after a break, 200 vs 206, the checksum, attempts, flat memory."""

from __future__ import annotations

import random
import tracemalloc
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import requests

from fixtures.flaky_server import FlakyServer, GeneratedBody, ok, ranged, status, truncated

from .streaming_download import CHUNK_SIZE, ChecksumMismatch, Download, DownloadFailed, download

MiB = 2**20
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
    """Downloads a URL into tmp_path/<name> with download(), chunk_size=CHUNK_SIZE."""

    def run(url: str, sha256: str, name: str = "file.bin", **kwargs: object) -> Download:
        return download(
            session, url, tmp_path / name, sha256=sha256, chunk_size=CHUNK_SIZE, **kwargs  # type: ignore[arg-type]
        )

    return run


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
        f"download() returned {got}, expected the verified file's path, size, digest and "
        f"{attempts} attempt(s)"
    )
    assert dest.read_bytes() == body.read(), f"{dest} does not hold the body the server sent"
    assert not part_of(dest).exists(), f"{part_of(dest).name} is still there: rename it to {dest.name}"


# ---- the plain case -----------------------------------------------------------------------------


def test_downloads_the_body_into_dest_with_one_request(
    flaky_server: FlakyServer, fetch: Callable[..., Download], tmp_path: Path
) -> None:
    url = flaky_server.script("/file", ranged(SMALL))
    got = attempt(lambda: fetch(url, SMALL.sha256()))
    assert_downloaded(got, tmp_path / "file.bin", SMALL, attempts=1)
    assert ranges_asked(flaky_server, "/file") == [None], "the first request asks for the whole body"


def test_an_error_status_fails_and_leaves_no_file(
    flaky_server: FlakyServer, fetch: Callable[..., Download], tmp_path: Path
) -> None:
    url = flaky_server.script("/missing", status(404))
    with pytest.raises(DownloadFailed):
        fetch(url, SMALL.sha256())
    assert not (tmp_path / "file.bin").exists(), "a 404's error page was saved as the file"


# ---- resuming ----------------------------------------------------------------------------------


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


def test_the_range_starts_at_the_next_byte_you_need(
    flaky_server: FlakyServer, fetch: Callable[..., Download], tmp_path: Path
) -> None:
    # A clean close after exactly 4 chunks: every one of those bytes reaches the client.
    have = 4 * CHUNK_SIZE
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


def test_keeps_resuming_as_long_as_attempts_are_left(
    flaky_server: FlakyServer, fetch: Callable[..., Download], tmp_path: Path
) -> None:
    breaking = ranged(SMALL, cut="truncate", at=4 * CHUNK_SIZE)  # each answer stops 4 chunks in
    url = flaky_server.script("/file", breaking, breaking, breaking, ranged(SMALL))
    got = attempt(lambda: fetch(url, SMALL.sha256(), max_attempts=5))
    assert_downloaded(got, tmp_path / "file.bin", SMALL, attempts=4)
    starts = [int(r.removeprefix("bytes=").rstrip("-")) for r in ranges_asked(flaky_server, "/file")[1:] if r]
    assert len(starts) == 3 and starts == sorted(set(starts)), (
        f"each resumed request must start where the bytes so far end: got starts {starts}"
    )


def test_gives_up_after_max_attempts(
    flaky_server: FlakyServer, fetch: Callable[..., Download], tmp_path: Path
) -> None:
    url = flaky_server.script("/file", ranged(SMALL, cut="truncate", at=CHUNK_SIZE))  # breaks every time
    got = attempt(lambda: fetch(url, SMALL.sha256(), max_attempts=3))
    hits = len(flaky_server.hits("/file"))
    assert hits == 3, (
        f"max_attempts=3, but the server received {hits} requests: count every request, the "
        "first one included, and stop when they are used up"
    )
    assert isinstance(got, DownloadFailed) and not isinstance(got, ChecksumMismatch), (
        f"expected DownloadFailed after 3 broken attempts, got {got!r}"
    )
    assert not (tmp_path / "file.bin").exists(), "an incomplete download must not appear at dest"


def test_a_200_to_a_range_request_means_start_over(
    flaky_server: FlakyServer, fetch: Callable[..., Download], tmp_path: Path
) -> None:
    """A server MAY ignore Range (RFC 9110 §14.2): then its 200 carries the whole body again."""
    body = SMALL.read()
    url = flaky_server.script("/plain", truncated(body, at=4 * CHUNK_SIZE), ok(body))  # no Range support
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


def test_a_206_for_other_bytes_is_refused(
    flaky_server: FlakyServer, fetch: Callable[..., Download], tmp_path: Path
) -> None:
    """Content-Range says which bytes a 206 carries; if they aren't the ones asked for, stop."""
    size = len(SMALL)
    wrong = status(206, SMALL.read(0, 1000), {"Content-Range": f"bytes 0-999/{size}"})
    url = flaky_server.script("/file", ranged(SMALL, cut="truncate", at=2 * CHUNK_SIZE), wrong)
    got = attempt(lambda: fetch(url, SMALL.sha256()))
    assert isinstance(got, DownloadFailed) and not isinstance(got, ChecksumMismatch), (
        f"after asking for bytes={2 * CHUNK_SIZE}- the client got a 206 with Content-Range "
        f"'bytes 0-999/{size}', and the outcome was {got!r}. Those bytes don't line up with "
        "yours: raise DownloadFailed at once (check that Content-Range starts where you asked)"
    )


# ---- the checksum ------------------------------------------------------------------------------


def test_a_wrong_checksum_raises_and_keeps_no_file(
    flaky_server: FlakyServer, fetch: Callable[..., Download], tmp_path: Path
) -> None:
    impostor = GeneratedBody(len(SMALL), seed=99)  # same size, other bytes
    url = flaky_server.script("/file", ranged(impostor))
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


# ---- constant memory ---------------------------------------------------------------------------


@pytest.fixture
def big_dest(tmp_path: Path) -> Iterator[Path]:
    """Where the 200 MiB file goes; deleted afterwards (pytest keeps recent tmp dirs around)."""
    dest = tmp_path / "big.bin"
    yield dest
    for path in (dest, part_of(dest)):
        path.unlink(missing_ok=True)


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

