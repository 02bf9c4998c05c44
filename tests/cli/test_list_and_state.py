"""`kata list` and the state file: statuses that are never stale, a file that survives deletion."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from rich.console import Console
from typer.testing import CliRunner

from dojo.catalogue import load
from dojo.cli import app
from dojo.learner import listing, state

from .conftest import solve

pytestmark = pytest.mark.time_limit(300)
runner = CliRunner()


def kata_line(output: str, name: str) -> str:
    lines = [line for line in output.splitlines() if line.strip().startswith((name, f"*{name}"))]
    assert len(lines) == 1, f"expected one line for {name} in:\n{output}"
    return lines[0]


def test_a_fresh_checkout_lists_every_kata_in_order_as_not_started(repo: Path):
    result = runner.invoke(app, ["list"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == "basics: 0/2 done - Basics: the first steps"
    assert [line.split()[0] for line in lines[1:3]] == ["adder", "greeter"]
    assert lines[3].startswith("strings: 0/1 done")
    assert "not started" in kata_line(result.output, "shouter")
    assert lines[-1] == "0 of 3 done, 3 not started"
    assert "\x1b[" not in result.output, "plain text when the output is not a terminal"


def test_list_follows_runs_edits_and_successes(repo: Path, kata):
    kata("run", "adder")
    assert "failing 2 of 2" in kata_line(runner.invoke(app, ["list"]).output, "*adder")
    solve(repo, "adder")
    out = runner.invoke(app, ["list"]).output
    assert "changed since last run (was failing 2 of 2)" in kata_line(out, "*adder")
    kata("run", "adder")
    out = runner.invoke(app, ["list"]).output
    assert kata_line(out, "*adder").split()[-1] == "done"
    assert out.splitlines()[0].startswith("basics: 1/2 done")
    assert out.splitlines()[-1] == "1 of 3 done, 2 not started"
    with (repo / "katas/basics/adder/adder.py").open("a") as f:
        f.write("# an afterthought\n")
    assert "changed since last run (was done)" in kata_line(runner.invoke(app, ["list"]).output,
                                                            "*adder")


def test_an_edited_kata_that_never_ran_is_changed_not_new(repo: Path):
    (repo / "katas/strings/shouter/shouter.py").write_text("def shout(word):\n    return word\n")
    out = runner.invoke(app, ["list"]).output
    assert "changed, not run yet" in kata_line(out, "shouter")
    assert "not started" in kata_line(out, "greeter")


def test_the_state_file_has_a_do_not_edit_header(repo: Path):
    runner.invoke(app, ["list"])
    saved = json.loads((repo / ".kata/state.json").read_text())
    assert "do not edit" in saved["_comment"]
    assert saved["version"] == state.VERSION


def test_a_deleted_state_file_is_rebuilt_and_no_status_is_stale(repo: Path, kata):
    solve(repo, "adder")
    assert kata("run", "adder").returncode == 0
    (repo / ".kata/state.json").unlink()
    out = runner.invoke(app, ["list"]).output
    assert "changed, not run yet" in kata_line(out, "adder"), "never 'done' without a run behind it"
    assert (repo / ".kata/state.json").is_file(), "the state file is rebuilt"
    result = runner.invoke(app, ["list", "--refresh"])
    assert result.exit_code == 0
    assert kata_line(result.output, "*adder").split()[-1] == "done"
    assert "not started" in kata_line(result.output, "greeter"), "--refresh only re-runs changes"


def test_a_corrupt_state_file_is_rebuilt_with_a_note(repo: Path):
    (repo / ".kata").mkdir()
    (repo / ".kata/state.json").write_text('{"version": 1, "runs": {"basics/adder": 7')
    result = runner.invoke(app, ["list"])
    assert result.exit_code == 0
    assert "starting afresh" in result.output
    assert json.loads((repo / ".kata/state.json").read_text())["version"] == state.VERSION


def test_a_state_file_with_the_wrong_shape_is_rebuilt(repo: Path):
    (repo / ".kata").mkdir()
    (repo / ".kata/state.json").write_text('{"version": 1, "runs": {"basics/adder": {"x": 1}}}')
    assert state.load(repo).rebuilt
    assert state.load(repo).runs == {}


def test_on_a_terminal_each_topic_gets_a_progress_bar(repo: Path):
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=120, color_system="truecolor")
    listing.render(load(repo / "katas.toml"), state.load(repo), console)
    text = out.getvalue()
    assert "━" in text, "a rich progress bar per topic"
    assert "\x1b[" in text, "in colour"
    assert "0/2" in text and "0/1" in text
