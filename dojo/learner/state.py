"""The learner's progress in <repo>/.kata/state.json: last run per kata, hints shown, current kata."""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .aside import keep_copy
from .filelock import locked
from .lenient import record_from, shown

STATE_DIR = ".kata"
STATE_NAME = "state.json"
LOCK_NAME = "state.lock"
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
    # a kata in stages: how many, and the first with a failure (0: none failing, or no stages)
    stages: int = 0
    stage: int = 0
    stage_name: str = ""
    stage_failed: int = 0
    stage_total: int = 0

    @property
    def total(self) -> int:
        return self.passed + self.failed + self.skipped

    @property
    def green(self) -> bool:
        """Every test ran and passed (a skipped test is not a pass)."""
        return not (self.error or self.failed or self.skipped) and self.passed > 0


@dataclass(frozen=True)
class _Snapshot:
    """What a State held when it last agreed with the file: its own changes are the difference."""

    runs: dict[str, RunRecord] = field(default_factory=dict)
    hints: dict[str, int] = field(default_factory=dict)
    current: str | None = None
    file: tuple[int, int, int] | None = None  # (inode, mtime ns, size) of the file as read


@dataclass
class State:
    """Everything `kata` remembers between commands; `path` is where it is saved.

    Another command (a second terminal, `kata watch` beside `kata hint`) may save while this one
    runs: `save` writes only what changed here since `load`, merged kata by kata into the file
    as it is by then, under a lock.
    """

    path: Path
    runs: dict[str, RunRecord] = field(default_factory=dict)  # kata slug -> last run
    hints: dict[str, int] = field(default_factory=dict)  # kata slug -> hints shown so far
    current: str | None = None  # slug of the kata last run or watched
    rebuilt: str = ""  # what load had to drop or set aside, for the learner ("" if read as is)
    _base: _Snapshot = field(default_factory=_Snapshot, repr=False, compare=False)

    def save(self) -> None:
        """Merge this state's changes into the file under a lock, write it atomically (temp file
        + rename, so an interrupted write never corrupts it), and take on the merged result."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with locked(self.path.with_name(LOCK_NAME)):
            merged = self._merged_into(_read_for_merge(self.path, self._base.file))
            _write(merged)
            self.runs, self.hints, self.current = merged.runs, merged.hints, merged.current
            self._base = _snapshot(self, _signature(self.path))

    def _merged_into(self, latest: State) -> State:
        """`latest` with this state's own changes applied: per kata, the rest left as it is."""
        runs = dict(latest.runs)
        for slug in self.runs.keys() | self._base.runs.keys():
            if self.runs.get(slug) == self._base.runs.get(slug):
                continue  # not ours to decide: whatever the file says now
            if slug in self.runs:
                runs[slug] = self.runs[slug]
            else:
                runs.pop(slug, None)  # a reset here forgot it
        hints = dict(latest.hints)
        for slug, count in self.hints.items():
            if count != self._base.hints.get(slug):
                hints[slug] = max(count, hints.get(slug, 0))  # hints shown stay shown
        current = self.current if self.current != self._base.current else latest.current
        return State(self.path, runs, hints, current)


def _snapshot(state: State, file: tuple[int, int, int] | None) -> _Snapshot:
    return _Snapshot(dict(state.runs), dict(state.hints), state.current, file)


def _signature(path: Path) -> tuple[int, int, int] | None:
    try:
        info = path.stat()
    except OSError:
        return None
    return info.st_ino, info.st_mtime_ns, info.st_size


def _write(state: State) -> None:
    payload = {
        "_comment": HEADER,
        "version": VERSION,
        "current": state.current,
        "runs": {slug: asdict(record) for slug, record in sorted(state.runs.items())},
        "hints": dict(sorted(state.hints.items())),
    }
    fd, tmp = tempfile.mkstemp(prefix=".state-", suffix=".json", dir=state.path.parent)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        json.dump(payload, out, indent=2)
        out.write("\n")
    os.replace(tmp, state.path)


def _read_for_merge(path: Path, loaded: tuple[int, int, int] | None) -> State:
    """The file as it is now, read as load reads it; a copy of anything dropped is kept only if
    the file changed since it was loaded (load kept one of what it saw)."""
    if loaded is not None and _signature(path) == loaded:
        return _read(path, keep=False)
    return _read(path, keep=True)


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
    with locked(path.with_name(LOCK_NAME)):  # never half of a save by another command
        file = _signature(path)
        state = _read(path, keep=True)
    state._base = _snapshot(state, file)
    return state


def _read(path: Path, *, keep: bool) -> State:
    """The state in `path` (empty if missing); with `keep`, what cannot be used is kept aside."""
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return State(path)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        return _afresh(path, f"was unreadable ({exc})", keep)
    if not isinstance(raw, dict) or raw.get("version") != VERSION:
        return _afresh(path, f"is not a version {VERSION} state file", keep)
    state, dropped = _parse(path, raw)
    if dropped and keep:
        kept = keep_copy(path, move=False)
        where = f"the file as it was is kept as {kept}" if kept else "the old file could not be kept"
        state.rebuilt = f"{path}: dropped {'; '.join(dropped)}; all else is kept ({where})"
    return state


def _afresh(path: Path, why: str, keep: bool) -> State:
    kept = keep_copy(path, move=True) if keep else None
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
