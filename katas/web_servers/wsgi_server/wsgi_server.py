"""A small threaded HTTP/1.1 server for WSGI applications (PEP 3333) on raw sockets."""

from __future__ import annotations

import contextlib
import io
import re
import selectors
import socket
import sys
import threading
import traceback
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from email.utils import formatdate
from types import TracebackType
from typing import Any, BinaryIO
from urllib.parse import unquote, urlsplit

ExcInfo = tuple[type[BaseException], BaseException, TracebackType | None]
Write = Callable[[bytes], None]
StartResponse = Callable[..., Write]
App = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]

MAX_LINE = 8190  # bytes in the request line or one header line (gunicorn's limit_request_field_size)
MAX_HEADERS = 100  # header lines per request (gunicorn's limit_request_fields)
MAX_DRAIN = 1 << 20  # unread body bytes worth skipping to keep a connection; more: close it
LINGER = 1.0  # seconds of silence after which a refused client's input is no longer drained
TOKEN = re.compile(rb"[!#$%&'*+.^_`|~0-9A-Za-z-]+")  # RFC 9110 §5.6.2: methods and header names
VERSION = re.compile(rb"HTTP/[0-9]\.[0-9]")


class BadRequest(Exception):
    """The request can't be served: answer `status` (e.g. "400 Bad Request") and close."""

    def __init__(self, status: str, why: str) -> None:
        super().__init__(why)
        self.status = status


@dataclass
class Request:
    """One parsed request head: what came before the blank line."""

    method: str
    target: str
    version: str  # "HTTP/1.0" or "HTTP/1.1"
    headers: list[tuple[str, str]]  # in arrival order, names as sent
    content_length: int  # 0 when the request has no body

    def header(self, name: str) -> str | None:
        """The value of header `name` (any case), repeated headers joined with ","."""
        values = [v for n, v in self.headers if n.lower() == name.lower()]
        return ",".join(values) if values else None

    @property
    def keep_alive(self) -> bool:
        """HTTP/1.1 keeps the connection unless the client says `Connection: close`."""
        # TODO: look at the version and the tokens of the Connection header. (An HTTP/1.0
        # client can't read chunked bodies: simplest to close after each of its requests.)
        raise NotImplementedError("Request.keep_alive")


def read_request(rfile: BinaryIO) -> Request | None:
    """Read one request head from `rfile`; None if the client closed the connection first.

    Raises BadRequest: 400 for a malformed request line or header line (or Content-Length), 414
    for a request line over MAX_LINE bytes, 431 for a header line over MAX_LINE bytes or more than
    MAX_HEADERS of them, 505 for an HTTP version other than 1.0 and 1.1, 501 for a body framed by
    Transfer-Encoding.

    >>> read_request(io.BytesIO(b"GET /a?b=1 HTTP/1.1\\r\\nHost: x\\r\\n\\r\\n"))
    Request(method='GET', target='/a?b=1', version='HTTP/1.1', headers=[('Host', 'x')], content_length=0)
    """
    # TODO: the request line: exactly `METHOD SP target SP HTTP/x.y CRLF`. rfile.readline(limit)
    # never reads more than `limit` bytes, so a client can't make you buffer an endless line.
    # TODO: header lines until the empty line: `name: value`, names compared case-insensitively
    # later, values stripped of surrounding whitespace; decode with latin-1 (PEP 3333).
    # TODO: Content-Length: digits only, one value; refuse what you can't frame (Transfer-Encoding).
    raise NotImplementedError("read_request")


class Body:
    """wsgi.input: the request body and not one byte more, since the next request follows it.

    Reads past the end return b"" (PEP 3333: "simulate an end-of-file condition").
    """

    def __init__(self, rfile: BinaryIO, length: int) -> None:
        self._rfile = rfile
        self.remaining = length

    def read(self, size: int | None = None) -> bytes:
        # TODO: as io.BytesIO(body).read(size) would (None or < 0: the rest), and never ask rfile
        # for more than `remaining` bytes (a read past the body would block on a keep-alive
        # connection, or swallow the next request).
        raise NotImplementedError("Body.read")

    def readline(self, size: int | None = None) -> bytes:
        # TODO: the same limit for readline.
        raise NotImplementedError("Body.readline")

    def readlines(self, hint: int | None = None) -> list[bytes]:
        """The remaining lines; with a hint > 0, stop once the lines read total `hint` bytes."""
        # TODO: readline() until b"" (or until the lines read total `hint` bytes, if hint > 0).
        raise NotImplementedError("Body.readlines")

    def __iter__(self) -> Iterator[bytes]:
        # TODO: yield lines until b"".
        raise NotImplementedError("Body.__iter__")

    def drain(self) -> bool:
        """Skip what the app left unread; False if too much is left to be worth it (then close)."""
        # TODO: read and discard `remaining` bytes if there are at most MAX_DRAIN of them; False if
        # more, or if the client closed before sending them all.
        raise NotImplementedError("Body.drain")


def build_environ(
    request: Request, body: Body, server_address: tuple[str, int], client: tuple[Any, ...]
) -> dict[str, Any]:
    """The PEP 3333 environ for `request`."""
    # TODO: see the contract table in README.md: REQUEST_METHOD, SCRIPT_NAME, PATH_INFO
    # (percent-decoded, latin-1), QUERY_STRING (raw), SERVER_*, REMOTE_*, the wsgi.* keys, and one
    # key per header: HTTP_ + upper case with '-' -> '_' (CONTENT_TYPE, CONTENT_LENGTH unprefixed).
    raise NotImplementedError("build_environ")


class ClientGone(ConnectionError):
    """Sending to the client failed: it closed or reset the connection."""


class Response:
    """One response on the wire: the status line and headers wait for the first body byte."""

    def __init__(self, conn: socket.socket, request: Request) -> None:
        self._conn = conn
        self._head_only = request.method == "HEAD"
        self._http11 = request.version == "HTTP/1.1"
        self.keep_alive = request.keep_alive
        self.status: str | None = None
        self.headers: list[tuple[str, str]] = []
        self.headers_sent = False
        # TODO: whatever write() needs to frame the body (chunked? bytes still due?).

    def start_response(
        self, status: str, headers: list[tuple[str, str]], exc_info: ExcInfo | None = None
    ) -> Write:
        # TODO: with exc_info: re-raise it if the headers are already out, else replace status
        # and headers. Without: a second call is an error. Send nothing here. Return self.write.
        raise NotImplementedError("Response.start_response")

    def write(self, data: bytes) -> None:
        """Send one body block (the write() callable of PEP 3333, also used for the iterable)."""
        # TODO: the head goes out with the first non-empty block; then the block, framed:
        # as is under the app's Content-Length (never past it; header names in any case), else
        # `<hex size>\r\n<data>\r\n` (chunked). Nothing for HEAD, 204 and 304.
        raise NotImplementedError("Response.write")

    def finish(self) -> None:
        """After the last block: send the head if nothing did, end a chunked body."""
        # TODO: an empty body still needs its head; a chunked body needs its last-chunk.
        raise NotImplementedError("Response.finish")


def simple_response(status: str, text: str) -> bytes:
    """A whole response with a plain-text body, for errors the app never sees."""
    body = text.encode() + b"\n"
    return (
        f"HTTP/1.1 {status}\r\nContent-Type: text/plain\r\nContent-Length: {len(body)}\r\n"
        f"Date: {formatdate(usegmt=True)}\r\nConnection: close\r\n\r\n"
    ).encode("latin-1") + body


class WSGIServer:
    """Serves a WSGI app over HTTP/1.1 on (host, port), one thread per connection.

    >>> server = WSGIServer(app)             # port 0: the OS picks a free port
    >>> host, port = server.server_address
    >>> threading.Thread(target=server.serve_forever).start()
    >>> server.shutdown()                    # from another thread: stop, close, wait
    """

    def __init__(self, app: App, host: str = "127.0.0.1", port: int = 0) -> None:
        self.app = app
        self._listener = socket.create_server((host, port))
        address = self._listener.getsockname()
        self.server_address: tuple[str, int] = (address[0], address[1])
        # TODO: what serve_forever(), shutdown() and the connection threads share: a lock, a
        # stop flag, the open connections and which of them wait for their next request.

    def serve_forever(self, poll_interval: float = 0.05) -> None:
        """Accept connections until shutdown() is called, each served by its own thread."""
        # TODO: accept in a loop that notices shutdown() (closing a socket doesn't wake a thread
        # blocked in accept(): select() with a timeout does); start a thread per connection.
        raise NotImplementedError("WSGIServer.serve_forever")

    def shutdown(self, timeout: float = 5.0) -> None:
        """Stop accepting, close idle connections, let requests in progress finish (up to
        `timeout` s, then cut them off), close the listening socket; returns once
        serve_forever() has returned."""
        # TODO: calling it twice, from two threads, or before serve_forever() started, must not
        # hang. Connection threads are daemon threads, so a stuck app can't block the exit.
        raise NotImplementedError("WSGIServer.shutdown")

    def server_close(self) -> None:
        """Release the listening socket (shutdown() does this too)."""
        self._listener.close()

    def _serve_connection(self, conn: socket.socket, client: tuple[Any, ...]) -> None:
        """Serve requests on one connection until either side closes it (keep-alive loop)."""
        # TODO: read_request() in a loop on conn.makefile("rb"); BadRequest -> answer it
        # (simple_response) and close; None -> the client is gone; otherwise _respond(), and go
        # on if it says so. OSError here means the client vanished: end quietly.
        raise NotImplementedError("WSGIServer._serve_connection")

    def _respond(
        self, conn: socket.socket, rfile: BinaryIO, request: Request, client: tuple[Any, ...]
    ) -> bool:
        """Run the app for one request; True if the connection can carry the next one."""
        # TODO: call the app, write each block (stop once Content-Length bytes are out), finish.
        # An exception before the head went out: 500, then close. After: close the connection.
        # In every case, call the iterable's close(); log tracebacks to environ["wsgi.errors"].
        raise NotImplementedError("WSGIServer._respond")
