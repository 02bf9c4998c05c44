"""The drill log: .kata/drills.json with its do-not-edit header; missing or broken files."""

from __future__ import annotations

import json
from pathlib import Path

from dojo.drill import log as log_mod
from dojo.drill.log import ABANDONED, GREEN, TIMED_OUT, Entry


def _entry(kata: str = "basics/adder", outcome: str = GREEN, **changes: object) -> Entry:
    fields: dict[str, object] = dict(kata=kata, started="2026-03-02T09:00:00+00:00",
                                     outcome=outcome, seconds=61.5, runs=3, minutes=20.0)
    fields.update(changes)
    return Entry(**fields)  # type: ignore[arg-type]


def test_entries_survive_a_round_trip_with_a_do_not_edit_header(tmp_path: Path):
    log = log_mod.load(tmp_path)
    assert log.entries == [] and not log.rebuilt, "no file yet: an empty log, no complaint"
    log.add(_entry())
    log.add(_entry("strings/shouter", TIMED_OUT, mock="2026-03-02T09:00:00+00:00"))
    raw = json.loads((tmp_path / ".kata" / "drills.json").read_text())
    assert "do not edit" in raw["_comment"]
    again = log_mod.load(tmp_path)
    assert again.entries == log.entries
    assert again.last_of("basics/adder") == _entry()
    assert again.last_of("basics/greeter") is None


def test_a_deleted_log_starts_afresh_and_drills_are_logged_again(tmp_path: Path):
    log_mod.load(tmp_path).add(_entry())
    (tmp_path / ".kata" / "drills.json").unlink()
    log = log_mod.load(tmp_path)
    assert log.entries == [] and not log.rebuilt
    log.add(_entry(outcome=ABANDONED))
    assert [e.outcome for e in log_mod.load(tmp_path).entries] == [ABANDONED]


def test_a_broken_log_is_kept_aside_not_overwritten(tmp_path: Path):
    path = tmp_path / ".kata" / "drills.json"
    path.parent.mkdir()
    path.write_text('{"version": 1, "drills": [{"kata": "x"')
    log = log_mod.load(tmp_path)
    assert log.entries == []
    assert "drills.json.broken" in log.rebuilt
    assert (tmp_path / ".kata" / "drills.json.broken").read_text().startswith('{"version": 1')


def test_entries_that_make_no_sense_are_rejected(tmp_path: Path):
    path = tmp_path / ".kata" / "drills.json"
    path.parent.mkdir()
    for bad in (_entry(outcome="won"), _entry(runs=-1), _entry(started="2026-03-02T09:00:00")):
        payload = {"version": 1, "drills": [bad.__dict__]}
        path.write_text(json.dumps(payload))
        assert log_mod.load(tmp_path).rebuilt, bad
