"""The drill log in <repo>/.kata/drills.json: one entry per drill, kept apart from state.json."""

from __future__ import annotations

import datetime as dt
import json
import os
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ..learner.aside import keep_copy
from ..learner.lenient import record_from, shown
from ..learner.state import state_dir

LOG_NAME = "drills.json"
VERSION = 1
HEADER = (
    "Written by `kata drill`: do not edit. Your drill history; delete this file to forget it "
    "(the next drill starts a new one). Your progress on the katas themselves is in state.json."
)

GREEN = "green"
TIMED_OUT = "timed out"
ABANDONED = "abandoned"
OUTCOMES = (GREEN, TIMED_OUT, ABANDONED)


@dataclass(frozen=True)
class Entry:
    """One drill: which kata, when it started, how it ended, how long it took, how many runs."""

    kata: str  # topic/name
    started: str  # ISO 8601 date-time with offset, when the timer started
    outcome: str  # GREEN, TIMED_OUT or ABANDONED
    seconds: float  # time to green, or time spent until the time box ran out or the drill stopped
    runs: int  # test runs during the drill
    minutes: float  # the time box it was given
    mock: str = ""  # the start time of the mock interview it belonged to ("" on its own)

    @property
    def topic(self) -> str:
        return self.kata.partition("/")[0]

    @property
    def when(self) -> dt.datetime:
        return dt.datetime.fromisoformat(self.started)


@dataclass
class DrillLog:
    """The entries, oldest first; `rebuilt` says what load dropped or set aside ('' if read as is)."""

    path: Path
    entries: list[Entry] = field(default_factory=list)
    rebuilt: str = ""

    def add(self, entry: Entry) -> None:
        """Append and save at once: a drill that ends in a crash later is still on record."""
        self.entries.append(entry)
        self.save()

    def save(self) -> None:
        """Write atomically (temp file + rename), so an interrupted write never corrupts it."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        payload = {"_comment": HEADER, "version": VERSION,
                   "drills": [asdict(entry) for entry in self.entries]}
        fd, tmp = tempfile.mkstemp(prefix=".drills-", suffix=".json", dir=self.path.parent)
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            json.dump(payload, out, indent=2)
            out.write("\n")
        os.replace(tmp, self.path)

    def last_of(self, slug: str) -> Entry | None:
        """The most recent drill of a kata, or None if it was never drilled."""
        for entry in reversed(self.entries):
            if entry.kata == slug:
                return entry
        return None


def log_path(root: Path) -> Path:
    return state_dir(root) / LOG_NAME


def _entry(raw: object) -> Entry:
    entry = record_from(Entry, raw)
    if dt.datetime.fromisoformat(entry.started).tzinfo is None:  # history sorts and groups by it
        raise ValueError(f"a start without a UTC offset: {entry.started!r}")
    if entry.outcome not in OUTCOMES:
        raise ValueError(f"outcome {shown(entry.outcome)}, not one of {', '.join(OUTCOMES)}")
    if entry.runs < 0 or entry.seconds < 0:
        raise ValueError("a negative count or time")
    return entry


def load(root: Path) -> DrillLog:
    """The saved log; an empty one if the file is missing.

    An entry it cannot use is dropped on its own (the file as it was is kept as drills.json.broken,
    -2, -3..., and the rest saved at once); a key it does not know is ignored. An unreadable file
    is moved aside the same way and a new log started: weeks of history are never lost silently.
    """
    path = log_path(root)
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(raw, dict) or raw.get("version") != VERSION:
            raise ValueError(f"expected a version {VERSION} object")
        items = raw.get("drills", [])
        if not isinstance(items, list):
            raise ValueError(f"drills is {shown(items)}, not a list")
    except FileNotFoundError:
        return DrillLog(path)
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        aside = keep_copy(path, move=True)
        where = f"it was kept as {aside}" if aside else "it could not be kept"
        return DrillLog(path, rebuilt=f"{path} could not be read ({exc}); {where} and a new log started")
    log, dropped = DrillLog(path), []
    for number, item in enumerate(items, 1):
        try:
            log.entries.append(_entry(item))
        except ValueError as exc:
            dropped.append(f"drill {number} ({exc})")
    if dropped:
        aside = keep_copy(path, move=False)
        where = f"the file as it was is kept as {aside}" if aside else "the old file could not be kept"
        log.rebuilt = f"{path}: dropped {'; '.join(dropped)}; all else is kept ({where})"
        if aside:
            log.save()  # once: the next load must not set the same file aside again
    return log
