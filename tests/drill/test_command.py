"""Drills and mocks end to end in process: real scratch copies and log, fake clock and runner."""

from __future__ import annotations

from pathlib import Path

import pytest
from rich.console import Console

from dojo import catalogue as catalogue_mod
from dojo.catalogue import Catalogue
from dojo.drill import command
from dojo.drill import log as log_mod
from dojo.drill.log import ABANDONED, GREEN, TIMED_OUT
from dojo.learner.events import Key

from .conftest import Harness, save_solution, tree_digest


def _console() -> Console:
    return Console(record=True, width=200, color_system=None)


def _scratch(repo: Path) -> list[Path]:
    """Drill folders still in use (kept attempts are not)."""
    base = repo / ".kata" / "drill"
    return [p for p in base.iterdir() if p.name != "attempts"] if base.is_dir() else []


def test_a_drill_goes_green_on_a_fresh_copy_and_is_logged_without_touching_katas(
    repo: Path, catalogue: Catalogue, harness: Harness
):
    mine = repo / "katas/basics/adder/adder.py"
    mine.write_text("def add(a, b):\n    return 42  # my own work in progress\n")
    before = tree_digest(repo / "katas")
    harness.scripts.append([(150, save_solution(harness.workspace))])
    console = _console()

    code = command.drill(catalogue, catalogue.get("adder"), [], 10, harness.world(), console)

    assert code == 0
    assert tree_digest(repo / "katas") == before, "a drill never modifies katas/"
    out = console.export_text()
    assert "drill: basics/adder" in out and "A kata for the CLI's own tests" in out
    assert "10:00 on the clock" in out
    assert "✓ adder: green in 2:30 (1 run)" in out
    (entry,) = log_mod.load(repo).entries
    assert (entry.kata, entry.outcome, entry.seconds, entry.runs, entry.minutes) == (
        "basics/adder", GREEN, 150.0, 1, 10)
    assert entry.started == "2026-03-02T09:00:00+00:00", "the date from the injected clock"
    assert _scratch(repo) == []
    (kept,) = (repo / ".kata/drill/attempts").iterdir()
    assert (kept / "adder.py").read_text() == (repo / "solutions/basics/adder/adder.py").read_text()


def test_the_scratch_copy_is_the_shipped_stub_not_the_learners_file(
    repo: Path, catalogue: Catalogue, harness: Harness
):
    (repo / "katas/basics/adder/adder.py").write_text("def add(a, b):\n    return a + b\n")
    seen: list[str] = []

    def peek():
        seen.append(harness.workspace().files()["adder.py"].read_text())
        return Key("q")

    harness.scripts.append([(5, peek)])
    command.drill(catalogue, catalogue.get("adder"), [], 10, harness.world(), _console())
    assert seen and "raise NotImplementedError" in seen[0], seen


def test_time_up_is_logged_as_timed_out_with_the_whole_time_box(
    repo: Path, catalogue: Catalogue, harness: Harness
):
    console = _console()
    code = command.drill(catalogue, catalogue.get("greeter"), [], 5, harness.world(), console)
    assert code == 1
    (entry,) = log_mod.load(repo).entries
    assert (entry.outcome, entry.seconds, entry.runs) == (TIMED_OUT, 300.0, 0)
    out = console.export_text()
    assert "⏱ greeter: time is up (5:00, 0 runs)" in out
    assert _scratch(repo) == []


def test_without_minutes_a_drill_gets_the_katas_own_time_from_the_catalogue(
    repo: Path, catalogue: Catalogue, harness: Harness
):
    command.drill(catalogue, catalogue.get("greeter"), [], None, harness.world(), _console())
    command.drill(catalogue, catalogue.get("shouter"), [], None, harness.world(), _console())
    greeter, shouter = log_mod.load(repo).entries
    assert (greeter.outcome, greeter.seconds) == (TIMED_OUT, 15 * 60.0), "greeter's entry says 15 minutes"
    assert (shouter.outcome, shouter.seconds) == (TIMED_OUT, command.DEFAULT_MINUTES * 60), (
        "an entry without minutes gets the default time box"
    )


@pytest.mark.parametrize("where", ["waiting", "running the tests"])
def test_ctrl_c_logs_the_drill_as_abandoned_and_removes_its_scratch_copy(
    repo: Path, catalogue: Catalogue, harness: Harness, where: str
):
    before = tree_digest(repo / "katas")

    def interrupt():
        raise KeyboardInterrupt

    if where == "waiting":
        harness.scripts.append([(42, interrupt)])
    else:
        harness.runner.effect = KeyboardInterrupt()
        harness.scripts.append([(40, Key("r"))])
    console = _console()
    code = command.drill(catalogue, catalogue.get("shouter"), [], 10, harness.world(), console)
    assert code == 1
    (entry,) = log_mod.load(repo).entries
    assert (entry.kata, entry.outcome, entry.seconds) == ("strings/shouter", ABANDONED, 42.0)
    assert harness.workspaces and not harness.workspaces[0].exists(), "scratch copy removed"
    assert _scratch(repo) == [] and not (repo / ".kata/drill/attempts").exists()
    assert "logged as abandoned, scratch copy removed" in console.export_text()
    assert tree_digest(repo / "katas") == before


def test_without_a_name_a_kata_of_the_chosen_topics_is_picked(
    repo: Path, catalogue: Catalogue, harness: Harness
):
    for _ in range(3):
        command.drill(catalogue, None, ["strings"], 1, harness.world(), _console())
    assert [e.kata for e in log_mod.load(repo).entries] == ["strings/shouter"] * 3


def test_topics_narrow_the_choice_and_services_missing_here_are_left_out_with_the_reason(
    repo: Path, harness: Harness
):
    toml = repo / "katas.toml"
    toml.write_text(toml.read_text().replace(
        'title = "Shout a word"\n', 'title = "Shout a word"\nservices = ["redis"]\n'))
    catalogue = catalogue_mod.load(toml)
    harness.why_not["redis"] = "redis-server not found (PATH and the usual folders)"
    console = _console()
    usable = command.candidates(catalogue, [], harness.world(), console)
    assert [k.name for k in usable] == ["adder", "greeter"]
    out = console.export_text()
    assert "left out 1 kata(s)" in out
    assert "strings/shouter: redis: redis-server not found" in out and "kata doctor" in out

    with pytest.raises(command.DrillProblem, match="no kata left to drill in strings"):
        command.candidates(catalogue, ["strings"], harness.world(), _console())
    with pytest.raises(command.DrillProblem, match="shouter cannot run on this machine: redis"):
        command.drill(catalogue, catalogue.get("shouter"), [], 10, harness.world(), _console())
    with pytest.raises(command.DrillProblem, match="no topic nope; topics: basics, strings"):
        command.candidates(catalogue, ["nope"], harness.world(), _console())
    assert [k.name for k in command.candidates(catalogue, ["basics"], harness.world(), _console())] \
        == ["adder", "greeter"]


def test_a_mock_shares_one_time_box_and_ends_with_a_summary(
    repo: Path, catalogue: Catalogue, harness: Harness
):
    # question 1: green after 4 minutes; question 2: nothing until the shared box runs out
    harness.scripts.append([(240, save_solution(harness.workspace))])
    harness.runner.seconds = 0.0
    console = _console()
    code = command.mock(catalogue, 3, [], 10, harness.world(), console)
    assert code == 1
    entries = log_mod.load(repo).entries
    assert [e.outcome for e in entries] == [GREEN, TIMED_OUT], "the third was never reached"
    assert entries[0].mock == entries[1].mock != ""
    assert len({e.topic for e in entries}) == 2, "a mock mixes topics"
    assert entries[1].seconds == pytest.approx(360.0), "question 2 got what question 1 left"
    out = console.export_text()
    assert "mock interview: 3 katas, 10:00 in all" in out
    assert "question 1 of 3" in out and "question 2 of 3" in out and "question 3 of 3" not in out
    assert "not reached" in out
    assert "1 of 3 green in 10:00 of 10:00" in out


def test_in_a_mock_q_gives_up_one_question_and_ctrl_c_ends_the_mock(
    repo: Path, catalogue: Catalogue, harness: Harness
):
    def interrupt():
        raise KeyboardInterrupt

    harness.scripts += [[(30, Key("q"))], [(30, interrupt)]]
    console = _console()
    assert command.mock(catalogue, 3, [], None, harness.world(), console) == 1
    assert [e.outcome for e in log_mod.load(repo).entries] == [ABANDONED, ABANDONED]
    out = console.export_text()
    # each kata's own minutes (adder 10, greeter 15), 20 for shouter, whose entry gives none
    assert "mock interview: 3 katas, 45:00 in all" in out
    assert "given up after 0:30" in out and "not reached" in out
    assert _scratch(repo) == []
