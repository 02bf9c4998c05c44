"""`kata stats`: progress per topic, drills per week, and what to practise next."""

from __future__ import annotations

import datetime as dt

from rich.console import Console
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from ..catalogue import Catalogue, Topic
from ..drill import history, schedule
from ..drill.log import DrillLog
from .state import State
from .status import statuses

NEXT_SHOWN = 5  # katas listed under "practise next"
BAR = "█"


def render(catalogue: Catalogue, state: State, log: DrillLog, now: dt.datetime, console: Console) -> None:
    """Three parts; a table and bars on a terminal, stable plain lines when piped."""
    plain = not console.is_terminal
    found = statuses(catalogue, state)
    topics = [(topic, [found[k.slug].finished for k in catalogue.in_topic(topic.name)])
              for topic in catalogue.topics if catalogue.in_topic(topic.name)]
    weeks = history.group(sorted(log.entries, key=lambda e: e.when), history.week_of)
    upcoming = schedule.schedule(catalogue.katas, log, now)[:NEXT_SHOWN] if log.entries else []
    if plain:
        for line in _plain(topics, weeks, upcoming, now):
            console.print(Text(line), soft_wrap=True)
        return
    progress = Table.grid(padding=(0, 2))
    for topic, done in topics:
        progress.add_row(Text(topic.name, style="bold"), ProgressBar(total=len(done), completed=sum(done), width=24),
                         Text(f"{sum(done)}/{len(done)} done"))
    console.print(progress)
    console.print()
    if not weeks:
        console.print("no drills yet: `kata drill` starts one")
        return
    drills = Table(title="drills per week", title_justify="left")
    for column in ("week", "drills", "green", "median to green"):
        drills.add_column(column)
    for week, summary in weeks.items():
        drills.add_row(week, Text(BAR * summary.drills + f" {summary.drills}", style="cyan"),
                       history.rate_text(summary), history.median_text(summary))
    console.print(drills)
    console.print("[bold]practise next[/bold]")
    for number, due in enumerate(upcoming, start=1):
        console.print(f"  {number}. {due.kata.slug}: {due.reason(now)}")


def _plain(topics: list[tuple[Topic, list[bool]]], weeks: dict[str, history.Summary], upcoming: list[schedule.Due],
           now: dt.datetime) -> list[str]:
    lines = [f"{topic.name}: {sum(done)}/{len(done)} done" for topic, done in topics]
    if not weeks:
        return [*lines, "no drills yet: `kata drill` starts one"]
    lines += [f"week {week}: {summary.drills} drills, {history.rate_text(summary)} green, "
              f"median to green {history.median_text(summary)}" for week, summary in weeks.items()]
    lines += [f"practise next {number}: {due.kata.slug}: {due.reason(now)}"
              for number, due in enumerate(upcoming, start=1)]
    return lines
