"""The seed a kata's samples (mutants, known mistakes) are drawn with: a hash of the kata's own files.

CI judges a sample, not every mutant. Drawn from the kata's files, the sample is the same in CI
as in a maintainer's run of the same tree, and changes only when the kata (its tests, its stub,
its solution, its records) does: a kata that passed its sample here passes it there, and an
edit to a kata is judged on a fresh draw.
"""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path

from .catalogue import Kata

__all__ = ["kata_seed", "sample_key"]


def kata_seed(kata: Kata) -> int:
    """A 32-bit seed from the paths and bytes of the kata's files and its solution's."""
    digest = hashlib.sha256()
    for path in _files(kata):
        digest.update(path.relative_to(kata.root).as_posix().encode() + b"\0")
        digest.update(path.read_bytes() + b"\0")
    return int.from_bytes(digest.digest()[:4], "big")


def sample_key(kata: Kata, seed: int | None) -> str:
    """What a kata's sample is drawn with: the seed given (to draw another sample on purpose),
    else the kata's own."""
    return f"{kata_seed(kata) if seed is None else seed}:{kata.slug}"


def _files(kata: Kata) -> list[Path]:
    """Git's tracked files when the tree is a clone (a maintainer's scratch files and caches are
    not in CI's clone), else every file but caches."""
    folders = [kata.kata_dir, kata.solution_dir]
    try:
        listed = subprocess.run(["git", "ls-files", "-z", "--", *map(str, folders)], cwd=kata.root,
                                capture_output=True, timeout=30, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        listed = b""
    if listed:
        tracked = (kata.root / name for name in listed.decode().split("\0") if name)
        return sorted(path for path in tracked if path.is_file())
    return sorted(
        path for folder in folders if folder.is_dir() for path in folder.rglob("*")
        if path.is_file() and not any(part.startswith((".", "__pycache__"))
                                      for part in path.relative_to(folder).parts)
    )
