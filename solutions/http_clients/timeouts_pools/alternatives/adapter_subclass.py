"""Timeouts and connection pools with requests: connect vs read timeouts, a total deadline, keep-alive."""

from __future__ import annotations

import time

import requests
import urllib3
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


class BoundedAdapter(HTTPAdapter):
    """An adapter whose per-host pools block when full: the bound is the adapter's own policy."""

    def init_poolmanager(self, connections: int, maxsize: int, block: bool = False, **kwargs: object) -> None:
        super().init_poolmanager(connections, maxsize, block=True, **kwargs)  # type: ignore[arg-type]


def make_session(pool_size: int) -> requests.Session:
    """A Session that keeps at most `pool_size` connections per host, for http:// and https://.

    When all `pool_size` connections are busy, another request waits for one to come back; it
    never opens an extra connection. Connections are reused (keep-alive) between requests, and
    each host has a pool of its own (talking to host B doesn't close host A's connections).
    pool_size < 1 raises ValueError (such a pool would make every request wait forever).
    """
    if pool_size < 1:
        raise ValueError(f"pool_size must be at least 1, got {pool_size}")
    session = requests.Session()
    adapter = BoundedAdapter(pool_maxsize=pool_size)
    for scheme in ("http://", "https://"):
        session.mount(scheme, adapter)
    return session


def _caused_by(exc: BaseException, kind: type[BaseException]) -> bool:
    """True if `kind` is anywhere in the chain of causes and contexts behind `exc`."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, kind) or any(isinstance(arg, kind) for arg in current.args):
            return True
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return False


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
    response: requests.Response | None = None
    finished = False
    try:
        response = session.get(
            url, timeout=urllib3.Timeout(connect=connect_timeout, read=read_timeout), stream=True
        )
        response.raise_for_status()
        pieces = []
        for piece in response.iter_content(chunk_size=CHUNK_SIZE):
            pieces.append(piece)
            if time.monotonic() - started > deadline:
                raise DeadlineExceeded(f"{url}: over the {deadline} s deadline")
        finished = True
        return b"".join(pieces)
    except requests.ConnectTimeout as exc:
        raise ConnectTimedOut(f"{url}: no handshake within {connect_timeout} s") from exc
    except requests.ConnectionError as exc:
        if _caused_by(exc, ReadTimeoutError):
            raise ReadTimedOut(f"{url}: body stalled for {read_timeout} s") from exc
        raise
    except requests.ReadTimeout as exc:
        raise ReadTimedOut(f"{url}: no answer within {read_timeout} s") from exc
    finally:
        # A full read already handed the connection back; anything else closes it for good.
        if response is not None and not finished:
            response.close()
