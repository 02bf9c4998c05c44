"""A one-kata repository whose learner file decides what its test does, and a warm server on it."""

from __future__ import annotations

import json
import os
import sys
import textwrap
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psutil
import pytest

from dojo.running import warm
from dojo.running.warm_client import WarmPytest

pytestmark = pytest.mark.skipif(not warm.can_fork(), reason="the warm server needs fork")

CATALOGUE = '''
[[topic]]
name = "probe"

[[kata]]
name = "probe"
topic = "probe"
files = ["probe.py"]
hints = ["a", "b"]
time_limit = 300
'''
# The test calls act(); each scenario writes its own probe.py: a value, a crash, a hang...
TESTS = "from .probe import act\n\n\ndef test_act():\n    assert act() == 42\n"
PATIENCE = 120.0  # seconds: the warm-up on a loaded machine


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text), encoding="utf-8")


@dataclass
class ProbeRepo:
    root: Path
    marker: str  # a unique word in the command line of every process a scenario starts

    @property
    def learner_file(self) -> Path:
        return self.root / "katas" / "probe" / "probe" / "probe.py"

    def act(self, body: str) -> None:
        """Make the learner's act() run `body` (indented code, returns 42 to pass)."""
        code = "def act():\n" + textwrap.indent(textwrap.dedent(body).strip("\n"), "    ") + "\n"
        write(self.learner_file, "import os, signal, subprocess, sys, time\n\n" + code)

    def sleeper(self, seconds: int, **popen: object) -> str:
        """Source of a Popen of a process that sleeps with our marker in its command line."""
        args = [sys.executable, "-c", f"import time; time.sleep({seconds})", self.marker]
        extra = "".join(f", {k}={v!r}" for k, v in popen.items())
        return f"subprocess.Popen({args!r}{extra})"

    def leftovers(self) -> list[psutil.Process]:
        """Processes still running with this repo's marker in their command line."""
        found = []
        for proc in psutil.process_iter(["cmdline"]):
            if self.marker in " ".join(proc.info["cmdline"] or []):
                found.append(proc)
        return found


@pytest.fixture
def probe_repo(tmp_path: Path) -> Iterator[ProbeRepo]:
    root = tmp_path / "repo"
    write(root / "katas.toml", CATALOGUE)
    write(root / "conftest.py", 'pytest_plugins = ["dojo.pytest_plugin"]\n')
    write(root / "pytest.ini", "[pytest]\nasyncio_default_fixture_loop_scope = function\n")
    for package in ("katas", "katas/probe", "katas/probe/probe"):
        write(root / package / "__init__.py", "")
    write(root / "katas/probe/probe/test_probe.py", TESTS)
    write(root / "solutions/probe/probe/probe.py", "def act():\n    return 42\n")
    repo = ProbeRepo(root, f"kata-warm-probe-{uuid.uuid4().hex[:12]}")
    repo.act("return 42")
    yield repo
    for proc in repo.leftovers():  # only if a test failed: never leave its sleepers behind
        proc.kill()


@dataclass
class Outcome:
    code: int | None
    tests: dict[str, str]  # node id -> passed | failed | error | skipped
    output: str


@pytest.fixture
def server(probe_repo: ProbeRepo) -> Iterator[WarmPytest]:
    """A warm server on the probe repository, stopped (and checked gone) at the end."""
    env = {**os.environ, "KATA_SOLUTIONS": "0"}
    env.pop("PYTEST_ADDOPTS", None)
    env.pop("PYTEST_XDIST_WORKER", None)
    runner = WarmPytest(probe_repo.root, env, [probe_repo.root / "katas" / "probe"])
    runner.ensure()
    assert runner.wait_ready(PATIENCE), (probe_repo.root / ".kata" / "warm.log").read_text()
    proc = runner._proc
    yield runner
    runner.close()
    assert proc is not None and proc.poll() is not None, "the server is stopped"
    sock_path = warm.socket_path(probe_repo.root)
    assert warm.run(sock_path, [], cwd=probe_repo.root, env=env, timeout=1) is None, "nobody answers"
    if proc.returncode == 0:  # a server stopped by close(), not killed by a test, cleans up
        assert not sock_path.exists(), "the server removes its socket"


def run_warm(repo: ProbeRepo, runner: WarmPytest, tmp_path: Path, timeout: float = 120) -> Outcome:
    """One run through the server, its output in a file, each test's outcome from the report."""
    report = tmp_path / f"report-{uuid.uuid4().hex[:8]}.json"
    out = tmp_path / "output.txt"
    args = ["katas/probe/probe", "-p", "no:cacheprovider", "-q", f"--kata-report={report}"]
    with open(out, "w") as sink:
        code = warm.run(runner.sock_path, args, cwd=repo.root, env=runner.env, timeout=timeout,
                        stdout=sink.fileno(), stderr=sink.fileno())
    tests = {}
    if report.is_file():
        tests = {k: v["outcome"] for k, v in json.loads(report.read_text()).items()}
    return Outcome(code, tests, out.read_text())
