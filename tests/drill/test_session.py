"""The drill loop on a fake clock: green, time up, notices, q, Ctrl-C, saves that change nothing."""

from __future__ import annotations

from pathlib import Path

import pytest
from rich.console import Console

from dojo.catalogue import Catalogue
from dojo.drill.log import ABANDONED, GREEN, TIMED_OUT
from dojo.drill.session import Drill, clock_text
from dojo.drill.workspace import Workspace
from dojo.learner.events import Change, Key

from .conftest import ContentRunner, FakeClock, Script, save_solution


@pytest.fixture
def workspace(catalogue: Catalogue) -> Workspace:
    return Workspace.create(catalogue.get("adder"))


def _drill(workspace: Workspace, clock: FakeClock, steps, minutes: float = 20.0,
           runner: ContentRunner | None = None) -> tuple[Drill, Console]:
    console = Console(record=True, width=200, color_system=None)
    drill = Drill(workspace, clock.now + minutes * 60, clock=clock, wait=Script(clock, steps).wait,
                  runner=runner or ContentRunner(clock), console=console)
    return drill, console


def _touch(workspace: Workspace, text: str = "# thinking\n"):
    def act():
        path = next(iter(workspace.files().values()))
        path.write_text(path.read_text() + text)
        return Change(frozenset({path}))
    return act


def test_time_to_green_is_taken_at_the_save_that_went_green(workspace: Workspace, clock: FakeClock):
    runner = ContentRunner(clock, seconds=30.0)  # a slow pytest does not count against the learner
    drill, console = _drill(workspace, clock, [
        (100, _touch(workspace)), (400, save_solution(lambda: workspace)),
    ], runner=runner)
    result = drill.loop()
    assert (result.outcome, result.seconds, result.runs) == (GREEN, 400.0, 2)
    out = console.export_text()
    assert "run 1 · 1:40 in · 18:20 left" in out
    assert "✗ 2 of 2 failing · 17:50 left" in out


def test_time_runs_out_without_a_save_and_the_notices_say_what_is_left(
    workspace: Workspace, clock: FakeClock
):
    drill, console = _drill(workspace, clock, [], minutes=12)
    result = drill.loop()
    assert (result.outcome, result.seconds, result.runs) == (TIMED_OUT, 720.0, 0)
    assert clock.now == pytest.approx(1000.0 + 720.0), "it ends at the deadline, not later"
    out = console.export_text()
    assert out.index("10 min left") < out.index("5 min left") < out.index("1 min left")
    assert "20 min left" not in out


def test_a_failing_save_just_before_the_end_still_times_out(workspace: Workspace, clock: FakeClock):
    drill, _ = _drill(workspace, clock, [(59, _touch(workspace))], minutes=1)
    result = drill.loop()
    assert (result.outcome, result.runs) == (TIMED_OUT, 1)
    assert result.last is not None and result.last.failed == 2


def test_saves_that_change_nothing_and_other_files_start_no_run(
    workspace: Workspace, clock: FakeClock, tmp_path: Path
):
    stub = next(iter(workspace.files().values()))
    elsewhere = tmp_path / "notes.txt"
    drill, _ = _drill(workspace, clock, [
        (10, Change(frozenset({stub}))),  # saved without a change
        (20, Change(frozenset({workspace.folder / "__pycache__" / "adder.cpython-311.pyc"}))),
        (30, Change(frozenset({elsewhere}))),
        (40, Key("x")),  # an unknown key only shows the keys
        (50, Key("r")),  # but r re-runs unchanged files
        (60, Key("q")),
    ])
    result = drill.loop()
    assert (result.outcome, result.runs, result.quit_key) == (ABANDONED, 1, True)
    assert result.seconds == 60.0


def test_ctrl_c_while_waiting_or_while_the_tests_run_abandons_the_drill(
    workspace: Workspace, clock: FakeClock
):
    def interrupt():
        raise KeyboardInterrupt

    drill, _ = _drill(workspace, clock, [(90, interrupt)])
    result = drill.loop()
    assert (result.outcome, result.seconds, result.quit_key) == (ABANDONED, 90.0, False)

    runner = ContentRunner(clock)
    runner.effect = KeyboardInterrupt()
    drill, _ = _drill(workspace, clock, [(5, _touch(workspace, "# again\n"))], runner=runner)
    result = drill.loop()
    assert (result.outcome, result.runs) == (ABANDONED, 1)


def test_clock_text():
    assert [clock_text(s) for s in (0, 59.6, 725, 3725, -3)] == ["0:00", "1:00", "12:05", "1:02:05", "0:00"]
