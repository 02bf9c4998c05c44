"""Shared timing helpers for the benchmark scripts: interleaved runs, best-of-N wall times."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def wall_time(args: Sequence[str], cwd: Path = ROOT, env: dict[str, str] | None = None) -> float:
    """Seconds one command takes, start to exit."""
    started = time.perf_counter()
    subprocess.run(list(args), cwd=cwd, env=env, capture_output=True, check=False)
    return time.perf_counter() - started


def best_of(commands: dict[str, Sequence[str]], rounds: int, cwd: Path = ROOT,
            env: dict[str, str] | None = None) -> dict[str, float]:
    """Best wall time of each command, running them interleaved so machine noise hits all alike."""
    best = {name: float("inf") for name in commands}
    for _ in range(rounds):
        for name, args in commands.items():
            best[name] = min(best[name], wall_time(args, cwd, env))
    return best


def pytest_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args]
