"""`kata solutions-branch`: git's own tools compare the learner's work with the reference."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from .conftest import KATAS, TOPIC_OF, solve

pytestmark = pytest.mark.time_limit(120)
LEARNER_FILES = sorted(f"katas/{TOPIC_OF[name]}/{name}/{name}.py" for name in KATAS)


def git(repo: Path, *args: str) -> str:
    done = subprocess.run(["git", "-C", str(repo), "-c", "user.name=l", "-c", "user.email=l@example.com", *args],
                          capture_output=True, text=True, check=True, timeout=60)
    return done.stdout


def snapshot(repo: Path) -> tuple[str, ...]:
    """Everything of the learner's that the command must leave alone: branch, HEAD, index, tree."""
    return (git(repo, "symbolic-ref", "HEAD"), git(repo, "rev-parse", "HEAD"), git(repo, "diff", "--cached"),
            git(repo, "status", "--porcelain", "--untracked-files=all"), git(repo, "diff"))


def test_the_branch_is_head_plus_the_references_and_the_learners_work_is_untouched(kata, repo: Path):
    solve(repo, "adder")  # finished, not committed
    (repo / "katas/basics/greeter/greeter.py").write_text("def greet(name):\n    return 'hi'\n")
    git(repo, "add", "katas/basics/greeter/greeter.py")  # half-way, staged
    (repo / "notes.txt").write_text("mine")
    before = snapshot(repo)

    done = kata("solutions-branch")

    assert done.returncode == 0, done.stdout
    assert snapshot(repo) == before, "the learner's branch, index or working tree changed"
    assert git(repo, "rev-parse", "solutions^").strip() == git(repo, "rev-parse", "HEAD").strip()
    assert git(repo, "diff", "--name-only", "HEAD", "solutions", "--").split() == LEARNER_FILES, (
        "only the learner files differ from HEAD"
    )
    for name in KATAS:
        topic = TOPIC_OF[name]
        reference = (repo / f"solutions/{topic}/{name}/{name}.py").read_text()
        assert git(repo, "show", f"solutions:katas/{topic}/{name}/{name}.py") == reference
    # the comparisons the README shows
    assert git(repo, "diff", "solutions", "--", "katas/basics/adder") == "", "a solved kata matches"
    assert "return 'hi'" in git(repo, "diff", "solutions", "--", "katas/basics/greeter")
    assert "git diff solutions -- katas/basics/adder" in done.stdout


def test_a_refresh_with_nothing_new_changes_nothing_and_a_new_head_gets_one_new_commit(kata, repo: Path):
    assert kata("solutions-branch").returncode == 0
    first = git(repo, "rev-parse", "solutions").strip()
    again = kata("solutions-branch")
    assert again.returncode == 0 and "already up to date" in again.stdout
    assert git(repo, "rev-parse", "solutions").strip() == first

    solve(repo, "shouter")
    git(repo, "commit", "-qam", "my shouter")
    assert kata("solutions-branch").returncode == 0
    assert git(repo, "rev-parse", "solutions^").strip() == git(repo, "rev-parse", "HEAD").strip()
    assert git(repo, "rev-list", "--count", "HEAD..solutions", "--").strip() == "1", "one commit per refresh"
    assert git(repo, "diff", "--name-only", "HEAD", "solutions", "--").split() == [
        f for f in LEARNER_FILES if "shouter" not in f
    ]


def test_a_solutions_branch_of_the_learners_own_is_never_moved(kata, repo: Path):
    git(repo, "branch", "solutions")
    mine = git(repo, "rev-parse", "solutions").strip()
    done = kata("solutions-branch")
    assert done.returncode == 2
    assert "a branch called solutions exists and was not made by kata" in done.stdout
    assert git(repo, "rev-parse", "solutions").strip() == mine


def test_on_the_solutions_branch_itself_it_asks_to_switch_back(kata, repo: Path):
    assert kata("solutions-branch").returncode == 0
    git(repo, "switch", "-q", "solutions")
    done = kata("solutions-branch")
    assert done.returncode == 2 and "you are on the solutions branch" in done.stdout
