"""A small threaded HTTP/1.1 server for WSGI applications (PEP 3333) on raw sockets."""

from __future__ import annotations

import contextlib
import socket
import socketserver
import sys
import threading
import traceback
from collections.abc import Callable, Iterable, Iterator
from email.utils import formatdate
from types import TracebackType
from typing import Any, BinaryIO
from urllib.parse import unquote, urlsplit

ExcInfo = tuple[type[BaseException], BaseException, TracebackType | None]
Write = Callable[[bytes], None]
App = Callable[..., Iterable[bytes]]

MAX_LINE = 8190
MAX_HEADERS = 100
MAX_DRAIN = 1 << 20
TCHAR = frozenset(b"!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")


class Refused(Exception):
    def __init__(self, code: int, reason: str) -> None:
        super().__init__(f"{code} {reason}")
        self.status = f"{code} {reason}"


def is_token(data: bytes) -> bool:
    return bool(data) and all(c in TCHAR for c in data)


def parse_head(rfile: BinaryIO) -> tuple[bytes, bytes, bytes, list[tuple[str, str]]] | None:
    """(method, target, version, headers), or None at end-of-file before a request."""
    line = b"\r\n"
    while line in (b"\r\n", b"\n"):
        line = rfile.readline(MAX_LINE + 1)
        if not line:
            return None
    if len(line) > MAX_LINE:
        raise Refused(414, "URI Too Long")
    words = line.rstrip(b"\r\n").split(b" ")
    if not line.endswith(b"\n") or len(words) != 3 or not is_token(words[0]):
        raise Refused(400, "Bad Request")
    method, target, version = words
    if not target.startswith((b"/", b"http://", b"https://")):
        raise Refused(400, "Bad Request")
    if len(version) != 8 or not version.startswith(b"HTTP/") or not version[5:6].isdigit() \
            or version[6:7] != b"." or not version[7:8].isdigit():
        raise Refused(400, "Bad Request")
    if version not in (b"HTTP/1.0", b"HTTP/1.1"):
        raise Refused(505, "HTTP Version Not Supported")
    headers: list[tuple[str, str]] = []
    while (line := rfile.readline(MAX_LINE + 1)) not in (b"\r\n", b"\n"):
        if len(line) > MAX_LINE or (len(headers) >= MAX_HEADERS and line.endswith(b"\n")):
            raise Refused(431, "Request Header Fields Too Large")
        name, colon, value = line.partition(b":")
        if not line.endswith(b"\n") or not colon or not is_token(name):
            raise Refused(400, "Bad Request")
        headers.append((name.decode("latin-1"), value.strip(b" \t\r\n").decode("latin-1")))
    return method, target, version, headers


class Input:
    """wsgi.input over the connection's buffered reader, ending at Content-Length."""

    def __init__(self, rfile: BinaryIO, length: int) -> None:
        self.rfile = rfile
        self.left = length

    def _limit(self, size: int | None) -> int:
        return self.left if size is None or size < 0 or size > self.left else size

    def read(self, size: int | None = None) -> bytes:
        data = self.rfile.read(self._limit(size))
        self.left -= len(data)
        return data

    def readline(self, size: int | None = None) -> bytes:
        data = self.rfile.readline(self._limit(size))
        self.left -= len(data)
        return data

    def readlines(self, hint: int | None = None) -> list[bytes]:
        out: list[bytes] = []
        while line := self.readline():
            out.append(line)
            if hint and hint > 0 and sum(map(len, out)) >= hint:
                break
        return out

    def __iter__(self) -> Iterator[bytes]:
        return iter(self.readline, b"")


class Handler(socketserver.StreamRequestHandler):
    """One connection: the keep-alive loop. The WSGIServer is reachable as self.server.owner."""

    server: _Listener
    disable_nagle_algorithm = True  # small writes must not wait for the client's delayed ACK

    def handle(self) -> None:
        owner = self.server.owner
        conn = self.connection
        with contextlib.suppress(OSError):
            while owner._enter_idle(conn):
                try:
                    head = parse_head(self.rfile)
                except Refused as refused:
                    owner._leave_idle(conn)
                    self._refuse(refused.status)
                    return
                owner._leave_idle(conn)
                if head is None or not self._one(head):
                    return

    def _refuse(self, status: str) -> None:
        body = status.encode() + b"\n"
        self.connection.sendall(
            f"HTTP/1.1 {status}\r\nContent-Length: {len(body)}\r\nContent-Type: text/plain\r\n"
            f"Date: {formatdate(usegmt=True)}\r\nConnection: close\r\n\r\n".encode() + body
        )
        self.connection.shutdown(socket.SHUT_WR)
        self.connection.settimeout(1.0)
        while self.connection.recv(65536):
            pass

    def _one(self, head: tuple[bytes, bytes, bytes, list[tuple[str, str]]]) -> bool:
        method, target, version, headers = head
        folded: dict[str, list[str]] = {}
        for name, value in headers:
            folded.setdefault(name.lower(), []).append(value)
        if "transfer-encoding" in folded:
            self._refuse("501 Not Implemented")
            return False
        lengths = set(folded.get("content-length", []))
        if len(lengths) > 1 or not all(v.isascii() and v.isdigit() for v in lengths):
            self._refuse("400 Bad Request")
            return False
        length = int(lengths.pop()) if lengths else 0
        http11 = version == b"HTTP/1.1"
        keep = http11 and "close" not in ",".join(folded.get("connection", [])).lower().replace(" ", "").split(",")
        body = Input(self.rfile, length)
        environ = self._environ(method.decode(), target.decode("latin-1"), version.decode(), headers, body)
        state: dict[str, Any] = {"head": None, "sent": False, "chunked": False, "left": None, "keep": keep}
        send = self.connection.sendall

        def start_response(status: str, response_headers: list[tuple[str, str]],
                           exc_info: ExcInfo | None = None) -> Write:
            if exc_info and state["sent"]:
                raise exc_info[1].with_traceback(exc_info[2])
            if state["head"] is not None and not exc_info:
                raise AssertionError("start_response called twice")
            state["head"] = (status, list(response_headers))
            return write

        def head_bytes() -> bytes:
            status, response_headers = state["head"]
            names = {n.lower(): v for n, v in response_headers}
            added = []
            empty = method == b"HEAD" or status[:3] in ("204", "304")
            if "content-length" in names:
                state["left"] = int(names["content-length"])
            elif status[:3] not in ("204", "304"):
                if http11:
                    state["chunked"] = True
                    added.append(("Transfer-Encoding", "chunked"))
                else:
                    state["keep"] = False
            if empty:
                state["chunked"], state["left"] = False, 0
            if "date" not in names:
                added.append(("Date", formatdate(usegmt=True)))
            if not state["keep"]:
                added.append(("Connection", "close"))
            state["sent"] = True
            lines = [f"HTTP/1.1 {status}\r\n", *(f"{n}: {v}\r\n" for n, v in [*response_headers, *added]), "\r\n"]
            return "".join(lines).encode("latin-1")

        def write(data: bytes) -> None:
            if state["head"] is None:
                raise AssertionError("write() before start_response()")
            if not data:
                return
            prefix = b"" if state["sent"] else head_bytes()
            if state["left"] is not None:
                data = data[: state["left"]]
                state["left"] -= len(data)
            if state["chunked"] and data:
                data = b"%x\r\n" % len(data) + data + b"\r\n"
            send(prefix + data)

        result: Any = None
        try:
            result = self.server.owner.app(environ, start_response)
            for block in result:
                write(block)
                if state["left"] == 0:
                    break
            tail = b"" if state["sent"] else head_bytes()
            send(tail + (b"0\r\n\r\n" if state["chunked"] else b""))
            if state["left"]:
                state["keep"] = False
        except OSError:
            raise
        except Exception:
            traceback.print_exc(file=environ["wsgi.errors"])
            if not state["sent"]:
                self._refuse("500 Internal Server Error")
            return False
        finally:
            if hasattr(result, "close"):
                try:
                    result.close()
                except Exception:
                    traceback.print_exc(file=environ["wsgi.errors"])
        unread = body.left
        if not state["keep"] or unread > MAX_DRAIN:
            return False
        return len(body.read()) == unread  # short: the client closed mid-body

    def _environ(self, method: str, target: str, version: str, headers: list[tuple[str, str]],
                 body: Input) -> dict[str, Any]:
        if not target.startswith("/"):
            parts = urlsplit(target)
            target = (parts.path or "/") + ("?" + parts.query if parts.query else "")
        path, _, query = target.partition("?")
        host, port = self.server.owner.server_address
        environ: dict[str, Any] = {
            "REQUEST_METHOD": method, "SCRIPT_NAME": "", "PATH_INFO": unquote(path, encoding="latin-1"),
            "QUERY_STRING": query, "SERVER_NAME": host, "SERVER_PORT": str(port), "SERVER_PROTOCOL": version,
            "REMOTE_ADDR": self.client_address[0], "REMOTE_PORT": str(self.client_address[1]),
            "wsgi.version": (1, 0), "wsgi.url_scheme": "http", "wsgi.input": body, "wsgi.errors": sys.stderr,
            "wsgi.multithread": True, "wsgi.multiprocess": False, "wsgi.run_once": False,
        }
        for name, value in headers:
            key = name.upper().replace("-", "_")
            if key not in ("CONTENT_TYPE", "CONTENT_LENGTH"):
                key = f"HTTP_{key}"
            environ[key] = f"{environ[key]},{value}" if key in environ else value
        return environ


class _Listener(socketserver.ThreadingTCPServer):
    daemon_threads = True  # a stuck app must not keep the process alive
    block_on_close = False
    owner: WSGIServer

    def process_request(self, request: Any, client_address: Any) -> None:
        self.owner._opened(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        try:
            super().shutdown_request(request)
        finally:
            self.owner._closed(request)


class WSGIServer:
    """socketserver's threading TCP server underneath; WSGI and HTTP framing on top."""

    def __init__(self, app: App, host: str = "127.0.0.1", port: int = 0) -> None:
        self.app = app
        self._listener = _Listener((host, port), Handler)
        self._listener.owner = self
        self.server_address: tuple[str, int] = self._listener.server_address[:2]  # type: ignore[assignment]
        self._cond = threading.Condition()
        self._open: set[socket.socket] = set()
        self._idle: set[socket.socket] = set()
        self._stopping = False
        self._serving = False

    def serve_forever(self, poll_interval: float = 0.05) -> None:
        with self._cond:
            if self._stopping:
                return
            self._serving = True
        try:
            self._listener.serve_forever(poll_interval)
        finally:
            with self._cond:
                self._serving = False
                self._cond.notify_all()

    def shutdown(self, timeout: float = 5.0) -> None:
        with self._cond:
            self._stopping = True
            for conn in self._idle:
                with contextlib.suppress(OSError):
                    conn.shutdown(socket.SHUT_RDWR)
            serving = self._serving
        if serving:
            self._listener.shutdown()  # socketserver's: returns once serve_forever has stopped
        with self._cond:
            self._cond.wait_for(lambda: not self._serving)
        self.server_close()
        with self._cond:
            if not self._cond.wait_for(lambda: not self._open, timeout):
                for conn in self._open:
                    with contextlib.suppress(OSError):
                        conn.shutdown(socket.SHUT_RDWR)

    def server_close(self) -> None:
        self._listener.socket.close()

    def _opened(self, conn: socket.socket) -> None:
        with self._cond:
            self._open.add(conn)

    def _closed(self, conn: socket.socket) -> None:
        with self._cond:
            self._open.discard(conn)
            self._cond.notify_all()

    def _enter_idle(self, conn: socket.socket) -> bool:
        with self._cond:
            if self._stopping:
                return False
            self._idle.add(conn)
            return True

    def _leave_idle(self, conn: socket.socket) -> None:
        with self._cond:
            self._idle.discard(conn)
