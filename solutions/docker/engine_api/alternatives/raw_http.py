"""The Docker Engine API by hand: HTTP/1.1 over the daemon's unix socket, with only the stdlib."""

from __future__ import annotations

import contextlib
import http.client
import json
import socket
import struct
import urllib.parse
from collections.abc import Iterator
from typing import Any

DEFAULT_SOCKET = "/var/run/docker.sock"
API_VERSION = "1.41"  # Debian 12's docker.io; every path but /version is prefixed /v1.41


class EngineError(Exception):
    """The daemon answered with an error status; `message` is its JSON "message"."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"{status}: {message}")
        self.status = status
        self.message = message


class UnixHTTPConnection(http.client.HTTPConnection):
    """An HTTPConnection whose transport is a unix socket instead of TCP.

    >>> conn = UnixHTTPConnection("/var/run/docker.sock")
    >>> conn.request("GET", "/version"); conn.getresponse().status
    200
    """

    def __init__(self, socket_path: str, timeout: float = 30.0) -> None:
        # the host name only fills the Host header: the daemon ignores it
        super().__init__("localhost", timeout=timeout)
        self.socket_path = socket_path

    def connect(self) -> None:
        """Open self.sock: an AF_UNIX stream socket connected to self.socket_path."""
        # Only the transport changes: http.client writes the request and parses the response
        # (status line, headers, chunked bodies) on whatever self.sock is.
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            sock.connect(self.socket_path)
        except OSError:
            sock.close()
            raise
        self.sock = sock


class _Response:
    """One HTTP/1.1 response read by hand from a socket: status, headers, then the body."""

    def __init__(self, sock: socket.socket) -> None:
        self.file = sock.makefile("rb")
        status_line = self.file.readline().decode("latin-1")
        if not status_line.startswith("HTTP/1."):
            raise http.client.BadStatusLine(status_line)
        self.status = int(status_line.split()[1])
        self.headers: dict[str, str] = {}
        while (line := self.file.readline()) not in (b"\r\n", b"\n", b""):
            name, _, value = line.decode("latin-1").partition(":")
            self.headers[name.strip().lower()] = value.strip()  # header names are case-insensitive

    def chunks(self) -> Iterator[bytes]:
        """The body as it arrives: chunked transfer coding undone, or Content-Length, or to EOF."""
        if self.headers.get("transfer-encoding", "").lower() == "chunked":
            while size := int(self.file.readline().split(b";")[0], 16):
                data = self.file.read(size)
                if len(data) < size:
                    raise http.client.IncompleteRead(data)
                self.file.readline()  # the CRLF after each chunk
                yield data
        elif "content-length" in self.headers:
            yield self.file.read(int(self.headers["content-length"]))
        else:
            while data := self.file.read1(65536):
                yield data

    def body(self) -> bytes:
        return b"".join(self.chunks())


class Engine:
    """The same client with HTTP/1.1 written by hand on a raw unix socket (one per call)."""

    def __init__(self, socket_path: str = DEFAULT_SOCKET, api_version: str = API_VERSION,
                 timeout: float = 30.0) -> None:
        self.socket_path = socket_path
        self.api_version = api_version
        self.timeout = timeout

    @contextlib.contextmanager
    def _exchange(self, method: str, path: str, query: dict[str, str] | None, body: Any,
                  patience: float | None) -> Iterator[_Response]:
        url = path if path == "/version" else f"/v{self.api_version}{path}"
        if query:
            url += "?" + urllib.parse.urlencode(query)
        payload = b"" if body is None else json.dumps(body).encode()
        head = [f"{method} {url} HTTP/1.1", "Host: docker", "Connection: close",
                f"Content-Length: {len(payload)}"]
        if body is not None:
            head.append("Content-Type: application/json")
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(patience)
            sock.connect(self.socket_path)
            sock.sendall(("\r\n".join(head) + "\r\n\r\n").encode() + payload)
            response = _Response(sock)
            try:
                yield response
            finally:
                response.file.close()

    def _json(self, method: str, path: str, query: dict[str, str] | None = None, body: Any = None,
              ok: tuple[int, ...] = (200,), patience: float | None = None) -> Any:
        with self._exchange(method, path, query, body, patience) as response:
            data = response.body()
        if response.status not in ok:
            raise EngineError(response.status, _message(data))
        return json.loads(data) if data else None

    def version(self) -> dict[str, Any]:
        return self._json("GET", "/version", patience=self.timeout)  # type: ignore[no-any-return]

    def containers(self, all: bool = False, labels: dict[str, str] | None = None) -> list[dict[str, Any]]:
        query = {"all": str(int(all))}
        if labels:
            query["filters"] = json.dumps({"label": [f"{k}={v}" for k, v in labels.items()]})
        return self._json("GET", "/containers/json", query, patience=self.timeout)  # type: ignore[no-any-return]

    def create(self, image: str, cmd: list[str], labels: dict[str, str] | None = None,
               name: str | None = None) -> str:
        body = {"Image": image, "Cmd": cmd, "Labels": labels or {}, "HostConfig": {"Init": True}}
        created = self._json("POST", "/containers/create", {"name": name} if name else None, body,
                             ok=(201,), patience=self.timeout)
        return created["Id"]  # type: ignore[no-any-return]

    def start(self, container_id: str) -> None:
        self._json("POST", f"/containers/{container_id}/start", ok=(204, 304), patience=self.timeout)

    def logs(self, container_id: str, follow: bool = True) -> Iterator[tuple[int, bytes]]:
        query = {"stdout": "1", "stderr": "1", "follow": "1" if follow else "0"}
        with self._exchange("GET", f"/containers/{container_id}/logs", query, None, None) as response:
            if response.status != 200:
                raise EngineError(response.status, _message(response.body()))
            pending = bytearray()  # frames do not line up with chunks: cut them from a buffer
            for chunk in response.chunks():
                pending += chunk
                while len(pending) >= 8:
                    stream, length = struct.unpack(">BxxxL", pending[:8])
                    if len(pending) < 8 + length:
                        break
                    yield stream, bytes(pending[8:8 + length])
                    del pending[:8 + length]

    def wait(self, container_id: str) -> int:
        return int(self._json("POST", f"/containers/{container_id}/wait")["StatusCode"])

    def stop(self, container_id: str, timeout: int) -> None:
        self._json("POST", f"/containers/{container_id}/stop", {"t": str(timeout)}, ok=(204, 304),
                   patience=self.timeout + timeout)

    def remove(self, container_id: str, force: bool = False) -> None:
        query = {"v": "1", **({"force": "1"} if force else {})}
        self._json("DELETE", f"/containers/{container_id}", query, ok=(204,), patience=self.timeout)


def _message(data: bytes) -> str:
    try:
        return str(json.loads(data)["message"])
    except (ValueError, KeyError, TypeError):
        return data.decode("utf-8", "replace").strip()
