"""The gallery of known mistakes: wrong implementations each kata's tests must catch."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path

from .catalogue import Kata
from .runner import RunResult, run_kata

MISTAKES_DIR = "mistakes"
MISTAKES_FILE = "mistakes.toml"
_FIELDS = {"name", "file", "replaces", "description", "expect"}


class MistakeFileError(Exception):
    """mistakes.toml is malformed; the message names the file, the entry and the problem."""


@dataclass(frozen=True)
class Mistake:
    """A plausible wrong version of one learner file, and the phrase its failure must show."""

    name: str
    file: Path
    replaces: str
    description: str
    expect: str


@dataclass
class MistakeResult:
    mistake: Mistake
    caught: bool
    problem: str = ""
    failed_tests: tuple[str, ...] = ()
    first_message: str = ""


def gallery_path(kata: Kata) -> Path:
    return kata.solution_dir / MISTAKES_DIR / MISTAKES_FILE


def load_gallery(kata: Kata) -> list[Mistake]:
    """The kata's mistakes, or [] if it has no gallery yet."""
    path = gallery_path(kata)
    if not path.is_file():
        return []
    try:
        raw = tomllib.loads(path.read_text("utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise MistakeFileError(f"{path}: invalid TOML: {exc}") from None
    mistakes = []
    for index, entry in enumerate(raw.get("mistake", []), start=1):
        where = f"{path}: mistake #{index} ({entry.get('name', '?')!r})"
        missing = _FIELDS - set(entry)
        unknown = set(entry) - _FIELDS
        if missing or unknown:
            problem = f"missing {sorted(missing)}" if missing else f"unknown {sorted(unknown)}"
            raise MistakeFileError(f"{where}: {problem}")
        if entry["replaces"] not in kata.files:
            raise MistakeFileError(f"{where}: replaces {entry['replaces']!r}, not a file of the kata")
        file = path.parent / entry["file"]
        if not file.is_file():
            raise MistakeFileError(f"{where}: {file} does not exist")
        mistakes.append(Mistake(entry["name"], file, entry["replaces"], entry["description"], entry["expect"]))
    return mistakes


def try_mistake(kata: Kata, mistake: Mistake) -> MistakeResult:
    """Run the kata's tests with the mistake in place of the learner's file.

    The first failure usually tells the story, so the tests stop at it; only when that one
    doesn't carry the phrase (or nothing failed) does the whole suite run.
    """
    overrides = {mistake.replaces: mistake.file}
    # the other learner files come from the solution, so only this mistake is wrong
    result = _judge(mistake, run_kata(kata, solutions=True, overrides=overrides, extra_args=("--maxfail=1",)))
    if result.caught:
        return result
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
        return MistakeResult(
            mistake, caught=False, failed_tests=names,
            problem=f"caught, but no failure says {mistake.expect!r}: the message doesn't teach",
        )
    return MistakeResult(mistake, caught=True, failed_tests=names, first_message=failed[0].message)
