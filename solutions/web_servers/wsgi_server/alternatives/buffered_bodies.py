"""A small threaded HTTP/1.1 server for WSGI applications (PEP 3333) on raw sockets."""

from __future__ import annotations

import contextlib
import io
import re
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

MAX_LINE = 8190
MAX_HEADERS = 100
MAX_DRAIN = 1 << 20  # bodies up to this size are read into memory before the app runs
LINGER = 1.0
TOKEN = re.compile(rb"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
REQUEST_LINE = re.compile(rb"([^ ]+) ([^ ]+) (HTTP/\d\.\d)\r?\n")


class BadRequest(Exception):
    """The request can't be served: answer `status` and close."""

    def __init__(self, status: str, why: str) -> None:
        super().__init__(why)
        self.status = status


@dataclass
class Request:
    method: str
    target: str
    version: str
    headers: list[tuple[str, str]]
    content_length: int

    def header(self, name: str) -> str | None:
        values = [v for n, v in self.headers if n.lower() == name.lower()]
        return ",".join(values) if values else None

    @property
    def keep_alive(self) -> bool:
        tokens = [t.strip().lower() for t in (self.header("connection") or "").split(",")]
        return self.version == "HTTP/1.1" and "close" not in tokens


def read_request(rfile: BinaryIO) -> Request | None:
    """One request head, parsed with a regular expression for the request line."""
    while True:
        line = rfile.readline(MAX_LINE + 1)
        if not line:
            return None
        if line.strip(b"\r\n"):
            break
    if len(line) > MAX_LINE:
        raise BadRequest("414 URI Too Long", "request line too long")
    match = REQUEST_LINE.fullmatch(line)
    if not match or not TOKEN.fullmatch(match[1]) or not match[2].startswith((b"/", b"http://", b"https://")):
        raise BadRequest("400 Bad Request", "malformed request line")
    if match[3] not in (b"HTTP/1.0", b"HTTP/1.1"):
        raise BadRequest("505 HTTP Version Not Supported", "only HTTP/1.0 and HTTP/1.1")
    headers = []
    for count in range(MAX_HEADERS + 1):
        line = rfile.readline(MAX_LINE + 1)
        if len(line) > MAX_LINE:
            raise BadRequest("431 Request Header Fields Too Large", "header line too long")
        if not line.endswith(b"\n"):
            raise BadRequest("400 Bad Request", "truncated header section")
        if line.strip(b"\r\n") == b"":
            break
        if count == MAX_HEADERS:
            raise BadRequest("431 Request Header Fields Too Large", "too many header lines")
        name, colon, value = line.partition(b":")
        if not colon or not TOKEN.fullmatch(name):
            raise BadRequest("400 Bad Request", "malformed header line")
        headers.append((name.decode("latin-1"), value.strip(b" \t\r\n").decode("latin-1")))
    lowered = [(n.lower(), v) for n, v in headers]
    if any(n == "transfer-encoding" for n, _ in lowered):
        raise BadRequest("501 Not Implemented", "Transfer-Encoding bodies are not read")
    lengths = {v for n, v in lowered if n == "content-length"}
    if len(lengths) > 1 or any(not re.fullmatch(r"[0-9]+", v) for v in lengths):
        raise BadRequest("400 Bad Request", "bad Content-Length")
    return Request(match[1].decode(), match[2].decode("latin-1"), match[3].decode(), headers,
                   int(next(iter(lengths), "0")))


class Streamed(io.RawIOBase):
    """A large body read straight from the socket, never past its end (a raw stream, buffered below)."""

    def __init__(self, rfile: BinaryIO, length: int) -> None:
        self._rfile = rfile
        self.left = length

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self._rfile.read(min(len(buffer), self.left))
        buffer[: len(data)] = data
        self.left -= len(data)
        return len(data)


class LargeBody(io.BufferedReader):
    """io.BufferedReader refuses read(-2); wsgi.input reads the rest for any negative size."""

    def read(self, size: int | None = -1) -> bytes:
        return super().read(None if size is None or size < 0 else size)


def open_body(rfile: BinaryIO, length: int) -> tuple[BinaryIO, Streamed | None]:
    """wsgi.input: a BytesIO for bodies up to MAX_DRAIN (read before the app runs), else a stream."""
    if length <= MAX_DRAIN:
        data = rfile.read(length)
        if len(data) < length:
            raise ConnectionError("the client closed inside the body")
        return io.BytesIO(data), None
    raw = Streamed(rfile, length)
    return LargeBody(raw), raw


def environ_for(request: Request, stream: BinaryIO, server: tuple[str, int], client: tuple[Any, ...]) -> dict[str, Any]:
    target = request.target
    if not target.startswith("/"):
        split = urlsplit(target)
        target = (split.path or "/") + (f"?{split.query}" if split.query else "")
    path, _, query = target.partition("?")
    environ: dict[str, Any] = {
        "REQUEST_METHOD": request.method, "SCRIPT_NAME": "", "PATH_INFO": unquote(path, "latin-1"),
        "QUERY_STRING": query, "SERVER_NAME": server[0], "SERVER_PORT": str(server[1]),
        "SERVER_PROTOCOL": request.version, "REMOTE_ADDR": client[0], "REMOTE_PORT": str(client[1]),
        "wsgi.version": (1, 0), "wsgi.url_scheme": "http", "wsgi.input": stream, "wsgi.errors": sys.stderr,
        "wsgi.multithread": True, "wsgi.multiprocess": False, "wsgi.run_once": False,
    }
    for name, value in request.headers:
        key = name.upper().replace("-", "_")
        key = key if key in ("CONTENT_TYPE", "CONTENT_LENGTH") else "HTTP_" + key
        environ[key] = environ[key] + "," + value if key in environ else value
    return environ


class Exchange:
    """start_response, write and the framing of one response."""

    def __init__(self, conn: socket.socket, request: Request) -> None:
        self.conn = conn
        self.request = request
        self.keep_alive = request.keep_alive
        self.pending: tuple[str, list[tuple[str, str]]] | None = None
        self.sent_head = False
        self.mode = "raw"  # "raw", "chunked" or "none"
        self.budget: int | None = None

    def start_response(self, status: str, headers: list[tuple[str, str]], exc_info: ExcInfo | None = None) -> Write:
        if exc_info is not None and self.sent_head:
            raise exc_info[1].with_traceback(exc_info[2])
        if exc_info is None and self.pending is not None:
            raise AssertionError("start_response called twice")
        self.pending = (status, list(headers))
        return self.write

    def write(self, data: bytes) -> None:
        if self.pending is None:
            raise AssertionError("write() before start_response()")
        if data:
            self._emit(data)

    def done(self) -> bool:
        return self.budget == 0

    def close_body(self) -> None:
        self._emit(b"", last=True)
        if self.budget:
            self.keep_alive = False

    def _emit(self, data: bytes, last: bool = False) -> None:
        out = bytearray()
        if not self.sent_head:
            out += self._head()
        if self.budget is not None:
            data = data[: self.budget]
            self.budget -= len(data)
        if data and self.mode == "chunked":
            out += f"{len(data):x}\r\n".encode() + data + b"\r\n"
        else:
            out += data
        if last and self.mode == "chunked":
            out += b"0\r\n\r\n"
        try:
            self.conn.sendall(out)
        except OSError as exc:
            raise ConnectionAbortedError("client gone") from exc

    def _head(self) -> bytes:
        assert self.pending is not None
        status, headers = self.pending
        lower = {n.lower() for n, _ in headers}
        bodiless = status.split(" ", 1)[0] in {"204", "304"}
        extra = []
        if "content-length" in lower:
            self.budget = int(next(v for n, v in headers if n.lower() == "content-length"))
        elif bodiless:
            pass
        elif self.request.version == "HTTP/1.1":
            self.mode = "chunked"
            extra.append("Transfer-Encoding: chunked")
        else:
            self.keep_alive = False
        if bodiless or self.request.method == "HEAD":
            self.mode, self.budget = "none", 0
        if "date" not in lower:
            extra.append("Date: " + formatdate(usegmt=True))
        if not self.keep_alive:
            extra.append("Connection: close")
        self.sent_head = True
        lines = [f"HTTP/1.1 {status}", *(f"{n}: {v}" for n, v in headers), *extra]
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def refusal(status: str, why: str) -> bytes:
    body = why.encode() + b"\n"
    return (f"HTTP/1.1 {status}\r\nContent-Type: text/plain\r\nContent-Length: {len(body)}\r\n"
            f"Date: {formatdate(usegmt=True)}\r\nConnection: close\r\n\r\n").encode() + body


class WSGIServer:
    """Blocks in accept(); shutdown() wakes it by shutting the listening socket down."""

    def __init__(self, app: App, host: str = "127.0.0.1", port: int = 0) -> None:
        self.app = app
        self._listener = socket.create_server((host, port))
        self.server_address: tuple[str, int] = self._listener.getsockname()[:2]
        self._state = threading.Condition()
        self._closing = False
        self._loop_done = threading.Event()
        self._loop_done.set()
        self._busy: dict[socket.socket, bool] = {}  # connection -> is a request in progress

    def serve_forever(self, poll_interval: float = 0.05) -> None:
        with self._state:
            if self._closing:
                return
            self._loop_done.clear()
        try:
            while True:
                try:
                    conn, client = self._listener.accept()
                except OSError:
                    if self._closing:
                        return
                    continue  # e.g. out of file descriptors: try again
                with self._state:
                    if self._closing:
                        conn.close()
                        return
                    self._busy[conn] = False
                threading.Thread(target=self._connection, args=(conn, client), daemon=True).start()
        finally:
            self._loop_done.set()

    def shutdown(self, timeout: float = 5.0) -> None:
        with self._state:
            self._closing = True
            for conn, busy in self._busy.items():
                if not busy:
                    with contextlib.suppress(OSError):
                        conn.shutdown(socket.SHUT_RDWR)
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)  # wakes accept() (Linux)
        self._loop_done.wait()
        self.server_close()
        with self._state:
            if not self._state.wait_for(lambda: not self._busy, timeout):
                for conn in self._busy:
                    with contextlib.suppress(OSError):
                        conn.shutdown(socket.SHUT_RDWR)

    def server_close(self) -> None:
        self._listener.close()

    def _set_busy(self, conn: socket.socket, busy: bool) -> bool:
        with self._state:
            if self._closing and not busy:
                return False
            self._busy[conn] = busy
            return True

    def _connection(self, conn: socket.socket, client: tuple[Any, ...]) -> None:
        try:
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with conn, conn.makefile("rb") as rfile:
                while self._set_busy(conn, False):
                    try:
                        request = read_request(rfile)
                    except BadRequest as exc:
                        conn.sendall(refusal(exc.status, str(exc)))
                        conn.shutdown(socket.SHUT_WR)
                        conn.settimeout(LINGER)
                        with contextlib.suppress(OSError):
                            while conn.recv(65536):
                                pass
                        return
                    if request is None or not self._set_busy(conn, True):
                        return
                    if not self._exchange(conn, rfile, request, client):
                        return
        except OSError:
            pass
        finally:
            with self._state:
                self._busy.pop(conn, None)
                self._state.notify_all()

    def _exchange(self, conn: socket.socket, rfile: BinaryIO, request: Request, client: tuple[Any, ...]) -> bool:
        stream, streamed = open_body(rfile, request.content_length)
        environ = environ_for(request, stream, self.server_address, client)
        exchange = Exchange(conn, request)
        iterable: Any = None
        try:
            iterable = self.app(environ, exchange.start_response)
            blocks: Iterator[bytes] = iter(iterable)
            while not exchange.done():
                block = next(blocks, None)
                if block is None:
                    break
                exchange.write(block)
            exchange.close_body()
        except ConnectionAbortedError:
            raise
        except Exception:
            traceback.print_exc(file=sys.stderr)
            if not exchange.sent_head:
                conn.sendall(refusal("500 Internal Server Error", "Internal Server Error"))
            exchange.keep_alive = False
        finally:
            if hasattr(iterable, "close"):
                try:
                    iterable.close()
                except Exception:
                    traceback.print_exc(file=sys.stderr)
        if streamed is not None and exchange.keep_alive:
            # A large body: skip what the app left unread, unless that is itself too much.
            if streamed.left > MAX_DRAIN:
                return False
            stream.read()
        return exchange.keep_alive
