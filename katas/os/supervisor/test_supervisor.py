"""Tests for the supervisor, run as a real process: signals forwarded, orphans reaped, a clean drain."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import psutil
import pytest

PATIENCE = 5.0  # seconds for anything here to happen (each takes milliseconds)


class Supervisor:
    """`python supervisor.py ARGS` in its own session, its stderr in a file, killed at the end."""

    def __init__(self, script: Path, args: list[str], workdir: Path) -> None:
        self.workdir = workdir
        self.stderr_path = workdir / "supervisor.stderr"
        with open(self.stderr_path, "wb") as stderr:
            self.proc = subprocess.Popen(
                [sys.executable, str(script), *args], cwd=workdir, stdin=subprocess.DEVNULL,
                stdout=stderr, stderr=stderr, start_new_session=True,
            )
        self.pid = self.proc.pid

    @property
    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    def exited(self) -> bool:
        return self.proc.poll() is not None

    def children(self) -> list[psutil.Process]:
        with contextlib.suppress(psutil.Error):
            return psutil.Process(self.pid).children()
        return []

    def await_(self, predicate: Callable[[], bool], what: str, explain: Callable[[], str] = str) -> None:
        """Poll until `predicate` holds; fail at once if the supervisor exits, or after PATIENCE."""
        deadline = time.monotonic() + PATIENCE
        while not predicate():
            if self.exited():
                if predicate():
                    return
                raise AssertionError(
                    f"waiting for {what}, the supervisor exited ({self.describe_exit()})."
                    f"\n{explain()}\nIts output:\n{self.stderr[-1500:]}"
                )
            if time.monotonic() > deadline:
                raise AssertionError(f"gave up after {PATIENCE:g} s waiting for {what}.\n{explain()}")
            time.sleep(0.01)

    def wait(self, what: str) -> int:
        try:
            return self.proc.wait(timeout=PATIENCE)
        except subprocess.TimeoutExpired:
            kids = ", ".join(f"{k.pid} {k.name()} ({k.status()})" for k in self.children())
            raise AssertionError(
                f"the supervisor is still running {PATIENCE:g} s after {what} "
                f"(its children: {kids or 'none'}). Output:\n{self.stderr[-1500:]}"
            ) from None

    def describe_exit(self) -> str:
        code = self.proc.returncode
        if code is not None and code < 0:
            return f"killed by {signal.Signals(-code).name}"
        return f"exit status {code}"

    def stop(self) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, signal.SIGKILL)  # the supervisor and everything it started
        self.proc.wait()


@pytest.fixture
def supervise(kata_file: Callable[[str], Path], tmp_path: Path) -> Iterator[Callable[..., Supervisor]]:
    started: list[Supervisor] = []

    def start(*args: str) -> Supervisor:
        sup = Supervisor(kata_file("supervisor.py"), list(args), tmp_path)
        started.append(sup)
        return sup

    yield start
    for sup in started:
        sup.stop()


def _lines(path: Path) -> list[str]:
    return path.read_text().split() if path.exists() else []


def _signal_state(pid: int) -> tuple[set[int], set[int]]:
    """The signals a process blocks and ignores, from /proc/<pid>/status (SigBlk, SigIgn)."""
    masks = {}
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            key, _, value = line.partition(":")
            if key in ("SigBlk", "SigIgn"):
                mask = int(value.strip(), 16)
                masks[key] = {n for n in range(1, 65) if mask & (1 << (n - 1))}
    return masks.get("SigBlk", set()), masks.get("SigIgn", set())


# --- init: what PID 1 in a container owes its command ------------------------------------------


@pytest.mark.parametrize(
    ("script", "expected"), [("exit 7", 7), ("kill -TERM $$", 143)], ids=["exit-7", "killed-by-TERM"]
)
def test_init_exits_with_the_commands_status(supervise: Callable[..., Supervisor], script: str, expected: int) -> None:
    sup = supervise("init", "sh", "-c", script)
    code = sup.wait(f"`sh -c '{script}'` ended")
    hint = ""
    if expected == 143 and code == 0:
        hint = (
            "\nThe shell survived its own SIGTERM: in the command the signal was blocked or "
            "ignored. The signal mask and ignored signals survive fork and exec; in the child, "
            "unblock everything (signal.pthread_sigmask(signal.SIG_SETMASK, [])) and reset "
            "signals to SIG_DFL before exec."
        )
    assert code == expected, (
        f"`supervisor.py init sh -c '{script}'` exited {sup.describe_exit()}; expected {expected}, "
        "the command's status as a shell shows it (128 + N when signal N killed it), as "
        f"`docker run` reports it.{hint} Output:\n{sup.stderr[-1500:]}"
    )


TRAPS = """
trap 'echo HUP >> signals' HUP
trap 'echo USR1 >> signals' USR1
trap 'echo TERM >> signals; exit 0' TERM
echo ready >> signals
while :; do sleep 0.01; done
"""


def _forwarding_problem(sup: Supervisor, name: str) -> str:
    kids = sup.children()
    if not kids:
        return "The supervisor has no child left."
    blocked, ignored = _signal_state(kids[0].pid)
    number = signal.Signals[f"SIG{name}"]
    if number in blocked:
        return (
            f"The command (pid {kids[0].pid}) has SIG{name} BLOCKED (SigBlk in /proc/<pid>/status): "
            "it inherited the supervisor's signal mask, which fork and exec both keep. Unblock "
            "everything in the child before exec: signal.pthread_sigmask(signal.SIG_SETMASK, [])."
        )
    if number in ignored:
        return (
            f"The command (pid {kids[0].pid}) IGNORES SIG{name}: ignored signals stay ignored "
            "across exec. Reset them to signal.SIG_DFL in the child before exec."
        )
    return (
        f"The command (pid {kids[0].pid}) can receive SIG{name}, so the supervisor did not pass "
        f"it on: every signal in FORWARDED that reaches the supervisor goes to os.kill(child, sig)."
    )


def test_init_forwards_signals_to_the_command(supervise: Callable[..., Supervisor], tmp_path: Path) -> None:
    """HUP and USR1 reach the command and kill nobody; TERM ends it, and its status is init's."""
    log = tmp_path / "signals"
    sup = supervise("init", "sh", "-c", TRAPS)
    sup.await_(lambda: "ready" in _lines(log), "the command to start")
    for name in ("HUP", "USR1", "TERM"):
        os.kill(sup.pid, signal.Signals[f"SIG{name}"])
        sup.await_(
            lambda name=name: name in _lines(log),  # type: ignore[misc]
            f"SIG{name}, sent to the supervisor, to reach the command",
            lambda name=name: _forwarding_problem(sup, name),  # type: ignore[misc]
        )
    code = sup.wait("SIGTERM made the command exit 0")
    assert code == 0, (
        f"the command exited 0 on SIGTERM, the supervisor {sup.describe_exit()}: it must "
        f"return the command's status. Output:\n{sup.stderr[-1500:]}"
    )
    assert _lines(log) == ["ready", "HUP", "USR1", "TERM"], f"the command logged {_lines(log)}"


ORPHAN = """
( sleep 0.2 & echo $! > orphan.pid )
while [ ! -e release ]; do sleep 0.01; done
"""


def test_init_adopts_and_reaps_orphans(supervise: Callable[..., Supervisor], tmp_path: Path) -> None:
    """A grandchild whose parent exits is re-parented to the subreaper, which must wait for it."""
    sup = supervise("init", "sh", "-c", ORPHAN)
    pidfile = tmp_path / "orphan.pid"
    sup.await_(lambda: bool(_lines(pidfile)), "the command to start a background process")
    orphan = int(_lines(pidfile)[0])

    def gone() -> bool:
        return not psutil.pid_exists(orphan)  # a zombie still has its pid

    def why() -> str:
        try:
            proc = psutil.Process(orphan)
            parent, status = proc.ppid(), proc.status()
        except psutil.NoSuchProcess:
            return ""
        if status != psutil.STATUS_ZOMBIE:
            return f"the orphan (pid {orphan}) is still {status}"
        if parent == sup.pid:
            return (
                f"The orphan (pid {orphan}) was adopted by the supervisor and has exited, but it "
                "is still a zombie: nobody waited for it. PID 1 reaps EVERY child, not only the "
                "one it started: os.waitpid(-1, os.WNOHANG) in a loop on each SIGCHLD."
            )
        return (
            f"The orphan (pid {orphan}) exited as a zombie of pid {parent}, not of the supervisor "
            f"({sup.pid}): orphans go to the nearest subreaper. Become one: "
            "prctl(PR_SET_CHILD_SUBREAPER, 1) through ctypes, before starting the command."
        )

    sup.await_(gone, f"the orphaned `sleep 0.2` (pid {orphan}) to exit and be reaped", why)
    (tmp_path / "release").touch()
    assert sup.wait("the command was released") == 0


# --- jobs: a graceful drain on SIGTERM ---------------------------------------------------------


def _job(name: str) -> str:
    """A job that logs its start, waits for the test's go, and logs its end."""
    return (f"echo start-{name} >> log; while [ ! -e release ]; do sleep 0.01; done; "
            f"echo end-{name} >> log")


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["TERM", "INT"])
def test_a_stop_signal_drains_in_flight_jobs_and_exits_0(
    supervise: Callable[..., Supervisor], tmp_path: Path, signum: signal.Signals
) -> None:
    jobs = tmp_path / "jobs.txt"
    jobs.write_text("".join(_job(str(i)) + "\n" for i in range(5)))
    log = tmp_path / "log"
    sup = supervise("jobs", "--parallel", "2", str(jobs))
    sup.await_(lambda: len(_lines(log)) == 2, "the first two jobs to start")
    running = sup.children()
    os.kill(sup.pid, signum)
    sup.await_(
        lambda: "shutdown:" in sup.stderr, f"'shutdown: waiting for 2 job(s)' after {signum.name}",
        lambda: f"jobs logged {_lines(log)}",
    )
    assert "waiting for 2 job(s)" in sup.stderr, f"two jobs were in flight; it said {sup.stderr!r}"
    time.sleep(0.2)  # give a supervisor that wrongly stops its jobs or leaves the time to do it
    dead = [f"pid {k.pid}" for k in running
            if not k.is_running() or k.status() == psutil.STATUS_ZOMBIE]
    assert not dead, (
        f"after {signum.name} the jobs in flight ({', '.join(dead)}) died before finishing: a "
        "drain finishes work in flight. Don't signal or kill the jobs; just start no new ones."
    )
    assert not sup.exited(), (
        f"the supervisor {sup.describe_exit()} while two jobs were still running: exiting on "
        f"{signum.name} (sys.exit in a handler, a return) abandons the work in flight. Set a "
        "flag, stop taking new jobs, and return only when every running job has been reaped."
    )
    (tmp_path / "release").touch()
    code = sup.wait("the in-flight jobs were released")
    started = sorted(x for x in _lines(log) if x.startswith("start"))
    ended = sorted(x for x in _lines(log) if x.startswith("end"))
    assert started == ["start-0", "start-1"], (
        f"jobs started: {started}. After {signum.name} no new job may start: stop taking work first."
    )
    assert ended == ["end-0", "end-1"], (
        f"jobs ended: {ended}. The supervisor must wait for the jobs in flight before it exits."
    )
    assert code == 0, f"a graceful shutdown exits 0, got {sup.describe_exit()}"


def test_finished_jobs_are_reaped_while_others_run(supervise: Callable[..., Supervisor], tmp_path: Path) -> None:
    """A job that ends first must not wait as a zombie for the older one; its slot is reused."""
    jobs = tmp_path / "jobs.txt"
    jobs.write_text(_job("slow") + "\necho quick >> log\necho next >> log\n")
    log = tmp_path / "log"
    sup = supervise("jobs", "--parallel", "2", str(jobs))
    sup.await_(lambda: {"start-slow", "quick"} <= set(_lines(log)), "the first two jobs to run")

    def zombies() -> list[str]:
        return [f"pid {k.pid} ({k.name()})" for k in sup.children() if k.status() == psutil.STATUS_ZOMBIE]

    sup.await_(
        lambda: "next" in _lines(log) and not zombies(),
        "the quick job to be reaped and the third job to take its slot",
        lambda: (
            f"zombie children of the supervisor: {zombies()}. The quick job exited while the slow "
            "one runs, and nobody waited for it: wait for ANY child (os.waitpid(-1, os.WNOHANG) "
            "on each SIGCHLD), not for the jobs in the order you started them."
        ) if zombies() else f"jobs logged {_lines(log)}",
    )
    (tmp_path / "release").touch()
    assert sup.wait("the slow job was released") == 0
    assert not zombies()


def test_the_status_says_whether_every_job_succeeded(supervise: Callable[..., Supervisor], tmp_path: Path) -> None:
    ok, bad = tmp_path / "ok.txt", tmp_path / "bad.txt"
    ok.write_text("true\nexit 0\n")
    bad.write_text("true\nexit 3\ntrue\n")
    codes = {name: supervise("jobs", str(path)).wait(f"{name} jobs ended") for name, path in
             [("ok", ok), ("bad", bad)]}
    assert codes == {"ok": 0, "bad": 1}, (
        f"exit statuses {codes}: 0 when every job exited 0, 1 when any failed"
    )
