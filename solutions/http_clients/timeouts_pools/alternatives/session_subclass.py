"""Timeouts and connection pools with requests: connect vs read timeouts, a total deadline, keep-alive."""

from __future__ import annotations

import time

import requests
from requests.adapters import HTTPAdapter
from urllib3.exceptions import ReadTimeoutError

# Read the body in pieces of this many bytes, and check the deadline after each piece.
CHUNK_SIZE = 1024


class ConnectTimedOut(Exception):
    """The TCP handshake did not complete within connect_timeout: the server never saw the request."""


class ReadTimedOut(Exception):
    """Connected, but the server went quiet for longer than read_timeout (before or during the body)."""


class DeadlineExceeded(Exception):
    """The whole exchange took longer than the deadline, although no single wait hit a timeout."""


class PooledSession(requests.Session):
    """A Session that sizes its own pools: the same bounded adapter for both schemes."""

    def __init__(self, pool_size: int) -> None:
        if pool_size < 1:
            raise ValueError(f"pool_size must be at least 1, got {pool_size}")
        super().__init__()
        bounded = HTTPAdapter(pool_connections=32, pool_maxsize=pool_size, pool_block=True)
        self.adapters.clear()
        self.mount("https://", bounded)
        self.mount("http://", bounded)


def make_session(pool_size: int) -> requests.Session:
    """A Session that keeps at most `pool_size` connections per host, for http:// and https://.

    When all `pool_size` connections are busy, another request waits for one to come back; it
    never opens an extra connection. Connections are reused (keep-alive) between requests, and
    each host has a pool of its own (talking to host B doesn't close host A's connections).
    pool_size < 1 raises ValueError (such a pool would make every request wait forever).
    """
    return PooledSession(pool_size)


def _translate(exc: requests.RequestException, url: str) -> Exception:
    """Our exception for a requests one: first match wins, so ConnectTimeout comes before Timeout."""
    if isinstance(exc, requests.ConnectTimeout):
        return ConnectTimedOut(url)
    if isinstance(exc, requests.ReadTimeout):
        return ReadTimedOut(url)
    if isinstance(exc, requests.ConnectionError) and exc.args and isinstance(exc.args[0], ReadTimeoutError):
        return ReadTimedOut(url)  # requests' iter_content wraps a mid-body timeout this way
    return exc


def fetch(
    session: requests.Session,
    url: str,
    *,
    connect_timeout: float,
    read_timeout: float,
    deadline: float,
) -> bytes:
    """GET `url` with `session` and return the body; raise requests.HTTPError for a 4xx/5xx.

    - connect_timeout bounds the TCP handshake -> ConnectTimedOut
    - read_timeout bounds each wait for bytes (the status line, or the next piece of body)
      -> ReadTimedOut
    - deadline bounds the whole call (time.monotonic() from before sending): check it after
      each CHUNK_SIZE piece of body -> DeadlineExceeded (a piece that never completes is the
      read timeout's business)
    The connection must go back to the pool after a full read, and be closed after an error.
    Other errors (connection refused, reset) propagate as requests raises them.

    >>> fetch(session, "http://127.0.0.1:8080/", connect_timeout=1, read_timeout=5, deadline=10)
    b'...'
    """
    deadline_at = time.monotonic() + deadline
    try:
        with session.get(url, timeout=(connect_timeout, read_timeout), stream=True) as response:
            response.raise_for_status()
            body = b""
            for piece in response.iter_content(CHUNK_SIZE):
                body += piece
                if time.monotonic() > deadline_at:
                    raise DeadlineExceeded(url)
            return body
    except requests.HTTPError:
        raise
    except requests.RequestException as exc:
        mine = _translate(exc, url)
        if mine is exc:
            raise
        raise mine from exc
