"""`kata drill` as a learner runs it: options, a real drill going green, Ctrl-C, the history."""

from __future__ import annotations

import shutil
import signal
import subprocess
import threading
import time
from pathlib import Path

import psutil
import pytest
from typer.testing import CliRunner

from dojo.cli import app
from dojo.drill import log as log_mod
from dojo.drill.log import ABANDONED, GREEN
from tests.cli.conftest import KATA_COMMAND, cli_env

from .conftest import tree_digest

pytestmark = pytest.mark.time_limit(300)
PATIENCE = 90.0  # seconds: pytest on a loaded machine is slow; a run usually takes 1-3 s


@pytest.mark.parametrize("args, message", [
    (["--history", "adder"], "--history takes no kata"),
    (["--mock", "0"], "--mock needs a number of katas"),
    (["--mock", "2", "adder"], "--mock needs a number of katas"),
    (["--minutes", "0", "adder"], "--minutes must be more than 0"),
    (["--topic", "nope"], "no topic nope; topics: basics, strings"),
    (["gretter"], "did you mean greeter?"),
])
def test_usage_errors_exit_2(repo: Path, args: list[str], message: str):
    done = CliRunner().invoke(app, ["drill", *args], env={"COLUMNS": "200", "NO_COLOR": "1"})
    assert done.exit_code == 2, done.output
    assert message in done.output
    assert not (repo / ".kata" / "drill").exists(), "nothing was started"


def test_history_on_a_new_repo(repo: Path):
    done = CliRunner().invoke(app, ["drill", "--history"], env={"COLUMNS": "200", "NO_COLOR": "1"})
    assert done.exit_code == 0 and "no drills yet" in done.output


def _as_from_a_terminal() -> None:
    """Ctrl-C as a learner's terminal delivers it: a background job (`pytest &`, some CI
    runners) inherits SIGINT ignored, and Python then installs no KeyboardInterrupt handler."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


class DrillProcess:
    """`kata drill ARGS` in a subprocess, its output collected as it comes."""

    def __init__(self, repo: Path, *args: str) -> None:
        self.proc = subprocess.Popen(
            [*KATA_COMMAND, "drill", *args], cwd=repo, env=cli_env(), stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            preexec_fn=_as_from_a_terminal,
        )
        self.output = ""
        self._lock = threading.Lock()
        threading.Thread(target=self._collect, daemon=True).start()

    def _collect(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            with self._lock:
                self.output += line

    def wait_for(self, phrase: str) -> None:
        deadline = time.monotonic() + PATIENCE
        while time.monotonic() < deadline:
            with self._lock:
                if phrase in self.output:
                    return
            if self.proc.poll() is not None:
                time.sleep(0.2)  # let the reader drain the pipe
                with self._lock:
                    if phrase in self.output:
                        return
                break
            time.sleep(0.05)
        raise AssertionError(f"`kata drill` never printed {phrase!r}; its output:\n{self.output}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=30)


@pytest.fixture
def drills():
    started: list[DrillProcess] = []
    yield started
    for drill in started:
        drill.stop()


def _scratch_file(repo: Path, name: str) -> Path:
    (folder,) = [p for p in (repo / ".kata" / "drill").iterdir()
                 if p.name.startswith("scratch-") and f"-{name}-" in p.name]
    return folder / f"{name}.py"


def test_a_real_drill_reruns_on_save_and_ends_green_leaving_katas_alone(repo: Path, drills):
    before = tree_digest(repo / "katas")
    drill = DrillProcess(repo, "adder", "--minutes", "30")
    drills.append(drill)
    drill.wait_for("30:00 on the clock")
    scratch = _scratch_file(repo, "adder")
    scratch.write_text(scratch.read_text().replace('raise NotImplementedError("add")', "return a - b"))
    drill.wait_for("✗ 2 of 2 failing")  # the tests ran on the scratch copy, not on katas/
    shutil.copy(repo / "solutions/basics/adder/adder.py", scratch)
    drill.wait_for("✓ adder: green in")
    assert drill.proc.wait(timeout=PATIENCE) == 0, drill.output
    assert "2 passed" in drill.output
    assert tree_digest(repo / "katas") == before, "a drill never modifies katas/"
    assert "raise NotImplementedError" in (repo / "katas/basics/adder/adder.py").read_text()
    (entry,) = log_mod.load(repo).entries
    assert (entry.kata, entry.outcome, entry.runs) == ("basics/adder", GREEN, 2)

    done = subprocess.run([*KATA_COMMAND, "drill", "--history"], cwd=repo, env=cli_env(),
                          capture_output=True, text=True, timeout=PATIENCE, check=False)
    assert done.returncode == 0 and "basics/adder" in done.stdout and "100% (1/1)" in done.stdout


def test_ctrl_c_abandons_a_real_drill_removes_the_scratch_copy_and_leaves_no_process(
    repo: Path, drills
):
    drill = DrillProcess(repo, "greeter")
    drills.append(drill)
    drill.wait_for("15:00 on the clock")  # greeter's minutes in the catalogue
    scratch = _scratch_file(repo, "greeter")
    children = psutil.Process(drill.proc.pid).children(recursive=True)
    drill.proc.send_signal(signal.SIGINT)
    drill.wait_for("logged as abandoned, scratch copy removed")
    assert drill.proc.wait(timeout=PATIENCE) == 1
    assert not scratch.parent.exists()
    (entry,) = log_mod.load(repo).entries
    assert (entry.kata, entry.outcome) == ("basics/greeter", ABANDONED)
    _, alive = psutil.wait_procs(children, timeout=PATIENCE)
    assert not alive, f"the drill left processes behind: {alive}"
