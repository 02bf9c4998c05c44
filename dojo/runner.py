"""Runs pytest on one kata in a subprocess and reads back each test's outcome."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from . import reaper
from .catalogue import Kata


@dataclass
class TestOutcome:
    nodeid: str
    outcome: str  # passed | failed | error | skipped
    phase: str
    message: str = ""
    details: str = ""


@dataclass
class RunResult:
    """What one pytest run on one kata produced."""

    exit_code: int
    outcomes: list[TestOutcome] = field(default_factory=list)
    output: str = ""
    repeat: int = 1

    def by_outcome(self, outcome: str) -> list[TestOutcome]:
        return [o for o in self.outcomes if o.outcome == outcome]

    @property
    def tests(self) -> set[str]:
        return {base_nodeid(o.nodeid, self.repeat) for o in self.outcomes if o.phase != "collect"}


def base_nodeid(nodeid: str, repeat: int) -> str:
    """The node id without pytest-repeat's suffix, which every test of a repeated run carries:
    "[2-3]" appended, or "-2-3]" inside existing brackets. Other ids are never touched."""
    if repeat <= 1:
        return nodeid
    suffix = re.compile(rf"(\[|-)\d+-{repeat}\]$")
    return suffix.sub(lambda m: "]" if m.group(1) == "-" else "", nodeid)


def run_kata(
    kata: Kata,
    *,
    solutions: bool = False,
    overrides: dict[str, Path] | None = None,
    repeat: int = 1,
    extra_args: tuple[str, ...] = (),
    timeout: float | None = None,
) -> RunResult:
    """Run the kata's tests in a fresh interpreter; never raises for failing tests."""
    with tempfile.TemporaryDirectory(prefix="kata-report-") as tmp:
        report = Path(tmp) / "report.json"
        args = [
            sys.executable, "-m", "pytest", str(kata.kata_dir),
            "-p", "no:cacheprovider", "-q", "--no-header", "-rN", "--tb=short",
            f"--kata-report={report}",
        ]
        if solutions:
            args.append("--solutions")
        for name, path in (overrides or {}).items():
            args.append(f"--kata-override={kata.slug}/{name}={path}")
        if repeat > 1:
            args += [f"--count={repeat}", "--repeat-scope=session"]
        args += list(extra_args)
        # reaper.PARENT_ENV: if we die, even by SIGKILL, this pytest stops too
        env = {**os.environ, "KATA_SOLUTIONS": "1" if solutions else "0", reaper.PARENT_ENV: str(os.getpid())}
        budget = timeout if timeout is not None else 120 + kata.time_limit * 20 * repeat
        try:
            proc = subprocess.run(
                args, cwd=kata.root, env=env, capture_output=True, text=True, timeout=budget
            )
        except subprocess.TimeoutExpired as exc:
            out = (exc.stdout or b"").decode() if isinstance(exc.stdout, bytes) else exc.stdout
            return RunResult(exit_code=-1, output=f"{out or ''}\npytest did not finish in {budget} s")
        outcomes = []
        if report.is_file():
            for nodeid, entry in json.loads(report.read_text(encoding="utf-8")).items():
                outcomes.append(TestOutcome(nodeid=nodeid, **entry))
        return RunResult(proc.returncode, outcomes, proc.stdout + proc.stderr, repeat)
