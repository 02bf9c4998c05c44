"""`kata watch` stays responsive while a run hangs: a save or `r` replaces it, `q` quits at once."""

from __future__ import annotations

from pathlib import Path

import psutil
import pytest

from .conftest import solve
from .test_hostile_learner import ADDER, set_time_limit
from .test_watch import PATIENCE, WatchSession, sessions  # noqa: F401 - the fixture

pytestmark = pytest.mark.time_limit(300)

HANGS_AT_IMPORT = "import time\n\ntime.sleep(10**6)  # a manual check\n\n\ndef add(a, b):\n    return a + b\n"
# A run of the hanging file ends only after this limit: far longer than any reaction we wait for.
LONG_LIMIT = 240


def _hanging_watch(repo: Path, started: list[WatchSession]) -> tuple[WatchSession, int]:
    set_time_limit(repo, "adder", LONG_LIMIT)
    (repo / ADDER).write_text(HANGS_AT_IMPORT)
    session = WatchSession(repo, "adder")
    started.append(session)
    at = session.wait_for("basics/adder · Add two numbers")
    at = session.wait_for("edit  katas/basics/adder/adder.py", at)
    return session, at


def test_a_save_during_a_hanging_run_stops_it_and_runs_the_new_code(repo: Path, sessions) -> None:  # noqa: F811
    session, at = _hanging_watch(repo, sessions)
    solve(repo, "adder")
    at = session.wait_for("adder: run stopped, the file changed", at)
    at = session.wait_for("basics/adder · Add two numbers", at)
    session.wait_for("adder: all 2 tests pass", at)
    assert "did not finish" not in session.output, "the stale run was waited for"
    session.key("q")
    session.wait_for("stopped watching", at)
    assert session.proc.wait(timeout=PATIENCE) == 0


def test_r_during_a_hanging_run_starts_it_again(repo: Path, sessions) -> None:  # noqa: F811
    session, at = _hanging_watch(repo, sessions)
    session.key("r")
    at = session.wait_for("adder: run stopped, running it again", at)
    session.wait_for("basics/adder · Add two numbers", at)
    session.key("q")


def test_q_during_a_hanging_run_quits_and_leaves_no_process(repo: Path, sessions) -> None:  # noqa: F811
    session, at = _hanging_watch(repo, sessions)
    descendants = psutil.Process(session.proc.pid).children(recursive=True)
    session.key("q")
    at = session.wait_for("adder: run stopped, quitting", at)
    session.wait_for("stopped watching", at)
    assert session.proc.wait(timeout=PATIENCE) == 0
    _, alive = psutil.wait_procs(descendants, timeout=PATIENCE)
    assert not alive, f"watch left processes behind: {alive}"


def test_a_hint_asked_for_during_a_run_comes_when_it_ends(repo: Path, sessions) -> None:  # noqa: F811
    set_time_limit(repo, "adder", 3)
    (repo / ADDER).write_text(HANGS_AT_IMPORT)
    session = WatchSession(repo, "adder")
    sessions.append(session)
    at = session.wait_for("edit  katas/basics/adder/adder.py")
    session.key("h")
    at = session.wait_for("importing katas/basics/adder/adder.py did not finish in 3 s", at)
    at = session.wait_for("adder: 2 of 2 tests failing", at)
    session.wait_for("hint 1 of 2: Python has an operator for this.", at)
    session.key("q")
