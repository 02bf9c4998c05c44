"""Hot reload in a container: the code bind-mounted read-only, a stdlib reloader restarting the server."""

from __future__ import annotations

import os
import select
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
GRACE = 2.0  # seconds between SIGTERM and SIGKILL


def container_options(app_dir: Path, reloader: Path, image: str) -> dict[str, Any]:
    """Keyword arguments for docker-py's `client.containers.run(**options, detach=True)`."""
    return {
        "image": image,
        # the short form of -v, as strings
        "volumes": [f"{app_dir.resolve()}:{APP_DIR}:ro", f"{reloader.resolve()}:{RELOADER}:ro"],
        "command": f"python3 {RELOADER} {APP_DIR} python3 {APP_DIR}/server.py",
        "user": "65534",
        "environment": ["PYTHONUNBUFFERED=1"],
        "ports": {PORT: ("127.0.0.1", None)},
    }


def snapshot(folder: str) -> dict[str, float]:
    """Modification times of every .py file under `folder`: {path: st_mtime}."""
    times = {}
    for path in Path(folder).rglob("*.py"):
        try:
            times[str(path)] = path.stat().st_mtime
        except OSError:
            continue
    return times


def stop(child: subprocess.Popen[bytes]) -> None:
    """SIGTERM, a deadline of GRACE seconds polled by hand, then SIGKILL; always reaped."""
    child.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + GRACE
    while child.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    if child.poll() is None:
        child.kill()
        child.wait()


def main(argv: list[str]) -> int:
    """The self-pipe trick: signals write to a pipe, and select() on it is the poll's sleep."""
    watch, command = argv[0], argv[1:]
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_w, False)
    signal.set_wakeup_fd(wake_w)
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: None)  # a handler, so the wakeup fd gets the signal
    seen = snapshot(watch)
    child = subprocess.Popen(command)
    print("reloader: started", child.pid, flush=True)
    while not select.select([wake_r], [], [], POLL_INTERVAL)[0]:
        now = snapshot(watch)
        if now == seen:
            continue
        seen = now
        stop(child)
        child = subprocess.Popen(command)
        print("reloader: restarted", child.pid, flush=True)
    stop(child)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
