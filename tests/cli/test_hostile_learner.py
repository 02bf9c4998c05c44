"""A learner's code that hangs at import or kills the test process never hangs or fools `kata`."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.time_limit(300)

ADDER = "katas/basics/adder/adder.py"
SOLVED = "def add(a: int, b: int) -> int:\n    return a + b\n"


def set_time_limit(repo: Path, kata: str, seconds: float) -> None:
    """Give `kata` its own time limit in the tiny repository's catalogue."""
    catalogue = repo / "katas.toml"
    text = catalogue.read_text()
    entry = f'name = "{kata}"\n'
    catalogue.write_text(text.replace(entry, f"{entry}time_limit = {seconds}\n", 1))


def test_run_ends_when_module_level_code_never_returns_and_says_why(kata, repo: Path) -> None:
    set_time_limit(repo, "adder", 2)
    (repo / ADDER).write_text(SOLVED + "\nimport threading\nthreading.Event().wait()  # a manual check\n")
    started = time.monotonic()
    done = kata("run", "adder")
    assert time.monotonic() - started < 60, done.stdout
    assert done.returncode == 1, done.stdout
    assert (
        "importing katas/basics/adder/adder.py did not finish in 2 s: code at module level runs on "
        "import (a demo call? an infinite loop?)"
    ) in done.stdout
    assert "adder.py:5 in <module>: threading.Event().wait()" in done.stdout
    assert "2 of 2 tests failing" in done.stdout


def test_list_refresh_ends_when_a_kata_hangs_at_import(kata, repo: Path) -> None:
    set_time_limit(repo, "adder", 2)
    (repo / ADDER).write_text(SOLVED + "\nwhile True:\n    pass\n")
    done = kata("list", "--refresh")
    assert done.returncode == 0, done.stdout
    assert "failing 2 of 2" in done.stdout


def _stub_add(body: str) -> str:
    return f"import os\nimport signal\n\n\ndef add(a: int, b: int) -> int:\n    {body}\n    return a + b\n"


def test_run_fails_when_the_code_calls_os_exit_0_and_says_where(kata, repo: Path) -> None:
    (repo / ADDER).write_text(_stub_add("os._exit(0)"))
    done = kata("run", "adder")
    assert done.returncode == 1, done.stdout
    assert (
        "the test process ended during test_small_numbers: os._exit(0) called from adder.py:6 ends "
        "the test process"
    ) in done.stdout
    assert "interrupted" not in done.stdout and "look at the first error above" not in done.stdout


def test_run_fails_when_the_code_kills_its_own_process_and_says_during_which_test(kata, repo: Path) -> None:
    (repo / ADDER).write_text(_stub_add("os.kill(os.getpid(), signal.SIGKILL)"))
    done = kata("run", "adder")
    assert done.returncode == 1, done.stdout
    assert "the test process ended during test_small_numbers: killed by SIGKILL" in done.stdout


def test_run_says_what_sys_exit_at_import_did_and_does_not_call_it_interrupted(kata, repo: Path) -> None:
    (repo / ADDER).write_text(SOLVED + "\nimport sys\nsys.exit(3)\n")
    done = kata("run", "adder")
    assert done.returncode == 1, done.stdout
    assert "sys.exit(3) called from adder.py:5 at the import of adder.py" in done.stdout
    assert "INTERNALERROR" not in done.stdout and "interrupted" not in done.stdout


def test_run_explains_the_hard_stop_and_shows_its_dump(kata, repo: Path) -> None:
    set_time_limit(repo, "adder", 1)
    (repo / ADDER).write_text(_stub_add("signal.signal(signal.SIGALRM, signal.SIG_IGN)\n    while True:\n        pass"))
    done = kata("run", "adder")
    assert done.returncode == 1, done.stdout
    assert "Timeout (0:00:1" in done.stdout and "in add" in done.stdout, "the hard stop's dump is shown"
    assert "the test process was stopped during test_small_numbers" in done.stdout, done.stdout
    assert "SIGALRM ignored or blocked" in done.stdout
