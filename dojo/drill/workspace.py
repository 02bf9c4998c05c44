"""The scratch copy a drill is solved in: the pristine stub, under .kata/drill/, never katas/."""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from collections.abc import Set
from dataclasses import dataclass
from pathlib import Path

from ..catalogue import Kata
from ..learner import pristine, scratch
from ..learner.state import state_dir

SCRATCH_DIR = "drill"
SCRATCH_PREFIX = "scratch-"  # scratch-<pid>-<kata>-XXXX: a later drill removes what a killed one left
ATTEMPTS_DIR = "attempts"


@dataclass
class Workspace:
    """A folder holding one fresh copy of each learner file of a kata."""

    kata: Kata
    folder: Path

    @classmethod
    def create(cls, kata: Kata) -> Workspace:
        """Copy the shipped stubs (from git, so the learner's own work never leaks in) into a new
        folder .kata/drill/scratch-<pid>-<kata>-XXXX; NoPristineCopy if git cannot tell what they
        were. Scratch folders of drills whose process is gone (SIGKILL, SIGHUP) are removed first."""
        stubs = {name: pristine.stub(kata, name) for name in kata.files}  # all or nothing
        base = state_dir(kata.root) / SCRATCH_DIR
        base.mkdir(parents=True, exist_ok=True)
        scratch.sweep(SCRATCH_PREFIX, base)
        folder = Path(tempfile.mkdtemp(prefix=f"{SCRATCH_PREFIX}{os.getpid()}-{kata.name}-", dir=base))
        for name, content in stubs.items():
            (folder / name).parent.mkdir(parents=True, exist_ok=True)
            (folder / name).write_bytes(content)
        return cls(kata, folder)

    def files(self) -> dict[str, Path]:
        """Learner file name -> its scratch copy."""
        return {name: self.folder / name for name in self.kata.files}

    def overrides(self) -> list[str]:
        """pytest arguments that make the kata's tests import the scratch copies."""
        return [f"--kata-override={self.kata.slug}/{name}={path}"
                for name, path in self.files().items()]

    def fingerprint(self) -> str:
        """A hash of the scratch files' content: saves that change nothing don't start a run."""
        digest = hashlib.sha256()
        for name, path in sorted(self.files().items()):
            digest.update(name.encode() + b"\0")
            digest.update(path.read_bytes() if path.is_file() else b"\0missing")
        return digest.hexdigest()

    def concerns(self, paths: Set[Path]) -> bool:
        """Whether a batch of changed paths includes one of the scratch files."""
        wanted = {p.resolve() for p in self.files().values()}
        return any(p.resolve() in wanted for p in paths)

    def keep(self, label: str) -> Path:
        """Move the attempt to .kata/drill/attempts/<label>/ for later reading; its new folder."""
        target = self.folder.parent / ATTEMPTS_DIR / label
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.exists():
            target = Path(tempfile.mkdtemp(prefix=f"{label}-", dir=target.parent))
            target.rmdir()
        shutil.rmtree(self.folder / "__pycache__", ignore_errors=True)  # the runs' bytecode
        shutil.move(self.folder, target)
        self.folder = target
        return target

    def remove(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)
