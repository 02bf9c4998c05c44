"""One line, instead of a traceback, when kata cannot write its own folder (.kata/)."""

from __future__ import annotations

import errno
from pathlib import Path

from .state import STATE_DIR

# what "cannot write there" looks like: permissions, immutable or read-only file systems, full disks
_CANNOT_WRITE = {errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOSPC, errno.EDQUOT}


def explain(exc: OSError) -> str | None:
    """What to fix, if `exc` is a failed write under .kata/; None for any other error."""
    if exc.errno not in _CANNOT_WRITE or not exc.filename:
        return None
    path = Path(str(exc.filename))
    if STATE_DIR not in path.parts:
        return None
    folder = Path(*path.parts[: path.parts.index(STATE_DIR) + 1])
    return (f"cannot write {path}: {exc.strerror}. kata keeps your progress in {folder}: make it "
            f"writable by you (`ls -ld {folder}` shows its owner and mode; `chmod -R u+w {folder}`; "
            f"`lsattr -d {folder}` shows an immutable flag), or free some space")
