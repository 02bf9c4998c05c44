"""Learner code that ends the test process never passes for success, and says what it did."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest

from dojo import flight

from .conftest import FakeRepo

STUB = '''
import os
import signal
import sys


def answer():
    {body}
    return 42
'''
TESTS = '''
from .dies import answer


def test_first():
    assert answer() == 42


def test_second():
    assert answer() == 42
'''


def _dies(fake_repo: FakeRepo, body: str = "pass", at_import: str = "", limit: float = 10) -> None:
    stub = STUB.format(body=body) + at_import
    fake_repo.add_kata("dies", stub=stub, solution=STUB.format(body="pass"), tests=TESTS, limit=limit)


def _run(fake_repo: FakeRepo, *args: str, timeout: float = 90) -> tuple[int, str, Path]:
    report = fake_repo.root / "report.json"
    result = fake_repo.pytest("katas/demo", "-q", f"--kata-report={report}", *args, timeout=timeout)
    return result.returncode, result.stdout + result.stderr, report


def test_os_exit_0_in_a_test_is_not_a_success_and_names_the_line_and_the_test(fake_repo: FakeRepo) -> None:
    _dies(fake_repo, body="os._exit(0)")
    code, output, report = _run(fake_repo)
    assert code != 0, output
    assert "os._exit(0) called from dies.py:8 ends the test process during test_first" in output, output
    note = flight.read(flight.path_for(report))
    assert note is not None and note.running == "test_first"
    assert note.cause == "os._exit(0) called from dies.py:8 ends the test process"


def test_os_exit_0_at_import_is_not_a_success(fake_repo: FakeRepo) -> None:
    _dies(fake_repo, at_import="\nos._exit(0)\n")
    code, output, report = _run(fake_repo)
    assert code != 0, output
    assert "os._exit(0) called from dies.py:11 ends the test process during the import of dies.py" in output
    note = flight.read(flight.path_for(report))
    assert note is not None and note.running == "the import of dies.py"


def test_os_exit_in_a_forked_child_still_ends_only_the_child(fake_repo: FakeRepo) -> None:
    _dies(fake_repo, body="pid = os.fork()\n    if pid == 0:\n        os._exit(0)\n    os.waitpid(pid, 0)")
    code, output, _ = _run(fake_repo)
    assert code == 0, output
    assert "2 passed" in output


def test_sys_exit_at_import_is_a_collection_error_saying_so_not_an_internal_error(fake_repo: FakeRepo) -> None:
    _dies(fake_repo, at_import="\nsys.exit(3)\n")
    code, output, report = _run(fake_repo)
    assert code != 0, output
    assert "INTERNALERROR" not in output, output
    assert "sys.exit(3) called from dies.py:11 at the import of dies.py" in output, output
    entries = json.loads(report.read_text())
    assert any("sys.exit(3) called from dies.py:11" in e["message"] for e in entries.values()), entries


def test_a_self_sigkill_is_recorded_with_the_test_it_ended(fake_repo: FakeRepo) -> None:
    _dies(fake_repo, body="os.kill(os.getpid(), signal.SIGKILL)")
    code, output, report = _run(fake_repo)
    assert code == -9, output
    assert not report.exists()
    note = flight.read(flight.path_for(report))
    assert note is not None and note.running == "test_first"


@pytest.mark.time_limit(240)
def test_the_hard_stop_shows_where_each_thread_was(fake_repo: FakeRepo) -> None:
    """A test that ignores SIGALRM and spins is stopped by the hard stop, whose dump of every
    thread goes where the learner sees it (not into pytest's capture, which dies with it)."""
    _dies(fake_repo, body="signal.signal(signal.SIGALRM, signal.SIG_IGN)\n    while True:\n        pass", limit=1)
    started = time.monotonic()
    code, output, report = _run(fake_repo, timeout=120)
    assert code != 0, output
    assert re.search(r"Timeout \(0:00:1\d\)!", output), output
    assert re.search(r'File ".*dies\.py", line \d+ in answer', output), output
    assert time.monotonic() - started < 90
    note = flight.read(flight.path_for(report))
    assert note is not None and note.running == "test_first" and note.hard_stop_at > 0
