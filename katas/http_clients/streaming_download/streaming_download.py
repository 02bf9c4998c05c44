"""Streaming download with resume: chunked reads, Range after a broken connection, a verified SHA-256."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import requests

# Read and write the body in pieces of this many bytes (64 KiB): memory stays at one piece,
# whatever the size.
CHUNK_SIZE = 65536
# While downloading, the bytes live in `<dest>.part`; only a verified file is renamed to `dest`.
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
    """GET `url` into the file `dest`, resuming after broken connections; verify its SHA-256.

    - `max_attempts` below 1: raise ValueError before sending anything.
    - Every request: `stream=True` and `timeout=timeout` (requests applies it to the connect,
      to the wait for the headers and to every read of the body).
    - Stream the body and write it to part_path(dest) `chunk_size` bytes at a time, updating a
      hashlib.sha256 as you go. Never hold more than a chunk of the body in memory: no
      `.content`, no `.read()`, no reading the file back whole. `dest` doesn't exist meanwhile.
    - The first answer must be 200, else raise DownloadFailed at once (no second request).
    - If the attempt breaks (requests raises requests.ConnectionError: reset, refused, a read
      timeout mid-body; requests.exceptions.ChunkedEncodingError: closed before Content-Length
      bytes or before a chunked body's last chunk; requests.Timeout: no answer in time), send
      the GET again with `Range: bytes=<bytes you have>-` (RFC 9110 §14.2: zero-based, so
      that's the next byte's position; with no bytes yet, a plain GET) and carry on:
        206 whose Content-Range starts at <bytes you have>   append, keep hashing
        200                                                  the server ignored Range and sends the
                                                             whole body: empty the part file and
                                                             start over from byte 0
        anything else (another 206, 416, 5xx...)             raise DownloadFailed at once
    - At most `max_attempts` requests in all, the first included; when they are used up, raise
      DownloadFailed (not requests' exception).
    - When all bytes are in, compare the hex digest with `sha256`: on a mismatch delete the part
      file and raise ChecksumMismatch; on a match rename the part file to `dest` and return.
      `dest` must never hold an unverified file.

    >>> download(session, "http://127.0.0.1:8080/big.iso", Path("big.iso"), sha256="9f86d0...")
    Download(path=PosixPath('big.iso'), size=209715200, sha256='9f86d0...', attempts=2)
    """
    # TODO: a loop of attempts; in each, one streamed GET (with a Range header once you have
    #       bytes), check the status, then copy chunks into the part file and the hash. Catch
    #       the mid-body errors to try again; verify, then rename (Path.replace) at the end.
    raise NotImplementedError("download")
