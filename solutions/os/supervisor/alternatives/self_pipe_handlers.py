"""A process supervisor: PID 1 duties and a graceful drain, with handlers and a self-pipe."""

from __future__ import annotations

import argparse
import collections
import contextlib
import ctypes
import os
import select
import signal
import sys
from collections.abc import Sequence

FORWARDED = (
    signal.SIGTERM,
    signal.SIGINT,
    signal.SIGHUP,
    signal.SIGQUIT,
    signal.SIGUSR1,
    signal.SIGUSR2,
)
STOP = (signal.SIGTERM, signal.SIGINT)
PR_SET_CHILD_SUBREAPER = 36


def exit_status(wait_status: int) -> int:
    if os.WIFSIGNALED(wait_status):
        return 128 + os.WTERMSIG(wait_status)
    return os.WEXITSTATUS(wait_status)


def become_subreaper() -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1) == -1:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))


def spawn(argv: Sequence[str]) -> int:
    pid = os.fork()
    if pid:
        return pid
    status = 127
    try:
        # Our handlers are Python's C handler, which writes to the parent's wakeup pipe:
        # the child must not keep them, nor the SIGPIPE that Python ignores.
        for signum in (*FORWARDED, signal.SIGCHLD, signal.SIGPIPE):
            signal.signal(signum, signal.SIG_DFL)
        signal.pthread_sigmask(signal.SIG_SETMASK, ())
        os.execvp(argv[0], list(argv))
    except OSError as exc:
        os.write(2, f"supervisor: cannot run {argv[0]!r}: {exc.strerror}\n".encode())
    finally:
        os._exit(status)


def reap() -> dict[int, int]:
    done = {}
    with contextlib.suppress(ChildProcessError):
        while (found := os.waitpid(-1, os.WNOHANG))[0]:
            done[found[0]] = found[1]
    return done


class SignalPipe:
    """Signals as bytes on a pipe: a no-op handler each, set_wakeup_fd writes their numbers."""

    def __init__(self, signals: Sequence[int]) -> None:
        self.read_end, write_end = os.pipe()
        os.set_blocking(write_end, False)
        signal.set_wakeup_fd(write_end, warn_on_full_buffer=False)
        for signum in signals:
            signal.signal(signum, lambda *_: None)

    def take(self) -> bytes:
        """Block until at least one signal came; return their numbers in arrival order."""
        select.select([self.read_end], [], [])
        return os.read(self.read_end, 4096)


def run_init(argv: Sequence[str]) -> int:
    become_subreaper()
    pipe = SignalPipe((*FORWARDED, signal.SIGCHLD))  # before fork: no SIGCHLD can be lost
    child = spawn(argv)
    while True:
        for signo in pipe.take():
            if signo == signal.SIGCHLD:
                statuses = reap()
                if child in statuses:
                    return exit_status(statuses[child])
            else:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(child, signo)


def run_jobs(jobs: Sequence[str], parallel: int) -> int:
    pipe = SignalPipe((*STOP, signal.SIGCHLD))
    todo = collections.deque(jobs)
    running: set[int] = set()
    stopping = False
    failures = 0
    while True:
        while todo and len(running) < parallel and not stopping:
            running.add(spawn(["sh", "-c", todo.popleft()]))
        if not running:
            return int(failures > 0)
        for signo in pipe.take():
            if signo != signal.SIGCHLD:
                if not stopping:
                    stopping = True
                    sys.stderr.write(f"shutdown: waiting for {len(running)} job(s)\n")
                    sys.stderr.flush()
                continue
            for pid, status in reap().items():
                running.discard(pid)
                failures += exit_status(status) != 0


def main(args: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    sub = parser.add_subparsers(dest="mode", required=True)
    init = sub.add_parser("init")
    init.add_argument("command", nargs=argparse.REMAINDER)
    jobs = sub.add_parser("jobs")
    jobs.add_argument("-j", dest="parallel", type=int, default=2)
    jobs.add_argument("file")
    opts = parser.parse_args(args)
    if opts.mode == "init":
        if not opts.command:
            parser.error("init needs a command")
        return run_init(opts.command)
    with open(opts.file, encoding="utf-8") as lines:
        return run_jobs([line for line in lines if line.strip()], opts.parallel)


if __name__ == "__main__":
    sys.exit(main())
