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
    signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1, signal.SIGUSR2,
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
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))


def spawn(argv: Sequence[str]) -> int:
    """Fork and exec `argv` with a clean signal state; return the child's pid."""
    sys.stdout.flush()
    sys.stderr.flush()
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
      that exits, so no zombie is left behind.
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

    On SIGTERM or SIGINT: start no new job, write `shutdown: waiting for N job(s)` to stderr,
    let the running jobs finish (they are not signalled), then return. Every finished job is
    reaped as soon as it ends, while others still run. Returns 0 if every job that ran exited
    with 0, else 1.
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
        if info.si_signo in STOP:
            if not stopping:
                stopping = True
                # Draining, not dying: the work in flight is finished, no new work is taken.
                print(f"shutdown: waiting for {len(running)} job(s)", file=sys.stderr, flush=True)
            return 0  # MISTAKE: leaves at once, abandoning the jobs in flight
        for pid, status in reap().items():
            running.discard(pid)
            failed |= exit_status(status) != 0


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
