"""Builds small throwaway kata repositories for the engine's own tests."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

CONFTEST = 'pytest_plugins = ["dojo.pytest_plugin"]\n'
README = (
    "# A kata\n\n> **The interviewer's question:** \"Can the engine run this?\"\n\n"
    + "This kata exists to exercise the engine. " * 8
    + "\n\n## What a good answer covers\n\n- It runs.\n\n## Follow-ups\n\n- And faster?\n\n"
    + "## Sources\n\n- [pytest](https://docs.pytest.org/)\n"
)
ENTRY = """
[[kata]]
name = "{name}"
topic = "demo"
files = ["{name}.py"]
hints = ["first hint", "second hint"]
time_limit = {limit}
difficulty = 1
minutes = 10
"""


class FakeRepo:
    """A kata repository in a temp dir: catalogue, one topic, katas with stubs and solutions."""

    def __init__(self, root: Path) -> None:
        self.root = root
        (root / "conftest.py").write_text(CONFTEST)
        (root / "pyproject.toml").write_text("[tool.pytest.ini_options]\n")
        (root / "katas.toml").write_text('[[topic]]\nname = "demo"\n')
        for tree in ("katas", "solutions"):
            (root / tree / "demo").mkdir(parents=True)
        (root / "katas" / "__init__.py").write_text("")
        (root / "katas" / "demo" / "__init__.py").write_text("")
        (root / "katas" / "demo" / "README.md").write_text(README)

    def add_kata(
        self, name: str, stub: str, solution: str, tests: str, limit: float = 10
    ) -> None:
        kata_dir = self.root / "katas" / "demo" / name
        solution_dir = self.root / "solutions" / "demo" / name
        kata_dir.mkdir()
        solution_dir.mkdir()
        (kata_dir / "__init__.py").write_text("")
        (kata_dir / "README.md").write_text(README)
        (kata_dir / f"{name}.py").write_text(textwrap.dedent(stub))
        (solution_dir / f"{name}.py").write_text(textwrap.dedent(solution))
        (kata_dir / f"test_{name}.py").write_text(textwrap.dedent(tests))
        with (self.root / "katas.toml").open("a") as catalogue:
            catalogue.write(ENTRY.format(name=name, limit=limit))
        with (self.root / "katas" / "demo" / "README.md").open("a") as topic_readme:
            topic_readme.write(f"- [`{name}`]({name}/README.md)\n")

    def pytest(
        self, *args: str, env: dict[str, str] | None = None, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        """Run pytest in the repo in a fresh interpreter, as a learner would."""
        return subprocess.run(
            [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args],
            cwd=self.root,
            env={**os.environ, **(env or {})},
            capture_output=True,
            text=True,
            timeout=timeout,
        )


@pytest.fixture
def fake_repo(tmp_path: Path) -> FakeRepo:
    return FakeRepo(tmp_path)


@pytest.fixture
def adder_repo(fake_repo: FakeRepo) -> FakeRepo:
    """A repo with one kata, `adder`: a stub that raises and a solution that adds."""
    fake_repo.add_kata(
        "adder",
        stub='''
            """Adds."""
            def add(a: int, b: int) -> int:
                # TODO: add them
                raise NotImplementedError("add")
        ''',
        solution='''
            """Adds."""
            def add(a: int, b: int) -> int:
                return a + b
        ''',
        tests='''
            from .adder import add

            def test_adds_small_numbers():
                assert add(2, 3) == 5

            def test_adds_negative_numbers():
                assert add(-2, -3) == -5
        ''',
    )
    return fake_repo


RepoFactory = Callable[[], FakeRepo]
