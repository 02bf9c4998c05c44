"""How a run of pytest on one kata is started: its arguments and time budget (shared by every
run), the learner's environment, and launchers: a cold pytest on our terminal, a warm one forked
by a running `kata watch`, or a quiet one for refreshing statuses."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from .. import reaper
from ..catalogue import Kata
from . import interrupts, warm

Launcher = Callable[[list[str]], int]  # pytest arguments -> exit code, output to our stdout


def pytest_args(kata: Kata, report: Path, *, stages: bool = True) -> list[str]:
    """What every run passes to pytest: the kata's folder, short tracebacks, no summary, the
    engine's JSON report; a learner's run goes stage by stage (its stages summary replaces the
    short summary), a maintainer's check runs every test as `pytest katas/...` does."""
    return [
        str(kata.kata_dir), "-p", "no:cacheprovider", "-q", "--no-header", "--tb=short", "-rN",
        f"--kata-report={report}", *(("--kata-stages",) if stages else ()),
    ]


def learner_env() -> dict[str, str]:
    """The environment of a learner's run: always their own files, whatever the shell says."""
    # A pytest of ours stops when we die, even by SIGKILL (reaper.stop_with_parent).
    return {**os.environ, "KATA_SOLUTIONS": "0", reaper.PARENT_ENV: str(os.getpid())}


def cold_launcher(root: Path, env: dict[str, str] | None = None) -> Launcher:
    """pytest in a fresh interpreter, sharing our terminal (or copying into our sys.stdout)."""

    def launch(args: list[str]) -> int:
        run_env = learner_env() if env is None else env
        command = [sys.executable, "-m", "pytest", *args]
        try:
            sys.stdout.fileno()
        except (AttributeError, OSError, ValueError):
            # sys.stdout is not a real file (a test's CliRunner): pass the output through it
            done = subprocess.run(
                command, cwd=root, env=run_env, stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT, text=True, check=False,
            )
            sys.stdout.write(done.stdout)
            return done.returncode
        sys.stdout.flush()
        return interrupts.wait_for(subprocess.Popen(command, cwd=root, env=run_env))

    return launch


def run_budget(kata: Kata, repeat: int = 1) -> float:
    """Seconds a whole run of `kata` (`repeat` times over) may take before it is killed: the
    engine's own per-test limits stop a hang first; this only catches what slips past them."""
    return 120 + kata.time_limit * 20 * repeat


def warm_launcher(root: Path, timeout: float | None = None) -> Launcher:
    """pytest in a child forked by the warm server of a running `kata watch`, if one answers on
    .kata/warm.sock and our output is a real file it can write to; otherwise a cold pytest."""
    cold = cold_launcher(root)

    def launch(args: list[str]) -> int:
        try:
            out, err = sys.stdout.fileno(), sys.stderr.fileno()
        except (AttributeError, OSError, ValueError):
            return cold(args)
        if not warm.can_fork():
            return cold(args)
        sys.stdout.flush()
        sys.stderr.flush()
        code = warm.run(warm.socket_path(root), args, cwd=root, env=learner_env(),
                        timeout=timeout, stdout=out, stderr=err)
        return cold(args) if code is None else code

    return launch


def quiet_launcher(root: Path) -> Launcher:
    """pytest with its output thrown away: for refreshing statuses in bulk."""

    def launch(args: list[str]) -> int:
        return interrupts.wait_for(subprocess.Popen(
            [sys.executable, "-m", "pytest", *args], cwd=root, env=learner_env(),
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        ))

    return launch
