"""The app the image serves: a WSGI callable, run by waitress (the dependency to install)."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable

VERSION = "1"


def app(environ: dict, start_response: Callable) -> Iterable[bytes]:
    """GET /health -> 200 "ok"; GET / -> 200 JSON with the version and the user it runs as."""
    if environ.get("PATH_INFO") == "/health":
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"ok"]
    body = json.dumps({"app": "python_image", "version": VERSION, "uid": os.getuid()}).encode()
    start_response("200 OK", [("Content-Type", "application/json")])
    return [body]


if __name__ == "__main__":
    from waitress import serve

    serve(app, host="0.0.0.0", port=8000)
