"""Timeouts and connection pools with requests: connect vs read timeouts, a total deadline, keep-alive."""

from __future__ import annotations

import requests

# Read the body in pieces of this many bytes, and check the deadline after each piece.
CHUNK_SIZE = 1024


class ConnectTimedOut(Exception):
    """The TCP handshake did not complete within connect_timeout: the server never saw the request."""


class ReadTimedOut(Exception):
    """Connected, but the server went quiet for longer than read_timeout (before or during the body)."""


class DeadlineExceeded(Exception):
    """The whole exchange took longer than the deadline, although no single wait hit a timeout."""


def make_session(pool_size: int) -> requests.Session:
    """A Session that keeps at most `pool_size` connections per host, for http:// and https://.

    When all `pool_size` connections are busy, another request waits for one to come back; it
    never opens an extra connection. Connections are reused (keep-alive) between requests, and
    each host has a pool of its own: the pools of at least 10 hosts are kept at once (talking
    to host B doesn't close host A's connections).
    pool_size < 1 raises ValueError (such a pool would make every request wait forever).
    """
    # TODO: mount a requests.adapters.HTTPAdapter configured for this pool on both schemes.
    raise NotImplementedError("make_session")


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
    # TODO: timeouts as one tuple, stream the body and watch the deadline, translate the errors.
    raise NotImplementedError("fetch")
