"""Keeping a file `kata` cannot use beside it, as `<name>.broken`, `<name>.broken-2`, ...: never overwritten."""

from __future__ import annotations

import contextlib
import os
import shutil
from pathlib import Path

MAX_COPIES = 1000  # a folder with this many broken copies has a problem no new copy will fix


def _copy_name(path: Path, number: int) -> Path:
    return path.with_name(f"{path.name}.broken" + (f"-{number}" if number > 1 else ""))


def _claim(path: Path, copy: Path) -> bool:
    """Make `copy` a copy of `path` if no file of that name exists; False if one does."""
    try:
        os.link(path, copy)  # atomic, and refuses an existing name
        return True
    except FileExistsError:
        return False
    except OSError:  # a file system without hard links: an exclusive create, then copy
        pass
    try:
        with open(path, "rb") as source, open(copy, "xb") as target:
            shutil.copyfileobj(source, target)
    except FileExistsError:
        return False
    return True


def keep_copy(path: Path, *, move: bool) -> Path | None:
    """Keep `path` under the first free `.broken` name; with `move`, `path` is gone afterwards.

    None if it could not be kept (the caller says so: the learner must know what was lost).
    """
    for number in range(1, MAX_COPIES + 1):
        copy = _copy_name(path, number)
        try:
            if not _claim(path, copy):
                continue
        except OSError:
            return None
        if move:
            with contextlib.suppress(OSError):
                path.unlink()
        return copy
    return None
