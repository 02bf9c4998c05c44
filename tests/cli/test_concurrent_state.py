"""Two terminals at once: each command's changes survive the other's save, merged kata by kata."""

from __future__ import annotations

import json
import multiprocessing
import subprocess
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from dojo.cli import app
from dojo.learner import state

from .conftest import KATA_COMMAND, cli_env

pytestmark = pytest.mark.time_limit(300)
runner = CliRunner()
RECORD = state.RunRecord(fingerprint="f", passed=1, failed=0)


def saved(root: Path) -> dict[str, object]:
    return json.loads((root / ".kata" / "state.json").read_text())


def test_a_hint_taken_during_a_run_survives_the_runs_save(tmp_path: Path) -> None:
    run = state.load(tmp_path)  # `kata run adder` loads the state, then runs for a while...
    other = state.load(tmp_path)  # ...while `kata hint greeter` and `kata run shouter` finish
    other.hints["basics/greeter"] = 1
    other.runs["strings/shouter"] = RECORD
    other.current = "strings/shouter"
    other.save()
    run.current = "basics/adder"
    run.runs["basics/adder"] = RECORD
    run.save()
    on_disk = saved(tmp_path)
    assert on_disk["hints"] == {"basics/greeter": 1}, "the other terminal's hint is kept"
    assert set(on_disk["runs"]) == {"basics/adder", "strings/shouter"}  # type: ignore[arg-type]
    assert on_disk["current"] == "basics/adder", "the last command to choose a kata sets current"
    assert run.hints == {"basics/greeter": 1}, "the saver sees the merged state"


def test_a_reset_during_a_run_of_another_kata_still_forgets_its_own_run(tmp_path: Path) -> None:
    first = state.load(tmp_path)
    first.runs["basics/adder"] = RECORD
    first.runs["basics/greeter"] = RECORD
    first.save()
    running = state.load(tmp_path)
    resetting = state.load(tmp_path)
    resetting.runs.pop("basics/greeter")
    resetting.save()
    running.runs["basics/adder"] = state.RunRecord(fingerprint="g", passed=0, failed=1)
    running.save()
    assert set(saved(tmp_path)["runs"]) == {"basics/adder"}, "the reset is not undone"  # type: ignore[arg-type]


def _take_hints(root: str, slug: str, times: int) -> None:
    for _ in range(times):
        current = state.load(Path(root))
        current.hints[slug] = current.hints.get(slug, 0) + 1
        current.save()


def test_many_commands_at_once_lose_no_update(tmp_path: Path) -> None:
    context = multiprocessing.get_context("spawn")
    slugs = [f"topic/kata{n}" for n in range(4)]
    workers = [context.Process(target=_take_hints, args=(str(tmp_path), slug, 30)) for slug in slugs]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(120)
        assert worker.exitcode == 0
    assert saved(tmp_path)["hints"] == dict.fromkeys(slugs, 30)


def test_kata_hint_in_a_second_terminal_during_kata_run(repo: Path) -> None:
    started = repo / "started"
    slow = (f"import time\n\ndef add(a: int, b: int) -> int:\n    open({str(started)!r}, 'w').close()\n"
            "    time.sleep(1.5)\n    return a + b\n")
    (repo / "katas" / "basics" / "adder" / "adder.py").write_text(slow)
    run = subprocess.Popen([*KATA_COMMAND, "run", "adder"], cwd=repo, env=cli_env(),
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 60
    while not started.exists():  # the run is under way
        assert time.monotonic() < deadline and run.poll() is None, run.communicate()[0]
        time.sleep(0.05)
    hint = runner.invoke(app, ["hint", "greeter"])
    assert hint.exit_code == 0, hint.output
    output, _ = run.communicate(timeout=120)
    assert run.returncode == 0, output
    on_disk = saved(repo)
    assert on_disk["hints"] == {"basics/greeter": 1}, f"the hint was lost: {on_disk}"
    assert on_disk["runs"]["basics/adder"]["passed"] == 2  # type: ignore[index]
