"""A warm pytest: an interpreter that imported pytest and its plugins, waiting to run one session.

Importing pytest, its plugins and hypothesis costs about a second, more than the tests of a pure
kata; watch mode keeps one such interpreter ready so a save is answered in a fraction of that.
Only third-party code is imported ahead: the learner's modules and the tests are imported by the
session itself, after the save, in a process that runs exactly once.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.metadata
import json
import os
import subprocess
import sys
from pathlib import Path

# Plugins (and hypothesis) imported ahead are not assertion-rewritten; pytest warns about that,
# and their own asserts never report a learner's failure, so the warning is noise here.
QUIET_REWRITE = ("-W", "ignore::pytest.PytestAssertRewriteWarning")
_HEAVY_MODULES = ("pytest", "_pytest.python", "_pytest.terminal", "pdb", "hypothesis",
                  "hypothesis.strategies", "dojo.pytest_plugin")


def _preload() -> None:
    for name in _HEAVY_MODULES:
        with contextlib.suppress(Exception):
            importlib.import_module(name)
    for entry in importlib.metadata.entry_points(group="pytest11"):
        with contextlib.suppress(Exception):
            entry.load()


def serve() -> None:
    """The warm process: preload, read one JSON list of pytest arguments, run, exit."""
    _preload()
    line = sys.stdin.readline()
    if not line.strip():
        return  # the watcher quit before it needed us
    args = json.loads(line)
    # the tests must not read the watcher's pipe: give them what a terminal-less run has
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)
    import pytest

    sys.argv = ["pytest", *args]
    raise SystemExit(pytest.console_main())


class WarmPytest:
    """One warm interpreter; `run` uses it up, `ensure` starts the next one in the background."""

    def __init__(self, root: Path, env: dict[str, str]) -> None:
        self.root = root
        self.env = env
        self._proc: subprocess.Popen[bytes] | None = None

    def ensure(self) -> None:
        """Start a warm interpreter unless one is already waiting."""
        if self._proc is None or self._proc.poll() is not None:
            self._proc = subprocess.Popen(
                [sys.executable, "-c", "from dojo.learner.prefork import serve; serve()"],
                cwd=self.root, env=self.env, stdin=subprocess.PIPE,
            )

    def run(self, args: list[str]) -> int:
        """Run pytest with `args` in the warm interpreter (output goes to our terminal)."""
        self.ensure()
        proc = self._proc
        assert proc is not None and proc.stdin is not None
        self._proc = None
        try:
            proc.stdin.write((json.dumps([*QUIET_REWRITE, *args]) + "\n").encode())
            proc.stdin.close()
            return proc.wait()
        except BaseException:
            proc.kill()
            proc.wait()
            raise

    def close(self) -> None:
        """Let the waiting interpreter exit (EOF on its stdin), killing it if it lingers."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        with contextlib.suppress(OSError):
            if proc.stdin is not None:
                proc.stdin.close()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
