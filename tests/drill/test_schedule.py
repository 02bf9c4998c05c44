"""Spaced repetition: a green drill comes back after 1, 3, 7, 21 days; a failed one at once."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from dojo.catalogue import Catalogue
from dojo.drill.log import ABANDONED, GREEN, TIMED_OUT, DrillLog, Entry
from dojo.drill.schedule import due_of, next_up, schedule

START = dt.datetime(2026, 3, 2, 10, 0, tzinfo=dt.UTC)


def _log(tmp_path: Path, *drills: tuple[str, float, str]) -> DrillLog:
    """(kata slug, days after START, outcome) -> a drill log, in the order given."""
    entries = [Entry(slug, (START + dt.timedelta(days=days)).isoformat(), outcome, 60.0, 1, 20.0)
               for slug, days, outcome in drills]
    return DrillLog(tmp_path / "drills.json", entries)


@pytest.mark.parametrize(("greens", "interval"), [(1, 1), (2, 3), (3, 7), (4, 21), (6, 21)])
def test_each_green_drill_in_a_row_pushes_the_next_one_further(
    tmp_path: Path, catalogue: Catalogue, greens: int, interval: int
):
    log = _log(tmp_path, *[("basics/adder", day, GREEN) for day in range(greens)])
    due = due_of(catalogue.get("adder"), log)
    assert due.streak == greens and not due.last_failed
    assert due.when == START + dt.timedelta(days=greens - 1 + interval)


@pytest.mark.parametrize("failure", [TIMED_OUT, ABANDONED])
def test_a_drill_that_did_not_go_green_is_due_at_once_and_resets_the_streak(
    tmp_path: Path, catalogue: Catalogue, failure: str
):
    log = _log(tmp_path, ("basics/adder", 0, GREEN), ("basics/adder", 1, GREEN), ("basics/adder", 5, failure))
    due = due_of(catalogue.get("adder"), log)
    assert (due.streak, due.failures, due.drills, due.last_failed) == (0, 1, 3, True)
    assert due.is_due(START + dt.timedelta(days=5))
    assert due.reason(START + dt.timedelta(days=6)) == "failed 1 of 3 drills, the last one too: due now"
    log.entries.append(Entry("basics/adder", (START + dt.timedelta(days=6)).isoformat(), GREEN, 60.0, 1, 20.0))
    assert due_of(catalogue.get("adder"), log).when == START + dt.timedelta(days=7), "one green: 1 day"


def test_the_order_failed_most_then_overdue_then_never_drilled_then_not_yet_due(
    tmp_path: Path, catalogue: Catalogue
):
    now = START + dt.timedelta(days=10)
    log = _log(tmp_path,
               ("basics/adder", 9, GREEN),          # due on day 10 + ... not yet (1 day after day 9 = day 10)
               ("strings/shouter", 0, TIMED_OUT),   # failed once
               )
    order = [due.kata.name for due in schedule(catalogue.katas, log, now)]
    assert order == ["shouter", "adder", "greeter"], "failed, then due (day 10 is now), then never drilled"
    assert next_up(catalogue.katas, log, now).name == "shouter"

    later = START + dt.timedelta(days=9, hours=12)
    assert [d.kata.name for d in schedule(catalogue.katas, log, later)] == ["shouter", "greeter", "adder"], (
        "a kata not yet due comes after one never drilled"
    )
    assert schedule(catalogue.katas, log, later)[2].reason(later) == "green last time: due in 12 hours"
    log = _log(tmp_path, ("basics/greeter", 0, TIMED_OUT), ("strings/shouter", 1, TIMED_OUT),
               ("strings/shouter", 2, TIMED_OUT))
    assert next_up(catalogue.katas, log, now).name == "shouter", "the kata failed most comes first"
