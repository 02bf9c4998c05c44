"""Spaced repetition: when each kata is due for its next drill.

A kata solved in a drill comes back after 1 day, then 3, 7 and 21 days as long as each drill goes
green; a drill that timed out or was given up makes it due again at once. `kata drill` without a
name takes the first kata of the schedule: the failed ones first (most failures first), then the
most overdue, then those never drilled, in learning order.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from ..catalogue import Kata
from .log import GREEN, DrillLog

INTERVALS_DAYS = (1, 3, 7, 21)  # after the 1st, 2nd, 3rd and every later green drill in a row


@dataclass(frozen=True)
class Due:
    kata: Kata
    when: dt.datetime | None  # None: never drilled
    drills: int
    failures: int  # drills that did not go green (timed out or given up)
    streak: int  # green drills in a row, the latest last
    last_failed: bool

    def is_due(self, now: dt.datetime) -> bool:
        return self.when is None or self.when <= now

    def reason(self, now: dt.datetime) -> str:
        """'failed 2 of 3 drills, the last one too: due now', 'green 2 in a row: due in 3 days'."""
        if self.when is None:
            return "never drilled: due now"
        if self.last_failed:
            return f"failed {self.failures} of {self.drills} drills, the last one too: due now"
        in_a_row = f"green {self.streak} in a row" if self.streak > 1 else "green last time"
        if self.when <= now:
            return f"{in_a_row}: due now"
        return f"{in_a_row}: due in {_span(self.when - now)}"


def _span(delta: dt.timedelta) -> str:
    hours = max(1, round(delta.total_seconds() / 3600))
    count, unit = (round(hours / 24), "day") if hours >= 24 else (hours, "hour")
    return f"{count} {unit}{'' if count == 1 else 's'}"


def due_of(kata: Kata, log: DrillLog) -> Due:
    """When `kata` is next due, from its drills in the log."""
    drills = [entry for entry in log.entries if entry.kata == kata.slug]
    if not drills:
        return Due(kata, None, 0, 0, 0, last_failed=False)
    drills.sort(key=lambda entry: entry.when)
    failures = sum(entry.outcome != GREEN for entry in drills)
    streak = 0
    for entry in reversed(drills):
        if entry.outcome != GREEN:
            break
        streak += 1
    last = drills[-1]
    if streak == 0:
        return Due(kata, last.when, len(drills), failures, 0, last_failed=True)
    interval = INTERVALS_DAYS[min(streak, len(INTERVALS_DAYS)) - 1]
    return Due(kata, last.when + dt.timedelta(days=interval), len(drills), failures, streak, last_failed=False)


def schedule(katas: Sequence[Kata], log: DrillLog, now: dt.datetime) -> list[Due]:
    """Every kata, the next one to drill first (see the module's docstring for the order)."""
    order = {kata.slug: index for index, kata in enumerate(katas)}
    found = [due_of(kata, log) for kata in katas]

    def key(due: Due) -> tuple[int, float, float, int]:
        learning_order = order[due.kata.slug]
        if due.last_failed:
            return (0, -due.failures, due.when.timestamp() if due.when else 0.0, learning_order)
        if due.when is not None and due.when <= now:
            return (1, 0, due.when.timestamp(), learning_order)
        if due.when is None:
            return (2, 0, 0.0, learning_order)
        return (3, 0, due.when.timestamp(), learning_order)

    return sorted(found, key=key)


def next_up(katas: Sequence[Kata], log: DrillLog, now: dt.datetime) -> Kata:
    """The kata to drill now: the first of the schedule."""
    if not katas:
        raise ValueError("no katas to choose from")
    return schedule(katas, log, now)[0].kata
