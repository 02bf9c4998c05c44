"""Hot reload in a container: the code bind-mounted read-only, a stdlib reloader restarting the server."""

from __future__ import annotations

import contextlib
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
    return {
        "image": image,
        # A bind mount shows the host's folder itself: an edit there is visible at once inside
        # (no rebuild, unlike COPY). Read-only: the container cannot change the source tree.
        "volumes": {
            str(app_dir.resolve()): {"bind": APP_DIR, "mode": "ro"},
            str(reloader.resolve()): {"bind": RELOADER, "mode": "ro"},
        },
        "command": ["python3", RELOADER, APP_DIR, "python3", f"{APP_DIR}/server.py"],
        # nobody: reading world-readable files is all a dev server needs
        "user": "65534:65534",
        "environment": {"PYTHONUNBUFFERED": "1", "PYTHONDONTWRITEBYTECODE": "1"},
        # loopback only: a dev server is not for the network; None lets the daemon pick a port
        "ports": {f"{PORT}/tcp": ("127.0.0.1", None)},
    }


def snapshot(folder: str) -> dict[str, float]:
    """Modification times of every .py file under `folder`: {path: st_mtime}."""
    # Polling mtimes works everywhere (bind mounts from macOS/Windows VMs often lose inotify
    # events); at 0.1 s over a handful of files it costs nothing.
    times: dict[str, float] = {}
    for root, _dirs, files in os.walk(folder):
        for name in files:
            if name.endswith(".py"):
                path = os.path.join(root, name)
                # gone for a moment (an editor's atomic save), or a dangling link: not code to run
                with contextlib.suppress(FileNotFoundError):
                    times[path] = os.stat(path).st_mtime
    return times


def _stop(child: subprocess.Popen[bytes]) -> None:
    # Wait until it has exited: the old server must release the port before the new one binds
    # it, and an unwaited child stays a zombie.
    child.terminate()  # a no-op if it has exited already
    try:
        child.wait(timeout=2)
    except subprocess.TimeoutExpired:
        child.kill()
        child.wait()


def main(argv: list[str]) -> int:
    """`hot_reload.py WATCH_DIR COMMAND...`: run COMMAND; restart it whenever a .py file changes.

    Every POLL_INTERVAL seconds compare snapshot(WATCH_DIR) with the last one. On a change:
    stop the child (SIGTERM, then SIGKILL if it lingers past 2 s), start COMMAND again. A child
    that crashes (a syntax error mid-edit) is not the end: wait for the next change and try again.
    Runs until it gets SIGTERM or SIGINT, then stops the child and returns 0.
    """
    watch, command = argv[0], argv[1:]
    stopping = False

    def on_signal(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True

    # As PID 1 (no --init) the default actions would be ignored: handle them explicitly.
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    seen = snapshot(watch)
    child = subprocess.Popen(command)
    print(f"reloader: started {command} (pid {child.pid})", flush=True)
    try:
        while not stopping:
            time.sleep(POLL_INTERVAL)
            now = snapshot(watch)
            if now == seen:
                continue  # a crashed child stays down until the code changes again
            seen = now
            _stop(child)
            child = subprocess.Popen(command)
            print(f"reloader: change seen, restarted (pid {child.pid})", flush=True)
    finally:
        _stop(child)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
