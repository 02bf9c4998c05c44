"""`kata run` and `kata next`: a header, pytest's failures, the verdict and the exit code."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from .conftest import KATA_COMMAND, cli_env, solve

pytestmark = pytest.mark.time_limit(300)


def test_run_names_the_kata_its_readme_and_the_file_to_edit_then_shows_the_failures(kata):
    done = kata("run", "adder")
    assert done.returncode == 1, done.stdout
    out = done.stdout
    assert "basics/adder · Add two numbers" in out
    assert "read  katas/basics/adder/README.md" in out
    assert "edit  katas/basics/adder/adder.py" in out
    assert "add: 2 tests" in out and "2 not implemented yet" in out, "pytest's own output must be shown"
    assert out.index("edit  katas") < out.index("not implemented yet"), "header comes first"
    assert "2 of 2 tests failing" in out


def test_run_exits_0_once_the_kata_passes_and_points_to_the_next_one(kata, repo: Path):
    solve(repo, "adder")
    done = kata("run", "adder")
    assert done.returncode == 0, done.stdout
    assert "adder: all 2 tests pass" in done.stdout
    assert "next: `kata next` (greeter)" in done.stdout


def test_names_match_fuzzily(kata):
    for typed in ("add", "ADDER", "basics/adder", "addr"):
        done = kata("run", typed)
        assert "basics/adder · Add two numbers" in done.stdout, (typed, done.stdout)


def test_an_unknown_name_is_a_usage_error_with_a_suggestion(kata):
    done = kata("run", "gretter")
    assert done.returncode == 2
    assert "no kata 'gretter'; did you mean greeter?" in done.stdout


def test_a_kata_that_cannot_be_imported_is_failing_with_the_reason(kata, repo: Path):
    (repo / "katas/basics/adder/adder.py").write_text("def add(a, b)\n    return a + b\n")
    done = kata("run", "adder")
    assert done.returncode == 1
    assert "SyntaxError" in done.stdout
    assert "the tests cannot run" in done.stdout


def test_an_error_message_with_brackets_is_printed_as_it_is(kata, repo: Path):
    (repo / "katas/basics/adder/adder.py").write_text('raise RuntimeError("[bold] list[int]")\n')
    done = kata("run", "adder")
    assert done.returncode == 1
    assert "the tests cannot run: RuntimeError: [bold] list[int]" in done.stdout


def test_next_runs_the_first_unfinished_kata_in_learning_order(kata, repo: Path):
    solve(repo, "adder")
    assert kata("run", "adder").returncode == 0
    done = kata("next")
    assert done.returncode == 1
    assert "basics/greeter" in done.stdout and "basics/adder" not in done.stdout


def test_next_at_a_level_skips_the_katas_of_other_levels(kata, repo: Path):
    # adder is a warm-up (level 1) and not done; greeter is the only interview-level kata
    done = kata("next", "--level", "2")
    assert done.returncode == 1
    assert "basics/greeter" in done.stdout and "basics/adder" not in done.stdout
    solve(repo, "greeter")
    assert kata("run", "greeter").returncode == 0
    done = kata("next", "--level", "2")
    assert done.returncode == 0 and "all 1 katas at level 2 (interview) done" in done.stdout
    refused = kata("next", "--level", "4")
    assert refused.returncode == 2 and "--level is 1 (warm-up), 2 (interview) or 3 (deep)" in refused.stdout


def test_next_and_run_say_all_done_and_exit_0_when_every_kata_passes(kata, repo: Path):
    for name in ("adder", "greeter", "shouter"):
        solve(repo, name)
        assert kata("run", name).returncode == 0
    for command in (["next"], ["run"]):
        done = kata(*command)
        assert done.returncode == 0
        assert "all 3 katas done" in done.stdout


def test_the_learners_files_are_tested_even_if_the_shell_asks_for_solutions(repo: Path):
    env = {**cli_env(), "KATA_SOLUTIONS": "1"}
    done = subprocess.run([*KATA_COMMAND, "run", "adder"], cwd=repo, env=env, text=True,
                          capture_output=True, timeout=180, check=False)
    assert done.returncode == 1, "KATA_SOLUTIONS=1 must not make a stub look solved"
