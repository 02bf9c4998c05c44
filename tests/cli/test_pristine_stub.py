"""The pristine stub comes from what the project shipped, never from a learner's commit (issue 33, item 8)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from typer.testing import CliRunner

from dojo import stub_lock
from dojo.catalogue import load
from dojo.cli import app
from dojo.drill.workspace import Workspace

from .conftest import solve

pytestmark = pytest.mark.time_limit(300)
runner = CliRunner()
ADDER = Path("katas/basics/adder/adder.py")


def _commit(repo: Path, message: str, *paths: str) -> None:
    git = ["git", "-C", str(repo), "-c", "user.name=me", "-c", "user.email=me@example.com"]
    subprocess.run([*git, "add", *paths], check=True)
    subprocess.run([*git, "commit", "-qm", message], check=True)


def test_reset_on_a_branch_without_upstream_ignores_the_learners_committed_solution(repo: Path):
    stub = (repo / ADDER).read_text()
    solve(repo, "adder")
    _commit(repo, "solved adder", str(ADDER))
    result = runner.invoke(app, ["reset", "adder", "--yes"])
    assert result.exit_code == 0, result.output
    assert (repo / ADDER).read_text() == stub, "reset restored the learner's commit, not the stub"


def test_a_drill_without_upstream_starts_from_the_shipped_stub_not_the_committed_solution(repo: Path):
    solve(repo, "adder")
    _commit(repo, "solved adder", str(ADDER))
    workspace = Workspace.create(load(repo / "katas.toml").get("adder"))
    assert "NotImplementedError" in workspace.files()["adder.py"].read_text(), "the drill got the solution"


def test_the_lock_names_a_later_shipped_stub_and_a_learners_commit_after_it_is_ignored(repo: Path):
    newer = 'def add(a: int, b: int) -> int:\n    """Adds."""\n    raise NotImplementedError("add, v2")\n'
    (repo / ADDER).write_text(newer)
    _commit(repo, "project: a better stub", str(ADDER))
    (repo / stub_lock.LOCK_NAME).write_text(stub_lock.render(stub_lock.committed(repo)))
    _commit(repo, "project: lock the stubs", stub_lock.LOCK_NAME)
    solve(repo, "adder")
    _commit(repo, "solved adder", str(ADDER))
    result = runner.invoke(app, ["reset", "adder", "--yes"])
    assert result.exit_code == 0, result.output
    assert (repo / ADDER).read_text() == newer, "the locked stub, not the first one nor the learner's"


def test_the_repositorys_lock_names_every_committed_stub() -> None:
    """stubs.lock must follow the stubs: after changing one, `python -m dojo.stub_lock`."""
    root = Path(__file__).resolve().parents[2]
    recorded = stub_lock.read(root)
    committed = stub_lock.committed(root)
    stale = sorted(path for path, blob in committed.items() if recorded.get(path) != blob)
    assert not stale, (f"{stub_lock.LOCK_NAME} does not name the committed stub of {stale}: "
                       "run `python -m dojo.stub_lock` and commit it")
