"""`kata drill`: a single drill, a mock interview, or the history; what the CLI command calls."""

from __future__ import annotations

import datetime as dt
import random
import time
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from rich.console import Console
from rich.markdown import Markdown
from rich.markup import escape
from rich.table import Table

from ..catalogue import Catalogue, Kata
from ..learner.events import EventSource
from ..learner.run import shown
from . import card as card_mod
from . import history as history_mod
from . import log as log_mod
from . import pick, schedule, services
from .log import ABANDONED, GREEN, DrillLog, Entry
from .runner import ScratchRunner
from .session import KEYS, Clock, Drill, Event, Result, Runner, clock_text
from .workspace import Workspace

DEFAULT_MINUTES = 20.0  # per kata, single drill or mock, when the catalogue gives no minutes


class DrillProblem(Exception):
    """The drill cannot start (unknown topic, nothing left to drill, a service missing)."""


class Events(Protocol):
    """Where a drill's saves and keys come from (learner.events.EventSource, or a test's script)."""

    def wait(self, timeout: float) -> Event | None: ...

    @property
    def interactive(self) -> bool: ...


def _now() -> dt.datetime:
    return dt.datetime.now().astimezone()  # local time with its offset: "when" as the learner saw it


@dataclass
class World:
    """What a drill needs from the outside world; tests replace any of it."""

    clock: Clock = time.monotonic
    now: Callable[[], dt.datetime] = _now
    rng: random.Random = field(default_factory=random.Random)
    why_not: services.Availability | None = None  # None: ask the doctor's checks
    runner: Callable[[Path], AbstractContextManager[Runner]] = ScratchRunner
    events: Callable[[Path], AbstractContextManager[Events]] = EventSource

    @classmethod
    def live(cls, *, poll: bool = False) -> World:
        """The real clock, runner and events; `poll`: poll for saves instead of OS events."""
        return cls(events=lambda folder: EventSource(folder, poll=poll))

    def availability(self) -> services.Availability:
        if self.why_not is None:
            self.why_not = services.probe()
        return self.why_not


def candidates(catalogue: Catalogue, topics: Sequence[str], world: World,
               console: Console) -> list[Kata]:
    """The katas of `topics` (all if none) this machine can run; says which were left out."""
    known = {t.name for t in catalogue.topics} | {k.topic for k in catalogue.katas}
    unknown = [t for t in topics if t not in known]
    if unknown:
        raise DrillProblem(f"no topic {', '.join(unknown)}; topics: {', '.join(sorted(known))}")
    wanted = [k for k in catalogue.katas if not topics or k.topic in topics]
    usable, left_out = services.split(wanted, world.availability())
    if left_out:
        console.print(f"[yellow]left out {len(left_out)} kata(s) whose services this machine "
                      "lacks[/yellow] (`kata doctor` says how to get them):")
        for slug, reason in left_out.items():
            console.print(f"  {escape(slug)}: {escape(reason)}", soft_wrap=True)
    if not usable:
        raise DrillProblem("no kata left to drill" + (" in " + ", ".join(topics) if topics else ""))
    return usable


def check_runnable(kata: Kata, world: World) -> None:
    reason = services.missing(kata, world.availability())
    if reason:
        raise DrillProblem(f"{kata.name} cannot run on this machine: {reason}; "
                           "`kata doctor` says how to get it")


def _show_card(kata: Kata, workspace: Workspace, seconds: float, interactive: bool,
               console: Console) -> None:
    console.rule(f"[bold]drill: {kata.slug}[/bold]", align="left")
    console.print(Markdown(card_mod.load(kata.readme).question))
    console.print()
    for path in workspace.files().values():
        console.print(f"[dim]edit[/dim]  {escape(shown(path))}  (a fresh stub; katas/ is untouched)")
    how = f"keys: {KEYS}" if interactive else "Ctrl-C gives up"
    console.print(f"[bold]{clock_text(seconds)} on the clock[/bold], from now. The tests run on "
                  f"every save; {how}", soft_wrap=True)


def _debrief(kata: Kata, console: Console) -> None:
    for heading, body in card_mod.load(kata.readme).debrief:
        console.print(Markdown(f"## {heading}\n\n{body}"))


def drill_one(kata: Kata, deadline: float | None, minutes: float, log: DrillLog, world: World,
              console: Console, *, mock: str = "") -> Result:
    """One drill until `deadline` (a time of world.clock; None: `minutes` from when the card is
    shown): scratch copy, card, timer, runs. The drill is logged; an abandoned one's scratch copy
    is removed, a finished one's kept."""
    workspace = Workspace.create(kata)
    started_at = world.now()
    start = world.clock()
    loop: Drill | None = None
    result: Result | None = None
    try:
        with world.runner(kata.root) as runner, world.events(workspace.folder) as events:
            box = minutes * 60 if deadline is None else deadline - world.clock()
            _show_card(kata, workspace, box, events.interactive, console)
            start = world.clock()  # the clock starts once the question is on the screen
            started_at = world.now()
            if deadline is None:
                deadline = start + box
            loop = Drill(workspace, deadline, clock=world.clock, wait=events.wait,
                         runner=runner, console=console)
            result = loop.loop()
    except KeyboardInterrupt:
        if result is None:  # (a Ctrl-C while shutting down after the end changes nothing)
            result = Result(ABANDONED, world.clock() - start, loop.runs if loop else 0,
                            loop.last if loop else None)
    finally:
        if result is None or result.outcome == ABANDONED:
            workspace.remove()
    log.add(Entry(kata=kata.slug, started=started_at.isoformat(timespec="seconds"),
                  outcome=result.outcome, seconds=round(result.seconds, 1), runs=result.runs,
                  minutes=minutes, mock=mock))
    _say(kata, result, console)
    if result.outcome != ABANDONED:
        kept = workspace.keep(f"{started_at:%Y%m%d-%H%M%S}-{kata.name}")
        console.print(f"[dim]your attempt is kept in {escape(shown(kept))}[/dim]")
    return result


def _say(kata: Kata, result: Result, console: Console) -> None:
    runs = "1 run" if result.runs == 1 else f"{result.runs} runs"
    if result.outcome == GREEN:
        console.print(f"[green bold]✓ {kata.name}: green in {clock_text(result.seconds)}"
                      f"[/green bold] ({runs})")
    elif result.outcome == ABANDONED:
        console.print(f"[yellow]{kata.name}: abandoned after {clock_text(result.seconds)} "
                      f"({runs}); logged as abandoned, scratch copy removed[/yellow]")
    else:
        console.print(f"[red]⏱ {kata.name}: time is up ({clock_text(result.seconds)}, {runs})"
                      f"[/red]; the reference: `kata solution {kata.name} --force`")


def time_box(kata: Kata) -> float:
    """Minutes a drill of `kata` gets by default: the catalogue's realistic time for it."""
    return float(kata.minutes) if kata.minutes else DEFAULT_MINUTES


def drill(catalogue: Catalogue, named: Kata | None, topics: Sequence[str],
          minutes: float | None, world: World, console: Console) -> int:
    """`kata drill [KATA]`: the named kata or a weighted pick; 0 if it went green, 1 otherwise."""
    log = _load_log(catalogue.root, console)
    if named is not None:
        check_runnable(named, world)
        kata = named
    else:
        kata = schedule.next_up(candidates(catalogue, topics, world, console), log, world.now())
    box = minutes or time_box(kata)
    result = drill_one(kata, None, box, log, world, console)
    if result.outcome != ABANDONED:
        _debrief(kata, console)
    return 0 if result.outcome == GREEN else 1


def mock(catalogue: Catalogue, count: int, topics: Sequence[str], minutes: float | None,
         world: World, console: Console) -> int:
    """`kata drill --mock N`: N katas of mixed topics in one time box, then a summary; 0 if all
    went green. q gives up on one kata and moves on; Ctrl-C ends the mock."""
    log = _load_log(catalogue.root, console)
    now = world.now()
    chosen = pick.mock_set(candidates(catalogue, topics, world, console), count, log, now,
                           world.rng)
    if len(chosen) < count:
        console.print(f"[yellow]only {len(chosen)} kata(s) to drill, not {count}[/yellow]")
    box = minutes or sum(time_box(kata) for kata in chosen)
    mock_id = now.isoformat(timespec="seconds")
    console.print(f"[bold]mock interview: {len(chosen)} katas, {clock_text(box * 60)} in all"
                  f"[/bold]: " + ", ".join(k.name for k in chosen))
    start = world.clock()
    deadline = start + box * 60
    results: list[tuple[Kata, Result | None]] = []
    for number, kata in enumerate(chosen, start=1):
        if world.clock() >= deadline or (results and _stopped(results[-1][1])):
            results.append((kata, None))
            continue
        console.print(f"\n[bold]question {number} of {len(chosen)}[/bold]")
        results.append((kata, drill_one(kata, deadline, box, log, world, console, mock=mock_id)))
    _mock_summary(results, world.clock() - start, box, console)
    return 0 if all(r is not None and r.outcome == GREEN for _, r in results) else 1


def _stopped(result: Result | None) -> bool:
    """Ctrl-C (not q) on a question ends the whole mock."""
    return result is None or (result.outcome == ABANDONED and not result.quit_key)


def _mock_summary(results: list[tuple[Kata, Result | None]], spent: float, box: float,
                  console: Console) -> None:
    table = Table(title="mock interview", title_justify="left")
    for column in ("#", "kata", "result", "runs"):
        table.add_column(column)
    for number, (kata, result) in enumerate(results, start=1):
        if result is None:
            table.add_row(str(number), kata.slug, "not reached", "-")
            continue
        text = {GREEN: f"green in {clock_text(result.seconds)}",
                ABANDONED: f"given up after {clock_text(result.seconds)}"}.get(
                    result.outcome, f"time up after {clock_text(result.seconds)}")
        table.add_row(str(number), kata.slug, text, str(result.runs))
    console.print(table)
    green = sum(r is not None and r.outcome == GREEN for _, r in results)
    console.print(f"[bold]{green} of {len(results)} green[/bold] in "
                  f"{clock_text(min(spent, box * 60))} of {clock_text(box * 60)}; "
                  "re-drill one with `kata drill NAME`, progress: `kata drill --history`")


def _load_log(root: Path, console: Console) -> DrillLog:
    log = log_mod.load(root)
    if log.rebuilt:
        console.print(f"[yellow]note:[/yellow] {escape(log.rebuilt)}", soft_wrap=True)
    return log


def history(root: Path, console: Console) -> int:
    """`kata drill --history`."""
    history_mod.render(_load_log(root, console), console)
    return 0
