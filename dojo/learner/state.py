"""The learner's progress in <repo>/.kata/state.json: last run per kata, hints shown, current kata."""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

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
    rebuilt: str = ""  # why the file was started afresh on load ("" if it was read fine)

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
    """The saved state, or a fresh one if the file is missing or unreadable (saved on next write)."""
    path = state_dir(root) / STATE_NAME
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return State(path)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        return State(path, rebuilt=f"{path} was unreadable ({exc}); starting afresh")
    try:
        return _parse(path, raw)
    except (TypeError, ValueError, AttributeError, KeyError) as exc:
        return State(path, rebuilt=f"{path} was malformed ({exc}); starting afresh")


def _record(entry: dict[str, object]) -> RunRecord:
    record = RunRecord(**entry)  # type: ignore[arg-type]
    counts = (record.passed, record.failed, record.skipped)
    if not all(isinstance(n, int) and n >= 0 for n in counts) or not isinstance(record.error, str):
        raise ValueError(f"bad run record {entry!r}")
    return record


def _parse(path: Path, raw: object) -> State:
    if not isinstance(raw, dict) or raw.get("version") != VERSION:
        raise ValueError(f"expected a version {VERSION} object")
    runs = {str(slug): _record(entry) for slug, entry in raw.get("runs", {}).items()}
    hints = {str(slug): int(count) for slug, count in raw.get("hints", {}).items()}
    current = raw.get("current")
    return State(path, runs, hints, current if isinstance(current, str) else None)
