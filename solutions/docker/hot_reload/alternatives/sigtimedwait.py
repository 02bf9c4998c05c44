"""Hot reload in a container: the code bind-mounted read-only, a stdlib reloader restarting the server."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

APP_DIR = "/app"  # where the code appears inside the container
RELOADER = "/reloader/hot_reload.py"  # where this file appears inside the container
PORT = 8000
POLL_INTERVAL = 0.1  # seconds between two looks at the files' mtimes
STOPPERS = {signal.SIGTERM, signal.SIGINT}


def container_options(app_dir: Path, reloader: Path, image: str) -> dict[str, Any]:
    """Keyword arguments for docker-py's `client.containers.run(**options, detach=True)`."""
    # imported here: this file also runs inside the container, where only the stdlib exists
    from docker.types import Mount  # type: ignore[import-untyped]

    return {
        "image": image,
        # the long form of -v: a Mount of type bind, read_only
        "mounts": [Mount(APP_DIR, str(app_dir.resolve()), type="bind", read_only=True),
                   Mount(RELOADER, str(reloader.resolve()), type="bind", read_only=True)],
        "command": ["python3", "-u", RELOADER, APP_DIR, "python3", f"{APP_DIR}/server.py"],
        "user": "nobody",
        "ports": {f"{PORT}/tcp": ("127.0.0.1", None)},
    }


def snapshot(folder: str) -> dict[str, float]:
    """Modification times of every .py file under `folder`: {path: st_mtime}, by recursive scandir."""
    times: dict[str, float] = {}
    with os.scandir(folder) as entries:
        for entry in entries:
            if entry.is_dir(follow_symlinks=False):
                times.update(snapshot(entry.path))
            elif entry.name.endswith(".py"):
                with contextlib.suppress(FileNotFoundError):  # DirEntry.stat follows links
                    times[entry.path] = entry.stat().st_mtime
    return times


def _unblock() -> None:
    signal.pthread_sigmask(signal.SIG_UNBLOCK, STOPPERS)  # the child gets the default handling


def _stop(child: subprocess.Popen[bytes]) -> None:
    if child.returncode is None and child.poll() is None:
        os.kill(child.pid, signal.SIGTERM)
        try:
            child.wait(2)
        except subprocess.TimeoutExpired:
            os.kill(child.pid, signal.SIGKILL)
            child.wait()


def main(argv: list[str]) -> int:
    """No handlers: SIGTERM/SIGINT stay blocked and the poll's sleep is sigtimedwait itself."""
    watch, *command = argv
    signal.pthread_sigmask(signal.SIG_BLOCK, STOPPERS)
    seen = snapshot(watch)
    child = subprocess.Popen(command, preexec_fn=_unblock)
    sys.stdout.write(f"reloader: running {command}\n")
    try:
        while signal.sigtimedwait(STOPPERS, POLL_INTERVAL) is None:
            now = snapshot(watch)
            if now != seen:
                seen = now
                _stop(child)
                child = subprocess.Popen(command, preexec_fn=_unblock)
                sys.stdout.write(f"reloader: restarted {command}\n")
            sys.stdout.flush()
    finally:
        _stop(child)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
