"""`kata stats`: progress per topic, drills per week, and the katas to practise next."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from typer.testing import CliRunner

from dojo.cli import app
from dojo.drill.log import GREEN, TIMED_OUT, DrillLog, Entry, log_path

from .conftest import solve

runner = CliRunner()


def _drill(slug: str, when: dt.datetime, outcome: str, seconds: float) -> Entry:
    return Entry(slug, when.isoformat(), outcome, seconds, 2, 20.0)


def test_stats_on_a_history_shows_topics_weeks_and_what_is_due(repo: Path, kata):
    solve(repo, "adder")
    assert kata("run", "adder").returncode == 0
    now = dt.datetime.now(dt.UTC)
    DrillLog(log_path(repo), [
        _drill("basics/adder", now - dt.timedelta(days=15), GREEN, 300),
        _drill("basics/greeter", now - dt.timedelta(days=14), TIMED_OUT, 900),
        _drill("basics/adder", now - dt.timedelta(days=2), GREEN, 120),
    ]).save()

    lines = runner.invoke(app, ["stats"]).output.splitlines()

    assert lines[:2] == ["basics: 1/2 done", "strings: 0/1 done"], lines
    weeks = [line for line in lines if line.startswith("week ")]
    assert len(weeks) in (2, 3), lines  # three drills over two or three ISO weeks
    assert sum(int(line.split(": ")[1].split()[0]) for line in weeks) == 3
    practise = [line for line in lines if line.startswith("practise next")]
    assert practise[0] == "practise next 1: basics/greeter: failed 1 of 1 drills, the last one too: due now"
    assert practise[1] == "practise next 2: strings/shouter: never drilled: due now"
    assert practise[2] == "practise next 3: basics/adder: green 2 in a row: due in 1 day", "3 days after the 2nd"


def test_stats_without_drills_says_how_to_start(repo: Path):
    out = runner.invoke(app, ["stats"]).output
    assert "basics: 0/2 done" in out and "no drills yet: `kata drill` starts one" in out
