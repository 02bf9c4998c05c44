"""`kata drill --history`: recent drills, per topic and per week, median time and success rate."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console

from dojo.drill.history import group, render, summarise, week_of
from dojo.drill.log import ABANDONED, GREEN, TIMED_OUT, DrillLog, Entry


def _e(kata: str, day: int, outcome: str, seconds: float) -> Entry:
    return Entry(kata, f"2026-03-{day:02}T10:00:00+00:00", outcome, seconds, 3, 20.0)


LOG = [
    _e("basics/adder", 2, GREEN, 600), _e("basics/greeter", 3, TIMED_OUT, 1200),
    _e("basics/adder", 10, GREEN, 300), _e("strings/shouter", 11, ABANDONED, 30),
    _e("basics/greeter", 12, GREEN, 420),
]


def test_summaries_count_green_over_finished_drills_and_take_the_median_time_to_green():
    basics = summarise(e for e in LOG if e.topic == "basics")
    assert (basics.drills, basics.green, basics.abandoned) == (4, 3, 0)
    assert basics.success_rate == 0.75 and basics.median_seconds == 420
    strings = summarise(e for e in LOG if e.topic == "strings")
    assert strings.success_rate is None and strings.median_seconds is None, "abandoned says nothing"
    weeks = group(LOG, week_of)
    assert list(weeks) == ["2026-W10", "2026-W11"]
    assert (weeks["2026-W10"].success_rate, weeks["2026-W11"].median_seconds) == (0.5, 360)


def test_history_shows_the_drills_then_progress_per_topic_and_week(tmp_path: Path):
    console = Console(record=True, width=200, color_system=None)
    render(DrillLog(tmp_path / "drills.json", list(reversed(LOG))), console)
    out = console.export_text()
    assert out.index("2026-03-02 10:00") < out.index("2026-03-12 10:00"), "oldest first"
    for text in ("green in 10:00", "timed out (20:00)", "abandoned after 0:30", "per topic",
                 "75% (3/4)", "7:00", "per week", "2026-W10", "50% (1/2)", "6:00"):
        assert text in out, (text, out)


def test_an_empty_history_says_how_to_start(tmp_path: Path):
    console = Console(record=True, width=200, color_system=None)
    render(DrillLog(tmp_path / "drills.json"), console)
    assert "no drills yet: `kata drill` starts one" in console.export_text()
