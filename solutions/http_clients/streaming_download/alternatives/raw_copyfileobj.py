"""Streaming download with resume: shutil.copyfileobj from the raw urllib3 stream through a hashing tee."""

from __future__ import annotations

import hashlib
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import requests
import urllib3

# Read and write the body in pieces of this many bytes (64 KiB): memory stays at one piece,
# whatever the size.
CHUNK_SIZE = 65536
# While downloading, the bytes live in `<dest>.part`; only a verified file is renamed to `dest`.
PART_SUFFIX = ".part"

# Reading response.raw directly bypasses requests' translation of urllib3's errors: a body cut
# short (reset, IncompleteRead, an unfinished chunked body) is a ProtocolError, a stalled body a
# ReadTimeoutError. Getting the headers still goes through requests.
BROKEN_REQUEST = (requests.ConnectionError, requests.Timeout)
BROKEN_BODY = (urllib3.exceptions.ProtocolError, urllib3.exceptions.ReadTimeoutError)


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


class _Tee:
    """A writable file object that writes to the part file, hashes, and counts: copyfileobj's sink."""

    def __init__(self, out: BinaryIO) -> None:
        self.out = out
        self.reset()

    def reset(self) -> None:
        self.out.seek(0)
        self.out.truncate()
        self.digest = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> int:
        self.out.write(data)
        self.digest.update(data)
        self.size += len(data)
        return len(data)


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
    with part.open("wb") as out:
        sink = _Tee(out)
        for attempts in range(1, max_attempts + 1):  # noqa: B007 (read after the loop)
            headers = {"Range": f"bytes={sink.size}-"} if sink.size else {}
            try:
                response = session.get(url, headers=headers, stream=True, timeout=timeout)
            except BROKEN_REQUEST:
                continue
            with response:
                match response.status_code:
                    case 200:
                        if sink.size:
                            sink.reset()  # Range ignored: the whole body again
                    case 206 if sink.size and _first_position(response) == sink.size:
                        pass
                    case code:
                        raise DownloadFailed(f"{url}: HTTP {code} with {sink.size} bytes in hand")
                response.raw.decode_content = True  # what iter_content would do
                try:
                    shutil.copyfileobj(response.raw, sink, chunk_size)
                except BROKEN_BODY:
                    continue
            break
        else:
            raise DownloadFailed(f"{url}: still incomplete after {max_attempts} attempts")
    if sink.digest.hexdigest() != sha256:
        part.unlink()
        raise ChecksumMismatch(f"{url}: SHA-256 {sink.digest.hexdigest()}, expected {sha256}")
    part.replace(dest)
    return Download(path=dest, size=sink.size, sha256=sha256, attempts=attempts)


def _first_position(response: requests.Response) -> int | None:
    """The first byte position of a 206's `Content-Range: bytes first-last/length`, or None."""
    unit, _, spec = response.headers.get("Content-Range", "").strip().partition(" ")
    first, dash, _ = spec.partition("-")
    if unit.lower() != "bytes" or not dash or not first.isdigit():
        return None
    return int(first)
