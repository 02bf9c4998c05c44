"""An exclusive lock on a file beside the one it guards, for read-modify-write across processes."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

try:
    import fcntl
except ImportError:  # Windows: no flock; commands there run one at a time as before
    fcntl = None  # type: ignore[assignment]


@contextlib.contextmanager
def locked(lock_path: Path) -> Iterator[None]:
    """Hold an exclusive flock on `lock_path` (created if missing) for the block.

    A separate file, not the guarded one: that is replaced by a rename on every save, and a
    lock on a replaced file guards nothing. The kernel drops the lock if the holder dies.
    """
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        if fcntl is not None:
            fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock
