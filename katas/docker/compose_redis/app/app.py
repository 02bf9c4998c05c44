"""The compose kata's web app: counts its hits in Redis (at REDIS_HOST:REDIS_PORT) with INCR."""

from __future__ import annotations

import http.server
import json
import os
import socket

REDIS_HOST = os.environ.get("REDIS_HOST", "localhost")
REDIS_PORT = int(os.environ.get("REDIS_PORT", "6379"))


def incr(key: bytes) -> int:
    """INCR over RESP on a fresh connection: the stdlib is enough to speak to Redis."""
    with socket.create_connection((REDIS_HOST, REDIS_PORT), timeout=2) as sock:
        sock.sendall(b"*2\r\n$4\r\nINCR\r\n$%d\r\n%s\r\n" % (len(key), key))
        reply = sock.makefile("rb").readline()
    if not reply.startswith(b":"):
        raise RuntimeError(f"Redis answered {reply!r}")
    return int(reply[1:])


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        where = f"{REDIS_HOST}:{REDIS_PORT}"
        try:
            status, body = 200, {"hits": incr(b"hits"), "redis": where, "host": socket.gethostname()}
        except Exception as exc:  # shown to the test: DNS failures, refused connections
            status, body = 503, {"error": f"{type(exc).__name__}: {exc}", "redis": where}
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: object) -> None:
        pass


if __name__ == "__main__":
    http.server.ThreadingHTTPServer(("0.0.0.0", 8000), Handler).serve_forever()
