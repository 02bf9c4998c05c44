"""The scale kata's replica: answers every GET with its container's hostname (its short id)."""

from __future__ import annotations

import http.server
import socket

HOSTNAME = socket.gethostname().encode()


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(HOSTNAME)))
        self.end_headers()
        self.wfile.write(HOSTNAME)

    def log_message(self, format: str, *args: object) -> None:
        pass


if __name__ == "__main__":
    # No SIGTERM handler: as PID 1 Python would ignore `docker stop`; compose's `init: true` helps.
    http.server.ThreadingHTTPServer(("0.0.0.0", 8000), Handler).serve_forever()
