"""Hot reload in a container: the code bind-mounted read-only, a stdlib reloader restarting the server."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

APP_DIR = "/app"  # where the code appears inside the container
RELOADER = "/reloader/hot_reload.py"  # where this file appears inside the container
PORT = 8000
POLL_INTERVAL = 0.1  # seconds between two looks at the files' mtimes


def container_options(app_dir: Path, reloader: Path, image: str) -> dict[str, Any]:
    """Keyword arguments for docker-py's `client.containers.run(**options, detach=True)`.

    The container must:
    * see `app_dir` (a folder on the host) at /app, as a **read-only bind mount**, and this file
      (`reloader`) at /reloader/hot_reload.py, read-only too;
    * run as an unprivileged user (uid 65534, "nobody"), not root;
    * run this file as the reloader: `python3 /reloader/hot_reload.py /app python3 /app/server.py`;
    * publish port 8000 on 127.0.0.1 only, on a port the daemon picks (`("127.0.0.1", None)`).

    >>> container_options(Path("/tmp/app"), Path("/src/hot_reload.py"), "python:3.11-slim")["image"]
    'python:3.11-slim'
    """
    # TODO: image, command, user, volumes (bind: ..., mode: ...), ports
    raise NotImplementedError("container_options")


def snapshot(folder: str) -> dict[str, float]:
    """Modification times of every .py file under `folder`: {path: st_mtime}."""
    # TODO: os.walk, keep *.py, os.stat(path).st_mtime; a file that vanished meanwhile is skipped
    raise NotImplementedError("snapshot")


def main(argv: list[str]) -> int:
    """`hot_reload.py WATCH_DIR COMMAND...`: run COMMAND; restart it whenever a .py file changes.

    Every POLL_INTERVAL seconds compare snapshot(WATCH_DIR) with the last one. On a change:
    stop the child (SIGTERM, then SIGKILL if it lingers past 2 s), start COMMAND again. A child
    that crashes (a syntax error mid-edit) is not the end: wait for the next change and try again.
    Runs until it gets SIGTERM or SIGINT, then stops the child and returns 0.
    """
    # TODO: the polling loop; print one line per restart (it shows in `docker logs`)
    raise NotImplementedError("main")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
