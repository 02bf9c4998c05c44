"""A warm runner: pytest and the heavy imports loaded once, a fresh forked child for every run.

The learner's modules are never imported in the warm parent, so each run sees their latest code;
a crash, `os._exit` or hang in the child can't take the parent down. Where fork is unavailable
(Windows) or unsafe, runs fall back to a plain subprocess.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

# Imported once in the parent; each is optional (a missing one only costs its import later).
PRELOAD = (
    "pytest",
    "_pytest.python",
    "_pytest.assertion.rewrite",
    "_pytest.terminal",
    "_pytest.fixtures",
    "pytest_asyncio.plugin",
    "xdist.plugin",
    "_hypothesis_pytestplugin",
    "hypothesis",
    "dojo.pytest_plugin",
    "asyncio",
    "concurrent.futures",
    "multiprocessing",
    "aiohttp",
    "requests",
    "tenacity",
    "freezegun",
    "sortedcontainers",
)


def can_fork() -> bool:
    return hasattr(os, "fork") and sys.platform != "win32"


class WarmRunner:
    """Runs `pytest ARGS` in a forked child of an interpreter that already imported pytest."""

    def __init__(self, root: Path, preload: Sequence[str] = PRELOAD) -> None:
        self.root = root
        self.forking = can_fork()
        self.preloaded: list[str] = []
        if self.forking:
            for name in preload:
                with contextlib.suppress(Exception):
                    importlib.import_module(name)
                    self.preloaded.append(name)

    def run(self, args: Sequence[str], env: dict[str, str] | None = None,
            timeout: float | None = None) -> int:
        """pytest's exit code for `args` (run from the repo root); -1 if it overran `timeout`."""
        if not self.forking:
            return self._run_subprocess(args, env, timeout)
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:  # the child: never returns into the caller
            code = 3
            try:
                os.setpgid(0, 0)  # its own group, so a hang can be stopped with everything it started
                os.chdir(self.root)
                os.environ.update(env or {})
                import pytest

                code = int(pytest.main(list(args)))
            except BaseException:  # a crash in the child is reported, never raised in the parent
                import traceback

                traceback.print_exc()
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(code)
        return self._wait(pid, timeout)

    def _wait(self, pid: int, timeout: float | None) -> int:
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            done, status = os.waitpid(pid, 0 if deadline is None else os.WNOHANG)
            if done:
                return os.waitstatus_to_exitcode(status)
            if deadline is not None and time.monotonic() > deadline:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
                return -1
            time.sleep(0.01)

    def _run_subprocess(self, args: Sequence[str], env: dict[str, str] | None,
                        timeout: float | None) -> int:
        try:
            return subprocess.run(
                [sys.executable, "-m", "pytest", *args], cwd=self.root,
                env={**os.environ, **(env or {})}, timeout=timeout, check=False,
            ).returncode
        except subprocess.TimeoutExpired:
            return -1
