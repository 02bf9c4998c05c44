"""A hanging test fails with a clear message, the run goes on, and nothing it started survives."""

from __future__ import annotations

import re
import subprocess
import sys
import time

import psutil
import pytest

from .conftest import FakeRepo

HANGS = '''
import multiprocessing
import queue
import subprocess
import sys
import threading
import time

from .hangs import nothing

# The next test after each hanging one must still run, and pass.


def test_two_threads_deadlocked_on_two_locks():
    a, b = threading.Lock(), threading.Lock()

    def one():
        with a:
            time.sleep(0.05)
            with b:
                pass

    def two():
        with b:
            time.sleep(0.05)
            with a:
                pass

    threads = [threading.Thread(target=one, name="lock-a-then-b"),
               threading.Thread(target=two, name="lock-b-then-a")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def test_after_deadlock():
    assert nothing() is None


def test_an_infinite_loop():
    while True:
        pass


def test_after_loop():
    assert nothing() is None


def test_a_blocked_queue_get():
    queue.Queue().get()


def test_after_get():
    assert nothing() is None


def test_a_child_process_that_never_exits():
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    with open("child.pid", "w") as f:
        f.write(str(child.pid))
    child.wait()


def test_after_child():
    assert nothing() is None
'''


def test_each_hang_fails_alone_and_the_session_ends(fake_repo: FakeRepo) -> None:
    fake_repo.add_kata(
        "hangs",
        stub="def nothing():\n    return None  # TODO\n",
        solution="def nothing():\n    return None\n",
        tests=HANGS,
        limit=1,
    )
    started = time.monotonic()
    result = fake_repo.pytest("katas/demo", "-v", timeout=90)
    output = result.stdout + result.stderr
    assert time.monotonic() - started < 60, "the session did not end promptly"
    assert result.returncode == 1, output
    assert re.search(r"4 failed, 4 passed", output), output
    for name in ("two_threads_deadlocked", "infinite_loop", "blocked_queue_get", "never_exits"):
        assert re.search(rf"test_\w*{name}\w* FAILED", output), f"{name} did not fail:\n{output}"
    assert output.count("timed out after 1 s: deadlock or infinite loop?") >= 4, output
    assert "thread 'lock-a-then-b'" in output and "thread 'lock-b-then-a'" in output, output
    assert "left running by the tests" in output, "stuck threads should be reported at exit"

    pid = int((fake_repo.root / "child.pid").read_text())
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE, (
        f"the child process {pid} outlived its test"
    )


def test_a_double_forked_orphan_is_reaped_too(fake_repo: FakeRepo) -> None:
    fake_repo.add_kata(
        "orphan",
        stub="# TODO\n",
        solution="\n",
        tests='''
            import os, time

            def test_leaves_a_daemonised_grandchild():
                if os.fork() == 0:
                    if os.fork() == 0:
                        with open("grandchild.pid", "w") as f:
                            f.write(str(os.getpid()))
                        time.sleep(600)
                    os._exit(0)
                os.wait()
                while not os.path.exists("grandchild.pid"):
                    time.sleep(0.01)
        ''',
    )
    result = fake_repo.pytest("katas/demo", timeout=60)
    assert "1 passed" in result.stdout, result.stdout
    pid = int((fake_repo.root / "grandchild.pid").read_text())
    time.sleep(0.2)
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE


SLOW_TO_SHRINK = '''
import time

from hypothesis import given, settings, strategies as st

from .slow_property import nothing


@settings(database=None, deadline=None, max_examples=50)
@given(st.lists(st.integers(0, 1000), min_size=30))
def test_a_property_whose_examples_are_slow(xs):
    time.sleep(0.1)  # as an example that forks a process or asks a server would
    assert nothing() is None and sum(xs) < 100
'''


def test_a_failing_property_reports_its_example_within_the_limit(fake_repo: FakeRepo) -> None:
    # Hypothesis would shrink for minutes; the learner must get the counterexample, not a timeout
    fake_repo.add_kata(
        "slow_property",
        stub="def nothing():\n    return None  # TODO\n",
        solution="def nothing():\n    return None\n",
        tests=SLOW_TO_SHRINK,
        limit=3,
    )
    result = fake_repo.pytest("katas/demo", timeout=60)
    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    assert "timed out" not in output, output
    assert "xs=[" in output, f"no counterexample shown:\n{output}"
    # Hypothesis' own note would claim five minutes and ask for a bug report upstream
    assert "Hypothesis stopped shrinking the failing example at a third of the test's time limit" in output, output
    assert "five minutes" not in output and "PLEASE REPORT" not in output, output


DEBUGGED = '''
from .debugged import answer


def test_stepped_through_in_pdb():
    breakpoint()  # the learner stops here and takes their time
    assert answer() == 42
'''


@pytest.mark.time_limit(120)
def test_the_limit_stands_down_while_a_debugger_holds_the_test(fake_repo: FakeRepo) -> None:
    fake_repo.add_kata("debugged", "def answer():\n    return 42  # TODO\n", "def answer():\n    return 42\n",
                       DEBUGGED, limit=1)
    learner = subprocess.Popen(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-s", "katas/demo"], cwd=fake_repo.root,
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    assert learner.stdin is not None
    # the learner reads at the (Pdb) prompt past the limit and its 15 s hard stop, then continues
    output, _ = learner.communicate(input=_after(18, "continue\n"), timeout=90)
    assert learner.returncode == 0, output
    assert "1 passed" in output, output
    assert "a debugger is active, so the time limit stands down for this test" in output, output
    assert "timed out" not in output, output


def _after(seconds: float, text: str) -> str:
    """`text`, once `seconds` have passed: what a learner types after looking around."""
    time.sleep(seconds)
    return text
