"""The gallery of known mistakes: wrong implementations each kata's tests must catch.

A mistake is the solution with a few edits (find this text, put that instead), kept in
`solutions/<topic>/<kata>/mistakes.toml`. Edits instead of whole copies: the wrong turn is
what a reader sees, and a mistake that no longer fits a changed solution says so.
"""

from __future__ import annotations

import difflib
import tempfile
import tomllib
from dataclasses import dataclass
from pathlib import Path

from . import process_end
from .catalogue import Kata
from .running.runner import RunResult, run_kata

MISTAKES_FILE = "mistakes.toml"
_FIELDS = {"name", "replaces", "description", "expect", "edit"}
_EDIT_FIELDS = {"find", "replace"}


class MistakeFileError(Exception):
    """mistakes.toml is malformed; the message names the file, the entry and the problem."""


@dataclass(frozen=True)
class Edit:
    find: str
    replace: str


@dataclass(frozen=True)
class Mistake:
    """A plausible wrong version of one learner file, and the phrase its failure must show."""

    name: str
    replaces: str
    description: str
    expect: str
    edits: tuple[Edit, ...]
    solution: Path  # the solution file the edits apply to

    def text(self) -> str:
        """The wrong file: the solution with each edit made in turn."""
        return apply_edits(self.solution.read_text("utf-8"), self.edits)

    def diff(self) -> str:
        """The mistake as a unified diff against the solution."""
        solution = self.solution.read_text("utf-8")
        return "".join(difflib.unified_diff(
            solution.splitlines(keepends=True), self.text().splitlines(keepends=True),
            f"solution/{self.replaces}", f"{self.name}/{self.replaces}",
        ))


@dataclass
class MistakeResult:
    mistake: Mistake
    caught: bool
    problem: str = ""
    failed_tests: tuple[str, ...] = ()
    first_message: str = ""


def apply_edits(text: str, edits: tuple[Edit, ...]) -> str:
    """Make each edit in turn; its `find` must occur exactly once, so it names one place."""
    for number, edit in enumerate(edits, start=1):
        count = text.count(edit.find)
        if count != 1:
            where = "is not in" if count == 0 else f"occurs {count} times in"
            advice = ("did the solution change? update the edit" if count == 0
                      else "add a neighbouring line so it names one place")
            raise ValueError(f"edit #{number}: its find text {where} the solution ({advice}):\n"
                             f"{edit.find}")
        text = text.replace(edit.find, edit.replace)
    return text


def gallery_path(kata: Kata) -> Path:
    return kata.solution_dir / MISTAKES_FILE


def load_gallery(kata: Kata) -> list[Mistake]:
    """The kata's mistakes, or [] if it has no gallery yet; every edit is checked to apply."""
    path = gallery_path(kata)
    if not path.is_file():
        return []
    try:
        raw = tomllib.loads(path.read_text("utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise MistakeFileError(f"{path}: invalid TOML: {exc}") from None
    return [_mistake(kata, path, index, entry)
            for index, entry in enumerate(raw.get("mistake", []), start=1)]


def _mistake(kata: Kata, path: Path, index: int, entry: dict[str, object]) -> Mistake:
    where = f"{path}: mistake #{index} ({entry.get('name', '?')!r})"
    missing, unknown = _FIELDS - set(entry), set(entry) - _FIELDS
    if missing or unknown:
        problem = f"missing {sorted(missing)}" if missing else f"unknown {sorted(unknown)}"
        raise MistakeFileError(f"{where}: {problem}")
    edits = parse_edits(where, entry["edit"], "mistake")
    replaces = str(entry["replaces"])
    if replaces not in kata.files:
        raise MistakeFileError(f"{where}: replaces {replaces!r}, not a file of the kata")
    mistake = Mistake(str(entry["name"]), replaces, str(entry["description"]), str(entry["expect"]),
                      edits, kata.solution_dir / replaces)
    try:
        mistake.text()
    except (OSError, ValueError) as exc:
        raise MistakeFileError(f"{where}: {exc}") from None
    return mistake


def parse_edits(where: str, raw_edits: object, table: str) -> tuple[Edit, ...]:
    """The `[[<table>.edit]]` entries as Edits; MistakeFileError naming `where` if malformed."""
    if not isinstance(raw_edits, list) or not raw_edits:
        raise MistakeFileError(f"{where}: no [[{table}.edit]] (find = ..., replace = ...)")
    edits = []
    for number, edit in enumerate(raw_edits, start=1):
        if not isinstance(edit, dict) or set(edit) != _EDIT_FIELDS or not all(
            isinstance(value, str) for value in edit.values()
        ):
            raise MistakeFileError(f"{where}: edit #{number} needs exactly find and replace, as text")
        edits.append(Edit(edit["find"], edit["replace"]))
    return tuple(edits)


def try_mistake(kata: Kata, mistake: Mistake) -> MistakeResult:
    """Run the kata's tests with the mistake in place of the learner's file.

    The tests that carry the phrase run first, and pytest stops at the first failure that says
    it: usually after one test. A mistake that no failure explains there runs again, every test
    in file order, as the learner runs them.
    """
    with tempfile.TemporaryDirectory(prefix=f"kata-mistake-{mistake.name}-") as tmp:
        wrong = Path(tmp) / Path(mistake.replaces).name  # same name: a build context may need it
        wrong.write_text(mistake.text(), encoding="utf-8")
        # the other learner files come from the solution, so only this mistake is wrong
        overrides = {mistake.replaces: wrong}
        # the tests that carry the phrase go first: the failure that teaches is usually theirs
        first = _judge(mistake, run_kata(kata, solutions=True, overrides=overrides, extra_args=(
            f"--kata-first={mistake.expect}", f"--kata-stop-at={mistake.expect}")))
        if first.caught:
            return first
        # once more in the learner's order: a test that relies on an earlier one's side effect
        # (a value cached by a call it made) catches the mistake only there
        return _judge(mistake, run_kata(kata, solutions=True, overrides=overrides))


def _judge(mistake: Mistake, run: RunResult) -> MistakeResult:
    failed = [o for o in run.outcomes if o.outcome in ("failed", "error")]
    if not run.outcomes or (not failed and run.exit_code != 0):
        tail = run.output.strip().splitlines()[-3:]
        return MistakeResult(
            mistake, caught=False, problem=f"could not be run (pytest exit {run.exit_code}): {' / '.join(tail)}"
        )
    if not failed:
        return MistakeResult(mistake, caught=False, problem="slips through: every test passes")
    phrase = mistake.expect.lower()
    # the failure that teaches (it carries the phrase) comes first
    failed.sort(key=lambda o: phrase not in (o.nodeid + o.message + o.details).lower())
    names = tuple(o.nodeid.rsplit("::", 1)[-1] for o in failed)
    shown = run.output + "".join(o.nodeid + o.details + o.message for o in failed)
    if phrase not in shown.lower():
        problem = f"caught, but no failure says {mistake.expect!r}: the message doesn't teach"
        # a test that ended pytest itself (a hard stop, os._exit) hid the others: say where
        problem += "".join(f"; {o.message}\n{o.details}" for o in failed if process_end.is_cut_short(o.message))
        return MistakeResult(mistake, caught=False, failed_tests=names, problem=problem)
    return MistakeResult(mistake, caught=True, failed_tests=names, first_message=failed[0].message)
