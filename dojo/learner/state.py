"""The learner's progress in <repo>/.kata/state.json: last run per kata, hints shown, current kata."""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .aside import keep_copy
from .lenient import record_from, shown

STATE_DIR = ".kata"
STATE_NAME = "state.json"
VERSION = 1
HEADER = (
    "Written by the `kata` command: do not edit. Delete this file to forget your progress; "
    "it is rebuilt by the next `kata` command, and `kata list --refresh` re-runs what changed."
)


@dataclass
class RunRecord:
    """The outcome of the last run of one kata, and the fingerprint of the files it ran on."""

    fingerprint: str
    passed: int
    failed: int
    skipped: int = 0
    error: str = ""  # why the tests could not even be collected (import error, syntax error)
    ran_at: str = ""

    @property
    def total(self) -> int:
        return self.passed + self.failed + self.skipped


@dataclass
class State:
    """Everything `kata` remembers between commands; `path` is where it is saved."""

    path: Path
    runs: dict[str, RunRecord] = field(default_factory=dict)  # kata slug -> last run
    hints: dict[str, int] = field(default_factory=dict)  # kata slug -> hints shown so far
    current: str | None = None  # slug of the kata last run or watched
    rebuilt: str = ""  # what load had to drop or set aside, for the learner ("" if read as is)

    def save(self) -> None:
        """Write atomically (temp file + rename), so an interrupted write never corrupts it."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        payload = {
            "_comment": HEADER,
            "version": VERSION,
            "current": self.current,
            "runs": {slug: asdict(record) for slug, record in sorted(self.runs.items())},
            "hints": dict(sorted(self.hints.items())),
        }
        fd, tmp = tempfile.mkstemp(prefix=".state-", suffix=".json", dir=self.path.parent)
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            json.dump(payload, out, indent=2)
            out.write("\n")
        os.replace(tmp, self.path)


def state_dir(root: Path) -> Path:
    """<repo>/.kata: the state file and reset backups (gitignored)."""
    return root / STATE_DIR


def load(root: Path) -> State:
    """The saved state, read as far as it can be (saved on the next write).

    A record it cannot use is dropped on its own, a key it does not know ignored (a newer version
    wrote it); a file it cannot read at all is kept as state.json.broken (-2, -3...) and a fresh
    state started. Either way `rebuilt` says what happened and where the old file is.
    """
    path = state_dir(root) / STATE_NAME
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return State(path)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        return _afresh(path, f"was unreadable ({exc})")
    if not isinstance(raw, dict) or raw.get("version") != VERSION:
        return _afresh(path, f"is not a version {VERSION} state file")
    state, dropped = _parse(path, raw)
    if dropped:
        kept = keep_copy(path, move=False)
        where = f"the file as it was is kept as {kept}" if kept else "the old file could not be kept"
        state.rebuilt = f"{path}: dropped {'; '.join(dropped)}; all else is kept ({where})"
    return state


def _afresh(path: Path, why: str) -> State:
    kept = keep_copy(path, move=True)
    where = f"it is kept as {kept}" if kept else "it could not be kept"
    return State(path, rebuilt=f"{path} {why}; {where}; starting afresh")


def _record(entry: object) -> RunRecord:
    record = record_from(RunRecord, entry)
    if min(record.passed, record.failed, record.skipped) < 0:
        raise ValueError("a negative count")
    return record


def _hint_count(count: object) -> int:
    if isinstance(count, bool) or not isinstance(count, int) or count < 0:
        raise ValueError(f"{shown(count)} is not a count")
    return count


def _entries(raw: dict[str, object], key: str, dropped: list[str]) -> dict[str, object]:
    entries = raw.get(key, {})
    if isinstance(entries, dict):
        return entries
    dropped.append(f"every {key} entry ({shown(entries)} is not an object)")
    return {}


def _parse(path: Path, raw: dict[str, object]) -> tuple[State, list[str]]:
    """The state in `raw`, and a description of each part that had to be dropped."""
    dropped: list[str] = []
    runs: dict[str, RunRecord] = {}
    for slug, entry in _entries(raw, "runs", dropped).items():
        try:
            runs[slug] = _record(entry)
        except ValueError as exc:
            dropped.append(f"the run record of {slug} ({exc})")
    hints: dict[str, int] = {}
    for slug, count in _entries(raw, "hints", dropped).items():
        try:
            hints[slug] = _hint_count(count)
        except ValueError as exc:
            dropped.append(f"the hint count of {slug} ({exc})")
    current = raw.get("current")
    if current is not None and not isinstance(current, str):
        dropped.append(f"the current kata ({shown(current)} is not a name)")
        current = None
    return State(path, runs, hints, current), dropped
