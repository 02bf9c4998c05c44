"""The Docker Engine API by hand: HTTP/1.1 over the daemon's unix socket, with only the stdlib."""

from __future__ import annotations

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


class Engine:
    """A tiny Docker client: one HTTP request per method, each on a fresh connection.

    A call raises TimeoutError once the daemon has been silent for `timeout` seconds; wait()
    and logs() wait as long as the container runs, stop() also for its grace period `t`.

    >>> engine = Engine()
    >>> cid = engine.create("python:3.11-slim", ["echo", "hi"], labels={"kata": "1"})
    >>> engine.start(cid); engine.wait(cid)
    0
    >>> list(engine.logs(cid, follow=False))
    [(1, b'hi\\n')]
    >>> engine.remove(cid)
    """

    def __init__(self, socket_path: str = DEFAULT_SOCKET, api_version: str = API_VERSION,
                 timeout: float = 30.0) -> None:
        self.socket_path = socket_path
        self.api_version = api_version
        self.timeout = timeout  # seconds of silence after which a call gives up

    def _open(self, method: str, path: str, query: dict[str, str] | None = None,
              body: Any = None, *, timeout: float | None) -> tuple[UnixHTTPConnection, http.client.HTTPResponse]:
        """Send one request; the caller reads the response and closes the connection.

        `timeout`: how long the daemon may stay silent before the call gives up (None: forever).
        """
        # Pinning the version keeps the meaning of every field fixed, whatever the daemon's newest is.
        url = path if path == "/version" else f"/v{self.api_version}{path}"
        if query:
            url += "?" + urllib.parse.urlencode(query)
        headers = {}
        payload = None
        if body is not None:
            payload = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        conn = UnixHTTPConnection(self.socket_path, timeout=timeout)  # type: ignore[arg-type]
        try:
            conn.request(method, url, body=payload, headers=headers)
            return conn, conn.getresponse()
        except Exception:
            conn.close()  # the caller never gets it: close it here
            raise

    def _call(self, method: str, path: str, query: dict[str, str] | None = None,
              body: Any = None, *, ok: tuple[int, ...] = (200,), timeout: float | None) -> Any:
        """A request whose whole answer is one JSON document (or nothing): returns it parsed."""
        conn, resp = self._open(method, path, query, body, timeout=timeout)
        try:
            data = resp.read()
        finally:
            conn.close()
        if resp.status not in ok:
            raise EngineError(resp.status, _message(data))
        return json.loads(data) if data else None

    def version(self) -> dict[str, Any]:
        """GET /version (no prefix): {"ApiVersion": "1.41", "Version": "20.10.24+dfsg1", ...}."""
        # the one unversioned call: it is how a client learns which version to ask for
        return self._call("GET", "/version", timeout=self.timeout)  # type: ignore[no-any-return]

    def containers(self, all: bool = False, labels: dict[str, str] | None = None) -> list[dict[str, Any]]:
        """GET /containers/json: running containers (all=True: also stopped ones).

        `labels` keeps only containers carrying every key=value: the `filters` query parameter is
        URL-encoded JSON, {"label": ["key=value", ...]}.
        """
        query = {"all": "1" if all else "0"}
        if labels:
            # several label filters are ANDed by the daemon; urlencode quotes the JSON
            query["filters"] = json.dumps({"label": [f"{k}={v}" for k, v in labels.items()]})
        return self._call("GET", "/containers/json", query, timeout=self.timeout)  # type: ignore[no-any-return]

    def create(self, image: str, cmd: list[str], labels: dict[str, str] | None = None,
               name: str | None = None) -> str:
        """POST /containers/create (?name=...) with a JSON body; returns the new container's Id.

        The body: {"Image": image, "Cmd": cmd, "Labels": labels, "HostConfig": {"Init": true}}.
        Init runs docker-init as PID 1, which forwards signals (a shell or Python as PID 1 ignores
        SIGTERM). 201 is success; anything else raises EngineError.
        """
        body = {"Image": image, "Cmd": cmd, "Labels": labels or {}, "HostConfig": {"Init": True}}
        query = {"name": name} if name else None
        created = self._call("POST", "/containers/create", query, body, ok=(201,), timeout=self.timeout)
        return created["Id"]  # type: ignore[no-any-return]

    def start(self, container_id: str) -> None:
        """POST /containers/{id}/start: 204 started, 304 already running (both fine)."""
        # 304 is the daemon saying "nothing to do": starting is idempotent for the caller
        self._call("POST", f"/containers/{container_id}/start", ok=(204, 304), timeout=self.timeout)

    def logs(self, container_id: str, follow: bool = True) -> Iterator[tuple[int, bytes]]:
        """GET /containers/{id}/logs?stdout=1&stderr=1(&follow=1): yield (stream, payload) frames.

        Without a TTY the body is a sequence of frames: an 8-byte header (stream: 1 byte, 1 stdout
        or 2 stderr; 3 zero bytes; payload length: 4 bytes big-endian), then the payload. Yield each
        frame as it arrives (with follow, the body ends only when the container stops).
        """
        query = {"stdout": "1", "stderr": "1", "follow": "1" if follow else "0"}
        # no read timeout: a followed container may stay quiet for as long as it likes
        conn, resp = self._open("GET", f"/containers/{container_id}/logs", query, timeout=None)
        try:
            if resp.status != 200:
                raise EngineError(resp.status, _message(resp.read()))
            # http.client undoes the chunked transfer encoding; read(n) returns n bytes unless
            # the body ended. Frame by frame, never read() to the end: that waits for the exit.
            while header := resp.read(8):
                stream, length = struct.unpack(">BxxxL", header)
                yield stream, resp.read(length)
        finally:
            conn.close()

    def wait(self, container_id: str) -> int:
        """POST /containers/{id}/wait: blocks until it exits; returns its StatusCode."""
        result = self._call("POST", f"/containers/{container_id}/wait", timeout=None)  # as long as it runs
        return int(result["StatusCode"])

    def stop(self, container_id: str, timeout: int) -> None:
        """POST /containers/{id}/stop?t=timeout: 204 stopped, 304 already stopped (both fine).

        The daemon sends SIGTERM, then SIGKILL after `timeout` seconds, and answers only then.
        """
        # the daemon may stay silent for the whole grace period, on top of our usual patience
        self._call("POST", f"/containers/{container_id}/stop", {"t": str(timeout)},
                   ok=(204, 304), timeout=self.timeout + timeout)

    def remove(self, container_id: str, force: bool = False) -> None:
        """DELETE /containers/{id}?v=1(&force=1): 204; 404 raises EngineError(404, ...), 409 if running."""
        query = {"v": "1"}  # v: its anonymous volumes go too
        if force:
            query["force"] = "1"
        self._call("DELETE", f"/containers/{container_id}", query, ok=(204,), timeout=self.timeout)


def _message(data: bytes) -> str:
    """The daemon's error body is {"message": "..."}; anything else (some errors are plain text) as text."""
    try:
        return str(json.loads(data)["message"])
    except (ValueError, KeyError, TypeError):
        return data.decode("utf-8", "replace").strip()
