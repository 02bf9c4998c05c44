"""`kata watch` through the stages of a real kata (os/coreutils, one stage per tool), in a copy
of it: the stub shows stage 1; with wc written, stage 2; with everything written, all green."""

from __future__ import annotations

import ast
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from dojo.catalogue import find_root

from .test_watch import WatchSession, sessions  # noqa: F401  (the fixture)

pytestmark = [
    pytest.mark.time_limit(300),
    pytest.mark.skipif(shutil.which("sort") is None, reason="GNU coreutils are the kata's oracle"),
]
ROOT = find_root(Path(__file__))
KATA = Path("os") / "coreutils"


def _catalogue_of_one(topic: str, name: str) -> str:
    """katas.toml's tables for the topic and the kata, as written there."""
    tables = re.split(r"(?m)^(?=\[\[)", (ROOT / "katas.toml").read_text(encoding="utf-8"))
    wanted = (f'[[topic]]\nname = "{topic}"', f'[[kata]]\nname = "{name}"')
    return "\n".join(t for t in tables if t.startswith(wanted))


def _function(source: str, name: str) -> str:
    node = next(n for n in ast.parse(source).body if isinstance(n, ast.FunctionDef) and n.name == name)
    segment = ast.get_source_segment(source, node)
    assert segment is not None
    return segment


@pytest.fixture
def coreutils_repo(tmp_path: Path) -> Path:
    repo = tmp_path / "repo"
    for folder in ("katas", "solutions"):
        shutil.copytree(ROOT / folder / KATA, repo / folder / KATA,
                        ignore=shutil.ignore_patterns("__pycache__"))
    for empty in ("katas/__init__.py", "katas/os/__init__.py"):
        (repo / empty).touch()
    shutil.copy(ROOT / "katas" / "os" / "README.md", repo / "katas" / "os" / "README.md")
    (repo / "katas.toml").write_text(_catalogue_of_one("os", "coreutils"), encoding="utf-8")
    (repo / "conftest.py").write_text('pytest_plugins = ["dojo.pytest_plugin"]\n', encoding="utf-8")
    (repo / "pytest.ini").write_text("[pytest]\naddopts = -ra\n", encoding="utf-8")
    (repo / ".gitignore").write_text(".kata/\n__pycache__/\n", encoding="utf-8")
    git = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@example.com"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "coreutils"], check=True)
    return repo


def test_watch_goes_through_the_stages_of_coreutils(coreutils_repo: Path, sessions):  # noqa: F811
    learner = coreutils_repo / "katas" / KATA / "coreutils.py"
    stub = learner.read_text(encoding="utf-8")
    solution = (coreutils_repo / "solutions" / KATA / "coreutils.py").read_text(encoding="utf-8")
    session = WatchSession(coreutils_repo, "coreutils")
    sessions.append(session)
    at = session.wait_for("coreutils: stage 1 of 5, counting with wc:")

    # wc written, head still the stub's: stage 1 green, stage 2 (head and tail) is next
    learner.write_text(solution.replace(_function(solution, "head"), _function(stub, "head")),
                       encoding="utf-8")
    at = session.wait_for("coreutils: stage 2 of 5, head and tail:", at)

    learner.write_text(solution, encoding="utf-8")
    session.wait_for("coreutils: all ", at)
