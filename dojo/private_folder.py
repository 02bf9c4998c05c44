"""A folder only this user can reach: created mode 0700, refused if anyone else could have written it."""

from __future__ import annotations

import contextlib
import errno
import os
import pwd
import stat
from pathlib import Path


class UnsafeFolder(Exception):
    """The folder exists, but someone else could have put what is in it there: never trusted."""

    def __init__(self, path: Path, problem: str) -> None:
        super().__init__(f"{path}: {problem}")
        self.path = path
        self.problem = problem


def _owner_name(uid: int) -> str:
    with contextlib.suppress(KeyError):
        return f"user {pwd.getpwuid(uid).pw_name!r} (uid {uid})"
    return f"uid {uid}"


def _problem(info: os.stat_result) -> str | None:
    if not stat.S_ISDIR(info.st_mode):
        return "it is not a folder"
    if info.st_uid != os.geteuid():
        return f"it belongs to {_owner_name(info.st_uid)}, not to you"
    if info.st_mode & 0o022:
        return f"other users can write in it (mode {stat.S_IMODE(info.st_mode):04o})"
    return None


def private_folder(path: Path, *, create: bool) -> bool:
    """Make sure `path` is a folder of ours, mode 0700; False if it is missing and not `create`.

    Raises UnsafeFolder if it is a symbolic link, not a folder, another user's, or writable by
    others. A folder of ours that others may only read (what earlier versions made) is closed.
    """
    if create:
        path.parent.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(FileExistsError):
            os.mkdir(path, 0o700)  # never follows a symbolic link planted at `path`
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    except FileNotFoundError:
        if create:
            raise
        return False
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.ENOTDIR):
            kind = "it is a symbolic link" if os.path.islink(path) else "it is not a folder"
            raise UnsafeFolder(path, kind) from None
        raise
    try:
        info = os.fstat(fd)  # of the folder we opened: it cannot be swapped under us
        problem = _problem(info)
        if problem is not None:
            raise UnsafeFolder(path, problem)
        if stat.S_IMODE(info.st_mode) != 0o700:
            os.fchmod(fd, 0o700)
    finally:
        os.close(fd)
    return True
