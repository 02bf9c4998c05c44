"""Mutants of a kata's solution: generated, declared equivalent in mutants.toml, run and scored.

A mutant is the solution with one operator applied at one place. Its id is stable across edits
elsewhere in the file: the operator, the file, the text of the line it changes, and which
occurrence of that pair it is, so `mutants.toml` can name a mutant that changes no behaviour.
"""

from __future__ import annotations

import ast
import difflib
import json
import random
import tempfile
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ..catalogue import Kata
from ..running.runner import RunResult, parallel, run_kata
from ..sample_seed import sample_key
from .operators import Change, find_changes

MUTANTS_FILE = "mutants.toml"
MIN_SCORE = 0.90
MAX_EQUIVALENT_SHARE = 0.10


class MutantFileError(Exception):
    """mutants.toml is malformed; the message names the file, the entry and the problem."""


@dataclass(frozen=True)
class Mutant:
    id: str
    file: str  # the learner file it stands in for
    operator: str
    line: int
    original: str  # the solution's text
    text: str  # the mutant's text

    def diff(self) -> str:
        """The change as a unified diff with no context: usually one line out, one line in."""
        lines = difflib.unified_diff(
            self.original.splitlines(), self.text.splitlines(), lineterm="", n=0
        )
        return "\n".join(line for line in list(lines)[2:] if not line.startswith("@@"))

    def one_line(self) -> str:
        """`file:line operator: -old +new`, squeezed onto one line for a report."""
        removed = [line[1:].strip() for line in self.diff().splitlines() if line.startswith("-")]
        added = [line[1:].strip() for line in self.diff().splitlines() if line.startswith("+")]
        return f"{self.file}:{self.line} {self.operator}: -{' / '.join(removed)}  +{' / '.join(added)}"


@dataclass(frozen=True)
class Equivalent:
    id: str
    reason: str


@dataclass(frozen=True)
class Record:
    """The last full run, kept in mutants.toml so that CI's sample can be judged against it."""

    killed: int
    judged: int
    survivors: frozenset[str]

    @property
    def score(self) -> float:
        return self.killed / self.judged if self.judged else 1.0


@dataclass
class MutantResult:
    mutant: Mutant
    killed: bool
    by: str = ""  # the test that killed it, or why it could not be judged
    judged: bool = True


@dataclass
class MutationReport:
    """One kata's mutation run: what was generated, excluded, run, and what survived."""

    generated: int
    equivalent: int
    results: list[MutantResult] = field(default_factory=list)
    stale: list[str] = field(default_factory=list)
    sample: int | None = None  # how many were drawn, when only a sample ran
    seed: int | None = None
    escalated_from: int | None = None  # a sample of this size had a survivor, so all of them ran
    record: Record | None = None  # the last full run, when mutants.toml keeps one

    @property
    def killed(self) -> int:
        return sum(r.killed for r in self.results if r.judged)

    @property
    def judged(self) -> int:
        return sum(r.judged for r in self.results)

    @property
    def score(self) -> float:
        return self.killed / self.judged if self.judged else 1.0

    @property
    def survivors(self) -> list[Mutant]:
        return [r.mutant for r in self.results if r.judged and not r.killed]

    def problems(self) -> list[str]:
        """What fails the gate: a low score, too many declared equivalents, stale declarations,
        and (for a sample judged against the recorded full run) mutants that survive anew."""
        found = [f"mutants.toml names {id!r}, but no such mutant exists any more "
                 "(did the solution change? update or remove it)" for id in self.stale]
        if self.generated and self.equivalent > MAX_EQUIVALENT_SHARE * self.generated:
            found.append(f"{self.equivalent} of {self.generated} mutants declared equivalent, more than "
                         f"{MAX_EQUIVALENT_SHARE:.0%}: most of them are holes in the tests")
        if self.sample is not None and self.record is not None:
            new = [m for m in self.survivors if m.id not in self.record.survivors]
            if new:
                listed = "\n".join(f"    survived: {m.one_line()}" for m in new)
                found.append("the last full run (mutants.toml [record]) killed these mutants, and now "
                             "they survive: the tests got weaker or the solution changed; run "
                             f"`kata mutants KATA --record` once fixed:\n{listed}")
            if self.record.score < MIN_SCORE:
                found.append(f"recorded mutation score {self.record.killed}/{self.record.judged} = "
                             f"{self.record.score:.0%}, below {MIN_SCORE:.0%}")
        elif self.judged and self.score < MIN_SCORE:
            survivors = "\n".join(f"    survived: {m.one_line()}" for m in self.survivors)
            found.append(f"mutation score {self.killed}/{self.judged} = {self.score:.0%}, below "
                         f"{MIN_SCORE:.0%}; no test fails on these changes to the solution:\n{survivors}")
        return found


def generate(kata: Kata) -> list[Mutant]:
    """Every mutant of the kata's Python learner files that compiles and differs from the solution."""
    mutants = []
    for name in kata.files:
        path = kata.solution_dir / name
        if not name.endswith(".py") or not path.is_file():
            continue
        mutants += _mutants_of(name, path.read_text("utf-8"))
    return mutants


def _mutants_of(name: str, original: str) -> list[Mutant]:
    original_tree = ast.dump(ast.parse(original))
    lines = original.splitlines()
    seen: dict[tuple[str, str], int] = {}
    mutants = []
    for change in find_changes(original):
        text = original[:change.start] + change.text + original[change.end:]
        try:
            tree = ast.parse(text)
            compile(tree, name, "exec")
        except SyntaxError:
            continue  # e.g. `while` -> `if` around a `break`
        if ast.dump(tree) == original_tree:
            continue
        line_text = lines[change.line - 1].strip()
        key = (change.operator, line_text)
        seen[key] = seen.get(key, 0) + 1
        mutants.append(Mutant(_mutant_id(name, change, line_text, seen[key]), name, change.operator,
                              change.line, original, text))
    return mutants


def _mutant_id(name: str, change: Change, line_text: str, occurrence: int) -> str:
    suffix = f" #{occurrence}" if occurrence > 1 else ""
    return f"{change.operator} @ {name}: {line_text}{suffix}"


def declarations_path(kata: Kata) -> Path:
    return kata.solution_dir / MUTANTS_FILE


def load_equivalents(kata: Kata) -> list[Equivalent]:
    """The mutants declared equivalent (no behaviour changes), each with its reason."""
    return load_declarations(kata)[0]


def load_declarations(kata: Kata) -> tuple[list[Equivalent], Record | None]:
    """mutants.toml: the declared equivalents, and the record of the last full run if kept."""
    path = declarations_path(kata)
    if not path.is_file():
        return [], None
    try:
        raw = tomllib.loads(path.read_text("utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise MutantFileError(f"{path}: invalid TOML: {exc}") from None
    unknown = set(raw) - {"equivalent", "record", "survivor"}
    if unknown:
        raise MutantFileError(f"{path}: unknown table(s) {sorted(unknown)}; "
                              "only [[equivalent]], [record] and [[survivor]]")
    found = []
    for index, entry in enumerate(raw.get("equivalent", []), start=1):
        if set(entry) != {"id", "reason"} or not all(isinstance(v, str) and v.strip() for v in entry.values()):
            raise MutantFileError(f"{path}: equivalent #{index} needs exactly id and reason, as non-empty text")
        found.append(Equivalent(entry["id"], entry["reason"]))
    record = None
    if "record" in raw:
        table = raw["record"]
        if set(table) != {"killed", "judged"} or not all(isinstance(v, int) for v in table.values()):
            raise MutantFileError(f"{path}: [record] needs exactly killed and judged, as integers")
        survivors = raw.get("survivor", [])
        if not all(isinstance(e, dict) and set(e) == {"id"} for e in survivors):
            raise MutantFileError(f"{path}: each [[survivor]] needs exactly an id")
        record = Record(table["killed"], table["judged"], frozenset(e["id"] for e in survivors))
    elif "survivor" in raw:
        raise MutantFileError(f"{path}: [[survivor]] entries without a [record] table")
    return found, record


def write_record(kata: Kata, report: MutationReport) -> Path:
    """Rewrite mutants.toml with its equivalents and this full run as the record."""
    equivalents, _ = load_declarations(kata)
    lines = ["# Mutants that change no behaviour the contract can observe, each with its reason;",
             "# then the last full run (`kata mutants KATA --record`), against which CI's sample is judged."]
    for equivalent in equivalents:
        lines += ["", "[[equivalent]]", f"id = {_toml_string(equivalent.id)}",
                  f"reason = {_toml_string(equivalent.reason)}"]
    lines += ["", "[record]", f"killed = {report.killed}", f"judged = {report.judged}"]
    for mutant in report.survivors:
        lines += ["", "[[survivor]]", f"id = {_toml_string(mutant.id)}"]
    path = declarations_path(kata)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _toml_string(text: str) -> str:
    """A TOML basic string: JSON's escaping is a subset TOML accepts."""
    return json.dumps(text, ensure_ascii=False)


def choose(kata: Kata, sample: int | None = None, seed: int | None = None) -> tuple[list[Mutant], MutationReport]:
    """The mutants to run (all, or `sample` of them drawn with `seed`, by default the kata's own)
    and an empty report."""
    mutants = generate(kata)
    equivalents, record = load_declarations(kata)
    declared = {e.id for e in equivalents}
    ids = {m.id for m in mutants}
    candidates = [m for m in mutants if m.id not in declared]
    named = declared | (record.survivors if record else frozenset())
    report = MutationReport(generated=len(mutants), equivalent=len(declared & ids),
                            stale=sorted(named - ids), record=record)
    if sample is not None and sample < len(candidates):
        candidates = random.Random(sample_key(kata, seed)).sample(candidates, sample)
        report.sample, report.seed = sample, seed
    return candidates, report


def run_mutants(
    kata: Kata,
    sample: int | None = None,
    seed: int | None = None,
    jobs: int = 1,
    stress: bool = False,
    on_result: Callable[[MutantResult], None] | None = None,
) -> MutationReport:
    """Run the kata's tests on each mutant; a mutant is killed when a test fails or times out."""
    chosen, report = choose(kata, sample, seed)

    def one(mutant: Mutant) -> MutantResult:
        result = run_mutant(kata, mutant, stress)
        if on_result is not None:
            on_result(result)
        return result

    with parallel(jobs) as pool:
        report.results = list(pool.map(one, chosen))
    return report


def run_mutant(kata: Kata, mutant: Mutant, stress: bool = False) -> MutantResult:
    with tempfile.TemporaryDirectory(prefix="kata-mutant-") as tmp:
        path = Path(tmp) / Path(mutant.file).name
        path.write_text(mutant.text, encoding="utf-8")
        extra = ("--maxfail=1", *(("--stress",) if stress else ()))
        run = run_kata(kata, solutions=True, overrides={mutant.file: path}, extra_args=extra)
    return judge(mutant, run)


def judge(mutant: Mutant, run: RunResult) -> MutantResult:
    failed = [o for o in run.outcomes if o.outcome in ("failed", "error")]
    if failed:
        return MutantResult(mutant, killed=True, by=failed[0].nodeid.rsplit("::", 1)[-1])
    if run.exit_code != 0:
        # pytest died: the mutant broke the run itself (a hang past the budget, a crash)
        return MutantResult(mutant, killed=True, by=f"pytest exit {run.exit_code}")
    if not run.by_outcome("passed"):
        return MutantResult(mutant, killed=False, judged=False, by="every test skipped")
    return MutantResult(mutant, killed=False)
