"""`kata hint`, `kata diff`, `kata solution` and `kata reset`."""

from __future__ import annotations

import io
import json
import shutil
import subprocess
from pathlib import Path

import pytest
from rich.console import Console
from typer.testing import CliRunner

from dojo.catalogue import load
from dojo.cli import app
from dojo.learner import diff

from .conftest import solve

pytestmark = pytest.mark.time_limit(300)
runner = CliRunner()
ADDER = Path("katas/basics/adder/adder.py")


def test_hints_come_one_more_per_call_and_earlier_ones_are_repeated(repo: Path):
    first = runner.invoke(app, ["hint", "greeter"])
    assert first.exit_code == 0
    assert "hint 1 of 3: An f-string does it." in first.output
    assert "hint 2" not in first.output
    assert "2 more" in first.output
    second = runner.invoke(app, ["hint", "greet"]).output
    assert "hint 1 of 3" in second and "hint 2 of 3: Mind the comma" in second
    assert "hint 3" not in second
    runner.invoke(app, ["hint", "greeter"])
    last = runner.invoke(app, ["hint", "greeter"]).output
    assert "hint 3 of 3: return f'hello, {name}'" in last
    assert "no more hints" in last


def test_hint_all_shows_every_hint_at_once(repo: Path):
    out = runner.invoke(app, ["hint", "adder", "--all"]).output
    assert "hint 1 of 2" in out and "hint 2 of 2: It is the plus sign" in out


def test_hints_stay_available_after_the_kata_is_done(repo: Path, kata):
    solve(repo, "adder")
    assert kata("run", "adder").returncode == 0
    result = runner.invoke(app, ["hint"])  # the current kata: the one run last
    assert result.exit_code == 0
    assert "hint 1 of 2: Python has an operator" in result.output


def test_hint_for_an_unknown_kata_is_a_usage_error(repo: Path):
    result = runner.invoke(app, ["hint", "nope"])
    assert result.exit_code == 2
    assert "no kata 'nope'; did you mean" in result.output


def test_diff_asks_for_force_before_the_first_run(repo: Path):
    result = runner.invoke(app, ["diff", "adder"])
    assert result.exit_code == 2
    assert "--force" in result.output and "not run adder yet" in result.output
    assert "return a + b" not in result.output, "no spoiler without --force"


def test_diff_shows_the_learners_lines_against_the_solution(repo: Path, kata):
    kata("run", "adder")
    result = runner.invoke(app, ["diff", "adder"])
    assert result.exit_code == 0
    lines = result.output.splitlines()
    assert "--- yours: katas/basics/adder/adder.py" in lines
    assert "+++ solution: solutions/basics/adder/adder.py" in lines
    assert '-    raise NotImplementedError("add")' in lines
    assert "+    return a + b" in lines
    forced = runner.invoke(app, ["diff", "greeter", "--force"])
    assert forced.exit_code == 0 and "+    return f'hello, {name}'" in forced.output


def test_diff_code_ignores_comments_docstrings_and_formatting_and_shows_logic(repo: Path):
    mine = repo / "katas/basics/adder/adder.py"
    mine.write_text('"""My adder."""\n\n\ndef add(a:int, b:int)->int:\n  return (a+b)  # mine\n')
    same = runner.invoke(app, ["diff", "adder", "--force", "--code"])
    assert same.exit_code == 0 and "your adder.py match the solution's code" in same.output, same.output
    assert "My adder" in runner.invoke(app, ["diff", "adder", "--force"]).output, "plain diff shows all"
    mine.write_text('"""My adder."""\n\n\ndef add(a:int, b:int)->int:\n  return (a-b)  # mine\n')
    lines = runner.invoke(app, ["diff", "adder", "--force", "--code"]).output.splitlines()
    assert [line for line in lines if line[:1] in "+-" and line[:3] not in ("---", "+++")] == [
        "-    return a - b", "+    return a + b"
    ], lines


def test_a_long_diff_line_is_printed_whole_on_a_narrow_terminal(repo: Path):
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=30, color_system=None)
    long = "+    return a + b  # " + "a comment far longer than the terminal is wide " * 2
    diff.print_unified(["--- a", "+++ b", long], console, indent="   ")
    assert ("   " + long) in out.getvalue().splitlines(), "the terminal wraps it, not us"


def test_diff_is_coloured_on_a_terminal(repo: Path):
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, color_system="standard", width=120)
    diff.print_diff(load(repo / "katas.toml").get("adder"), console)
    text = out.getvalue()
    assert "\x1b[32m+    return a + b" in text, "added lines in green"
    assert "\x1b[31m-    raise NotImplementedError" in text, "removed lines in red"


def test_solution_prints_the_reference_solution(repo: Path):
    assert runner.invoke(app, ["solution", "adder"]).exit_code == 2
    result = runner.invoke(app, ["solution", "adder", "--force"])
    assert result.exit_code == 0
    assert "solutions/basics/adder/adder.py" in result.output
    assert "return a + b" in result.output


def test_reset_restores_the_stub_and_keeps_a_backup(repo: Path):
    stub = (repo / ADDER).read_text()
    mine = "def add(a, b):\n    return 42  # my attempt\n"
    (repo / ADDER).write_text(mine)
    result = runner.invoke(app, ["reset", "adder", "--yes"])
    assert result.exit_code == 0, result.output
    assert (repo / ADDER).read_text() == stub
    backups = list((repo / ".kata/backups/basics/adder").iterdir())
    assert len(backups) == 1 and backups[0].name.startswith("adder.py.")
    assert backups[0].read_text() == mine
    assert "backup: .kata/backups/basics/adder/adder.py." in result.output


def test_a_deleted_stub_is_named_with_the_way_back_and_reset_restores_it(repo: Path):
    stub = (repo / ADDER).read_text()
    (repo / ADDER).unlink()
    ran = runner.invoke(app, ["run", "adder"])
    assert ran.exit_code == 2
    assert "katas/basics/adder/adder.py is missing: `kata reset adder` brings back" in ran.output
    listed = runner.invoke(app, ["list"])  # the other katas are not locked out by one missing file
    assert listed.exit_code == 0, listed.output
    assert "adder.py missing: `kata reset` brings it back" in listed.output
    reset = runner.invoke(app, ["reset", "adder", "--yes"])
    assert reset.exit_code == 0, reset.output
    assert (repo / ADDER).read_text() == stub


def test_reset_restores_the_shipped_stub_even_after_the_learner_committed(
    repo: Path, monkeypatch: pytest.MonkeyPatch
):
    stub = (repo / ADDER).read_text()
    (repo / ADDER).write_text("def add(a, b):\n    return a + b\n")
    git = ["git", "-C", str(repo), "-c", "user.name=me", "-c", "user.email=me@example.com"]
    subprocess.run([*git, "clone", "-q", str(repo), str(repo / "clone")], check=True)
    clone = repo / "clone"
    (clone / ADDER).write_text("def add(a, b):\n    return a - b\n")
    subprocess.run([*git, "-C", str(clone), "commit", "-qam", "mine"], check=True)
    monkeypatch.chdir(clone)
    result = runner.invoke(app, ["reset", "adder", "--yes"])
    assert result.exit_code == 0, result.output
    assert (clone / ADDER).read_text() == stub, "the stub comes from upstream, not the commit"


def test_reset_asks_first_and_a_no_changes_nothing(repo: Path):
    (repo / ADDER).write_text("mine\n")
    result = runner.invoke(app, ["reset", "adder"], input="n\n")
    assert result.exit_code == 1
    assert "Replace katas/basics/adder/adder.py with the pristine stub?" in result.output
    assert (repo / ADDER).read_text() == "mine\n"
    assert not (repo / ".kata/backups").exists()
    assert runner.invoke(app, ["reset", "adder"], input="y\n").exit_code == 0
    assert (repo / ADDER).read_text() != "mine\n"


def test_reset_forgets_the_last_run(repo: Path, kata):
    kata("run", "adder")
    runner.invoke(app, ["reset", "adder", "--yes"])
    saved = json.loads((repo / ".kata/state.json").read_text())
    assert "basics/adder" not in saved["runs"]


def test_reset_without_git_history_says_why_and_changes_nothing(repo: Path):
    shutil.rmtree(repo / ".git")
    (repo / ADDER).write_text("mine\n")
    result = runner.invoke(app, ["reset", "adder", "--yes"])
    assert result.exit_code == 1
    assert "not a git clone" in result.output
    assert (repo / ADDER).read_text() == "mine\n"
