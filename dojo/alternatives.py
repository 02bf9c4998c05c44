"""Correct alternatives: other good designs of a kata's learner files, which its tests must accept.

Kept in `solutions/<topic>/<kata>/alternatives.toml`. An alternative is either the solution with
a few edits (like a mistake) or, where the design differs throughout, a whole file under
`alternatives/` beside it. A test that rejects one over-specifies: it checks a shape the README
does not promise instead of the behaviour it does.
"""

from __future__ import annotations

import difflib
import tempfile
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from .catalogue import Kata
from .mistakes import Edit, MistakeFileError, apply_edits, parse_edits
from .running.runner import base_nodeid, run_kata

ALTERNATIVES_FILE = "alternatives.toml"
ALTERNATIVES_DIR = "alternatives"
MIN_ALTERNATIVES = 2
_FIELDS = {"name", "replaces", "design"}


@dataclass(frozen=True)
class Alternative:
    """A correct design different from the reference, and a line saying how it differs."""

    name: str
    replaces: str
    design: str
    solution: Path  # the reference file it stands in for
    edits: tuple[Edit, ...] = ()
    file: Path | None = None  # a whole file, when the design differs throughout

    def text(self) -> str:
        if self.file is not None:
            return self.file.read_text("utf-8")
        return apply_edits(self.solution.read_text("utf-8"), self.edits)

    def diff(self) -> str:
        """The alternative as a unified diff against the reference solution."""
        solution = self.solution.read_text("utf-8")
        return "".join(difflib.unified_diff(
            solution.splitlines(keepends=True), self.text().splitlines(keepends=True),
            f"solution/{self.replaces}", f"{self.name}/{self.replaces}",
        ))


@dataclass
class AlternativeResult:
    alternative: Alternative
    rejected_by: list[str] = field(default_factory=list)  # "test: message" for each failure
    problem: str = ""

    @property
    def accepted(self) -> bool:
        return not self.rejected_by and not self.problem


def load_alternatives(kata: Kata) -> list[Alternative]:
    """The kata's alternatives, or [] if it has none yet; every edit and file is checked."""
    path = kata.solution_dir / ALTERNATIVES_FILE
    if not path.is_file():
        return []
    try:
        raw = tomllib.loads(path.read_text("utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise MistakeFileError(f"{path}: invalid TOML: {exc}") from None
    found = [_alternative(kata, path, index, entry)
             for index, entry in enumerate(raw.get("alternative", []), start=1)]
    names = [a.name for a in found]
    for name in {n for n in names if names.count(n) > 1}:
        raise MistakeFileError(f"{path}: two alternatives are called {name!r}")
    return found


def _alternative(kata: Kata, path: Path, index: int, entry: dict[str, object]) -> Alternative:
    where = f"{path}: alternative #{index} ({entry.get('name', '?')!r})"
    keys = set(entry)
    missing, unknown = _FIELDS - keys, keys - _FIELDS - {"file", "edit"}
    if missing or unknown:
        problem = f"missing {sorted(missing)}" if missing else f"unknown {sorted(unknown)}"
        raise MistakeFileError(f"{where}: {problem}")
    if ("file" in keys) == ("edit" in keys):
        raise MistakeFileError(f"{where}: give either file = \"{ALTERNATIVES_DIR}/...\" or [[alternative.edit]]")
    replaces = str(entry["replaces"])
    if replaces not in kata.files:
        raise MistakeFileError(f"{where}: replaces {replaces!r}, not a file of the kata")
    common = dict(name=str(entry["name"]), replaces=replaces, design=str(entry["design"]),
                  solution=kata.solution_dir / replaces)
    if "file" in keys:
        file = kata.solution_dir / str(entry["file"])
        if not file.is_file() or file.parent.name != ALTERNATIVES_DIR:
            raise MistakeFileError(f"{where}: file {entry['file']!r} is not a file in {ALTERNATIVES_DIR}/")
        return Alternative(**common, file=file)  # type: ignore[arg-type]
    alternative = Alternative(**common, edits=parse_edits(where, entry["edit"], "alternative"))  # type: ignore[arg-type]
    try:
        alternative.text()
    except (OSError, ValueError) as exc:
        raise MistakeFileError(f"{where}: {exc}") from None
    return alternative


def try_alternative(kata: Kata, alternative: Alternative, repeat: int = 3, stress: bool = False) -> AlternativeResult:
    """Run the kata's tests `repeat` times with the alternative in place: every run must pass."""
    with tempfile.TemporaryDirectory(prefix=f"kata-alternative-{alternative.name}-") as tmp:
        right = Path(tmp) / Path(alternative.replaces).name
        right.write_text(alternative.text(), encoding="utf-8")
        run = run_kata(kata, solutions=True, overrides={alternative.replaces: right}, repeat=repeat,
                       extra_args=("--stress",) if stress else ())
    result = AlternativeResult(alternative)
    failed = [o for o in run.outcomes if o.outcome in ("failed", "error")]
    seen = set()
    for outcome in failed:
        test = base_nodeid(outcome.nodeid, repeat).rsplit("::", 1)[-1]
        if test not in seen:
            seen.add(test)
            first_line = (outcome.message.strip().splitlines() or [""])[0][:200]
            result.rejected_by.append(f"{test}: {first_line}")
    if not failed and (run.exit_code != 0 or not run.by_outcome("passed")):
        tail = " / ".join(run.output.strip().splitlines()[-3:])
        if run.exit_code != 0:
            result.problem = f"could not be run (pytest exit {run.exit_code}): {tail}"
    return result
