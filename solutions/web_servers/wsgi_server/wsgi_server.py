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
        tokens = {t.strip().lower() for t in (self.header("Connection") or "").split(",")}
        # HTTP/1.0 clients could ask for keep-alive too, but closing is always allowed and keeps
        # the framing simple: an HTTP/1.0 client can't read chunked bodies.
        return self.version == "HTTP/1.1" and "close" not in tokens


def read_request(rfile: BinaryIO) -> Request | None:
    """Read one request head from `rfile`; None if the client closed the connection first.

    Raises BadRequest: 400 for a malformed request line or header line (or Content-Length), 414
    for a request line over MAX_LINE bytes, 431 for a header line over MAX_LINE bytes or more than
    MAX_HEADERS of them, 505 for an HTTP version other than 1.0 and 1.1, 501 for a body framed by
    Transfer-Encoding.

    >>> read_request(io.BytesIO(b"GET /a?b=1 HTTP/1.1\\r\\nHost: x\\r\\n\\r\\n"))
    Request(method='GET', target='/a?b=1', version='HTTP/1.1', headers=[('Host', 'x')], content_length=0)
    """
    # readline(limit) never reads more than `limit` bytes: a client can't make us buffer an endless
    # line. Blank lines before a request line are ignored (RFC 9112 §2.2).
    while (line := rfile.readline(MAX_LINE + 1)) in (b"\r\n", b"\n"):
        pass
    if not line:
        return None
    if len(line) > MAX_LINE:
        raise BadRequest("414 URI Too Long", f"request line longer than {MAX_LINE} bytes")
    parts = line.rstrip(b"\r\n").split(b" ")
    if not line.endswith(b"\n") or len(parts) != 3:
        raise BadRequest("400 Bad Request", "malformed request line")
    method, target, version = parts
    if not TOKEN.fullmatch(method) or not VERSION.fullmatch(version):
        raise BadRequest("400 Bad Request", "malformed request line")
    if version not in (b"HTTP/1.0", b"HTTP/1.1"):
        raise BadRequest("505 HTTP Version Not Supported", f"{version!r} is not supported")
    if not target.startswith((b"/", b"http://", b"https://")):
        raise BadRequest("400 Bad Request", "the request target must be a path or an absolute URL")

    headers: list[tuple[str, str]] = []
    while True:
        line = rfile.readline(MAX_LINE + 1)
        if len(line) > MAX_LINE:
            # Limits bound the memory a client can make us hold before the app is even called.
            raise BadRequest("431 Request Header Fields Too Large", f"a header line over {MAX_LINE} bytes")
        if not line.endswith(b"\n"):
            raise BadRequest("400 Bad Request", "connection closed inside the header section")
        if line in (b"\r\n", b"\n"):
            break
        if len(headers) == MAX_HEADERS:
            raise BadRequest("431 Request Header Fields Too Large", f"more than {MAX_HEADERS} header lines")
        name, colon, value = line.partition(b":")
        # No whitespace before the colon (RFC 9112 §5.1), no obsolete line folding (§5.2).
        if not colon or not TOKEN.fullmatch(name):
            raise BadRequest("400 Bad Request", f"malformed header line {line[:40]!r}")
        # latin-1 maps every byte to one code point: PEP 3333's "native strings" for headers.
        headers.append((name.decode("latin-1"), value.strip(b" \t\r\n").decode("latin-1")))

    if any(n.lower() == "transfer-encoding" for n, _ in headers):
        raise BadRequest("501 Not Implemented", "request bodies with Transfer-Encoding are not supported")
    lengths = {v.strip() for n, v in headers if n.lower() == "content-length"}
    if len(lengths) > 1 or not all(v.isdigit() and v.isascii() for v in lengths):
        # Disagreeing lengths are how request smuggling starts: refuse, never guess.
        raise BadRequest("400 Bad Request", "invalid Content-Length")
    return Request(
        method.decode("ascii"),
        target.decode("latin-1"),
        version.decode("ascii"),
        headers,
        int(lengths.pop()) if lengths else 0,
    )


class Body:
    """wsgi.input: the request body and not one byte more, since the next request follows it.

    Reads past the end return b"" (PEP 3333: "simulate an end-of-file condition").
    """

    def __init__(self, rfile: BinaryIO, length: int) -> None:
        self._rfile = rfile
        self.remaining = length

    def read(self, size: int | None = None) -> bytes:
        return self._take(self._rfile.read, size)

    def readline(self, size: int | None = None) -> bytes:
        return self._take(self._rfile.readline, size)

    def _take(self, read: Callable[[int], bytes], size: int | None) -> bytes:
        # Never ask the socket for more than what is left of this body: a read past it would
        # block on a keep-alive connection, or swallow the next request.
        limit = self.remaining if size is None or size < 0 else min(size, self.remaining)
        data = read(limit)
        self.remaining -= len(data)
        return data

    def readlines(self, hint: int | None = None) -> list[bytes]:
        """The remaining lines; with a hint > 0, stop once the lines read total `hint` bytes."""
        lines: list[bytes] = []
        total = 0
        for line in self:
            lines.append(line)
            total += len(line)
            if hint is not None and 0 < hint <= total:
                break
        return lines

    def __iter__(self) -> Iterator[bytes]:
        while line := self.readline():
            yield line

    def drain(self) -> bool:
        """Skip what the app left unread; False if too much is left to be worth it (then close)."""
        left = self.remaining
        # Reading a huge unread upload just to keep the connection costs more than a new one.
        # Short: the client closed mid-body.
        return left <= MAX_DRAIN and len(self.read()) == left


def build_environ(
    request: Request, body: Body, server_address: tuple[str, int], client: tuple[Any, ...]
) -> dict[str, Any]:
    """The PEP 3333 environ for `request`."""
    target = request.target
    if target.startswith(("http://", "https://")):  # absolute form, as sent to proxies
        parts = urlsplit(target)
        target = (parts.path or "/") + ("?" + parts.query if parts.query else "")
    path, _, query = target.partition("?")
    environ: dict[str, Any] = {
        "REQUEST_METHOD": request.method,
        "SCRIPT_NAME": "",
        # Percent-decoded bytes as latin-1 code points (PEP 3333): the app (Werkzeug, Django)
        # re-encodes to latin-1 to get the raw bytes back and decodes those as UTF-8 itself.
        "PATH_INFO": unquote(path, encoding="latin-1"),
        "QUERY_STRING": query,  # raw: decoding it is the app's job (parse_qs, Werkzeug)
        "SERVER_NAME": server_address[0],
        "SERVER_PORT": str(server_address[1]),
        "SERVER_PROTOCOL": request.version,
        "REMOTE_ADDR": client[0],
        "REMOTE_PORT": str(client[1]),
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": "http",
        "wsgi.input": body,
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": True,  # a thread per connection: apps must not keep per-process state unguarded
        "wsgi.multiprocess": False,
        "wsgi.run_once": False,
    }
    for name, value in request.headers:
        # CGI's rule: upper case, '-' becomes '_'; the two body headers go without the prefix.
        key = name.upper().replace("-", "_")
        if key not in ("CONTENT_TYPE", "CONTENT_LENGTH"):
            key = "HTTP_" + key
        environ[key] = f"{environ[key]},{value}" if key in environ else value
    return environ


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
        self._chunked = False
        self._due: int | None = None  # body bytes still owed under the app's Content-Length

    def start_response(
        self, status: str, headers: list[tuple[str, str]], exc_info: ExcInfo | None = None
    ) -> Write:
        if exc_info is not None:
            try:
                if self.headers_sent:
                    # Too late to change the status: the error goes back to the app (PEP 3333),
                    # and the half-sent response is cut off by closing the connection.
                    raise exc_info[1].with_traceback(exc_info[2])
            finally:
                exc_info = None  # don't keep a frame <-> traceback cycle alive
        elif self.status is not None:
            raise AssertionError("start_response() called again without exc_info")
        # Only remembered here: nothing is sent until the first non-empty body block, so an app
        # that fails before then can still replace the status (start_response with exc_info).
        self.status = status
        self.headers = list(headers)
        return self.write

    @property
    def full(self) -> bool:
        """True once the app's Content-Length worth of body has been sent."""
        return self._due == 0

    def write(self, data: bytes) -> None:
        """Send one body block (the write() callable of PEP 3333, also used for the iterable)."""
        if self.status is None:
            raise AssertionError("write() before start_response()")
        if not data:
            # Nothing to send: no headers yet, and never an empty chunk, which would be
            # `0\r\n\r\n`, the last-chunk that ends the body.
            return
        out = b"" if self.headers_sent else self._head()
        if self._due is not None:
            data = data[: self._due]  # never more than the Content-Length we announced
            self._due -= len(data)
        if self._chunked:
            data = b"%x\r\n%s\r\n" % (len(data), data)
        self._send(out + data)

    def finish(self) -> None:
        """After the last block: send the head if nothing did, end a chunked body."""
        out = b"" if self.headers_sent else self._head()
        if self._chunked:
            out += b"0\r\n\r\n"
        self._send(out)
        if self._due:
            self.keep_alive = False  # shorter than its Content-Length: only closing can tell

    def _head(self) -> bytes:
        assert self.status is not None
        # 204 and 304 never have a body (RFC 9110 §15.3.5, §15.4.5), so no framing either.
        no_content = self.status.partition(" ")[0] in ("204", "304")
        # Header names are case-insensitive (RFC 9110 §5.1): `content-length` is Content-Length.
        names = {name.lower(): value for name, value in self.headers}
        extra: list[tuple[str, str]] = []
        if "content-length" in names:
            self._due = int(names["content-length"])
        elif not no_content:
            if self._http11:
                # No length known in advance: chunked framing lets the client find the end of
                # the body on a connection that stays open for the next request.
                self._chunked = True
                extra.append(("Transfer-Encoding", "chunked"))
            else:
                self.keep_alive = False  # HTTP/1.0: the body ends where the connection does
        if no_content or self._head_only:
            # HEAD gets the headers GET would get and no body bytes, no chunks; a 204 or 304
            # has no body at all: nothing the app yields is sent.
            self._chunked = False
            self._due = 0
        if "date" not in names:
            extra.append(("Date", formatdate(usegmt=True)))  # RFC 9110 §6.6.1: origin servers send one
        if not self.keep_alive:
            extra.append(("Connection", "close"))  # RFC 9112 §9.6: say so before closing
        lines = [f"HTTP/1.1 {self.status}\r\n"] + [f"{n}: {v}\r\n" for n, v in self.headers + extra]
        self.headers_sent = True
        return ("".join(lines) + "\r\n").encode("latin-1")

    def _send(self, data: bytes) -> None:
        try:
            self._conn.sendall(data)
        except OSError as exc:
            raise ClientGone(str(exc)) from exc


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
        # One lock for the lifecycle: serve_forever and shutdown can't race, and every
        # connection either sees the stop flag or is in `_idle` for shutdown to wake.
        self._lock = threading.Condition()
        self._stopping = False
        self._stopped = threading.Event()  # set while serve_forever() is not running
        self._stopped.set()
        self._connections: set[socket.socket] = set()  # open connections, each with its thread
        self._idle: set[socket.socket] = set()  # the ones waiting for their next request

    def serve_forever(self, poll_interval: float = 0.05) -> None:
        """Accept connections until shutdown() is called, each served by its own thread."""
        with self._lock:
            if self._stopping:
                return
            self._stopped.clear()
        try:
            # select() with a timeout, not a bare accept(): closing a socket doesn't wake a
            # thread blocked in accept(), so the loop polls the stop flag (as socketserver does).
            with selectors.DefaultSelector() as selector:
                selector.register(self._listener, selectors.EVENT_READ)
                while not self._stopping:
                    if selector.select(poll_interval):
                        self._accept()
        finally:
            self._stopped.set()

    def _accept(self) -> None:
        try:
            conn, client = self._listener.accept()
        except OSError:
            return  # the client gave up before we got to it, or we are out of file descriptors
        with self._lock:
            self._connections.add(conn)
        # A daemon thread: an app stuck forever must not keep the process from exiting.
        threading.Thread(
            target=self._serve_connection, args=(conn, client), name=f"wsgi-conn-{client[1]}", daemon=True
        ).start()

    def shutdown(self, timeout: float = 5.0) -> None:
        """Stop accepting, close idle connections, let requests in progress finish (up to
        `timeout` s, then cut them off), close the listening socket; returns once
        serve_forever() has returned."""
        with self._lock:
            self._stopping = True
            for conn in self._idle:
                self._cut(conn)  # wakes the thread blocked reading the next request
        self._stopped.wait()
        self.server_close()
        with self._lock:
            if not self._lock.wait_for(lambda: not self._connections, timeout):
                for conn in self._connections:
                    self._cut(conn)  # a client that stopped reading can't hold us forever

    @staticmethod
    def _cut(conn: socket.socket) -> None:
        with contextlib.suppress(OSError):
            conn.shutdown(socket.SHUT_RDWR)

    def server_close(self) -> None:
        """Release the listening socket (shutdown() does this too)."""
        self._listener.close()

    def _serve_connection(self, conn: socket.socket, client: tuple[Any, ...]) -> None:
        """Serve requests on one connection until either side closes it (keep-alive loop)."""
        try:
            # Small writes (a head, a chunk) must not wait for the client's delayed ACK.
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, True)
            with conn, conn.makefile("rb") as rfile:
                while True:
                    with self._lock:
                        if self._stopping:
                            break
                        self._idle.add(conn)
                    try:
                        request = read_request(rfile)
                    except BadRequest as exc:
                        self._refuse(conn, exc)
                        return
                    finally:
                        with self._lock:
                            self._idle.discard(conn)
                    if request is None or not self._respond(conn, rfile, request, client):
                        return
        except OSError:
            pass  # the client reset the connection: nobody is left to answer
        finally:
            with self._lock:
                self._connections.discard(conn)
                self._lock.notify_all()

    def _respond(
        self, conn: socket.socket, rfile: BinaryIO, request: Request, client: tuple[Any, ...]
    ) -> bool:
        """Run the app for one request; True if the connection can carry the next one."""
        body = Body(rfile, request.content_length)
        environ = build_environ(request, body, self.server_address, client)
        response = Response(conn, request)
        result: Iterable[bytes] | None = None
        try:
            result = self.app(environ, response.start_response)
            for block in result:
                response.write(block)
                if response.full:
                    break  # PEP 3333: stop iterating once Content-Length bytes are out
            response.finish()
        except ClientGone:
            raise  # nobody is left to answer: the connection loop closes the socket
        except Exception:
            traceback.print_exc(file=environ["wsgi.errors"])
            if not response.headers_sent:
                conn.sendall(simple_response("500 Internal Server Error", "Internal Server Error"))
            # Headers already sent: the status can't be taken back, and closing the connection
            # (with no last-chunk, or short of Content-Length) is how the client learns that the
            # body is incomplete.
            response.keep_alive = False
        finally:
            # PEP 3333: close() is called whatever happened (complete, app error, client gone):
            # it is where apps release database connections, files and locks.
            close = getattr(result, "close", None)
            if close is not None:
                try:
                    close()
                except Exception:
                    traceback.print_exc(file=environ["wsgi.errors"])
        # Whatever the app left unread of the body must not be parsed as the next request.
        return response.keep_alive and body.drain()

    @staticmethod
    def _refuse(conn: socket.socket, error: BadRequest) -> None:
        """Answer a request the app never sees, then close without losing the answer."""
        conn.sendall(simple_response(error.status, str(error)))
        # Lingering close: closing with unread input makes the kernel send RST, which can
        # destroy our answer before it has left. Half-close (the client sees the end), then
        # discard what the client still sends until it closes or goes quiet for LINGER s.
        conn.shutdown(socket.SHUT_WR)
        conn.settimeout(LINGER)
        with contextlib.suppress(OSError):
            while conn.recv(io.DEFAULT_BUFFER_SIZE):
                pass
