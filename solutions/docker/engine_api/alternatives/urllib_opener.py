"""The Docker Engine API by hand: HTTP/1.1 over the daemon's unix socket, with only the stdlib."""

from __future__ import annotations

import http.client
import json
import socket
import struct
import urllib.error
import urllib.parse
import urllib.request
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


class _UnixSocketHandler(urllib.request.AbstractHTTPHandler):
    """Lets urllib open http:// URLs over the daemon's unix socket (the host part is ignored)."""

    def __init__(self, socket_path: str) -> None:
        super().__init__()
        self.socket_path = socket_path

    def http_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
        def connection(host: str, timeout: float | None = None, **_: Any) -> UnixHTTPConnection:
            return UnixHTTPConnection(self.socket_path, timeout=timeout)  # type: ignore[arg-type]
        return self.do_open(connection, req)  # type: ignore[arg-type]

    http_request = urllib.request.AbstractHTTPHandler.do_request_


class Engine:
    """The same client on urllib: an opener whose only handler speaks HTTP over the unix socket."""

    def __init__(self, socket_path: str = DEFAULT_SOCKET, api_version: str = API_VERSION,
                 timeout: float = 30.0) -> None:
        self.socket_path = socket_path
        self.api_version = api_version
        self.timeout = timeout
        self._opener = urllib.request.OpenerDirector()
        for handler in (_UnixSocketHandler(socket_path), urllib.request.HTTPErrorProcessor(),
                        urllib.request.HTTPDefaultErrorHandler()):
            self._opener.add_handler(handler)

    def _open(self, method: str, path: str, query: dict[str, str] | None, body: Any,
              timeout: float | None) -> Any:
        """The response, or the HTTPError urllib raises for a status >= 300 (it is one too)."""
        versioned = path if path == "/version" else f"/v{self.api_version}{path}"
        url = f"http://docker{versioned}" + (f"?{urllib.parse.urlencode(query)}" if query else "")
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(url, data=data, method=method)
        if data is not None:
            request.add_header("Content-Type", "application/json")
        try:
            return self._opener.open(request, timeout=timeout)
        except urllib.error.HTTPError as error:
            return error

    def _json(self, method: str, path: str, query: dict[str, str] | None = None, body: Any = None,
              ok: tuple[int, ...] = (200,), timeout: float | None = None) -> Any:
        with self._open(method, path, query, body, timeout) as response:
            status, data = response.status, response.read()
        if status not in ok:
            raise EngineError(status, _message(data))
        return json.loads(data) if data else None

    def version(self) -> dict[str, Any]:
        return self._json("GET", "/version", timeout=self.timeout)  # type: ignore[no-any-return]

    def containers(self, all: bool = False, labels: dict[str, str] | None = None) -> list[dict[str, Any]]:
        query = {"all": "1" if all else "0"}
        if labels:
            query["filters"] = json.dumps({"label": [f"{key}={value}" for key, value in labels.items()]})
        return self._json("GET", "/containers/json", query, timeout=self.timeout)  # type: ignore[no-any-return]

    def create(self, image: str, cmd: list[str], labels: dict[str, str] | None = None,
               name: str | None = None) -> str:
        body = {"Image": image, "Cmd": cmd, "Labels": labels or {}, "HostConfig": {"Init": True}}
        query = {"name": name} if name else None
        return self._json("POST", "/containers/create", query, body, ok=(201,),  # type: ignore[no-any-return]
                          timeout=self.timeout)["Id"]

    def start(self, container_id: str) -> None:
        self._json("POST", f"/containers/{container_id}/start", ok=(204, 304), timeout=self.timeout)

    def logs(self, container_id: str, follow: bool = True) -> Iterator[tuple[int, bytes]]:
        query = {"stdout": "1", "stderr": "1", "follow": str(int(follow))}
        with self._open("GET", f"/containers/{container_id}/logs", query, None, None) as response:
            if response.status != 200:
                raise EngineError(response.status, _message(response.read()))
            while len(header := response.read(8)) == 8:
                stream, length = struct.unpack(">BxxxL", header)
                yield stream, response.read(length)

    def wait(self, container_id: str) -> int:
        return int(self._json("POST", f"/containers/{container_id}/wait")["StatusCode"])

    def stop(self, container_id: str, timeout: int) -> None:
        self._json("POST", f"/containers/{container_id}/stop", {"t": str(timeout)}, ok=(204, 304),
                   timeout=self.timeout + timeout)

    def remove(self, container_id: str, force: bool = False) -> None:
        query = {"v": "1", "force": "1"} if force else {"v": "1"}
        self._json("DELETE", f"/containers/{container_id}", query, ok=(204,), timeout=self.timeout)


def _message(data: bytes) -> str:
    try:
        return str(json.loads(data)["message"])
    except (ValueError, KeyError, TypeError):
        return data.decode("utf-8", "replace").strip()
