"""Puts the pristine stub back, after keeping a timestamped backup of the learner's file."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

from ..catalogue import Kata
from . import pristine
from .state import State, state_dir

BACKUPS = "backups"


def backup(kata: Kata, state: State) -> list[Path]:
    """Copy each learner file to .kata/backups/<topic>/<kata>/<file>.<timestamp>; the copies."""
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S-%f")
    folder = state_dir(kata.root) / BACKUPS / kata.topic / kata.name
    copies = []
    for name, path in zip(kata.files, kata.learner_files(), strict=True):
        if not path.is_file():
            continue
        target = folder / f"{name}.{stamp}"
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, target)
        copies.append(target)
    return copies


class ResetRefused(Exception):
    """Restoring would write somewhere else than the kata's own folder."""


def _outside_the_repository(kata: Kata, path: Path) -> str | None:
    """Why writing `path` would not write the kata's file in this repository, or None."""
    root = kata.root.resolve()
    if path.is_symlink():
        return f"{path.relative_to(kata.root)} is a link to {path.resolve()}"
    if not path.resolve().is_relative_to(root):
        return f"{path.relative_to(kata.root)} leads to {path.resolve()}, outside {root}"
    return None


def reset(kata: Kata, state: State) -> list[Path]:
    """Back up and restore every learner file, and any other file of the kata's folder that is
    gone (tests, README, __init__.py); forget the last run. NoPristineCopy if git can't,
    ResetRefused if a learner file is a link (we would write wherever it points)."""
    for path in kata.learner_files():
        problem = _outside_the_repository(kata, path)
        if problem is not None:
            raise ResetRefused(f"{problem}; reset writes only inside the repository: remove the "
                               "link, then run `kata reset` again")
    stubs = {name: pristine.stub(kata, name) for name in kata.files}  # all or nothing
    others = {rel: pristine.shipped_file(kata, rel) for rel in pristine.missing_files(kata)}
    copies = backup(kata, state)
    for rel, content in others.items():
        (kata.kata_dir / rel).parent.mkdir(parents=True, exist_ok=True)
        (kata.kata_dir / rel).write_bytes(content)
    for name, path in zip(kata.files, kata.learner_files(), strict=True):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(stubs[name])
    state.runs.pop(kata.slug, None)
    state.save()
    return copies
