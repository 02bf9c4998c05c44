"""Temporary folders of one `kata` process, named by its pid, so that a later one removes what a kill left."""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from ..reaper import alive

UNNAMED_AFTER = 24 * 3600  # seconds: no run lasts a day, so an older unnamed folder is a leftover


def _left_behind(folder: Path, prefix: str, info: os.stat_result) -> bool:
    pid_text, dash, _ = folder.name.removeprefix(prefix).partition("-")
    if not dash:  # named by an earlier version, without its pid: judged by its age
        return time.time() - info.st_mtime > UNNAMED_AFTER
    return pid_text.isdigit() and int(pid_text) != os.getpid() and not alive(int(pid_text))


def sweep(prefix: str, base: Path | None = None) -> list[Path]:
    """Remove `<base>/<prefix><pid>-*` folders of ours whose process is gone (base: the temp
    folder); the ones removed."""
    removed = []
    for folder in (base or Path(tempfile.gettempdir())).glob(f"{prefix}*"):
        with contextlib.suppress(OSError):
            info = folder.lstat()
            if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.geteuid():
                continue  # another user's, or not a folder: never ours to remove
            if _left_behind(folder, prefix, info):
                shutil.rmtree(folder)
                removed.append(folder)
    return removed


@contextlib.contextmanager
def scratch_folder(prefix: str) -> Iterator[Path]:
    """A fresh `<tmp>/<prefix><pid>-XXXX` folder, removed at the end (also on Ctrl-C, SIGTERM,
    SIGHUP); first removes those that killed processes left behind."""
    sweep(prefix)
    with tempfile.TemporaryDirectory(prefix=f"{prefix}{os.getpid()}-") as folder:
        yield Path(folder)
