"""Streaming download with resume: a generator speaks HTTP and yields (offset, chunk); the caller keeps the file."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import requests

CHUNK_SIZE = 65536  # 64 KiB
PART_SUFFIX = ".part"


class DownloadFailed(Exception):
    """Gave up: an error status, an unusable answer to a Range request, or max_attempts used up."""


class ChecksumMismatch(DownloadFailed):
    """Every byte arrived, but their SHA-256 is not the expected one: the file is not kept."""


@dataclass(frozen=True)
class Download:
    """A finished, verified download."""

    path: Path  # == dest
    size: int  # bytes in the file
    sha256: str  # hex digest of the file, equal to the one asked for
    attempts: int  # requests made, the first one included


def part_path(dest: Path) -> Path:
    """Where the bytes are written while the download is in progress: `<dest>.part`."""
    return dest.with_name(dest.name + PART_SUFFIX)


@dataclass
class _Progress:
    attempts: int = 0
    complete: bool = False


def _pieces(
    session: requests.Session, url: str, max_attempts: int, chunk_size: int, timeout: float, progress: _Progress
) -> Iterator[tuple[int, bytes]]:
    """Yield (offset, chunk) for the body, across as many requests as it takes.

    The offset of a piece is where it belongs in the file: it equals the bytes before it, except
    after a server ignored Range, when it is 0 again (the consumer must start over).
    """
    have = 0
    while progress.attempts < max_attempts:
        progress.attempts += 1
        headers = {"Range": f"bytes={have}-"} if have else {}
        try:
            with session.get(url, headers=headers, stream=True, timeout=timeout) as response:
                code = response.status_code
                if code == 200:
                    have = 0
                elif not (code == 206 and have and _starts_at(response.headers.get("Content-Range"), have)):
                    raise DownloadFailed(f"{url}: HTTP {code} (having {have} bytes)")
                for chunk in response.iter_content(chunk_size):
                    yield have, chunk
                    have += len(chunk)
        except (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError):
            continue
        progress.complete = True
        return


def _starts_at(content_range: str | None, have: int) -> bool:
    words = (content_range or "").split()
    if len(words) != 2 or words[0].lower() != "bytes":
        return False
    first = words[1].split("-", 1)[0]
    return first.isdigit() and int(first) == have


def download(
    session: requests.Session,
    url: str,
    dest: Path,
    *,
    sha256: str,
    max_attempts: int = 5,
    chunk_size: int = CHUNK_SIZE,
    timeout: float = 10.0,
) -> Download:
    """GET `url` into `dest`, resuming after broken connections; verify its SHA-256 (see the README)."""
    if max_attempts < 1:
        raise ValueError("max_attempts must be at least 1")
    part = part_path(dest)
    progress = _Progress()
    digest, written = hashlib.sha256(), 0
    with part.open("wb") as out:
        for offset, chunk in _pieces(session, url, max_attempts, chunk_size, timeout, progress):
            if offset != written:  # a restart from byte 0
                out.seek(offset)
                out.truncate()
                digest, written = hashlib.sha256(), offset
            out.write(chunk)
            digest.update(chunk)
            written += len(chunk)
    if not progress.complete:
        raise DownloadFailed(f"{url}: still incomplete after {progress.attempts} attempts")
    if digest.hexdigest() != sha256:
        part.unlink()
        raise ChecksumMismatch(f"{url}: SHA-256 {digest.hexdigest()}, expected {sha256}")
    part.replace(dest)
    return Download(path=dest, size=written, sha256=sha256, attempts=progress.attempts)
