"""`kata alternatives`: other correct designs, shown once the kata is done (or with --force)."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from dojo.cli import app

from .conftest import solve

pytestmark = pytest.mark.time_limit(300)
runner = CliRunner()


def _add_alternative(repo: Path) -> None:
    folder = repo / "solutions/basics/adder"
    (folder / "alternatives.toml").write_text(
        '[[alternative]]\nname = "via_sum"\nreplaces = "adder.py"\ndesign = "sum() of a pair"\n\n'
        '[[alternative.edit]]\nfind = "return a + b"\nreplace = "return sum((a, b))"\n'
    )


def test_alternatives_wait_until_the_kata_is_done_then_show_each_design_as_a_diff(repo: Path) -> None:
    _add_alternative(repo)
    early = runner.invoke(app, ["alternatives", "adder"])
    assert early.exit_code == 2 and "--force" in early.output
    forced = runner.invoke(app, ["alternatives", "adder", "--force"])
    assert forced.exit_code == 0
    assert "via_sum" in forced.output and "sum() of a pair" in forced.output
    assert "+    return sum((a, b))" in forced.output and "-    return a + b" in forced.output
    solve(repo, "adder")
    assert runner.invoke(app, ["run", "adder"]).exit_code == 0
    assert runner.invoke(app, ["alternatives", "adder"]).exit_code == 0


def test_a_kata_without_alternatives_says_so(repo: Path) -> None:
    result = runner.invoke(app, ["alternatives", "adder", "--force"])
    assert result.exit_code == 0 and "no alternative designs" in result.output
