"""A kata in stages: `kata run` and `kata watch` show the stage the learner is on."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from dojo import stages
from dojo.stages import Stage

from .conftest import cli_env, solve
from .test_watch import WatchSession, sessions  # noqa: F401  (the fixture)

pytestmark = pytest.mark.time_limit(300)

# stage 2 first in the file: stage order, not file order, decides what runs first
STAGED_TESTS = (
    "import pytest\n\nfrom .adder import add\n\n\n"
    '@pytest.mark.stage(2, "negative numbers")\n'
    "def test_negative_numbers():\n    assert add(-1, 1) == 0\n\n\n"
    '@pytest.mark.stage(1, "positive numbers")\n'
    "def test_small_numbers():\n    assert add(2, 3) == 5\n"
)
# stage 1 right, stage 2 wrong
HALF_DONE = "def add(a: int, b: int) -> int:\n    return a + b if a > 0 else 99\n"
ALL_WRONG = "def add(a: int, b: int) -> int:\n    return 42\n"

Kata = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def staged(repo: Path) -> Path:
    """The tiny repository's adder with its two tests in two stages; its learner file."""
    (repo / "katas" / "basics" / "adder" / "test_adder.py").write_text(STAGED_TESTS)
    return repo / "katas" / "basics" / "adder" / "adder.py"


def test_run_reports_the_current_stage_in_full_and_later_stages_in_one_line(staged: Path, kata: Kata):
    staged.write_text(ALL_WRONG)
    out = kata("run", "adder").stdout
    assert "adder: stage 1 of 2, positive numbers: 1 of 1 test failing (2 of 2 tests in all)" in out, out
    assert "assert 42 == 5" in out, "the current stage's failure is shown in full"
    assert "assert 42 == 0" not in out, f"a later stage's failure must not be shown in full:\n{out}"
    assert "1 in a later stage" in out, out
    assert "stage 2 of 2, negative numbers: 1 test, for later" in out, out

    staged.write_text(HALF_DONE)
    out = kata("run", "adder").stdout
    assert "stage 1 of 2, positive numbers: green (1 test)" in out, out
    assert "adder: stage 2 of 2, negative numbers: 1 of 1 test failing (1 of 2 tests in all)" in out, out
    assert "assert 99 == 0" in out, "the current stage's failure is shown in full"


def test_the_stub_of_a_staged_kata_shows_stage_one_only(staged: Path, kata: Kata):
    done = kata("run", "adder")
    assert done.returncode == 1
    assert "add: 1 test" in done.stdout, "stage 1's missing piece is listed (not implemented yet)"
    assert "1 in a later stage" in done.stdout, done.stdout


def test_plain_pytest_still_reports_every_failure(staged: Path, repo: Path):
    staged.write_text(ALL_WRONG)
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "katas/basics/adder", "-q", "-p", "no:cacheprovider"],
        cwd=repo, env=cli_env(), capture_output=True, text=True, timeout=180, check=False,
    )
    assert "assert 42 == 5" in done.stdout and "assert 42 == 0" in done.stdout, done.stdout
    assert "2 failed" in done.stdout, done.stdout


def test_watch_moves_to_the_next_stage_when_one_goes_green(staged: Path, repo: Path, sessions):  # noqa: F811
    session = WatchSession(repo, "adder")
    sessions.append(session)
    at = session.wait_for("adder: stage 1 of 2, positive numbers: 1 of 1 test failing")
    staged.write_text(HALF_DONE)
    at = session.wait_for("adder: stage 2 of 2, negative numbers: 1 of 1 test failing", at)
    solve(repo, "adder")
    session.wait_for("adder: all 2 tests pass", at)


@pytest.mark.parametrize(
    ("found", "problem"),
    [
        ({"a": Stage(1, "x"), "b": None}, "b has no stage mark"),
        ({"a": Stage(1, "x"), "b": Stage(3, "y")}, "without a gap; found [1, 3]"),
        ({"a": Stage(2, "x"), "b": Stage(3, "y")}, "without a gap; found [2, 3]"),
        ({"a": Stage(1, "x"), "b": Stage(1, "y")}, "stage 1 has more than one name"),
    ],
)
def test_verify_names_each_broken_stage_layout(found: dict[str, Stage | None], problem: str):
    assert any(problem in line for line in stages.check(found)), stages.check(found)


def test_verify_accepts_no_stages_and_well_formed_ones():
    assert stages.check({"a": None, "b": None}) == []
    assert stages.check({"a": Stage(1, "x"), "b": Stage(2, "y"), "c": Stage(2, "y")}) == []


TWO_IN_STAGE_ONE = (
    "import pytest\n\nfrom .adder import add\n\n\n"
    '@pytest.mark.stage(1, "positive numbers")\n'
    "def test_small_numbers():\n    assert add(2, 3) == 5\n\n\n"
    '@pytest.mark.stage(1, "positive numbers")\n'
    "def test_more_small_numbers():\n    assert add(1, 1) == 2, 'one and one'\n\n\n"
    '@pytest.mark.stage(2, "negative numbers")\n'
    "def test_negative_numbers():\n    assert add(-1, 1) == 0\n"
)


def test_the_stages_first_failure_is_whole_and_the_others_a_line_each(staged: Path, kata: Kata):
    (staged.parent / "test_adder.py").write_text(TWO_IN_STAGE_ONE)
    staged.write_text(ALL_WRONG)
    out = kata("run", "adder").stdout
    assert "assert 42 == 5" in out and "where 42 = add(2, 3)" in out, f"the first failure is whole:\n{out}"
    assert "AssertionError: one and one" in out, out
    assert "add(1, 1)" not in out, f"the stage's second failure is one line, not its whole report:\n{out}"
    assert "1 more in a line each" in out, out


def test_warnings_of_code_not_written_yet_are_not_shown(staged: Path, kata: Kata):
    (staged.parent / "test_adder.py").write_text(
        STAGED_TESTS.replace("from .adder import add\n", "import warnings\n\nfrom .adder import add\n")
        .replace("    assert add(2, 3) == 5", "    warnings.warn('noise of a stub')\n    assert add(2, 3) == 5")
    )
    out = kata("run", "adder").stdout
    assert "noise of a stub" not in out and "1 warning of code not written yet not shown" in out, out
    staged.write_text(ALL_WRONG)  # a real failure: now the warnings may say something about it
    assert "noise of a stub" in kata("run", "adder").stdout


def test_the_first_failure_is_shown_without_the_exceptions_it_ended(staged: Path, kata: Kata):
    (staged.parent / "test_adder.py").write_text(STAGED_TESTS.replace(
        "    assert add(2, 3) == 5",
        "    try:\n        raise KeyError('a library detail')\n"
        "    except KeyError as exc:\n        raise RuntimeError('the client gave up') from exc",
    ))
    out = kata("run", "adder").stdout
    assert "RuntimeError: the client gave up" in out, out
    assert "a library detail" not in out, f"the chain behind the last exception is for `pytest`:\n{out}"
