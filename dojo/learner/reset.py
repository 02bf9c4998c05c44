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


def reset(kata: Kata, state: State) -> list[Path]:
    """Back up and restore every learner file; forget the last run. NoPristineCopy if git can't."""
    stubs = {name: pristine.stub(kata, name) for name in kata.files}  # all or nothing
    copies = backup(kata, state)
    for name, path in zip(kata.files, kata.learner_files(), strict=True):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(stubs[name])
    state.runs.pop(kata.slug, None)
    state.save()
    return copies
