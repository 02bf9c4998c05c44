"""`kata reset` writes only the kata's own files, and brings back a whole deleted kata folder (issue 33, item 9)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from dojo.cli import app

pytestmark = pytest.mark.time_limit(300)
runner = CliRunner()
ADDER_DIR = Path("katas/basics/adder")


def test_reset_refuses_a_learner_file_that_links_outside_the_repository(repo: Path, tmp_path: Path):
    outside = tmp_path / "outside.py"
    outside.write_text("precious\n")
    (repo / ADDER_DIR / "adder.py").unlink()
    (repo / ADDER_DIR / "adder.py").symlink_to(outside)
    result = runner.invoke(app, ["reset", "adder", "--yes"])
    assert result.exit_code == 1, result.output
    assert outside.read_text() == "precious\n", "reset wrote through the link, outside the repository"
    assert "is a link to" in result.output and str(outside) in result.output, result.output
    assert "Traceback" not in result.output


def test_reset_refuses_a_kata_folder_that_links_outside_the_repository(repo: Path, tmp_path: Path):
    outside = tmp_path / "elsewhere"
    shutil.copytree(repo / ADDER_DIR, outside)
    shutil.rmtree(repo / ADDER_DIR)
    (repo / ADDER_DIR).symlink_to(outside)
    (outside / "adder.py").write_text("mine\n")
    result = runner.invoke(app, ["reset", "adder", "--yes"])
    assert result.exit_code == 1, result.output
    assert (outside / "adder.py").read_text() == "mine\n"
    assert "outside" in result.output


def test_after_a_deleted_kata_folder_reset_brings_back_its_tests_readme_and_init(repo: Path):
    shipped = {p.name: p.read_bytes() for p in (repo / ADDER_DIR).iterdir() if p.is_file()}
    shutil.rmtree(repo / ADDER_DIR)
    result = runner.invoke(app, ["reset", "adder", "--yes"])
    assert result.exit_code == 0, result.output
    restored = {p.name: p.read_bytes() for p in (repo / ADDER_DIR).iterdir() if p.is_file()}
    assert restored == shipped, f"only {sorted(restored)} came back of {sorted(shipped)}"
