"""The maintainer check: every kata is complete, fails on its stub and passes on its solution."""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Iterable
from concurrent.futures import as_completed
from dataclasses import dataclass, field
from pathlib import Path
from time import monotonic
from typing import TypeVar

from .alternatives import (
    ALTERNATIVES_DIR,
    ALTERNATIVES_FILE,
    MIN_ALTERNATIVES,
    AlternativeResult,
    load_alternatives,
    try_alternative,
)
from .catalogue import KATAS_DIR, SOLUTIONS_DIR, Catalogue, Kata
from .mistakes import MISTAKES_FILE, MistakeFileError, MistakeResult, load_gallery, try_mistake
from .mutation.mutants import MUTANTS_FILE, MutantFileError, MutationReport, run_mutant, run_mutants
from .running.runner import RunResult, base_nodeid, parallel, run_kata
from .sample_seed import sample_key

# Files a kata folder may hold besides those the catalogue lists.
ALWAYS_ALLOWED = {"README.md", "__init__.py", "conftest.py"}
IGNORED = {"__pycache__", ".pytest_cache", ".mypy_cache", ".ruff_cache"}
MIN_README_CHARS = 200
MIN_MISTAKES = 3
MAINTAINER_FILES = {MISTAKES_FILE, ALTERNATIVES_FILE, MUTANTS_FILE, ALTERNATIVES_DIR}
# What makes a hint show code: a backtick, a call, an assignment, a bytes or raw literal.
# The first hint must be a nudge (the concept, the contract clause, the question to ask).
QUESTION_MARK = "**The interviewer's question:**"
README_SECTIONS = ("What a good answer covers", "Follow-ups", "Sources")
DOC_CITED = re.compile(r"\bdocs/[\w./-]+\.md\b")  # a learner must be able to open what a kata cites
T = TypeVar("T")
CODE_IN_HINT = re.compile(r"`|\b[A-Za-z_][\w.]*\(| = |\b[bru]'")


@dataclass(frozen=True)
class Checks:
    """Which checks a verify run makes, and how hard."""

    repeat: int = 3  # how many times the solution must pass
    alternatives_repeat: int = 3  # and each alternative (CI: once, its time goes to more katas)
    strict: bool = False  # a skipped test (a missing service) is a problem
    mistakes: bool = True
    alternatives: bool = True
    mutants: bool = False
    mutant_sample: int | None = None  # run this many mutants per kata, drawn with the seed
    mistake_sample: int | None = None  # and this many known mistakes (CI's slowest katas)
    seed: int | None = None  # None: each kata's own, from its files (sample_seed)
    stressed_topics: frozenset[str] = frozenset()  # solutions run under --stress
    pending: frozenset[str] = frozenset()  # katas before their rigor pass: the bar only warns


@dataclass
class KataReport:
    """Everything the check found about one kata."""

    kata: Kata
    problems: list[str] = field(default_factory=list)
    tests: int = 0
    stub_failing: int = 0
    solution_runs: int = 0
    skipped: str = ""
    mistakes: list[MistakeResult] = field(default_factory=list)
    alternatives: list[AlternativeResult] = field(default_factory=list)
    mutation: MutationReport | None = None
    warnings: list[str] = field(default_factory=list)  # the bar, for a kata before its rigor pass
    seconds: dict[str, float] = field(default_factory=dict)  # each check's share of the run (CI's budget)

    def timed(self, check: str) -> _Stopwatch:
        return _Stopwatch(self.seconds, check)

    @property
    def caught(self) -> int:
        return sum(m.caught for m in self.mistakes)

    @property
    def ok(self) -> bool:
        return not self.problems


class _Stopwatch:
    """Adds the time spent inside `with` to seconds[check]."""

    def __init__(self, seconds: dict[str, float], check: str) -> None:
        self.seconds, self.check = seconds, check

    def __enter__(self) -> None:
        self.start = monotonic()

    def __exit__(self, *exc: object) -> None:
        self.seconds[self.check] = self.seconds.get(self.check, 0.0) + monotonic() - self.start


def static_problems(kata: Kata) -> list[str]:
    """What is missing or out of place in the kata's folders, without running anything."""
    problems = []
    for file in (*kata.learner_files(), *kata.solution_files()):
        if not file.is_file():
            problems.append(f"{_rel(kata, file)} is listed in katas.toml but does not exist")
    if not kata.readme.is_file() or len(kata.readme.read_text("utf-8")) < MIN_README_CHARS:
        problems.append(f"{_rel(kata, kata.readme)} is missing or too short to explain the task")
    topic_readme = kata.root / KATAS_DIR / kata.topic / "README.md"
    if not topic_readme.is_file():
        problems.append(f"{_rel(kata, topic_readme)} is missing")
    elif f"({kata.name}/README.md)" not in topic_readme.read_text("utf-8"):
        problems.append(f"{_rel(kata, topic_readme)} does not link {kata.name}/README.md (its table of katas)")
    for stub in kata.learner_files():
        if stub.is_file() and "TODO" not in stub.read_text("utf-8"):
            problems.append(f"{_rel(kata, stub)} has no TODO marking what to edit")
    if not list(kata.kata_dir.glob("test_*.py")):
        problems.append(f"{_rel(kata, kata.kata_dir)} has no test_*.py")
    learner_allowed = ALWAYS_ALLOWED | set(kata.files) | set(kata.support_files)
    for stray in _stray(kata.kata_dir, learner_allowed, test_files=True):
        problems.append(f"stray file {_rel(kata, stray)} (not in the catalogue entry)")
    for stray in _stray(kata.solution_dir, set(kata.files) | MAINTAINER_FILES, test_files=False):
        problems.append(f"stray file {_rel(kata, stray)} (not in the catalogue entry)")
    for file in (kata.readme, *sorted(kata.kata_dir.glob("test_*.py"))):
        text = file.read_text("utf-8") if file.is_file() else ""
        for cited in sorted(set(DOC_CITED.findall(text))):
            if not (kata.root / cited).is_file():
                problems.append(f"{_rel(kata, file)} cites {cited}, which is not in the repository")
    if kata.readme.is_file():
        problems += readme_problems(kata.readme.read_text("utf-8"), _rel(kata, kata.readme))
    for field_name in ("difficulty", "minutes"):
        if not getattr(kata, field_name):
            problems.append(f"katas.toml: {kata.name} has no {field_name} (a learner plans with it)")
    if kata.hints and (code := CODE_IN_HINT.search(kata.hints[0])):
        problems.append(
            f"first hint shows code ({code.group()!r}): hints nudge before they show code; move it to a later hint"
        )
    return problems


def readme_problems(text: str, name: str) -> list[str]:
    """What a kata README lacks of the shape learners and `kata drill` rely on: the interviewer's
    question in the intro (the drill card), then a good answer, follow-ups and sources."""
    problems = []
    intro = text.split("\n## ", 1)[0]
    if QUESTION_MARK not in intro:
        problems.append(f"{name} does not open with {QUESTION_MARK} (before its first section)")
    headings = re.findall(r"^## (.+?)\s*$", text, re.MULTILINE)
    for wanted in README_SECTIONS:
        if wanted not in headings:
            problems.append(f"{name} has no '## {wanted}' section")
    sources = text.split("\n## Sources", 1)[-1].split("\n## ", 1)[0] if "Sources" in headings else ""
    if "Sources" in headings and not re.search(r"\]\(https?://", sources):
        problems.append(f"{name}: '## Sources' links no primary source")
    return problems


def _stray(folder: Path, allowed: set[str], *, test_files: bool) -> list[Path]:
    if not folder.is_dir():
        return []
    return [
        path for path in sorted(folder.iterdir())
        if path.name not in allowed
        and path.name not in IGNORED
        and not path.name.startswith(".")
        and not (test_files and path.name.startswith("test_") and path.suffix == ".py")
    ]


def catalogue_problems(catalogue: Catalogue) -> list[str]:
    """Kata folders on disk that no catalogue entry claims, and topics that have no kata."""
    known = {(k.topic, k.name) for k in catalogue.katas}
    topics = {t.name for t in catalogue.topics}
    found = [
        f"topic {t.name!r} has no kata (`pytest katas/{t.name}` would collect nothing)"
        for t in catalogue.topics
        if not catalogue.in_topic(t.name)
    ]
    for tree in (KATAS_DIR, SOLUTIONS_DIR):
        base = catalogue.root / tree
        for folder in sorted(base.glob("*/*/")):
            if folder.name in IGNORED or folder.name.startswith((".", "_")):
                continue
            if (folder.parent.name, folder.name) not in known and folder.parent.name in topics:
                found.append(f"{tree}/{folder.parent.name}/{folder.name}/ is not in katas.toml")
    return found


def check_stub(report: KataReport, run: RunResult) -> None:
    """Every test must fail on the pristine stub, in the test body, not in collection or setup."""
    kata = report.kata
    if run.exit_code not in (0, 1) and not run.outcomes:
        report.problems.append(f"pytest could not run the stub (exit {run.exit_code}):\n{run.output[-2000:]}")
        return
    report.tests = len(run.tests)
    if not run.outcomes:
        report.problems.append("no tests were collected")
        return
    for outcome in run.outcomes:
        test = _short(kata, outcome.nodeid)
        if outcome.outcome == "passed":
            report.problems.append(f"{test} PASSES on the stub: it checks nothing the learner does")
        elif outcome.outcome == "error":
            report.problems.append(
                f"{test} errors on the stub in {outcome.phase} ({outcome.message}); "
                "it must fail by an assertion or NotImplementedError"
            )
        elif outcome.outcome == "skipped":
            report.skipped = outcome.message
    report.stub_failing = len(run.by_outcome("failed"))
    report.problems += _stage_problems(kata, run)


def _stage_problems(kata: Kata, run: RunResult) -> list[str]:
    """Each test in exactly one stage, numbered from 1 (dojo/stages.py); none is fine too."""
    from .stages import Stage, check  # a pytest plugin module: only when a stub run is judged

    tests = [o for o in run.outcomes if o.phase != "collect"]
    problems = [f"{_short(kata, o.nodeid)} is {o.stage_problem}" for o in tests if o.stage_problem]
    found = {_short(kata, o.nodeid): (Stage(o.stage, o.stage_name) if o.stage else None)
             for o in tests if not o.stage_problem}
    return problems + check(found)


def check_solution(report: KataReport, run: RunResult, repeat: int) -> None:
    """Every test must pass on the solution, on every repeat."""
    kata = report.kata
    if run.exit_code not in (0, 1, 5) and not run.outcomes:
        report.problems.append(f"pytest could not run the solution (exit {run.exit_code}):\n{run.output[-2000:]}")
        return
    seen: dict[str, int] = {}
    for outcome in run.outcomes:
        test = base_nodeid(outcome.nodeid, run.repeat)
        if outcome.outcome == "passed":
            seen[test] = seen.get(test, 0) + 1
        elif outcome.outcome == "skipped":
            report.skipped = outcome.message
        else:
            report.problems.append(
                f"{_short(kata, test)} {outcome.outcome.upper()} on the solution: {outcome.message}"
            )
    flaky = sorted(t for t, n in seen.items() if 0 < n < repeat)
    for test in flaky:
        report.problems.append(f"{_short(kata, test)} is flaky: passed {seen[test]} of {repeat} runs")
    report.solution_runs = min(seen.values(), default=0)


def check_mistakes(report: KataReport, checks: Checks) -> None:
    """Every known mistake (or a sample of them) must fail a test, with its phrase in the output."""
    try:
        gallery = load_gallery(report.kata)
    except MistakeFileError as exc:
        report.problems.append(str(exc))
        return
    if len(gallery) < MIN_MISTAKES:
        report.problems.append(
            f"{len(gallery)} known mistake(s) in solutions/{report.kata.slug}/{MISTAKES_FILE}, "
            f"at least {MIN_MISTAKES} wanted"
        )
    for mistake in _sample(gallery, checks.mistake_sample, sample_key(report.kata, checks.seed)):
        result = try_mistake(report.kata, mistake)
        report.mistakes.append(result)
        if not result.caught:
            report.problems.append(f"mistake {mistake.name!r} {result.problem}")


def _sample(items: list[T], size: int | None, seed: str) -> list[T]:
    """`size` of `items` drawn with `seed`, in their own order; all of them without a size."""
    if size is None or size >= len(items):
        return items
    chosen = set(random.Random(seed).sample(range(len(items)), size))
    return [item for i, item in enumerate(items) if i in chosen]


def check_alternatives(report: KataReport, checks: Checks) -> None:
    """Every correct alternative must pass every test on every repeat; at least two are wanted."""
    kata = report.kata
    try:
        alternatives = load_alternatives(kata)
    except MistakeFileError as exc:
        report.problems.append(str(exc))
        return
    if len(alternatives) < MIN_ALTERNATIVES:
        _bar(report, checks, f"{len(alternatives)} correct alternative(s) in solutions/{kata.slug}/"
                             f"{ALTERNATIVES_FILE}, at least {MIN_ALTERNATIVES} wanted")
    stressed = kata.topic in checks.stressed_topics
    for alternative in alternatives:
        result = try_alternative(kata, alternative, checks.alternatives_repeat, stressed)
        report.alternatives.append(result)
        if result.problem:
            report.problems.append(f"alternative {alternative.name!r} {result.problem}")
        for rejection in result.rejected_by:
            report.problems.append(
                f"alternative {alternative.name!r} ({alternative.design}) is rejected by {rejection}: "
                "a correct design fails, so the test over-specifies"
            )


def check_mutants(report: KataReport, checks: Checks) -> None:
    """The tests must kill at least 90 % of the solution's mutants."""
    if checks.mutant_sample is not None and report.kata.slug in checks.pending:
        # a sample of a kata before its rigor pass could only warn: CI's time goes to the katas
        # the bar holds (`kata mutants KATA` shows the rest)
        report.warnings.append("mutants not sampled before the rigor pass: `kata mutants "
                               f"{report.kata.name}` runs them")
        return
    try:
        mutation = run_mutants(report.kata, checks.mutant_sample, checks.seed,
                               stress=report.kata.topic in checks.stressed_topics)
    except MutantFileError as exc:
        report.problems.append(str(exc))
        return
    if (mutation.sample is not None and mutation.survivors and mutation.record is None
            and report.kata.slug not in checks.pending):
        # a sample only estimates the score, and one survivor in 8 reads as 88 %: the gate is the
        # exact score. With a record of the last full run, the sample is judged against it (a
        # survivor the record lists is expected); without one, every mutant runs
        mutation = run_mutants(report.kata, stress=report.kata.topic in checks.stressed_topics)
        mutation.escalated_from = checks.mutant_sample
    elif mutation.sample is not None and mutation.record is not None:
        _retry_new_survivors(report, mutation, stressed=report.kata.topic in checks.stressed_topics)
    report.mutation = mutation
    for problem in mutation.problems():
        _bar(report, checks, problem)


def _retry_new_survivors(report: KataReport, mutation: MutationReport, stressed: bool) -> None:
    """A mutant the record says was killed gets one more run before it counts as a regression:
    a race the tests provoke most of the time can miss once. Killed on the retry, it is a
    warning (the kill is not reliable), not a failure."""
    recorded = mutation.record.survivors if mutation.record else frozenset()
    for index, result in enumerate(mutation.results):
        if result.judged and not result.killed and result.mutant.id not in recorded:
            again = run_mutant(report.kata, result.mutant, stressed)
            if again.killed:
                mutation.results[index] = again
                report.warnings.append(f"mutant killed only on a second run (an unreliable kill): "
                                       f"{result.mutant.one_line()}")


def _bar(report: KataReport, checks: Checks, problem: str) -> None:
    """A shortfall against the bar: a problem, or a warning for a kata before its rigor pass."""
    if report.kata.slug in checks.pending:
        report.warnings.append(problem)
    else:
        report.problems.append(problem)


def verify_kata(kata: Kata, checks: Checks = Checks()) -> KataReport:
    """All checks for one kata."""
    report = KataReport(kata, problems=static_problems(kata))
    with report.timed("stub"):
        check_stub(report, run_kata(kata))
    stressed = kata.topic in checks.stressed_topics
    with report.timed("solution"):
        solution_run = run_kata(
            kata, solutions=True, repeat=checks.repeat, extra_args=("--stress",) if stressed else ()
        )
        check_solution(report, solution_run, checks.repeat)
    if checks.strict and report.skipped:
        report.problems.append(f"skipped, and --strict allows no skips: {report.skipped}")
    # a kata skipped as a whole (a missing service) can't judge mistakes; one skipped test can
    if report.solution_runs:
        if checks.mistakes:
            with report.timed("mistakes"):
                check_mistakes(report, checks)
        if checks.alternatives:
            with report.timed("alternatives"):
                check_alternatives(report, checks)
        if checks.mutants:
            with report.timed("mutants"):
                check_mutants(report, checks)
    return report


def verify(
    catalogue: Catalogue,
    katas: Iterable[Kata],
    checks: Checks = Checks(),
    on_report: Callable[[KataReport], None] | None = None,
    jobs: int = 1,
) -> tuple[list[KataReport], list[str]]:
    """Check each kata (`jobs` at a time): the reports in catalogue order, and the catalogue's
    own problems (uncatalogued folders, empty topics)."""
    chosen = list(katas)
    with parallel(jobs) as pool:
        futures = [pool.submit(verify_kata, kata, checks) for kata in chosen]
        for future in as_completed(futures):
            if on_report is not None:
                on_report(future.result())
    return [f.result() for f in futures], catalogue_problems(catalogue)


def _rel(kata: Kata, path: Path) -> str:
    try:
        return str(path.relative_to(kata.root))
    except ValueError:
        return str(path)


def _short(kata: Kata, nodeid: str) -> str:
    return nodeid.rsplit("::", 1)[-1] if "::" in nodeid else nodeid
