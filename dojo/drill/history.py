"""`kata drill --history`: recent drills, then per topic and per week: success rate, median time."""

from __future__ import annotations

import statistics
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from rich.console import Console
from rich.table import Table

from .log import ABANDONED, GREEN, DrillLog, Entry
from .session import clock_text

RECENT = 20


@dataclass(frozen=True)
class Summary:
    """Drills in a group: how many, how many went green, the median time to green."""

    drills: int
    green: int
    abandoned: int
    median_seconds: float | None

    @property
    def finished(self) -> int:
        """Drills that ran their course (green or timed out); abandoned ones say nothing."""
        return self.drills - self.abandoned

    @property
    def success_rate(self) -> float | None:
        return self.green / self.finished if self.finished else None


def summarise(entries: Iterable[Entry]) -> Summary:
    entries = list(entries)
    times = [e.seconds for e in entries if e.outcome == GREEN]
    return Summary(
        drills=len(entries),
        green=len(times),
        abandoned=sum(e.outcome == ABANDONED for e in entries),
        median_seconds=statistics.median(times) if times else None,
    )


def group(entries: Iterable[Entry], key: Callable[[Entry], str]) -> dict[str, Summary]:
    """key -> summary, keys in order of first appearance."""
    buckets: dict[str, list[Entry]] = {}
    for entry in entries:
        buckets.setdefault(key(entry), []).append(entry)
    return {name: summarise(items) for name, items in buckets.items()}


def week_of(entry: Entry) -> str:
    year, week, _ = entry.when.isocalendar()
    return f"{year}-W{week:02}"


def rate_text(summary: Summary) -> str:
    rate = summary.success_rate
    return "-" if rate is None else f"{rate:.0%} ({summary.green}/{summary.finished})"


def median_text(summary: Summary) -> str:
    return "-" if summary.median_seconds is None else clock_text(summary.median_seconds)


def _summary_table(title: str, column: str, groups: dict[str, Summary]) -> Table:
    table = Table(title=title, title_justify="left")
    for name in (column, "drills", "success rate", "median to green", "abandoned"):
        table.add_column(name, overflow="fold")
    for name, summary in groups.items():
        table.add_row(name, str(summary.drills), rate_text(summary), median_text(summary),
                      str(summary.abandoned))
    return table


def outcome_text(entry: Entry) -> str:
    if entry.outcome == GREEN:
        return f"green in {clock_text(entry.seconds)}"
    if entry.outcome == ABANDONED:
        return f"abandoned after {clock_text(entry.seconds)}"
    return f"timed out ({clock_text(entry.seconds)})"


def render(log: DrillLog, console: Console) -> None:
    """The last drills, then summaries per topic and per ISO week (oldest week first)."""
    if not log.entries:
        console.print("no drills yet: `kata drill` starts one")
        return
    ordered = sorted(log.entries, key=lambda e: e.when)
    recent = Table(title=f"last {min(RECENT, len(ordered))} of {len(ordered)} drills",
                   title_justify="left")
    for name in ("date", "kata", "result", "runs", "time box"):
        recent.add_column(name, overflow="fold")
    for entry in ordered[-RECENT:]:
        box = f"{entry.minutes:g} min" + (" (mock)" if entry.mock else "")
        recent.add_row(entry.when.strftime("%Y-%m-%d %H:%M"), entry.kata, outcome_text(entry),
                       str(entry.runs), box)
    console.print(recent)
    console.print(_summary_table("per topic", "topic", group(
        sorted(ordered, key=lambda e: e.topic), lambda e: e.topic)))
    console.print(_summary_table("per week", "week", group(ordered, week_of)))
