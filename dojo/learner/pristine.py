"""The pristine stub of a learner file, as the repository shipped it (from git).

Never simply HEAD: on a branch without an upstream, HEAD may be the learner's own commit of a
solution. A stub is found by the blob id recorded in stubs.lock; a stub the lock does not name
comes from the upstream branch, or without one, from the commit that added it.
"""

from __future__ import annotations

import functools
import hashlib
import subprocess
from pathlib import Path

from .. import stub_lock
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


def _introduced(root: Path) -> dict[str, str]:
    """Path -> blob id of each file under katas/ as the commit that added it had it."""
    try:
        log = _git(root, "log", "--reverse", "--raw", "--no-abbrev", "--format=", "--diff-filter=A",
                   "HEAD", "--", KATAS_DIR)
    except NoPristineCopy:
        return {}
    added: dict[str, str] = {}
    for line in log.decode(errors="replace").splitlines():
        meta, _, path = line.partition("\t")
        fields = meta.split()
        if line.startswith(":") and len(fields) >= 4:
            added.setdefault(path, fields[3])
    return added


@functools.cache
def _stub_ids(root: Path) -> dict[str, str] | None:
    """Path -> blob id of each shipped stub: the lock's, else upstream's or the one first added."""
    blobs = _blobs(root)
    if blobs is None:
        return None
    shipped = dict(blobs)
    if _ref(root) == "HEAD":  # no upstream: a later commit of a file may be the learner's
        shipped.update(_introduced(root))
    shipped.update(stub_lock.read(root))
    return shipped


def _blob_id(content: bytes) -> str:
    """git's object id of a file's content, so a comparison needs no git call per file."""
    return hashlib.sha1(b"blob %d\0" % len(content) + content).hexdigest()


def _rel(kata: Kata, name: str) -> str:
    return (kata.kata_dir / name).relative_to(kata.root).as_posix()


def stub(kata: Kata, name: str) -> bytes:
    """The shipped content of learner file `name` of `kata`; NoPristineCopy if git has none."""
    rel = _rel(kata, name)
    shipped = _stub_ids(kata.root)
    if shipped is None:
        raise NoPristineCopy(f"{kata.root} is not a git clone, so the shipped stub is unknown")
    if rel not in shipped:
        raise NoPristineCopy(f"git has no copy of {rel} at {_ref(kata.root)}")
    try:
        return _git(kata.root, "cat-file", "blob", shipped[rel])
    except NoPristineCopy:
        raise NoPristineCopy(f"git has no object {shipped[rel]}, the stub of {rel} that "
                             f"{stub_lock.LOCK_NAME} names (a shallow clone? `git fetch --unshallow`)") from None


def shipped_file(kata: Kata, rel_in_kata: str) -> bytes:
    """A file of the kata's folder other than the learner's (tests, README) as git has it."""
    rel = (kata.kata_dir / rel_in_kata).relative_to(kata.root).as_posix()
    return _git(kata.root, "show", f"{_ref(kata.root)}:{rel}")


def missing_files(kata: Kata) -> list[str]:
    """Files git has in the kata's folder (tests, README, __init__.py) that are gone from disk."""
    blobs = _blobs(kata.root)
    prefix = kata.kata_dir.relative_to(kata.root).as_posix() + "/"
    learner = {_rel(kata, name) for name in kata.files}
    return sorted(rel.removeprefix(prefix) for rel in (blobs or {})
                  if rel.startswith(prefix) and rel not in learner and not (kata.root / rel).exists())


def is_untouched(kata: Kata) -> bool | None:
    """True if every learner file equals its stub, False if one differs, None if git can't tell."""
    blobs = _stub_ids(kata.root)
    if blobs is None:
        return None
    for name, path in zip(kata.files, kata.learner_files(), strict=True):
        shipped = blobs.get(_rel(kata, name))
        if shipped is None:
            return None
        if not path.is_file() or _blob_id(path.read_bytes()) != shipped:
            return False
    return True
