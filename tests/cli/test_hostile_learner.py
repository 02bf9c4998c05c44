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
