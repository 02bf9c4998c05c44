"""The maintainer's runner (verify, mutants) survives what the code under test leaves behind."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from dojo.catalogue import load
from dojo.running import runner

from .conftest import FakeRepo

# A "solution" that leaves a process holding the test run's stdout and never ending, forked so
# late (at interpreter exit) that the plugin's own reaping at the end of each test can't see it:
# what a mutant that drops a wait() or a kill can do to a kata about processes.
ORPHAN = '''
import atexit
import os
import time


def _leave_an_orphan(pid_file):
    if os.fork() == 0:  # holds pytest's stdout and stderr, sleeps for good
        os.setsid()  # out of pytest's process group too, as a daemon would be
        with open(pid_file, "w") as f:
            f.write(str(os.getpid()))
        time.sleep(3600)
        os._exit(0)


def answer(pid_file):
    atexit.register(_leave_an_orphan, pid_file)
    return 42
'''
ORPHAN_TESTS = '''
import os

from .orphan import answer


def test_answer():
    pid_file = os.environ["ORPHAN_PID_FILE"]
    assert answer(pid_file) == 42
'''
SLOW_TESTS = '''
import time

from .slow import answer


def test_answer():
    time.sleep(600)
    assert answer() == 42
'''


def _alive(pid: int) -> bool:
    try:
        return bool(psutil.Process(pid).status() != psutil.STATUS_ZOMBIE)  # ours to reap: we're a subreaper
    except psutil.NoSuchProcess:
        return False


@pytest.fixture
def stopping_reset() -> Iterator[None]:
    yield
    runner._stopping.clear()  # stop_all is once per process; the next test runs afresh


def test_a_forked_orphan_neither_hangs_the_run_nor_outlives_it(
    fake_repo: FakeRepo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_repo.add_kata("orphan", "def answer(pid_file):\n    raise NotImplementedError\n", ORPHAN, ORPHAN_TESTS)
    pid_file = tmp_path / "orphan.pid"
    monkeypatch.setenv("ORPHAN_PID_FILE", str(pid_file))
    kata = load(fake_repo.root / "katas.toml").get("orphan")

    result = runner.run_kata(kata, solutions=True, timeout=60)

    assert result.exit_code == 0, result.output
    assert [o.outcome for o in result.outcomes] == ["passed"]
    for _ in range(200):  # the orphan writes its pid soon after it is forked
        if pid_file.is_file() and pid_file.read_text():
            break
        time.sleep(0.05)
    orphan = int(pid_file.read_text())
    assert not _alive(orphan), f"the orphan {orphan} outlived the run that started it"


def test_stop_all_ends_the_runs_in_flight_and_starts_no_new_one(
    fake_repo: FakeRepo, stopping_reset: None
) -> None:
    fake_repo.add_kata("slow", "def answer():\n    raise NotImplementedError\n",
                       "def answer():\n    return 42\n", SLOW_TESTS, limit=900)
    kata = load(fake_repo.root / "katas.toml").get("slow")
    results: list[runner.RunResult] = []
    worker = threading.Thread(target=lambda: results.append(runner.run_kata(kata, solutions=True)))
    worker.start()
    while not runner._running:  # the pytest has started
        time.sleep(0.05)
    pytest_pid = next(iter(runner._running)).pid

    runner.stop_all()
    worker.join(timeout=runner.GRACE + 30)

    assert not worker.is_alive(), "stop_all left a run going"
    assert not psutil.pid_exists(pytest_pid) or psutil.Process(pytest_pid).status() == psutil.STATUS_ZOMBIE
    assert results and results[0].exit_code != 0
    with pytest.raises(KeyboardInterrupt):
        runner.run_kata(kata, solutions=True)


def test_a_pool_stopped_by_an_error_leaves_later_runs_free_to_start(adder_repo: FakeRepo) -> None:
    kata = load(adder_repo.root / "katas.toml").get("adder")
    with pytest.raises(RuntimeError), runner.parallel(2) as pool:
        pool.submit(runner.run_kata, kata, solutions=True)
        raise RuntimeError("a bug in the caller")
    assert runner.run_kata(kata, solutions=True).exit_code == 0


SPINS = '''
import signal


def answer():
    signal.signal(signal.SIGALRM, signal.SIG_IGN)  # the time limit can't interrupt it
    while True:
        pass
'''


@pytest.mark.time_limit(120)
def test_a_run_the_code_under_test_cut_short_names_the_test_and_where_it_was(fake_repo: FakeRepo) -> None:
    # only the hard stop ends this run, and pytest's report is never written: the maintainer
    # still learns which test it was and where the code was, not just "pytest exit 1"
    tests = "from .spins import answer\n\n\ndef test_first():\n    assert answer() == 42\n"
    fake_repo.add_kata("spins", SPINS, "def answer():\n    return 42\n", tests, limit=1)
    kata = load(fake_repo.root / "katas.toml").get("spins")

    result = runner.run_kata(kata, timeout=90)

    assert [(o.nodeid, o.outcome) for o in result.outcomes] == [("test_first", "error")], result.output
    cut = result.outcomes[0]
    assert "past its time limit" in cut.message, cut.message
    assert re.search(r'File ".*spins\.py", line \d+ in answer', cut.details), cut.details


DRAWS_TESTS = """
import os
from hypothesis import given, strategies as st

@given(st.integers())
def test_draws(n):
    with open(os.environ["DRAWS_FILE"], "a") as log:
        log.write(f"{n}\\n")
"""


def test_a_maintainer_run_draws_the_same_examples_as_ci_from_an_empty_database(
    fake_repo: FakeRepo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A mutant killed, or a mistake caught, by a lucky draw here would survive in CI's clone."""
    fake_repo.add_kata("draws", "def answer():\n    raise NotImplementedError\n",
                       "def answer():\n    return 42\n", DRAWS_TESTS)
    kata = load(fake_repo.root / "katas.toml").get("draws")
    runs = []
    for run in range(2):
        log = tmp_path / f"draws{run}.txt"
        monkeypatch.setenv("DRAWS_FILE", str(log))
        result = runner.run_kata(kata, solutions=True, timeout=60)
        assert result.exit_code == 0, result.output
        runs.append(log.read_text().split())
    assert runs[0] == runs[1] and len(runs[0]) > 10, "two maintainer runs drew different examples"
    assert not (fake_repo.root / ".hypothesis").exists(), "the run kept an example database to replay"
