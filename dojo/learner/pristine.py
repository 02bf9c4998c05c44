"""The pristine stub of a learner file, as the repository shipped it (from git)."""

from __future__ import annotations

import functools
import hashlib
import subprocess
from pathlib import Path

from ..catalogue import KATAS_DIR, Kata


class NoPristineCopy(Exception):
    """git cannot tell what the stub looked like (not a clone, or the file is not tracked)."""


def _git(root: Path, *args: str) -> bytes:
    try:
        done = subprocess.run(
            ["git", "-C", str(root), *args], capture_output=True, timeout=30, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise NoPristineCopy(f"cannot run git: {exc}") from None
    if done.returncode != 0:
        reason = done.stderr.decode(errors="replace").strip().splitlines()
        raise NoPristineCopy(f"git {args[0]}: {reason[-1] if reason else 'failed'}")
    return done.stdout


@functools.cache
def _ref(root: Path) -> str:
    """The upstream branch if there is one (the learner may have committed their work), else HEAD."""
    try:
        _git(root, "rev-parse", "--verify", "--quiet", "@{upstream}")
        return "@{upstream}"
    except NoPristineCopy:
        return "HEAD"


@functools.cache
def _blobs(root: Path) -> dict[str, str] | None:
    """Path -> blob id of every shipped file under katas/, from one `git ls-tree`; None if no git."""
    try:
        listing = _git(root, "ls-tree", "-r", "-z", _ref(root), "--", KATAS_DIR)
    except NoPristineCopy:
        return None  # cached too: not a clone stays not a clone for this command
    blobs = {}
    for entry in listing.split(b"\0"):
        meta, _, path = entry.partition(b"\t")
        if path:
            blobs[path.decode()] = meta.split()[2].decode()
    return blobs


def _blob_id(content: bytes) -> str:
    """git's object id of a file's content, so a comparison needs no git call per file."""
    return hashlib.sha1(b"blob %d\0" % len(content) + content).hexdigest()


def _rel(kata: Kata, name: str) -> str:
    return (kata.kata_dir / name).relative_to(kata.root).as_posix()


def stub(kata: Kata, name: str) -> bytes:
    """The shipped content of learner file `name` of `kata`; NoPristineCopy if git has none."""
    rel = _rel(kata, name)
    ref = _ref(kata.root)
    blobs = _blobs(kata.root)
    if blobs is None:
        raise NoPristineCopy(f"{kata.root} is not a git clone, so the shipped stub is unknown")
    if rel not in blobs:
        raise NoPristineCopy(f"git has no copy of {rel} at {ref}")
    return _git(kata.root, "show", f"{ref}:{rel}")


def is_untouched(kata: Kata) -> bool | None:
    """True if every learner file equals its stub, False if one differs, None if git can't tell."""
    blobs = _blobs(kata.root)
    if blobs is None:
        return None
    for name, path in zip(kata.files, kata.learner_files(), strict=True):
        shipped = blobs.get(_rel(kata, name))
        if shipped is None:
            return None
        if not path.is_file() or _blob_id(path.read_bytes()) != shipped:
            return False
    return True
