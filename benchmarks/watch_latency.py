"""Re-run latency of `kata watch` after a save, against bare pytest start-up, measured in one run.

Usage: python benchmarks/watch_latency.py [--kata NAME --repo PATH] [--rounds N] [--poll]
Without --kata it builds a throwaway repository with one pure kata (two tiny tests), so what is
measured is the machinery: noticing the save, running pytest, reading the report.
The floor is bare pytest without plugins (PYTEST_DISABLE_PLUGIN_AUTOLOAD=1) on one empty test,
0.27 s on a quiet 2-core machine. Target (issue 11): save -> verdict at most 0.35 s there, so a
ratio to that floor of at most 1.3; on a loaded machine, compare the ratios.
"""

from __future__ import annotations

import argparse
import os
import queue
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import tomllib
from pathlib import Path

from _timing import ROOT, best_of, pytest_cmd, wall_time

KATA_COMMAND = [sys.executable, "-c", "from dojo.cli import main; main()"]
PAUSE = 2.0  # seconds between saves: a learner reads the output before saving again
TARGET = 0.35  # seconds, save -> verdict, on a quiet machine
FLOOR_QUIET = 0.27  # seconds, bare pytest without plugins on the same quiet machine
NO_PLUGINS = {**os.environ, "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"}

PURE_KATA = {
    "katas.toml": '[[topic]]\nname = "bench"\n\n[[kata]]\nname = "adder"\ntopic = "bench"\n'
                  'files = ["adder.py"]\nhints = ["a", "b"]\n',
    "conftest.py": 'pytest_plugins = ["dojo.pytest_plugin"]\n',
    "katas/__init__.py": "",
    "katas/bench/__init__.py": "",
    "katas/bench/adder/__init__.py": "",
    "katas/bench/adder/README.md": "# adder\n",
    "katas/bench/adder/adder.py": "def add(a, b):\n    return a + b\n",
    "katas/bench/adder/test_adder.py": "from .adder import add\n\n\ndef test_small():\n"
                                       "    assert add(2, 3) == 5\n\n\ndef test_negative():\n"
                                       "    assert add(-1, 1) == 0\n",
    "solutions/bench/adder/adder.py": "def add(a, b):\n    return a + b\n",
}


def project_addopts() -> str:
    """The project's own addopts (which name the plugins to load), so the throwaway kata starts
    pytest as `pytest katas/<topic>` does in this repository."""
    with open(ROOT / "pyproject.toml", "rb") as file:
        ini = tomllib.load(file)["tool"]["pytest"]["ini_options"]
    return " ".join(ini["addopts"])


def build_pure_repo(folder: Path) -> None:
    files = {**PURE_KATA, "pytest.ini": f"[pytest]\naddopts = {project_addopts()}\n"
                                       "asyncio_default_fixture_loop_scope = function\n"}
    for rel, text in files.items():
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        (folder / rel).write_text(text)


class Watcher:
    """`kata watch` in a subprocess, with every output line time-stamped as it arrives."""

    def __init__(self, repo: Path, kata: str, poll: bool) -> None:
        self.lines: queue.Queue[tuple[float, str]] = queue.Queue()
        self.proc = subprocess.Popen(
            [*KATA_COMMAND, "watch", kata, *(["--poll"] if poll else [])], cwd=repo,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put((time.perf_counter(), line))

    def until(self, phrase: str, timeout: float = 120) -> float:
        """The arrival time of the next line containing `phrase`."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                stamp, line = self.lines.get(timeout=1)
            except queue.Empty:
                continue
            if phrase in line:
                return stamp
        raise RuntimeError(f"`kata watch` never printed {phrase!r}")

    def quit(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write("q\n")
        self.proc.stdin.flush()
        self.proc.wait(timeout=60)


def measure(
    repo: Path, kata: str, file: Path, rounds: int, poll: bool, bare: list[str], empty: Path
) -> list[tuple[float, float, float]]:
    """(bare pytest start-up, save -> header, save -> verdict) per round, interleaved so that
    each ratio compares two things measured moments apart; the file is restored at the end."""
    original = file.read_text()
    watcher = Watcher(repo, kata, poll)
    timings = []
    try:
        watcher.until("for saves")  # the first run is over and a warm pytest is starting
        for index in range(rounds):
            startup = wall_time(bare, cwd=empty, env=NO_PLUGINS)  # also the pause before a save
            time.sleep(max(0.0, PAUSE - startup))
            saved = time.perf_counter()
            file.write_text(original + ("" if index % 2 else f"# watch_latency {index}\n"))
            header = watcher.until(f"/{kata} ·")
            verdict = watcher.until(f"{kata}: ")
            timings.append((startup, header - saved, verdict - saved))
        watcher.quit()
    finally:
        file.write_text(original)
        if watcher.proc.poll() is None:
            watcher.proc.kill()
    return timings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--kata", help="a kata of the repository at --repo (default: a throwaway one)")
    parser.add_argument("--repo", type=Path, default=ROOT)
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--poll", action="store_true", help="watch by polling, as on WSL")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        empty = Path(tmp) / "empty"
        empty.mkdir()
        (empty / "test_empty.py").write_text("def test_nothing():\n    pass\n")
        (empty / "pytest.ini").write_text("[pytest]\nasyncio_default_fixture_loop_scope = function\n")
        if args.kata:
            repo, kata = args.repo.resolve(), args.kata
            sys.path.insert(0, str(ROOT))
            from dojo.catalogue import load

            entry = load(repo / "katas.toml").get(kata)
            file, kata_dir = entry.learner_files()[0], entry.kata_dir
        else:
            repo, kata = Path(tmp) / "repo", "adder"
            build_pure_repo(repo)
            kata_dir = repo / "katas/bench/adder"
            file = kata_dir / "adder.py"
        bare = pytest_cmd(str(empty / "test_empty.py"), "-c", str(empty / "pytest.ini"))
        cold = best_of({"cold": pytest_cmd(str(kata_dir))}, rounds=1, cwd=repo)["cold"]
        cold_bare = wall_time(bare, cwd=empty, env=NO_PLUGINS)
        timings = measure(repo, kata, file, args.rounds, args.poll, bare, empty)
    mode = "polling" if args.poll else "OS events"
    median = statistics.median
    verdict = median(t[2] for t in timings)
    rows = [
        (f"bare pytest, no plugins, one empty test (median of {len(timings)})",
         median(t[0] for t in timings), 1.0),
        ("pytest on the kata, fresh interpreter", cold, cold / cold_bare),
        (f"kata watch ({mode}): save -> header, median", median(t[1] for t in timings),
         median(t[1] / t[0] for t in timings)),
        (f"kata watch ({mode}): save -> verdict, median", verdict,
         median(t[2] / t[0] for t in timings)),
        (f"kata watch ({mode}): save -> verdict, worst", max(t[2] for t in timings),
         max(t[2] / t[0] for t in timings)),
    ]
    print(f"{'':52s} {'seconds':>8s} {'/ bare':>7s}")
    for label, seconds, ratio in rows:
        print(f"{label:52s} {seconds:8.2f} {ratio:7.2f}")
    ratio = median(t[2] / t[0] for t in timings)
    limit = TARGET / FLOOR_QUIET
    print(f"re-run latency {verdict:.2f} s, {ratio:.2f} x bare pytest without plugins: "
          f"{'within' if ratio <= limit else 'OVER'} the target ratio {limit:.2f} "
          f"({TARGET} s / {FLOOR_QUIET} s on a quiet machine); load average "
          f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores. Each ratio divides by a bare "
          "start-up measured in the same round.")


if __name__ == "__main__":
    main()
