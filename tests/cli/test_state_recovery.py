"""Progress is never wiped: unknown keys are ignored, bad records dropped one by one, broken files kept."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from dojo.cli import app
from dojo.drill import log as log_mod
from dojo.learner import state

pytestmark = pytest.mark.time_limit(300)
runner = CliRunner()

GOOD = {"fingerprint": "f1", "passed": 2, "failed": 0, "skipped": 0, "error": "", "ran_at": "2026-03-02T09:00:00+00:00"}
DRILL = {"kata": "basics/adder", "started": "2026-03-02T09:00:00+00:00", "outcome": "green",
         "seconds": 61.5, "runs": 3, "minutes": 20.0}


def write_state(root: Path, runs: dict[str, object], **top: object) -> Path:
    path = root / ".kata" / "state.json"
    path.parent.mkdir(exist_ok=True)
    payload = {"version": state.VERSION, "current": "basics/greeter", "runs": runs,
               "hints": {"basics/adder": 2, "basics/greeter": 1}, **top}
    path.write_text(json.dumps(payload))
    return path


def test_a_record_with_a_key_from_a_newer_version_is_read(tmp_path: Path) -> None:
    write_state(tmp_path, {"basics/adder": {**GOOD, "duration_s": 1.25}}, theme="dark")
    loaded = state.load(tmp_path)
    assert loaded.runs == {"basics/adder": state.RunRecord(**GOOD)}
    assert loaded.hints == {"basics/adder": 2, "basics/greeter": 1}
    assert loaded.current == "basics/greeter"
    assert not loaded.rebuilt, "nothing was lost: nothing to say"


def test_one_bad_record_is_dropped_and_every_other_one_kept(tmp_path: Path) -> None:
    path = write_state(tmp_path, {
        "basics/adder": {**GOOD, "passed": "two"},
        "basics/greeter": GOOD,
        "strings/shouter": {**GOOD, "failed": -1},
    }, hints={"basics/adder": 2, "basics/greeter": "many"})
    original = path.read_text()
    loaded = state.load(tmp_path)
    assert loaded.runs == {"basics/greeter": state.RunRecord(**GOOD)}
    assert loaded.hints == {"basics/adder": 2}
    assert loaded.current == "basics/greeter"
    for dropped in ("basics/adder", "strings/shouter"):
        assert dropped in loaded.rebuilt, loaded.rebuilt
    kept = tmp_path / ".kata" / "state.json.broken"
    assert kept.read_text() == original, "the file as it was is kept beside the repaired one"
    assert str(kept) in loaded.rebuilt


def test_the_cli_keeps_what_it_can_and_says_what_it_dropped(repo: Path) -> None:
    write_state(repo, {"basics/adder": {**GOOD, "passed": None}, "basics/greeter": GOOD})
    result = runner.invoke(app, ["hint", "shouter"])
    assert result.exit_code == 0, result.output
    assert "basics/adder" in result.output and "starting afresh" not in result.output
    saved = json.loads((repo / ".kata" / "state.json").read_text())
    assert set(saved["runs"]) == {"basics/greeter"}
    assert saved["hints"] == {"basics/adder": 2, "basics/greeter": 1, "strings/shouter": 1}
    assert saved["current"] == "basics/greeter"


def test_each_unreadable_state_file_is_kept_under_its_own_number(tmp_path: Path) -> None:
    path = tmp_path / ".kata" / "state.json"
    path.parent.mkdir()
    copies = []
    for n in range(3):
        path.write_text(f'{{"version": 1, "runs": {{"basics/adder": {n}')  # truncated
        loaded = state.load(tmp_path)
        assert loaded.runs == {} and "starting afresh" in loaded.rebuilt
        loaded.save()
        copies.append(f'{{"version": 1, "runs": {{"basics/adder": {n}')
    kept = sorted(p.name for p in path.parent.glob("state.json.broken*"))
    assert kept == ["state.json.broken", "state.json.broken-2", "state.json.broken-3"], kept
    texts = {(path.parent / name).read_text() for name in kept}
    assert texts == set(copies), "no broken copy overwrote an earlier one"


def test_each_unreadable_drill_log_is_kept_under_its_own_number(tmp_path: Path) -> None:
    path = tmp_path / ".kata" / "drills.json"
    path.parent.mkdir()
    for n in range(2):
        path.write_text(f'{{"version": 1, "drills": [{{"kata": "x{n}"')
        log = log_mod.load(tmp_path)
        assert log.entries == [] and log.rebuilt
    assert (path.parent / "drills.json.broken").read_text().endswith('"x0"')
    assert (path.parent / "drills.json.broken-2").read_text().endswith('"x1"')


def test_a_drill_entry_with_a_newer_key_is_read_and_a_bad_one_dropped(tmp_path: Path) -> None:
    path = tmp_path / ".kata" / "drills.json"
    path.parent.mkdir()
    path.write_text(json.dumps({"version": 1, "drills": [
        {**DRILL, "hints_used": 1}, {**DRILL, "outcome": "won"}, {**DRILL, "kata": "strings/shouter"},
    ]}))
    log = log_mod.load(tmp_path)
    assert [e.kata for e in log.entries] == ["basics/adder", "strings/shouter"]
    assert "won" in log.rebuilt and (path.parent / "drills.json.broken").is_file()
