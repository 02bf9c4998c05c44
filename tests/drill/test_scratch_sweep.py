"""Scratch copies of a drill that was killed (SIGKILL) or hung up (SIGHUP) do not pile up (issue 33, item 9)."""

from __future__ import annotations

import signal
import subprocess
from pathlib import Path

import pytest

from dojo.catalogue import load
from dojo.drill.workspace import Workspace

from .test_cli import PATIENCE, DrillProcess, _scratch_file, drills  # noqa: F401 (drills: a fixture)

pytestmark = pytest.mark.time_limit(300)


def _drill_base(repo: Path) -> Path:
    return repo / ".kata" / "drill"


def test_a_sighup_removes_the_drills_scratch_copy(repo: Path, drills: list[DrillProcess]) -> None:  # noqa: F811
    drill = DrillProcess(repo, "greeter")
    drills.append(drill)
    drill.wait_for("15:00 on the clock")  # greeter's minutes in the catalogue
    scratch = _scratch_file(repo, "greeter")
    drill.proc.send_signal(signal.SIGHUP)
    drill.proc.wait(timeout=PATIENCE)
    assert not scratch.parent.exists(), f"the scratch copy outlived SIGHUP:\n{drill.output}"


def test_the_next_drill_removes_the_scratch_copy_a_sigkilled_drill_left(
    repo: Path, drills: list[DrillProcess]  # noqa: F811
) -> None:
    drill = DrillProcess(repo, "greeter")
    drills.append(drill)
    drill.wait_for("15:00 on the clock")  # greeter's minutes in the catalogue
    scratch = _scratch_file(repo, "greeter")
    drill.proc.kill()
    drill.proc.wait(timeout=PATIENCE)
    assert scratch.parent.exists()
    (_drill_base(repo) / "attempts" / "kept").mkdir(parents=True)
    living = subprocess.Popen(["sleep", "60"])
    try:
        theirs = _drill_base(repo) / f"scratch-{living.pid}-adder-abcd"  # a drill still running
        theirs.mkdir()
        workspace = Workspace.create(load(repo / "katas.toml").get("adder"))
        assert not scratch.parent.exists(), "the killed drill's scratch copy was not swept"
        assert theirs.exists(), "a running drill's scratch copy was removed"
        assert (_drill_base(repo) / "attempts" / "kept").exists(), "kept attempts must stay"
        workspace.remove()
    finally:
        living.kill()
        living.wait()
