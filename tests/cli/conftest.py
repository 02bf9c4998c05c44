"""A tiny kata repository in tmp_path (three katas, solutions, a git history) for CLI tests."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

CATALOGUE = '''
[[topic]]
name = "basics"
title = "Basics: the first steps"

[[topic]]
name = "strings"
title = "Strings: words in, words out"

[[kata]]
name = "adder"
topic = "basics"
title = "Add two numbers"
difficulty = 1
minutes = 10
files = ["adder.py"]
hints = ["Python has an operator for this.", "It is the plus sign: return a + b."]

[[kata]]
name = "greeter"
topic = "basics"
title = "Greet someone by name"
difficulty = 2
minutes = 15
files = ["greeter.py"]
hints = ["An f-string does it.", "Mind the comma and the space.", "return f'hello, {name}'"]

[[kata]]
name = "shouter"
topic = "strings"
title = "Shout a word"
files = ["shouter.py"]
hints = ["str has a method for capitals.", "return word.upper() + '!'"]
'''

# kata -> (stub, solution, tests)
KATAS = {
    "adder": (
        'def add(a: int, b: int) -> int:\n    # TODO: add them\n    raise NotImplementedError("add")\n',
        "def add(a: int, b: int) -> int:\n    # the plus operator\n    return a + b\n",
        "from .adder import add\n\n\n"
        "def test_small_numbers():\n    assert add(2, 3) == 5\n\n\n"
        "def test_negative_numbers():\n    assert add(-1, 1) == 0\n",
    ),
    "greeter": (
        'def greet(name: str) -> str:\n    # TODO: greet\n    raise NotImplementedError("greet")\n',
        "def greet(name: str) -> str:\n    # an f-string\n    return f'hello, {name}'\n",
        "from .greeter import greet\n\n\ndef test_greets_by_name():\n"
        "    assert greet('ada') == 'hello, ada'\n",
    ),
    "shouter": (
        'def shout(word: str) -> str:\n    # TODO: shout\n    raise NotImplementedError("shout")\n',
        "def shout(word: str) -> str:\n    # capitals and a bang\n    return word.upper() + '!'\n",
        "from .shouter import shout\n\n\ndef test_shouts():\n    assert shout('hey') == 'HEY!'\n",
    ),
}
TOPIC_OF = {"adder": "basics", "greeter": "basics", "shouter": "strings"}
README = "# {name}\n\nA kata for the CLI's own tests. " + "It explains the task at length. " * 8


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def build_repo(root: Path) -> Path:
    """Write the tiny repository at `root` and commit it, so the stubs have a pristine copy."""
    _write(root / "katas.toml", textwrap.dedent(CATALOGUE))
    _write(root / "conftest.py", 'pytest_plugins = ["dojo.pytest_plugin"]\n')
    _write(root / "pytest.ini", "[pytest]\naddopts = -ra\nasyncio_default_fixture_loop_scope = function\n")
    _write(root / ".gitignore", ".kata/\n__pycache__/\n")
    _write(root / "katas" / "__init__.py", "")
    for name, (stub, solution, tests) in KATAS.items():
        topic = TOPIC_OF[name]
        _write(root / "katas" / topic / "__init__.py", "")
        _write(root / "katas" / topic / "README.md", f"# {topic}\n")
        folder = root / "katas" / topic / name
        _write(folder / "__init__.py", "")
        _write(folder / "README.md", README.format(name=name))
        _write(folder / f"{name}.py", stub)
        _write(folder / f"test_{name}.py", tests)
        _write(root / "solutions" / topic / name / f"{name}.py", solution)
    git = ["git", "-C", str(root), "-c", "user.name=t", "-c", "user.email=t@example.com"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "katas"], check=True)
    return root


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh tiny kata repository; the current folder is its root (for in-process commands)."""
    root = build_repo(tmp_path / "repo")
    monkeypatch.chdir(root)
    return root


def solve(repo: Path, name: str) -> None:
    """Copy the solution over the learner's file, as a learner finishing the kata would."""
    topic = TOPIC_OF[name]
    source = (repo / "solutions" / topic / name / f"{name}.py").read_text()
    (repo / "katas" / topic / name / f"{name}.py").write_text(source)


def cli_env() -> dict[str, str]:
    """Wide lines (no wrapping in the middle of what tests look for), no colour, our own files."""
    env = {**os.environ, "COLUMNS": "200", "KATA_SOLUTIONS": "0"}
    for name in ("FORCE_COLOR", "PYTEST_ADDOPTS", "PYTEST_XDIST_WORKER"):
        env.pop(name, None)
    env["NO_COLOR"] = "1"
    return env


KATA_COMMAND = [sys.executable, "-c", "from dojo.cli import main; main()"]


@pytest.fixture
def kata(repo: Path) -> Callable[..., subprocess.CompletedProcess[str]]:
    """Run `kata ARGS...` as a learner would, in the tiny repository; stdout and stderr merged."""

    def run(*args: str, input: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*KATA_COMMAND, *args], cwd=repo, env=cli_env(), input=input, text=True,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=180, check=False,
        )

    return run
