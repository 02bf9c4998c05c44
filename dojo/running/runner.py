"""Runs pytest on one kata in a subprocess and reads back each test's outcome."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from .. import flight, process_end, reaper
from ..catalogue import Kata
from . import report as run_report
from .launch import pytest_args, run_budget
from .report import TestOutcome

if TYPE_CHECKING:
    import psutil

GRACE = 10.0  # seconds a stopped pytest gets for its teardown (servers, folders) before SIGKILL
_running: set[subprocess.Popen[bytes]] = set()  # every pytest started here and not yet ended
_running_lock = threading.Lock()
_stopping = threading.Event()  # Ctrl-C: no new pytest starts
# Every process a run starts inherits this variable with the run's own value, so what it leaves
# behind is found after it even outside its session (Jenkins' ProcessTreeKiller does the same).
RUN_COOKIE = "KATA_RUN_COOKIE"
# A maintainer's run draws the same Hypothesis examples as CI's, from an empty example database
# (CI's clone has none): a mutant killed here is killed there, a mistake caught here is caught
# there, by the same examples. A learner's runs keep random draws and their database.
HYPOTHESIS_SEED = 0


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
        args = [sys.executable, "-m", "pytest", *pytest_args(kata, report, stages=False),
                f"--hypothesis-seed={HYPOTHESIS_SEED}"]
        if solutions:
            args.append("--solutions")
        for name, path in (overrides or {}).items():
            args.append(f"--kata-override={kata.slug}/{name}={path}")
        if repeat > 1:
            args += [f"--count={repeat}", "--repeat-scope=session"]
        args += list(extra_args)
        # reaper.PARENT_ENV: if we die, even by SIGKILL, this pytest stops too
        env = {**os.environ, "KATA_SOLUTIONS": "1" if solutions else "0", reaper.PARENT_ENV: str(os.getpid()),
               RUN_COOKIE: uuid.uuid4().hex, "HYPOTHESIS_STORAGE_DIRECTORY": str(Path(tmp) / "hypothesis")}
        budget = timeout if timeout is not None else run_budget(kata, repeat)
        output = Path(tmp) / "output.txt"
        exit_code = _run_alone(args, kata.root, env, output, budget)
        text = output.read_text(encoding="utf-8", errors="replace")
        if exit_code is None:
            return RunResult(exit_code=-1, output=f"{text}\npytest did not finish in {budget} s")
        outcomes = run_report.read(report)
        if outcomes is None:
            outcomes = _cut_short(report, exit_code, text)
        return RunResult(exit_code, outcomes, text, repeat)


def _cut_short(report: Path, exit_code: int, output: str) -> list[TestOutcome]:
    """The test during which the code under test ended pytest (os._exit, a hard stop, a signal),
    as an error that says so, with the stacks a hard stop printed; none if it wasn't that."""
    explained = process_end.explain(report, exit_code)
    note = flight.read(flight.path_for(report))
    if explained is None or note is None:
        return []
    return [TestOutcome(nodeid=note.running, outcome="error", phase="call", message=explained,
                        details=_stacks(output))]


def _stacks(output: str) -> str:
    """The innermost frames of each thread a hard stop dumped (faulthandler: most recent first)."""
    start = output.rfind("Timeout (")
    if start < 0:
        return ""
    shown: list[str] = []
    frames = 0
    for line in output[start:].splitlines():
        frames = frames + 1 if line.lstrip().startswith("File ") else 0
        if frames <= 6:  # each thread's header and its six innermost frames
            shown.append(line)
    return "\n".join(shown)


def _run_alone(args: list[str], cwd: Path, env: dict[str, str], output: Path, budget: float) -> int | None:
    """Run pytest in a session of its own, its output in a file: pytest's exit code, or None
    after `budget` seconds. A process the code under test forked and left behind (a mutant's
    orphan) can neither hold a pipe open and hang us, nor outlive the run: the group is killed."""
    with output.open("wb") as sink, _running_lock:
        if _stopping.is_set():
            raise KeyboardInterrupt
        proc = subprocess.Popen(args, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=sink,
                                stderr=subprocess.STDOUT, start_new_session=True)
        _running.add(proc)
    born = _start_time(proc.pid)  # unreaped until we wait, so its /proc entry is still there
    try:
        return proc.wait(timeout=budget)
    except subprocess.TimeoutExpired:
        return None
    finally:
        _signal_group(proc, signal.SIGKILL)
        proc.wait()
        with _running_lock:
            _running.discard(proc)
        _kill_leftovers(env[RUN_COOKIE], born)


def _start_time(pid: int) -> float:
    import psutil  # only here: most commands never run pytest this way

    try:
        return float(psutil.Process(pid).create_time())
    except psutil.Error:
        return 0.0  # already gone: look at every process of ours instead


def _kill_leftovers(cookie: str, born: float) -> None:
    """Kill what escaped the run's session (a setsid'd daemon, a process forked at exit): any
    process of ours started no earlier than the run's pytest (`born`, on psutil's own clock, so
    the two compare exactly) that carries the run's cookie; return once they are gone."""
    import psutil

    killed = []
    for proc in psutil.process_iter(["uids", "create_time"]):
        try:
            if (proc.info["uids"] is None or proc.info["uids"].real != os.getuid()
                    or proc.info["create_time"] < born or proc.pid == os.getpid()):
                continue
            if proc.environ().get(RUN_COOKIE) == cookie:
                proc.kill()
                killed.append(proc)
        except psutil.Error:
            continue  # gone meanwhile, or not ours to read
    deadline = time.monotonic() + GRACE  # SIGKILL lands when the process next leaves the kernel
    while killed and time.monotonic() < deadline:
        killed = [proc for proc in killed if _still_running(proc)]
        time.sleep(0.01 if killed else 0)


def _still_running(proc: psutil.Process) -> bool:
    import psutil

    try:
        return bool(proc.status() != psutil.STATUS_ZOMBIE)  # a zombie only waits for its parent
    except psutil.NoSuchProcess:
        return False


def _signal_group(proc: subprocess.Popen[bytes], signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signum)


def stop_all() -> None:
    """Ctrl-C for the runs in their own sessions (the terminal's reaches none of them): each gets
    SIGINT, so its teardown stops servers and removes folders, then SIGKILL after GRACE; no new
    run starts."""
    _stopping.set()
    with _running_lock:
        procs = list(_running)
    for proc in procs:
        _signal_group(proc, signal.SIGINT)
    for proc in procs:
        try:
            proc.wait(GRACE)
        except subprocess.TimeoutExpired:
            _signal_group(proc, signal.SIGKILL)


@contextlib.contextmanager
def parallel(jobs: int) -> Iterator[ThreadPoolExecutor]:
    """A pool of `jobs` threads starting runs; stopped (queued work dropped, every run ended)
    if the caller is, by Ctrl-C or an error, instead of running the rest first."""
    pool = ThreadPoolExecutor(max_workers=max(1, jobs))
    try:
        yield pool
    except BaseException:
        stop_all()
        pool.shutdown(wait=True, cancel_futures=True)
        _stopping.clear()  # every run of this pool has ended: a later pool may start afresh
        raise
    pool.shutdown(wait=True)
