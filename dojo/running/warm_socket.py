"""Where the warm server's socket lives (a folder only its user can reach) and who is at its other end."""

from __future__ import annotations

import os
import shutil
import socket
import struct
import sys
import tempfile
from pathlib import Path

from ..private_folder import UnsafeFolder, private_folder

SOCKET_NAME = "warm.sock"
MAX_SOCKET_PATH = 100  # sun_path holds 104 (macOS) or 108 (Linux) bytes
FOLDER_RECORD = "warm.dir"  # in .kata/: the private folder of a socket whose path would be too long
# macOS: getsockopt(SOL_LOCAL, LOCAL_PEERCRED) fills a struct xucred {u_int version; uid_t uid; ...}
SOL_LOCAL, LOCAL_PEERCRED, XUCRED_SIZE = 0, 1, 76


def socket_path(root: Path) -> Path:
    """Where the warm server of repository `root` listens: .kata/warm.sock when that fits in
    sun_path, else warm.sock in a private folder (mode 0700, random name) recorded in .kata/."""
    kata_dir = root.resolve() / ".kata"
    path = kata_dir / SOCKET_NAME
    if len(os.fsencode(path)) <= MAX_SOCKET_PATH:
        return path
    try:
        return _recorded_folder(kata_dir) / SOCKET_NAME
    except OSError:
        return path  # too long to bind or connect: runs go cold, as with no server at all


def _usable(folder: Path) -> bool:
    try:
        return private_folder(folder, create=False)
    except (UnsafeFolder, OSError):
        return False


def _recorded_folder(kata_dir: Path) -> Path:
    """The private folder named in .kata/warm.dir; made (and recorded) if missing or not ours.

    A predictable name in /tmp would let another user listen there first and be handed the
    learner's environment and terminal: mkdtemp's name cannot be guessed or taken first.
    """
    record = kata_dir / FOLDER_RECORD
    recorded = _read_record(record)
    if recorded is not None and _usable(recorded):
        return recorded
    kata_dir.mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix="kata-warm-"))
    staged = kata_dir / f".{FOLDER_RECORD}.{os.getpid()}"
    try:
        staged.write_text(f"{folder}\n", encoding="utf-8")  # complete before it appears
        if recorded is None and not record.exists():
            os.link(staged, record)  # the first to record one wins: a second would split runs
        else:
            os.replace(staged, record)  # a stale record, of a folder gone or not ours
    except FileExistsError:
        shutil.rmtree(folder, ignore_errors=True)
        return _recorded_folder(kata_dir)  # another process recorded one just now: use it
    except OSError:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    finally:
        staged.unlink(missing_ok=True)
    return folder


def _read_record(record: Path) -> Path | None:
    try:
        recorded = Path(record.read_text(encoding="utf-8").strip())
    except (OSError, ValueError):
        return None
    return recorded if recorded.is_absolute() else None


def peer_uid(conn: socket.socket) -> int | None:
    """The uid of the process at the other end of a connected Unix socket; None if unknown."""
    try:
        if hasattr(socket, "SO_PEERCRED"):  # Linux
            creds = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
            return int(struct.unpack("3i", creds)[1])
        if sys.platform == "darwin":
            creds = conn.getsockopt(SOL_LOCAL, LOCAL_PEERCRED, XUCRED_SIZE)
            return int(struct.unpack_from("2I", creds)[1])
    except (OSError, struct.error):
        return None
    return None


def same_user(conn: socket.socket) -> bool:
    """True only if the peer runs as our user: anyone else gets neither our runs nor our terminal."""
    return peer_uid(conn) == os.geteuid()
