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


def make_session(pool_size: int) -> requests.Session:
    """A Session that keeps at most `pool_size` connections per host, for http:// and https://.

    When all `pool_size` connections are busy, another request waits for one to come back; it
    never opens an extra connection. Connections are reused (keep-alive) between requests, and
    each host has a pool of its own: the pools of at least 10 hosts are kept at once (talking
    to host B doesn't close host A's connections).
    pool_size < 1 raises ValueError (such a pool would make every request wait forever).
    """
    if pool_size < 1:
        # urllib3 would build a blocking pool with no connection in it: every request would wait
        # forever for one to come back.
        raise ValueError(f"pool_size must be at least 1, got {pool_size}")
    session = requests.Session()
    # pool_maxsize is how many connections urllib3 *keeps* per host. Without pool_block=True it
    # still opens more when they are all busy, and throws the extras away afterwards ("Connection
    # pool is full, discarding connection"): no bound at all on what the server sees.
    # pool_connections (left at its default, 10) is how many hosts' pools are kept: the least
    # recently used is closed, so 1 would reconnect every time the session switched hosts.
    adapter = HTTPAdapter(pool_maxsize=pool_size, pool_block=True)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


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
    started = time.monotonic()
    try:
        # A tuple sets the two timeouts apart; a single number would be used for both, so a
        # patient read timeout would also mean waiting that long on a dead host's handshake.
        # stream=True hands us the body piece by piece, so we can watch the deadline: the read
        # timeout restarts with every byte, and a server dripping a byte at a time never hits it.
        with session.get(url, timeout=(connect_timeout, read_timeout), stream=True) as response:
            # `with` closes the response on any exit: after a full read the connection goes back
            # to the pool; after an error mid-body it is closed, never reused half-read.
            response.raise_for_status()
            body = bytearray()
            for piece in response.iter_content(chunk_size=CHUNK_SIZE):
                body += piece
                elapsed = time.monotonic() - started
                if elapsed > deadline:
                    raise DeadlineExceeded(f"{url}: {elapsed:.2f} s > deadline {deadline} s")
            return bytes(body)
    # ConnectTimeout is also a requests.Timeout (and a ConnectionError): test for it first.
    except requests.ConnectTimeout as exc:
        raise ConnectTimedOut(f"{url}: no TCP handshake within {connect_timeout} s") from exc
    except requests.ReadTimeout as exc:
        raise ReadTimedOut(f"{url}: no response within {read_timeout} s") from exc
    except requests.ConnectionError as exc:
        # A read timeout *while iterating the body* reaches us as requests.ConnectionError
        # wrapping urllib3's ReadTimeoutError (requests' iter_content does that wrapping).
        if any(isinstance(arg, ReadTimeoutError) for arg in exc.args):
            raise ReadTimedOut(f"{url}: body stalled for {read_timeout} s") from exc
        raise
