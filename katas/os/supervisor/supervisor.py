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
    # TODO: libc's prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) through ctypes.CDLL(None,
    # use_errno=True); raise OSError if it returns non-zero.
    raise NotImplementedError("become_subreaper")


def spawn(argv: Sequence[str]) -> int:
    """Fork and exec `argv` with a clean signal state; return the child's pid.

    The child starts with nothing blocked and nothing ignored (Python ignores SIGPIPE, and both
    survive exec). If `argv[0]` cannot be executed, the child writes a line naming it to stderr
    and exits 127, as a shell does; it never returns into the supervisor's code.
    """
    # TODO: fork; in the child reset the signal mask (signal.pthread_sigmask) and the
    # dispositions of FORWARDED and SIGPIPE to SIG_DFL (both survive exec), then execvp;
    # end the child with os._exit(COMMAND_NOT_FOUND) in a finally, whatever happens.
    raise NotImplementedError("spawn")


def reap() -> dict[int, int]:
    """Wait for every child that has exited (ours and adopted ones): pid -> raw wait status."""
    # TODO: os.waitpid(-1, os.WNOHANG) in a loop: stop when it returns pid 0 (children
    # left, none exited) or raises ChildProcessError (no children at all).
    raise NotImplementedError("reap")


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
    # TODO: become a subreaper; block FORWARDED and SIGCHLD BEFORE spawning the command
    # (signal.pthread_sigmask), then loop on signal.sigwaitinfo: SIGCHLD -> reap() and
    # return the command's status once it is among the reaped; anything else -> forward it.
    raise NotImplementedError("run_init")


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
    # TODO: block STOP and SIGCHLD, then loop: start `sh -c JOB` children while there is
    # room (and no stop was asked for), sigwaitinfo, and react: a stop signal sets a flag and
    # prints the shutdown line once; SIGCHLD reaps whoever exited and frees their slots.
    raise NotImplementedError("run_jobs")


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
