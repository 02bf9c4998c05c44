"""Streaming download with resume: chunked reads, Range after a broken connection, a verified SHA-256."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

import requests

# What requests raises when the connection breaks: a reset mid-body arrives as
# ChunkedEncodingError (urllib3's ProtocolError), and so does a close before Content-Length bytes
# (IncompleteRead) or before a chunked body's last chunk; a stall mid-body past the read timeout
# as ConnectionError; a refused or reset connection before the answer as ConnectionError; a
# server that says nothing for `timeout` seconds before its headers as ReadTimeout.
# ChunkedEncodingError and ReadTimeout are not ConnectionErrors, so all three must be named.
BROKEN = (requests.ConnectionError, requests.exceptions.ChunkedEncodingError, requests.Timeout)

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
    if max_attempts < 1:
        raise ValueError(f"max_attempts must be at least 1, got {max_attempts}")
    part = part_path(dest)
    digest = hashlib.sha256()
    have = 0  # bytes in the part file, all of them fed to `digest`
    attempts = 0
    with part.open("wb") as out:
        while True:
            if attempts == max_attempts:
                raise DownloadFailed(f"{url}: {have} bytes after {attempts} attempts, giving up")
            attempts += 1
            # Range positions are zero-based and inclusive: with `have` bytes (0 .. have-1) in
            # hand, the next one we need is at position `have`.
            headers = {"Range": f"bytes={have}-"} if have else {}
            try:
                # stream=True: requests returns after the headers and leaves the body on the
                # socket, to be pulled a chunk at a time. `with` closes the connection if we
                # leave mid-body, so a half-read connection never goes back to the pool.
                with session.get(url, headers=headers, stream=True, timeout=timeout) as response:
                    if have and response.status_code == 200:
                        # The server ignored Range: this is the whole body from byte 0, so start
                        # over. Appending it would duplicate the first `have` bytes.
                        out.seek(0)
                        out.truncate()
                        digest, have = hashlib.sha256(), 0
                    elif have:
                        _check_resumed(response, have, url)
                    elif response.status_code != 200:
                        raise DownloadFailed(f"{url}: HTTP {response.status_code}")
                    # One chunk in memory at a time: written, hashed, dropped.
                    for chunk in response.iter_content(chunk_size=chunk_size):
                        out.write(chunk)
                        digest.update(chunk)
                        have += len(chunk)
            except BROKEN:
                continue  # resume from `have` on the next attempt
            break  # the body ended cleanly: urllib3 checked it against Content-Length
    if digest.hexdigest() != sha256:
        # Keep nothing: a corrupt file where the caller expects a good one is worse than none.
        part.unlink()
        raise ChecksumMismatch(f"{url}: SHA-256 {digest.hexdigest()}, expected {sha256}")
    # The rename is atomic: `dest` holds either nothing or the whole verified file, never a
    # half-written one that another process (or a crash) could mistake for the real thing.
    part.replace(dest)
    return Download(path=dest, size=have, sha256=sha256, attempts=attempts)


def _check_resumed(response: requests.Response, have: int, url: str) -> None:
    """A resumed request must answer 206 with exactly the bytes from `have` on (RFC 9110 §14.4)."""
    if response.status_code != 206:
        raise DownloadFailed(f"{url}: HTTP {response.status_code} to Range: bytes={have}-")
    content_range = response.headers.get("Content-Range", "")
    # "bytes 1000-1999/2000": the first position must be ours, or the bytes don't line up.
    match = _CONTENT_RANGE.fullmatch(content_range.strip())
    if match is None or int(match.group(1)) != have:
        raise DownloadFailed(f"{url}: asked for bytes={have}-, got Content-Range {content_range!r}")


# RFC 9110 §14.4: Content-Range = "bytes" SP first-pos "-" last-pos "/" ( complete-length / "*" )
_CONTENT_RANGE = re.compile(r"bytes (\d+)-\d+/(?:\d+|\*)", re.IGNORECASE)
