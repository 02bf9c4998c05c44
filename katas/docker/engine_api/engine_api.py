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
        # TODO: create the socket, apply self.timeout, connect, keep it in self.sock
        raise NotImplementedError("UnixHTTPConnection.connect")


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

    def version(self) -> dict[str, Any]:
        """GET /version (no prefix): {"ApiVersion": "1.41", "Version": "20.10.24+dfsg1", ...}."""
        # TODO
        raise NotImplementedError("Engine.version")

    def containers(self, all: bool = False, labels: dict[str, str] | None = None) -> list[dict[str, Any]]:
        """GET /containers/json: running containers (all=True: also stopped ones).

        `labels` keeps only containers carrying every key=value: the `filters` query parameter is
        URL-encoded JSON, {"label": ["key=value", ...]}.
        """
        # TODO
        raise NotImplementedError("Engine.containers")

    def create(self, image: str, cmd: list[str], labels: dict[str, str] | None = None,
               name: str | None = None) -> str:
        """POST /containers/create (?name=...) with a JSON body; returns the new container's Id.

        The body: {"Image": image, "Cmd": cmd, "Labels": labels, "HostConfig": {"Init": true}}.
        Init runs docker-init as PID 1, which forwards signals (a shell or Python as PID 1 ignores
        SIGTERM). 201 is success; anything else raises EngineError.
        """
        # TODO
        raise NotImplementedError("Engine.create")

    def start(self, container_id: str) -> None:
        """POST /containers/{id}/start: 204 started, 304 already running (both fine)."""
        # TODO
        raise NotImplementedError("Engine.start")

    def logs(self, container_id: str, follow: bool = True) -> Iterator[tuple[int, bytes]]:
        """GET /containers/{id}/logs?stdout=1&stderr=1(&follow=1): yield (stream, payload) frames.

        Without a TTY the body is a sequence of frames: an 8-byte header (stream: 1 byte, 1 stdout
        or 2 stderr; 3 zero bytes; payload length: 4 bytes big-endian), then the payload. Yield each
        frame as it arrives (with follow, the body ends only when the container stops).
        """
        # TODO
        raise NotImplementedError("Engine.logs")

    def wait(self, container_id: str) -> int:
        """POST /containers/{id}/wait: blocks until it exits; returns its StatusCode."""
        # TODO
        raise NotImplementedError("Engine.wait")

    def stop(self, container_id: str, timeout: int) -> None:
        """POST /containers/{id}/stop?t=timeout: 204 stopped, 304 already stopped (both fine).

        The daemon sends SIGTERM, then SIGKILL after `timeout` seconds, and answers only then.
        """
        # TODO
        raise NotImplementedError("Engine.stop")

    def remove(self, container_id: str, force: bool = False) -> None:
        """DELETE /containers/{id}?v=1(&force=1): 204; 404 raises EngineError(404, ...), 409 if running."""
        # TODO
        raise NotImplementedError("Engine.remove")
