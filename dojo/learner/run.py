"""Runs one kata's tests for the learner: a header, pytest's own output live, the result recorded."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape

from .. import process_end
from ..catalogue import Catalogue, Kata
from ..running import report as run_report
from ..running.launch import Launcher, pytest_args
from .scratch import scratch_folder
from .state import RunRecord, State
from .status import fingerprint, first_unfinished

RUN_FOLDER_PREFIX = "kata-run-"  # the engine's JSON report of one run goes in <tmp>/kata-run-<pid>-*
# pytest exit codes that mean "the session did not really happen" (interrupted, internal, usage)
_NO_RESULT = {2, 3, 4}
USAGE_ERROR = 4

def shown(path: Path) -> str:
    """`path` relative to the current folder when it is below it, so it can be clicked or typed."""
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def header(kata: Kata, console: Console) -> None:
    """Names the kata, its README and the file(s) to edit, before pytest speaks."""
    console.rule(f"[bold]{kata.slug}[/bold] · {escape(kata.title)}", align="left")
    console.print(f"[dim]read[/dim]  {escape(shown(kata.readme))}")
    for path in kata.learner_files():
        console.print(f"[dim]edit[/dim]  {escape(shown(path))}")
    console.print()


def read_report(report: Path, print_: str, exit_code: int) -> RunRecord | None:
    """Counts from the engine's JSON report; None if pytest never got to run the tests."""
    outcomes = run_report.read(report)
    now = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    if outcomes is None:
        cut_short = process_end.explain(report, exit_code)  # the learner's code ended pytest
        if cut_short is not None:
            return RunRecord(fingerprint=print_, passed=0, failed=0, error=cut_short, ran_at=now)
        outcomes = []
    if not outcomes and exit_code == USAGE_ERROR:  # not an interruption: a setting to fix
        return RunRecord(fingerprint=print_, passed=0, failed=0, ran_at=now,
                         error="pytest refused its settings (exit 4): the ERROR line above says which")
    if not outcomes and exit_code in _NO_RESULT:
        return None
    collect = [o for o in outcomes if o.phase == "collect"]
    tests = [o for o in outcomes if o.phase != "collect"]
    failed = sum(o.broken for o in tests)
    skipped = sum(o.outcome == "skipped" for o in tests)
    error = (collect[0].message or "collection error") if collect else ""
    if not tests and not error:
        error = "no tests ran" if exit_code == 5 else f"pytest exited with {exit_code}"
    return RunRecord(
        fingerprint=print_, passed=len(tests) - failed - skipped, failed=failed,
        skipped=skipped, error=error, ran_at=now, **_stage_fields(tests),
    )


def _stage_fields(tests: list[run_report.TestOutcome]) -> dict[str, Any]:
    """Where a kata in stages stands: the first stage with a failing test, and its counts."""
    numbers = {o.stage for o in tests if o.stage is not None}
    if len(numbers) < 2:
        return {}
    failing = sorted(o.stage for o in tests if o.stage is not None and o.broken)
    if not failing:
        return {"stages": max(numbers)}
    current = [o for o in tests if o.stage == failing[0]]
    return {
        "stages": max(numbers), "stage": failing[0], "stage_name": current[0].stage_name,
        "stage_failed": sum(o.broken for o in current), "stage_total": len(current),
    }


def run_kata(kata: Kata, state: State, launch: Launcher) -> RunRecord | None:
    """Run the kata's tests, record the result in `state` (saved); None if the run was cut short."""
    print_ = fingerprint(kata)  # the files as they are now: an edit during the run makes it stale
    state.current = kata.slug
    with scratch_folder(RUN_FOLDER_PREFIX) as tmp:
        report = tmp / "report.json"
        exit_code = launch(pytest_args(kata, report))
        record = read_report(report, print_, exit_code)
    if record is not None:
        state.runs[kata.slug] = record
    state.save()
    return record


def _tests(count: int) -> str:
    return "1 test" if count == 1 else f"{count} tests"


def verdict(
    kata: Kata, record: RunRecord | None, catalogue: Catalogue, state: State, *, advice: bool = True
) -> str:
    """One line after the run: what happened and (with `advice`) which command comes next."""
    if record is None:
        return f"[yellow]the run of {kata.name} was interrupted: nothing recorded[/yellow]"
    if record.error and process_end.is_cut_short(record.error):
        return f"[red]✗ {kata.name}: {escape(record.error)}[/red]\n  stuck? `kata hint {kata.name}`"
    if record.error:
        return (f"[red]✗ {kata.name}: the tests cannot run: {escape(record.error)}[/red]\n"
                f"  look at the first error above; stuck? `kata hint {kata.name}`")
    if record.failed and record.stage:
        return (f"[red]✗ {kata.name}: stage {record.stage} of {record.stages}, "
                f"{escape(record.stage_name)}: {record.stage_failed} of "
                f"{_tests(record.stage_total)} failing[/red] ({record.failed} of "
                f"{_tests(record.total)} in all); stuck? `kata hint {kata.name}`")
    if record.failed:
        return (f"[red]✗ {kata.name}: {record.failed} of {_tests(record.total)} failing[/red]; "
                f"stuck? `kata hint {kata.name}`")
    if record.skipped:
        return (f"[yellow]~ {kata.name}: {record.passed} passed, {record.skipped} skipped[/yellow] "
                "(a service is missing: `kata doctor` says how to get it)")
    passed = "the test passes" if record.total == 1 else f"all {record.total} tests pass"
    if not advice:
        return f"[green]✓ {kata.name}: {passed}[/green]"
    upcoming = first_unfinished(catalogue, state)
    tail = f"next: `kata next` ({upcoming.name})" if upcoming else "that was the last one: all done!"
    return f"[green]✓ {kata.name}: {passed}[/green]; {tail}"
