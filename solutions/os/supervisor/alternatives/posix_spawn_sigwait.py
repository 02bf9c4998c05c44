"""A process supervisor: PID 1 duties and a graceful drain, with posix_spawn, sigwait and waitid."""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import os
import signal
import sys
from collections.abc import Iterator, Sequence

FORWARDED = frozenset({signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1, signal.SIGUSR2})
STOP = frozenset({signal.SIGTERM, signal.SIGINT})
PR_SET_CHILD_SUBREAPER = 36


def become_subreaper() -> None:
    prctl = ctypes.CDLL(None, use_errno=True).prctl
    prctl.argtypes = [ctypes.c_int, ctypes.c_ulong]
    if prctl(PR_SET_CHILD_SUBREAPER, 1) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_CHILD_SUBREAPER)")


def spawn(argv: Sequence[str]) -> int:
    """posix_spawnp with the clean signal state as spawn attributes: no Python code in a child."""
    return os.posix_spawnp(
        argv[0],
        list(argv),
        os.environ,
        setsigmask=[],  # an empty mask: nothing blocked after exec
        setsigdef=[*FORWARDED, signal.SIGPIPE, signal.SIGCHLD],  # nothing ignored
    )


def reaped() -> Iterator[tuple[int, int]]:
    """(pid, status as a shell shows it) for every child that has exited, by waitid."""
    while True:
        try:
            info = os.waitid(os.P_ALL, 0, os.WEXITED | os.WNOHANG)
        except ChildProcessError:
            return
        if info is None:
            return
        code = info.si_status if info.si_code == os.CLD_EXITED else 128 + info.si_status
        yield info.si_pid, code


def run_init(argv: Sequence[str]) -> int:
    become_subreaper()
    watched = FORWARDED | {signal.SIGCHLD}
    signal.pthread_sigmask(signal.SIG_BLOCK, watched)
    try:
        child = spawn(argv)
    except OSError as exc:
        print(f"supervisor: {argv[0]}: {exc.strerror}", file=sys.stderr)
        return 127
    status = None
    while status is None:
        signo = signal.sigwait(watched)
        if signo == signal.SIGCHLD:
            for pid, code in reaped():
                if pid == child:
                    status = code
        else:
            with contextlib.suppress(ProcessLookupError):
                os.kill(child, signo)
    return status


def run_jobs(jobs: Sequence[str], parallel: int) -> int:
    watched = STOP | {signal.SIGCHLD}
    signal.pthread_sigmask(signal.SIG_BLOCK, watched)
    lines = iter(jobs)
    in_flight = 0
    worst = 0
    accepting = True
    stopped = False

    def start_more() -> None:
        nonlocal in_flight, accepting
        while accepting and in_flight < parallel:
            line = next(lines, None)
            if line is None:
                accepting = False
                return
            spawn(["sh", "-c", line])
            in_flight += 1

    start_more()
    while in_flight:
        signo = signal.sigwait(watched)
        if signo in STOP:
            if not stopped:  # once: a second stop signal changes nothing
                stopped = True
                accepting = False
                sys.stderr.write(f"shutdown: waiting for {in_flight} job(s)\n")
                sys.stderr.flush()
            continue
        for _pid, code in reaped():
            in_flight -= 1
            worst = max(worst, code)
        start_more()
    return 1 if worst else 0


def main(args: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    sub = parser.add_subparsers(dest="mode", required=True)
    init = sub.add_parser("init")
    init.add_argument("command", nargs=argparse.REMAINDER)
    jobs = sub.add_parser("jobs")
    jobs.add_argument("-j", type=int, default=2, dest="parallel")
    jobs.add_argument("file")
    opts = parser.parse_args(args)
    if opts.mode == "init":
        if not opts.command:
            parser.error("a command is required")
        return run_init(opts.command)
    with open(opts.file, encoding="utf-8") as f:
        return run_jobs([ln.strip("\n") for ln in f if not ln.isspace() and ln], opts.parallel)


if __name__ == "__main__":
    sys.exit(main())
