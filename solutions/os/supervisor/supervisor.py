"""A process supervisor: PID 1 duties (forward signals, reap orphans) and a graceful SIGTERM drain."""

from __future__ import annotations

import argparse
import collections
import contextlib
import ctypes
import os
import signal
import sys
from collections.abc import Sequence

# What `docker stop`, `kill`, Ctrl-C, a reload and the usual user signals send to PID 1.
FORWARDED = (
    signal.SIGTERM,
    signal.SIGINT,
    signal.SIGHUP,
    signal.SIGQUIT,
    signal.SIGUSR1,
    signal.SIGUSR2,
)
STOP = (signal.SIGTERM, signal.SIGINT)  # the signals that start a graceful shutdown of `jobs`
PR_SET_CHILD_SUBREAPER = 36  # from <linux/prctl.h>
COMMAND_NOT_FOUND = 127


def exit_status(wait_status: int) -> int:
    """A raw wait status as a shell's `$?`: the exit code, or 128 + the signal that killed it."""
    code = os.waitstatus_to_exitcode(wait_status)
    return 128 - code if code < 0 else code


def become_subreaper() -> None:
    """Adopt orphaned descendants, as PID 1 does for a whole container (Linux only)."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1) != 0:  # man 2 prctl: (option, unsigned long arg2)
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))


def spawn(argv: Sequence[str]) -> int:
    """Fork and exec `argv` with a clean signal state; return the child's pid.

    The child starts with nothing blocked and nothing ignored (Python ignores SIGPIPE, and both
    survive exec). If `argv[0]` cannot be executed, the child writes a line naming it to stderr
    and exits 127, as a shell does; it never returns into the supervisor's code.
    """
    pid = os.fork()
    if pid == 0:
        try:
            # The signal mask and ignored signals survive exec: a child that inherits our
            # blocked SIGTERM would never see the SIGTERM we forward to it.
            signal.pthread_sigmask(signal.SIG_SETMASK, [])
            for signum in (*FORWARDED, signal.SIGPIPE):
                signal.signal(signum, signal.SIG_DFL)
            os.execvp(argv[0], list(argv))
        except OSError as exc:
            os.write(2, f"supervisor: {argv[0]}: {exc.strerror}\n".encode())
        finally:
            os._exit(COMMAND_NOT_FOUND)  # never return into the supervisor's code
    return pid


def reap() -> dict[int, int]:
    """Wait for every child that has exited (ours and adopted ones): pid -> raw wait status."""
    # One SIGCHLD can stand for many exits (standard signals don't queue), so loop with
    # WNOHANG until nothing is left, and wait for ANY pid (-1): orphans we adopted too.
    done = {}
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            break  # no children at all
        if pid == 0:
            break  # children left, none exited
        done[pid] = status
    return done


def run_init(argv: Sequence[str]) -> int:
    """Run `argv` the way a container's PID 1 (tini, dumb-init) should, and return its status.

    - Signals in FORWARDED sent to the supervisor go to the child instead; the supervisor
      itself does not die of them.
    - The supervisor adopts orphaned descendants (a child subreaper) and reaps every process
      that exits, however many exit at once, so no zombie is left behind; it returns only
      when the process it started has ended.
    - When the child ends, return its status as a shell shows it: the exit code, or 128 + N
      if signal N killed it.
    """
    become_subreaper()
    # Block the signals before forking, then take them one at a time with sigwaitinfo: no
    # handler runs at a random moment, and nothing can arrive between a check and a wait.
    watched = {*FORWARDED, signal.SIGCHLD}
    signal.pthread_sigmask(signal.SIG_BLOCK, watched)
    child = spawn(argv)
    while True:
        info = signal.sigwaitinfo(watched)
        if info.si_signo == signal.SIGCHLD:
            statuses = reap()
            if child in statuses:
                return exit_status(statuses[child])
        else:
            # Forward, don't act: PID 1 in a container has no default action for signals it
            # has no handler for, and the child is the one that knows how to shut down.
            with contextlib.suppress(ProcessLookupError):  # it just exited: SIGCHLD is coming
                os.kill(child, info.si_signo)


def run_jobs(jobs: Sequence[str], parallel: int) -> int:
    """Run each job (a `sh -c` command line), at most `parallel` at a time, in order.

    Never more than `parallel` in flight; a job that ends is reaped at once (while older ones
    still run) and its slot goes to the next job. On SIGTERM or SIGINT: start no new job, write
    `shutdown: waiting for K job(s)` (K = the jobs running then) to stderr, once, let the
    running jobs finish (they are not signalled), then return; a second stop signal changes
    nothing. Returns 0 if every job that ran exited with 0, else 1 (a job killed by signal N
    has status 128 + N: a failure). No jobs at all: 0.

    Example: run_jobs(["sleep 1", "true", "exit 3"], 2) runs the first two, starts `exit 3`
    as soon as `true` ends, and returns 1.
    """
    watched = {*STOP, signal.SIGCHLD}
    signal.pthread_sigmask(signal.SIG_BLOCK, watched)
    pending = collections.deque(jobs)
    running: set[int] = set()
    stopping = failed = False
    while True:
        while not stopping and pending and len(running) < parallel:
            running.add(spawn(["sh", "-c", pending.popleft()]))
        if not running:
            return 1 if failed else 0
        info = signal.sigwaitinfo(watched)
        if info.si_signo in STOP and not stopping:  # a second stop signal changes nothing
            stopping = True
            # Draining, not dying: the work in flight is finished, no new work is taken.
            print(f"shutdown: waiting for {len(running)} job(s)", file=sys.stderr, flush=True)
        for pid, status in reap().items():  # WNOHANG: after a stop signal too, it costs nothing
            running.discard(pid)
            failed |= exit_status(status) != 0


# The tests run this file as a program, in its own process (signals are process-wide, and a
# supervisor must be signalled from outside): `python supervisor.py init sh -c '...'`.
def main(args: Sequence[str] | None = None) -> int:
    """The command line: `supervisor.py init CMD [ARG...]` or `supervisor.py jobs [-j N] FILE`."""
    parser = argparse.ArgumentParser(description=__doc__)
    sub = parser.add_subparsers(dest="mode", required=True)
    init = sub.add_parser("init", help="run one command as its PID 1 would")
    init.add_argument("command", nargs=argparse.REMAINDER)
    jobs = sub.add_parser("jobs", help="run the command lines of FILE, N at a time")
    jobs.add_argument("-j", "--parallel", type=int, default=2)
    jobs.add_argument("file", help="one shell command line per line")
    opts = parser.parse_args(args)
    if opts.mode == "init":
        if not opts.command:
            parser.error("init needs a command")
        return run_init(opts.command)
    with open(opts.file, encoding="utf-8") as lines:
        return run_jobs([line.rstrip("\n") for line in lines if line.strip()], opts.parallel)


if __name__ == "__main__":
    sys.exit(main())
