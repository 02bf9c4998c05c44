"""A closed terminal or an IDE's stop button ends a plain pytest run as Ctrl-C does: teardown runs."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from .conftest import FakeRepo

TESTS = '''
import os
import time
from pathlib import Path

import pytest

from .adder import add

MARKS = Path(os.environ["MARKS"])


@pytest.fixture(scope="session")
def server():
    yield "a server"
    MARKS.joinpath("torn-down").write_text("yes")  # what stops servers and removes folders


def test_long(server):
    MARKS.joinpath("started").write_text("yes")
    time.sleep(60)
    assert add(1, 2) == 3
'''


@pytest.mark.parametrize("signum", [signal.SIGHUP, signal.SIGTERM], ids=lambda s: signal.Signals(s).name)
def test_hang_up_or_terminate_runs_the_teardown(adder_repo: FakeRepo, tmp_path: Path, signum: int) -> None:
    (adder_repo.root / "katas/demo/adder/test_adder.py").write_text(TESTS)
    marks = tmp_path / "marks"
    marks.mkdir()
    proc = subprocess.Popen(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--solutions", "katas/demo/adder"],
        cwd=adder_repo.root, env={**os.environ, "MARKS": str(marks)},
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
    )
    try:
        for _ in range(600):
            if (marks / "started").exists() or proc.poll() is not None:
                break
            time.sleep(0.05)
        assert (marks / "started").exists(), proc.communicate()[0]
        proc.send_signal(signum)
        out, _ = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert (marks / "torn-down").exists(), f"teardown did not run after {signal.Signals(signum).name}:\n{out}"
    assert proc.returncode not in (0, -signum), f"exit {proc.returncode}:\n{out}"


FORK_TESTS = '''
import multiprocessing
import time

from .adder import add


def sleeper():
    time.sleep(60)


def test_terminate_still_ends_a_forked_child():
    child = multiprocessing.get_context("fork").Process(target=sleeper)
    child.start()
    time.sleep(0.2)  # inside sleep(), where a KeyboardInterrupt would be raised instead
    child.terminate()
    child.join(10)
    assert child.exitcode == -15, f"terminate() gave exit code {child.exitcode}"
    assert add(1, 2) == 3
'''


def test_a_forked_child_still_dies_of_sigterm(adder_repo: FakeRepo) -> None:
    # the run's own SIGTERM handling must not reach into Process.terminate() of the code under test
    (adder_repo.root / "katas/demo/adder/test_adder.py").write_text(FORK_TESTS)
    result = adder_repo.pytest("--solutions", "katas/demo/adder", timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
