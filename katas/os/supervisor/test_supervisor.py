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
        with open(self.stderr_path, "wb") as stderr, open(workdir / "supervisor.stdout", "wb") as out:
            self.proc = subprocess.Popen(
                [sys.executable, str(script), *args],
                cwd=workdir,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=stderr,
                start_new_session=True,
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


STATUSES = [
    ("exit 0", 0),
    ("exit 7", 7),
    ("exit 255", 255),
    ("kill -TERM $$", 143),
    ("kill -KILL $$", 137),
    ("kill -HUP $$", 129),
    ("kill -PIPE $$", 141),
]


@pytest.mark.stage(1, "init runs the command")
@pytest.mark.parametrize(("script", "expected"), STATUSES, ids=[s for s, _ in STATUSES])
def test_init_exits_with_the_commands_status(supervise: Callable[..., Supervisor], script: str, expected: int) -> None:
    """The oracle is the shell: `sh -c 'sh -c SCRIPT'; echo $?` prints these same numbers."""
    sup = supervise("init", "sh", "-c", script)
    code = sup.wait(f"`sh -c '{script}'` ended")
    hint = ""
    if expected > 128 and code == 0:
        name = signal.Signals(expected - 128).name
        hint = (
            f"\nThe shell survived its own {name}: in the command the signal was blocked or "
            "ignored (Python itself ignores SIGPIPE). The signal mask and ignored signals survive "
            "fork and exec; in the child, unblock everything (signal.pthread_sigmask("
            "signal.SIG_SETMASK, [])) and reset signals to SIG_DFL before exec."
        )
    elif expected > 128 and code in (256 - expected, 256 - (expected - 128)):
        hint = (
            "\nA signal N is 128 + N, not 128 - N nor -N (which the kernel truncates to 256 - N): "
            "os.waitstatus_to_exitcode gives -N for a killed process."
        )
    assert code == expected, (
        f"`supervisor.py init sh -c '{script}'` exited {sup.describe_exit()}; expected {expected}, "
        "the command's status as a shell shows it (128 + N when signal N killed it), as "
        f"`docker run` reports it.{hint} Output:\n{sup.stderr[-1500:]}"
    )


@pytest.mark.stage(1, "init runs the command")
def test_a_command_that_cannot_run_is_127_and_no_command_at_all_a_usage_error(
    supervise: Callable[..., Supervisor],
) -> None:
    sup = supervise("init", "no-such-command-h-os", "its-argument")
    code = sup.wait("the command could not be executed")
    assert code == 127, (
        f"`init no-such-command-h-os` exited {sup.describe_exit()}: a command that cannot be "
        "executed is 127, as in a shell. The child must end with os._exit(127) when execvp fails, "
        f"never return into the supervisor's own code. Output:\n{sup.stderr[-1500:]}"
    )
    assert "no-such-command-h-os" in sup.stderr, (
        f"the error on stderr must name the command that could not run (argv[0]); it said {sup.stderr[-500:]!r}"
    )
    for args in ([], ["init"]):
        usage = supervise(*args).wait(f"`supervisor.py {' '.join(args)}`")
        assert usage == 2, (
            f"`supervisor.py {' '.join(args)}` exited {usage}: with no mode, or `init` with no "
            "command, there is nothing to run: a usage error, exit status 2 (argparse's parser.error)."
        )


FORWARDED = ("HUP", "INT", "QUIT", "USR1", "USR2", "TERM")
TRAPS = """
trap 'echo HUP >> signals' HUP
trap 'echo INT >> signals' INT
trap 'echo QUIT >> signals' QUIT
trap 'echo USR1 >> signals' USR1
trap 'echo USR2 >> signals' USR2
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


@pytest.mark.stage(2, "forwarding signals")
def test_init_forwards_every_listed_signal_to_the_command(supervise: Callable[..., Supervisor], tmp_path: Path) -> None:
    """Each of the six reaches the command (HUP twice) and kills nobody; TERM ends it, status 0."""
    log = tmp_path / "signals"
    sup = supervise("init", "sh", "-c", TRAPS)
    sup.await_(lambda: "ready" in _lines(log), "the command to start")
    sent = ["ready"]
    for name in ("HUP", "INT", "QUIT", "USR1", "USR2", "HUP", "TERM"):
        os.kill(sup.pid, signal.Signals[f"SIG{name}"])
        sent.append(name)
        count = len(sent)
        sup.await_(
            lambda count=count: len(_lines(log)) >= count,  # type: ignore[misc]
            f"SIG{name} (signal {len(sent) - 1} of 7), sent to the supervisor, to reach the command",
            lambda name=name: _forwarding_problem(sup, name),  # type: ignore[misc]
        )
    code = sup.wait("SIGTERM made the command exit 0")
    assert code == 0, (
        f"the command exited 0 on SIGTERM, the supervisor {sup.describe_exit()}: it must "
        f"return the command's status. Output:\n{sup.stderr[-1500:]}"
    )
    assert _lines(log) == sent, (
        f"the command logged {_lines(log)}, the test sent {sent[1:]} one at a time: each signal "
        "the supervisor receives goes to the command once, as itself (os.kill(child, signo))"
    )


@pytest.mark.stage(2, "forwarding signals")
@pytest.mark.parametrize("name", ["INT", "QUIT", "USR2", "TERM"])
def test_a_forwarded_signal_the_command_does_not_handle_kills_it_and_init_reports_128_plus_n(
    supervise: Callable[..., Supervisor], name: str
) -> None:
    """`sleep` keeps every default disposition: the forwarded signal kills it, not the supervisor."""
    sup = supervise("init", "sleep", "30")
    sup.await_(lambda: any(k.name() == "sleep" for k in sup.children()), "`sleep 30` to start")
    number = signal.Signals[f"SIG{name}"]
    os.kill(sup.pid, number)
    code = sup.wait(f"SIG{name} was sent to the supervisor of `sleep 30`")
    expected = 128 + number
    hint = ""
    if code is not None and code < 0:
        hint = (
            f" The supervisor itself died of SIG{name}: take it (blocked + sigwaitinfo, or a "
            "handler) and pass it on with os.kill(child, signo), never leave it its default action."
        )
    assert code == expected, (
        f"after SIG{name} the supervisor {sup.describe_exit()}; expected {expected}: `sleep` "
        f"dies of the forwarded SIG{name} and init exits 128 + {int(number)} as its status.{hint}"
    )


ORPHAN = """
( sleep 0.2 & echo $! > orphan.pid )
while [ ! -e release ]; do sleep 0.01; done
"""


@pytest.mark.stage(3, "reaping orphans")
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


STORM = """
( for i in $(seq 20); do ( while [ ! -e go ]; do sleep 0.01; done ) & echo $! >> orphans; done
  for i in $(seq 5); do setsid sh -c 'while [ ! -e go ]; do sleep 0.01; done' & echo $! >> orphans; done )
while [ ! -e release ]; do sleep 0.01; done
"""


def _zombies_of(pid: int) -> list[int]:
    """Zombie children of `pid`, from the kernel's own table (/proc/<p>/stat: state and ppid)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            stat = (entry / "stat").read_text()
            state, ppid = stat.rsplit(")", 1)[1].split()[:2]
            if state == "Z" and int(ppid) == pid:
                found.append(int(entry.name))
    return found


@pytest.mark.stage(3, "reaping orphans")
def test_init_reaps_every_orphan_when_many_exit_at_once(supervise: Callable[..., Supervisor], tmp_path: Path) -> None:
    """25 adopted orphans end together (5 daemonized with setsid): one SIGCHLD may stand for all."""
    sup = supervise("init", "sh", "-c", STORM)
    pidfile = tmp_path / "orphans"
    sup.await_(lambda: len(_lines(pidfile)) == 25, "the command to start 25 background subshells")
    orphans = {int(p) for p in _lines(pidfile)}
    sup.await_(
        lambda: orphans <= {k.pid for k in sup.children()},
        "the 25 orphans to be adopted by the supervisor",
        lambda: "Become a subreaper first: prctl(PR_SET_CHILD_SUBREAPER, 1).",
    )
    (tmp_path / "go").touch()

    def left() -> list[int]:
        return [p for p in orphans if psutil.pid_exists(p)]

    sup.await_(
        lambda: not left(),
        "the 25 orphans, which exited together, to be reaped",
        lambda: (
            "init exited while its command still ran, when orphans exited: return only when the "
            "pid you started is among the reaped, whatever else you reap."
            if sup.exited()
            else f"{len(_zombies_of(sup.pid))} of 25 orphans are still zombies of the supervisor: "
            "standard signals don't queue, so 25 exits can make ONE SIGCHLD. On each SIGCHLD "
            "reap in a loop, os.waitpid(-1, os.WNOHANG) until it returns pid 0 or raises "
            "ChildProcessError, not one waitpid per signal. Wait for ANY pid (-1): pid 0 means "
            "only your own process group, and a daemon that called setsid() has left it."
        ),
    )
    assert not sup.exited(), (
        f"init {sup.describe_exit()} while its command still runs, after orphans exited: return "
        "only when the pid you started is among the reaped, whatever else you reap."
    )
    (tmp_path / "release").touch()
    assert sup.wait("the command was released") == 0
    assert not _zombies_of(sup.pid)


# --- jobs: a graceful drain on SIGTERM ---------------------------------------------------------


def _job(name: str) -> str:
    """A job that logs its start, waits for the test's go, and logs its end."""
    return f"echo start-{name} >> log; while [ ! -e release ]; do sleep 0.01; done; echo end-{name} >> log"


def _held_job(i: int) -> str:
    """Logs start-i; waits for release-i; logs orphaned-i if the supervisor left it; logs end-i."""
    return (
        f"echo start-{i} >> log; while [ ! -e release-{i} ]; do sleep 0.01; done; "
        f'[ "$(cut -d" " -f4 /proc/$$/stat)" = "$PPID" ] || echo orphaned-{i} >> log; '
        f"echo end-{i} >> log"
    )


class HeldJobs:
    """The markers held jobs leave in `log`: who started, who ended, in which order."""

    def __init__(self, log: Path) -> None:
        self.log = log

    def events(self) -> list[str]:
        return _lines(self.log)

    def started(self) -> list[int]:
        return [int(e[6:]) for e in self.events() if e.startswith("start-")]

    def ended(self) -> list[int]:
        return [int(e[4:]) for e in self.events() if e.startswith("end-")]

    def running(self) -> list[int]:
        ended = set(self.ended())
        return [i for i in self.started() if i not in ended]

    def peak(self) -> int:
        now = peak = 0
        for e in self.events():
            now += e.startswith("start-") - e.startswith("end-")
            peak = max(peak, now)
        return peak


def _write_held_jobs(path: Path, count: int) -> None:
    path.write_text("".join(_held_job(i) + "\n" for i in range(count)))


def _settled(sup: Supervisor) -> None:
    """Give a supervisor that starts too many jobs the chance to: wait until it blocks (or 50 polls)."""
    for _ in range(50):
        with contextlib.suppress(psutil.Error):
            if psutil.Process(sup.pid).status() in (psutil.STATUS_SLEEPING, psutil.STATUS_ZOMBIE):
                return
        time.sleep(0.002)


@pytest.mark.stage(4, "jobs n at a time")
@pytest.mark.parametrize(
    ("parallel", "count"),
    [(1, 3), (2, 5), (3, 3), (4, 2), (None, 4)],
    ids=["j1-3-jobs", "j2-5-jobs", "j3-3-jobs", "j4-2-jobs", "default-j-4-jobs"],
)
def test_jobs_keeps_exactly_n_in_flight_and_a_freed_slot_is_reused_at_once(
    supervise: Callable[..., Supervisor], tmp_path: Path, parallel: int | None, count: int
) -> None:
    """Observed at the jobs: N run while N+ wait; releasing the NEWEST starts the next at once."""
    n = 2 if parallel is None else parallel
    jobs = tmp_path / "jobs.txt"
    _write_held_jobs(jobs, count)
    held = HeldJobs(tmp_path / "log")
    args = ("jobs", str(jobs)) if parallel is None else ("jobs", "-j", str(parallel), str(jobs))
    sup = supervise(*args)
    flag = f"-j {n}" if parallel is not None else "no -j (N defaults to 2)"
    for finished in range(count + 1):
        want = min(n, count - finished)
        sup.await_(
            lambda want=want: len(held.running()) == want or held.peak() > n,  # type: ignore[misc]
            f"{want} job(s) in flight ({finished} of {count} done, {flag})",
            lambda: (
                f"jobs in flight: {held.running()}, log: {held.events()}. A job that ends frees "
                "its slot AT ONCE, even while older ones still run: reap ANY child "
                "(os.waitpid(-1, os.WNOHANG) on every SIGCHLD) and start the next pending job, "
                "not the oldest job, nor a whole batch."
            ),
        )
        _settled(sup)
        assert held.peak() <= n, (
            f"{held.peak()} jobs were in flight at once with {flag} (log: {held.events()}): start "
            "a job only while fewer than N run (len(running) < N)."
        )
        assert len(held.running()) == want, f"jobs in flight: {held.running()}, expected {want}"
        if want:
            newest = held.running()[-1]
            (tmp_path / f"release-{newest}").touch()
            sup.await_(lambda i=newest: i in held.ended(), f"job {newest} to end once released")  # type: ignore[misc]
    code = sup.wait("every job ended")
    assert held.peak() == min(n, count), f"peak in flight {held.peak()}, expected {min(n, count)}"
    first = min(n, count)  # these start together, and log in any order
    assert sorted(held.started()[:first]) == list(range(first)) and held.started()[first:] == list(
        range(first, count)
    ), f"jobs started in the order {held.started()}: the lines of FILE start in file order."
    assert code == 0, f"every job exited 0, the supervisor {sup.describe_exit()}: expected 0"


STOPS = [
    (signal.SIGTERM, 2, 5, 0, 2),
    (signal.SIGINT, 2, 5, 0, 2),
    (signal.SIGTERM, 3, 5, 0, 3),
    (signal.SIGINT, 2, 2, 1, 1),
]


@pytest.mark.stage(5, "a graceful drain")
@pytest.mark.parametrize(
    ("signum", "parallel", "count", "done_before", "in_flight"),
    STOPS,
    ids=["TERM-2-of-5", "INT-2-of-5", "TERM-3-of-5", "INT-last-1"],
)
def test_a_stop_signal_drains_in_flight_jobs_and_exits_0(
    supervise: Callable[..., Supervisor],
    tmp_path: Path,
    signum: signal.Signals,
    parallel: int,
    count: int,
    done_before: int,
    in_flight: int,
) -> None:
    jobs = tmp_path / "jobs.txt"
    _write_held_jobs(jobs, count)
    held = HeldJobs(tmp_path / "log")
    sup = supervise("jobs", "-j", str(parallel), str(jobs))
    for _ in range(done_before):
        sup.await_(lambda: len(held.running()) == parallel, f"{parallel} jobs to start")
        newest = held.running()[-1]
        (tmp_path / f"release-{newest}").touch()
        sup.await_(lambda i=newest: i in held.ended(), f"job {newest} to end once released")  # type: ignore[misc]
    sup.await_(lambda: len(held.running()) == in_flight, f"{in_flight} job(s) to be in flight")
    _settled(sup)
    running = held.running()
    job_pids = [k.pid for k in sup.children()]
    os.kill(sup.pid, signum)
    line = f"shutdown: waiting for {in_flight} job(s)"
    sup.await_(
        lambda: "shutdown:" in sup.stderr,
        f"{line!r} on stderr after {signum.name}",
        lambda: f"jobs logged {held.events()}",
    )
    assert line in sup.stderr.splitlines(), (
        f"{in_flight} job(s) were in flight ({running}); the line must be exactly {line!r} (K is "
        f"the number of jobs still running), it said {sup.stderr!r}"
    )
    other = signal.SIGINT if signum == signal.SIGTERM else signal.SIGTERM
    os.kill(sup.pid, other)  # a second stop signal: the drain goes on, nothing is said twice
    _settled(sup)
    if sup.exited() and not any(psutil.pid_exists(pid) for pid in job_pids):
        raise AssertionError(
            f"after {signum.name} the jobs in flight {running} died before finishing (no end "
            f"marker; log: {held.events()}), and the supervisor {sup.describe_exit()}: a drain "
            "finishes work in flight. Don't signal or kill the jobs; just start no new ones."
        )
    assert not sup.exited(), (
        f"the supervisor {sup.describe_exit()} while {in_flight} job(s) still ran: exiting on "
        f"{signum.name} (sys.exit in a handler, a return) abandons the work in flight. Set a "
        "flag, stop taking new jobs, and return only when every running job has been reaped."
    )
    for i in running:
        (tmp_path / f"release-{i}").touch()
    sup.await_(
        lambda: set(running) <= set(held.ended()),
        f"the jobs in flight {running} to finish once released",
        lambda: (
            f"after {signum.name} the jobs in flight {running} died before finishing (they never "
            f"logged their end; log: {held.events()}): a drain finishes work in flight. Don't "
            "signal or kill the jobs; just start no new ones."
        ),
    )
    code = sup.wait("the in-flight jobs were released")
    orphaned = [e for e in held.events() if e.startswith("orphaned")]
    assert not orphaned, (
        f"{orphaned}: jobs outlived the supervisor, it exited while they ran: that abandons the "
        "work in flight. Return only when every running job has been reaped."
    )
    started_after = [i for i in held.started() if i not in running and i not in held.ended()]
    assert not started_after and len(held.started()) == done_before + in_flight, (
        f"jobs started: {held.started()}, in flight at {signum.name}: {running}. After a stop "
        "signal no new job may start: stop taking work first."
    )
    assert sup.stderr.count("shutdown:") == 1, (
        f"the shutdown line was printed {sup.stderr.count('shutdown:')} times: a second stop "
        f"signal during the drain changes nothing. Output: {sup.stderr!r}"
    )
    assert code == 0, f"a graceful shutdown exits 0, got {sup.describe_exit()}"


@pytest.mark.stage(4, "jobs n at a time")
def test_jobs_reaps_every_job_when_many_end_at_once(supervise: Callable[..., Supervisor], tmp_path: Path) -> None:
    """30 jobs in flight end together: one SIGCHLD may stand for all of them."""
    jobs = tmp_path / "jobs.txt"
    jobs.write_text("echo start >> log; while [ ! -e go ]; do sleep 0.01; done\n" * 30)
    sup = supervise("jobs", "-j", "30", str(jobs))
    sup.await_(lambda: len(_lines(tmp_path / "log")) == 30, "30 jobs to start")
    (tmp_path / "go").touch()
    sup.await_(
        sup.exited,
        "the supervisor to exit after its 30 jobs ended together",
        lambda: (
            f"{len(_zombies_of(sup.pid))} of 30 jobs are zombies nobody reaped, and the supervisor "
            "waits for them for ever: standard signals don't queue, so 30 exits can make ONE "
            "SIGCHLD. Reap in a loop, os.waitpid(-1, os.WNOHANG) until pid 0 or ChildProcessError."
        ),
    )
    code = sup.wait("30 jobs ended together")
    assert code == 0, f"every job exited 0, the supervisor {sup.describe_exit()}"


@pytest.mark.stage(4, "jobs n at a time")
def test_jobs_with_an_empty_file_or_blank_lines(supervise: Callable[..., Supervisor], tmp_path: Path) -> None:
    empty, blanks = tmp_path / "empty.txt", tmp_path / "blanks.txt"
    empty.write_text("")
    blanks.write_text("\n   \necho héllo-1 >> log\n\n\t\necho 2 >> log\n\n")
    assert supervise("jobs", str(empty)).wait("an empty FILE") == 0, (
        "an empty FILE has no job to run: nothing failed, exit 0"
    )
    code = supervise("jobs", "-j", "1", str(blanks)).wait("a FILE with blank lines")
    assert (code, _lines(tmp_path / "log")) == (0, ["héllo-1", "2"]), (
        f"exit {code}, log {_lines(tmp_path / 'log')}: the two non-blank lines (one in UTF-8) run "
        "in order, blank lines are skipped, exit 0"
    )


@pytest.mark.stage(4, "jobs n at a time")
def test_finished_jobs_are_reaped_while_others_run(supervise: Callable[..., Supervisor], tmp_path: Path) -> None:
    """A job that ends first must not wait as a zombie for the older one; its slot is reused."""
    jobs = tmp_path / "jobs.txt"
    jobs.write_text(_job("slow") + "\necho quick >> log\necho next >> log\n")
    log = tmp_path / "log"
    sup = supervise("jobs", "-j", "2", str(jobs))
    sup.await_(lambda: {"start-slow", "quick"} <= set(_lines(log)), "the first two jobs to run")

    def zombies() -> list[str]:
        return [f"pid {k.pid} ({k.name()})" for k in sup.children() if k.status() == psutil.STATUS_ZOMBIE]

    sup.await_(
        lambda: "next" in _lines(log) and not zombies(),
        "the quick job to be reaped and the third job to take its slot",
        lambda: (
            (
                f"zombie children of the supervisor: {zombies()}. The quick job exited while the slow "
                "one runs, and nobody waited for it: wait for ANY child (os.waitpid(-1, os.WNOHANG) "
                "on each SIGCHLD), not for the jobs in the order you started them."
            )
            if zombies()
            else f"jobs logged {_lines(log)}"
        ),
    )
    (tmp_path / "release").touch()
    assert sup.wait("the slow job was released") == 0
    assert not zombies()


STATUS_FILES = [
    ("true\nexit 0\n", 0),
    ("true\nexit 3\ntrue\n", 1),
    ("exit 1\n", 1),
    ("exit 255\ntrue\n", 1),
    ("kill -TERM $$\n", 1),
    ("kill -KILL $$\ntrue\n", 1),
    ("no-such-command-h-os\n", 1),
]


@pytest.mark.stage(4, "jobs n at a time")
@pytest.mark.parametrize(("lines", "expected"), STATUS_FILES, ids=[text.replace("\n", ";") for text, _ in STATUS_FILES])
def test_the_status_says_whether_every_job_succeeded(
    supervise: Callable[..., Supervisor], tmp_path: Path, lines: str, expected: int
) -> None:
    """Each job logs its line number first: every line runs, a failure stops nothing."""
    jobs = tmp_path / "jobs.txt"
    jobs.write_text("".join(f"echo {i} >> log; {line}\n" for i, line in enumerate(lines.splitlines())))
    code = supervise("jobs", "-j", "1", str(jobs)).wait("the jobs ended")
    ran = _lines(tmp_path / "log")
    assert ran == [str(i) for i in range(len(lines.splitlines()))], (
        f"of the jobs {lines.splitlines()} these ran: {ran}. Every line runs, in order, whatever "
        "the status of the ones before."
    )
    assert code == expected, (
        f"jobs {lines.splitlines()} made the supervisor exit {code}, expected {expected}: 0 when "
        "every job exited 0, 1 when any did not. A job killed by a signal failed too, though it "
        "has no exit code (WEXITSTATUS is 0, waitstatus_to_exitcode -N): its status is 128 + N."
    )
