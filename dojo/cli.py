"""The `kata` command: the learner's commands (the maintainers' are in maintainer_cli.py)."""

from __future__ import annotations

import datetime
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from . import catalogue as catalogue_mod
from . import maintainer_cli
from .cli_common import (
    KataArg,
    OptionalKataArg,
    console,
    err_console,
    find_kata,
    load_catalogue,
    usage_error,
)
from .drill import command as drill_cmd
from .drill import log as drill_log_mod
from .learner import alternatives_view, gallery, listing, pristine, unwritable
from .learner import diff as diff_mod
from .learner import doctor as doctor_mod
from .learner import hint as hint_mod
from .learner import report as report_mod
from .learner import reset as reset_mod
from .learner import run as run_mod
from .learner import solutions_branch as branch_mod
from .learner import state as state_mod
from .learner import stats as stats_mod
from .learner.fuzzy import is_exact
from .learner.status import Kind, first_unfinished, status_of
from .learner.watch import Watch
from .mistakes import MistakeFileError
from .running import interrupts, launch

app = typer.Typer(
    name="kata",
    help="Backend & systems katas: run, watch, hint and check your solutions.\n\n"
    "Start with `kata list`, then `kata watch`. Exit codes: 0 success (or all done), "
    "1 failing tests, 2 usage error.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
MAX_DRILL_MINUTES = 24 * 60


@app.callback()
def _group() -> None:
    """Backend & systems katas: run, watch, hint and check your solutions."""


def _load_state(catalogue: catalogue_mod.Catalogue) -> state_mod.State:
    """The learner's state; a missing or broken file is rebuilt (and said so, if it was broken)."""
    current = state_mod.load(catalogue.root)
    if current.rebuilt:
        err_console.print(f"[yellow]note:[/yellow] {escape(current.rebuilt)}", soft_wrap=True)
    if current.rebuilt or not current.path.is_file():
        current.save()
    return current


def _find_or_current(
    catalogue: catalogue_mod.Catalogue, state: state_mod.State, name: str | None
) -> catalogue_mod.Kata:
    if name is not None:  # "" is a name that matches nothing, not "the current kata"
        return find_kata(catalogue, name)
    if state.current:
        try:
            return catalogue.get(state.current)
        except KeyError:
            pass
    raise usage_error("which kata? name one (`kata list` shows them)")


def _require_files(kata: catalogue_mod.Kata) -> None:
    """Exit 2 naming the learner's missing files, and the command that brings them back."""
    missing = [run_mod.shown(p) for p in kata.learner_files() if not p.is_file()]
    if missing:
        raise usage_error(
            f"{', '.join(missing)} is missing: `kata reset {kata.name}` brings back the "
            "pristine stub (any file of yours that is still there is backed up first)"
        )


def _run(catalogue: catalogue_mod.Catalogue, state: state_mod.State, kata: catalogue_mod.Kata) -> int:
    _require_files(kata)
    run_mod.header(kata, console)
    # a `kata watch` in another terminal keeps a warm pytest: use it when it answers
    record = run_mod.run_kata(kata, state, launch.warm_launcher(catalogue.root, launch.run_budget(kata)))
    console.print(run_mod.verdict(kata, record, catalogue, state))
    done = record is not None and record.green
    return 0 if done else 1


@app.command("list")
def list_(
    refresh: Annotated[
        bool, typer.Option("--refresh", help="first re-run, quietly, every kata whose files changed")
    ] = False,
) -> None:
    """Every kata in learning order with its status, progress per topic and totals."""
    catalogue = load_catalogue()
    state = _load_state(catalogue)
    if refresh:
        for kata in catalogue.katas:
            if status_of(kata, state).kind is Kind.CHANGED:
                err_console.print(f"[dim]re-running {kata.slug}...[/dim]")
                run_mod.run_kata(kata, state, launch.quiet_launcher(catalogue.root))
    listing.render(catalogue, state, console)


@app.command("next")
def next_(
    level: Annotated[int | None, typer.Option(
        "--level", "-l", help="only katas of this difficulty: 1 warm-up, 2 interview, 3 deep")] = None,
) -> None:
    """Run the first kata (in learning order) that is not done yet."""
    if level is not None and level not in catalogue_mod.DIFFICULTIES:
        raise usage_error("--level is 1 (warm-up), 2 (interview) or 3 (deep)")
    catalogue = load_catalogue()
    state = _load_state(catalogue)
    kata = first_unfinished(catalogue, state, level)
    if kata is None:
        at_level = [k for k in catalogue.katas if level is None or k.difficulty == level]
        which = "" if level is None else f" at level {level} ({catalogue_mod.DIFFICULTIES[level]})"
        console.print(f"[green]all {len(at_level)} katas{which} done![/green]")
        raise typer.Exit(0)
    raise typer.Exit(_run(catalogue, state, kata))


@app.command("run")
def run(
    kata: Annotated[
        str | None, typer.Argument(help="kata name (fuzzy); default: the first unfinished one")
    ] = None,
) -> None:
    """Run one kata's tests: a header naming the files to edit, then pytest's failures."""
    catalogue = load_catalogue()
    state = _load_state(catalogue)
    chosen = find_kata(catalogue, kata) if kata is not None else first_unfinished(catalogue, state)
    if chosen is None:
        console.print(f"[green]all {len(catalogue.katas)} katas done![/green]")
        raise typer.Exit(0)
    raise typer.Exit(_run(catalogue, state, chosen))


@app.command("watch")
def watch(
    kata: Annotated[
        str | None, typer.Argument(help="kata to start with (fuzzy); default: the first unfinished")
    ] = None,
    poll: Annotated[
        bool, typer.Option("--poll", help="poll for changes instead of OS events (WSL, network mounts)")
    ] = False,
) -> None:
    """Re-run the current kata on every save; keys: h hint, n next, p previous, l list, r re-run, q quit."""
    catalogue = load_catalogue()
    state = _load_state(catalogue)
    if not catalogue.katas:
        raise usage_error("the catalogue has no katas")
    start = find_kata(catalogue, kata) if kata is not None else first_unfinished(catalogue, state)
    if start is None:
        console.print("[green]all katas are done![/green] watching the last one")
        start = catalogue.katas[-1]
    _require_files(start)
    raise typer.Exit(Watch(catalogue, state, start, console, poll=poll).loop())


@app.command("hint")
def hint(
    kata: OptionalKataArg = None,
    all_: Annotated[bool, typer.Option("--all", help="show every hint at once")] = False,
) -> None:
    """Show one more hint for a kata each time (the ones seen so far are repeated)."""
    catalogue = load_catalogue()
    state = _load_state(catalogue)
    hint_mod.show(_find_or_current(catalogue, state, kata), state, console, everything=all_)


def _spoiler_gate(state: state_mod.State, kata: catalogue_mod.Kata, force: bool, what: str) -> None:
    if not force and kata.slug not in state.runs:
        raise usage_error(
            f"you have not run {kata.name} yet: have a go first (`kata run {kata.name}`, "
            f"`kata hint {kata.name}`), or pass --force to see the {what} anyway"
        )


@app.command("diff")
def diff(
    kata: OptionalKataArg = None,
    force: Annotated[bool, typer.Option("--force", help="show it even before your first run")] = False,
    code: Annotated[bool, typer.Option("--code", help="code only: comments, docstrings, formatting ignored")] = False,
) -> None:
    """A coloured unified diff of your file(s) against the reference solution."""
    catalogue = load_catalogue()
    state = _load_state(catalogue)
    chosen = _find_or_current(catalogue, state, kata)
    _spoiler_gate(state, chosen, force, "diff")
    diff_mod.print_diff(chosen, console, code_only=code)


@app.command("solution")
def solution(
    kata: OptionalKataArg = None,
    force: Annotated[bool, typer.Option("--force", help="show it even before your first run")] = False,
) -> None:
    """Print the reference solution of a kata."""
    catalogue = load_catalogue()
    state = _load_state(catalogue)
    chosen = _find_or_current(catalogue, state, kata)
    _spoiler_gate(state, chosen, force, "solution")
    diff_mod.print_solution(chosen, console)


@app.command("solutions-branch")
def solutions_branch() -> None:
    """Create or refresh the local git branch `solutions`: your HEAD with every reference solution
    in place of your files, so `git diff solutions -- <kata folder>` compares your work."""
    catalogue = load_catalogue()
    try:
        made = branch_mod.refresh(catalogue)
    except branch_mod.BranchProblem as exc:
        raise usage_error(str(exc)) from None
    state = "refreshed" if made.changed else "already up to date"
    console.print(f"{branch_mod.BRANCH}: {state} at {made.commit[:12]}, one commit on top of your "
                  f"HEAD {made.base[:12]} ({made.files} learner files replaced by their reference)")
    for missing in made.missing:
        err_console.print(f"[yellow]not in your HEAD, left out: {escape(missing)}[/yellow]")
    first = catalogue.katas[0].kata_dir.relative_to(catalogue.root) if catalogue.katas else "katas"
    console.print(f"compare: git diff {branch_mod.BRANCH} -- {first}", highlight=False, markup=False)


@app.command("reset")
def reset(
    kata: KataArg,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="do not ask for confirmation")] = False,
) -> None:
    """Restore a kata's pristine stub; your file is kept under .kata/backups/ first."""
    catalogue = load_catalogue()
    state = _load_state(catalogue)
    chosen = find_kata(catalogue, kata)
    if yes and not is_exact(chosen, kata):
        raise usage_error(
            f"'{kata}' is a guess at {chosen.name}; --yes overwrites files without asking, so it "
            f"needs the exact name: `kata reset {chosen.name} --yes`"
        )
    files = ", ".join(run_mod.shown(p) for p in chosen.learner_files())
    if not yes and not typer.confirm(f"Replace {files} with the pristine stub? (a backup is kept)"):
        err_console.print("nothing changed")
        raise typer.Exit(1)
    try:
        copies = reset_mod.reset(chosen, state)
    except (pristine.NoPristineCopy, reset_mod.ResetRefused) as exc:
        err_console.print(f"[red]error:[/red] cannot reset {chosen.name}: {escape(str(exc))}",
                          soft_wrap=True)
        raise typer.Exit(1) from None
    for copy in copies:
        console.print(f"backup: {escape(run_mod.shown(copy))}")
    console.print(f"{chosen.name} is back to its stub: `kata run {chosen.name}` to start again")


@app.command("doctor")
def doctor() -> None:
    """Check Python, packages, Docker, Compose and local service binaries; say how to get what is missing."""
    catalogue = load_catalogue()
    raise typer.Exit(doctor_mod.report(doctor_mod.checks(catalogue), console))


@app.command("mistakes")
def mistakes(
    kata: OptionalKataArg = None,
    force: Annotated[bool, typer.Option(help="show them before the kata is done")] = False,
) -> None:
    """After you finish a kata: the mistakes learners make in it, and the test that catches each."""
    catalogue = load_catalogue()
    state = _load_state(catalogue)
    chosen = _find_or_current(catalogue, state, kata)
    if not force and status_of(chosen, state).kind is not Kind.DONE:
        raise usage_error(
            f"finish {chosen.name} first (`kata run {chosen.name}` until it is green): the gallery "
            "shows how the tests catch wrong answers, which spoils the kata; --force shows it anyway"
        )
    raise typer.Exit(gallery.show(chosen, console))


@app.command("stats")
def stats() -> None:
    """Your progress per topic, your drills per week (success rate, median time to green), and
    the katas to practise next: spaced repetition over your drills (1, 3, 7, 21 days)."""
    catalogue = load_catalogue()
    state = _load_state(catalogue)
    log = drill_log_mod.load(catalogue.root)
    if log.rebuilt:
        err_console.print(f"[yellow]note:[/yellow] {escape(log.rebuilt)}", soft_wrap=True)
    stats_mod.render(catalogue, state, log, datetime.datetime.now(datetime.UTC), console)


@app.command("report")
def report(
    format_: Annotated[str, typer.Option("--format", "-f", help="junit (XML, what CI graders read) or json")] = "junit",
    output: Annotated[Path | None, typer.Option("--output", "-o", help="default: kata-report.xml or .json")] = None,
    topic: Annotated[list[str] | None, typer.Option("--topic", "-t", help="only this topic (repeatable)")] = None,
) -> None:
    """Run every kata (or a topic's) on your files and write a per-kata, per-test report for a
    grader: exit 0 when every test passed, 1 when some failed."""
    if format_ not in report_mod.FORMATS:
        raise usage_error(f"--format is one of {', '.join(report_mod.FORMATS)}, not {format_!r}")
    catalogue = load_catalogue()
    known = [t.name for t in catalogue.topics]
    for name in topic or []:
        if name not in known:
            raise usage_error(f"no topic {name!r}; topics: {', '.join(known)}")
    katas = [k for k in catalogue.katas if not topic or k.topic in topic]
    target = output or Path(f"kata-report.{'xml' if format_ == 'junit' else 'json'}")
    summary = report_mod.write(catalogue, katas, format_, target)
    if not target.is_file():
        raise usage_error(f"pytest wrote no report (exit {summary.exit_code}): run `pytest katas` to see why")
    console.print(f"{len(katas)} katas: {summary.passed} tests passed, {summary.failed} failed; "
                  f"report in {escape(str(target))}")
    raise typer.Exit(0 if summary.failed == 0 and summary.exit_code == 0 else 1)


@app.command("drill")
def drill(
    kata: Annotated[
        str | None, typer.Argument(help="kata to drill (fuzzy); default: one not drilled lately")
    ] = None,
    topic: Annotated[list[str] | None, typer.Option("--topic", "-t", help="only this topic (repeatable)")] = None,
    minutes: Annotated[float | None, typer.Option(
        "--minutes", "-m", help="time box (default: the kata's minutes, as `kata list` shows)")] = None,
    history: Annotated[bool, typer.Option("--history", help="show the drill log and progress per topic")] = False,
    mock: Annotated[
        int | None, typer.Option("--mock", help="a mock interview: N katas of mixed topics in one time box")
    ] = None,
    poll: Annotated[bool, typer.Option("--poll", help="poll for saves instead of OS events")] = False,
) -> None:
    """Timed practice on a fresh copy of a kata (katas/ is untouched); ends when green or time is up."""
    catalogue = load_catalogue()
    if history and (kata or mock is not None or topic or minutes is not None):
        raise usage_error("--history takes no kata, --mock, --topic or --minutes")
    if mock is not None and (kata or mock < 1):
        raise usage_error("--mock needs a number of katas (1 or more) and no kata name")
    if minutes is not None and not (0 < minutes <= MAX_DRILL_MINUTES):  # also refuses nan
        raise usage_error(f"--minutes must be more than 0 and at most {MAX_DRILL_MINUTES}")
    if history:
        raise typer.Exit(drill_cmd.history(catalogue.root, console))
    world = drill_cmd.World.live(poll=poll)
    try:
        if mock is not None:
            raise typer.Exit(drill_cmd.mock(catalogue, mock, topic or [], minutes, world, console))
        named = find_kata(catalogue, kata) if kata is not None else None
        raise typer.Exit(drill_cmd.drill(catalogue, named, topic or [], minutes, world, console))
    except drill_cmd.DrillProblem as exc:
        raise usage_error(str(exc)) from None
    except pristine.NoPristineCopy as exc:
        err_console.print(f"[red]error:[/red] no fresh copy to drill on: {escape(str(exc))}",
                          soft_wrap=True)
        raise typer.Exit(1) from None


@app.command("alternatives")
def alternatives_(
    kata: OptionalKataArg = None,
    force: Annotated[bool, typer.Option("--force", help="show them before the kata is done (teachers)")] = False,
) -> None:
    """Other correct designs of a kata, each as a diff against the solution: answers an interviewer accepts."""
    catalogue = load_catalogue()
    state = _load_state(catalogue)
    chosen = _find_or_current(catalogue, state, kata)
    if not force and status_of(chosen, state).kind is not Kind.DONE:
        raise usage_error(
            f"{chosen.name} is not done yet: other designs are shown once your own passes "
            f"(`kata run {chosen.name}`), or pass --force"
        )
    try:
        raise typer.Exit(alternatives_view.show(chosen, console))
    except MistakeFileError as exc:
        raise usage_error(str(exc)) from None


maintainer_cli.register(app)


def main() -> None:
    interrupts.install()  # an IDE's stop button or a closed terminal: cleaned up as on Ctrl-C
    try:
        app()
    except OSError as exc:  # .kata/ unwritable: one line saying what to fix, not a traceback
        problem = unwritable.explain(exc)
        if problem is None:
            raise
        err_console.print(f"[red]error:[/red] {escape(problem)}", soft_wrap=True)
        sys.exit(1)
