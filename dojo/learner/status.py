"""Where a learner stands on each kata: not started, changed, failing k of n, skipped, done."""

from __future__ import annotations

import enum
import hashlib
from dataclasses import dataclass

from .. import process_end
from ..catalogue import Catalogue, Kata
from . import pristine
from .state import RunRecord, State

# Generated or cached files that never change what the tests see.
_IGNORED_DIRS = {"__pycache__", ".pytest_cache", ".hypothesis", ".mypy_cache", ".ruff_cache"}


class Kind(enum.Enum):
    NOT_STARTED = "not started"
    CHANGED = "changed"  # files differ from what the last run saw (or edited, never run)
    FAILING = "failing"
    SKIPPED = "skipped"  # no failures, but some tests could not run (a service is missing)
    DONE = "done"


@dataclass(frozen=True)
class Status:
    """A kata's status, with the last run behind it (None if it was never run)."""

    kind: Kind
    last: RunRecord | None = None
    missing: tuple[str, ...] = ()  # learner files that are gone (deleted by accident?)

    @property
    def finished(self) -> bool:
        return self.kind is Kind.DONE

    def describe(self) -> str:
        """A short phrase: 'failing 3 of 12', 'changed since last run (was done)'."""
        if self.missing:
            return f"{', '.join(self.missing)} missing: `kata reset` brings it back"
        if self.kind is Kind.FAILING and self.last is not None:
            if self.last.error:
                if process_end.is_cut_short(self.last.error):
                    return "failing: the test process died"
                return "failing: the tests cannot be collected"
            return f"failing {self.last.failed} of {self.last.total}"
        if self.kind is Kind.SKIPPED and self.last is not None:
            return f"{self.last.skipped} of {self.last.total} skipped (kata doctor)"
        if self.kind is Kind.CHANGED:
            if self.last is None:
                return "changed, not run yet"
            return f"changed since last run (was {_outcome(self.last)})"
        return str(self.kind.value)


def _outcome(record: RunRecord) -> str:
    if record.error or record.failed:
        return f"failing {record.failed} of {record.total}" if not record.error else "failing"
    return "skipped" if record.skipped else "done"


def fingerprint(kata: Kata) -> str:
    """A hash of everything in the kata's folder that the tests depend on (the learner's files,
    the tests, support files), so an edit anywhere makes the last result stale."""
    digest = hashlib.sha256()
    files = [p for p in sorted(kata.kata_dir.rglob("*")) if p.is_file()]
    for path in files:
        rel = path.relative_to(kata.kata_dir)
        if _IGNORED_DIRS.intersection(rel.parts[:-1]) or path.suffix in (".pyc", ".pyo"):
            continue
        digest.update(rel.as_posix().encode() + b"\0")
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def status_of(kata: Kata, state: State) -> Status:
    """The kata's status now: a recorded result only counts if the files are still the same."""
    last = state.runs.get(kata.slug)
    missing = tuple(name for name, path in zip(kata.files, kata.learner_files(), strict=True)
                    if not path.is_file())
    if missing:
        return Status(Kind.CHANGED, last, missing)
    if last is None:
        # never run: an edited stub is work in progress, not a blank slate
        return Status(Kind.CHANGED if pristine.is_untouched(kata) is False else Kind.NOT_STARTED)
    if last.fingerprint != fingerprint(kata):
        return Status(Kind.CHANGED, last)
    if last.error or last.failed:
        return Status(Kind.FAILING, last)
    if last.skipped:
        return Status(Kind.SKIPPED, last)
    return Status(Kind.DONE, last)


def statuses(catalogue: Catalogue, state: State) -> dict[str, Status]:
    """Slug -> status for every kata, in learning order."""
    return {kata.slug: status_of(kata, state) for kata in catalogue.katas}


def first_unfinished(catalogue: Catalogue, state: State, level: int | None = None) -> Kata | None:
    """The first kata in learning order (of difficulty `level`, if given) that is not done, or
    None when all are."""
    for kata in catalogue.katas:
        if level is not None and kata.difficulty != level:
            continue
        if not status_of(kata, state).finished:
            return kata
    return None
