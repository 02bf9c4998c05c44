"""`kata list`: every kata in learning order with its status, per-topic progress and totals."""

from __future__ import annotations

from collections import Counter

from rich.console import Console, Group
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from ..catalogue import DIFFICULTIES, Catalogue, Kata
from .state import State
from .status import Kind, Status, statuses

_MARKS = {
    Kind.DONE: ("✓", "green"),
    Kind.FAILING: ("✗", "red"),
    Kind.CHANGED: ("✎", "yellow"),
    Kind.SKIPPED: ("~", "yellow"),
    Kind.NOT_STARTED: ("·", "dim"),
}


def totals(found: dict[str, Status]) -> str:
    """'3 of 10 done, 1 failing, 6 not started': the counts that are not zero."""
    counts = Counter(s.kind for s in found.values())
    parts = [f"{counts[Kind.DONE]} of {len(found)} done"]
    parts += [f"{counts[k]} {k.value}" for k in Kind if k is not Kind.DONE and counts[k]]
    return ", ".join(parts)


def effort(kata: Kata) -> str:
    """'interview, 30 min': the kata's level and a prepared candidate's time ('' if not given)."""
    parts = [DIFFICULTIES.get(kata.difficulty, ""), f"{kata.minutes} min" if kata.minutes else ""]
    return ", ".join(part for part in parts if part)


def render(catalogue: Catalogue, state: State, console: Console) -> None:
    """A table with progress bars on a terminal; stable plain lines when piped or redirected."""
    found = statuses(catalogue, state)
    if console.is_terminal:
        console.print(_rich(catalogue, state, found))
    else:
        for line in _plain(catalogue, state, found):
            console.print(Text(line), soft_wrap=True)
    console.print(Text(totals(found), style="bold"))


def _plain(catalogue: Catalogue, state: State, found: dict[str, Status]) -> list[str]:
    width = max((len(k.name) for k in catalogue.katas), default=0)
    effort_width = max((len(effort(k)) for k in catalogue.katas), default=0)
    lines = []
    for topic in catalogue.topics:
        katas = catalogue.in_topic(topic.name)
        if not katas:
            continue
        done = sum(found[k.slug].finished for k in katas)
        lines.append(f"{topic.name}: {done}/{len(katas)} done - {topic.title}")
        for kata in katas:
            here = "*" if kata.slug == state.current else " "
            lines.append(f" {here}{kata.name:<{width}}  {effort(kata):<{effort_width}}  {found[kata.slug].describe()}")
    return lines


def _rich(catalogue: Catalogue, state: State, found: dict[str, Status]) -> Group:
    # the same column widths in every topic, so statuses and titles line up down the page
    name_width = max((len(k.name) for k in catalogue.katas), default=0)
    status_width = max((len(s.describe()) for s in found.values()), default=0)
    effort_width = max((len(effort(k)) for k in catalogue.katas), default=0)
    parts: list[Table | Text] = []
    for topic in catalogue.topics:
        katas = catalogue.in_topic(topic.name)
        if not katas:
            continue
        done = sum(found[k.slug].finished for k in katas)
        head = Table.grid(padding=(0, 2), expand=True)
        # fixed widths everywhere but the title, which is cut short: one line per row, always
        for width in (len(topic.name), 24, len(f"{done}/{len(katas)}")):
            head.add_column(width=width, no_wrap=True)
        head.add_column(ratio=1, no_wrap=True, overflow="ellipsis")
        head.add_row(
            Text(topic.name, style="bold"),
            ProgressBar(total=len(katas), completed=done, width=24),
            Text(f"{done}/{len(katas)}"),
            Text(topic.title, style="dim"),
        )
        parts.append(head)
        rows = Table.grid(padding=(0, 2), expand=True)
        for width in (3, name_width, effort_width, status_width):
            rows.add_column(width=width, no_wrap=True)
        rows.add_column(ratio=1, no_wrap=True, overflow="ellipsis")
        for kata in katas:
            status = found[kata.slug]
            mark, style = _MARKS[status.kind]
            here = "▶" if kata.slug == state.current else " "
            rows.add_row(
                Text(f"{here} {mark}", style=style), Text(kata.name), Text(effort(kata), style="dim"),
                Text(status.describe(), style=style), Text(kata.title, style="dim"),
            )
        parts.append(rows)
        parts.append(Text(""))
    return Group(*parts)
