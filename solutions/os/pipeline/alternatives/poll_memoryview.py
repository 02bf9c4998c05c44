"""Run a shell pipeline (cmd1 | cmd2 | ...) with os.pipe, os.fork, os.dup2 and os.execvp."""

from __future__ import annotations

import os
import select
import signal
import sys
from collections.abc import Sequence
from dataclasses import dataclass

# The status a shell reports when a command cannot be found or executed (bash uses 126 for
# "found but not executable"; 127 for both is fine here).
COMMAND_NOT_FOUND = 127

CHUNK = 65536


@dataclass(frozen=True)
class PipelineResult:
    """What a pipeline produced, as bash would report it."""

    stdout: bytes  # everything the last command wrote to its standard output
    statuses: list[int]  # each command's status, left to right: bash's ${PIPESTATUS[@]}
    status: int  # the pipeline's status: bash's $?


def exit_status(wait_status: int) -> int:
    """Turn a raw wait status from os.waitpid into the number a shell shows as `$?`.

    A process that exited with code N gives N; one killed by signal S gives 128 + S.

    >>> exit_status(3 << 8)          # exited with code 3
    3
    >>> exit_status(signal.SIGKILL)  # killed by SIGKILL (9)
    137
    """
    # waitstatus_to_exitcode decodes both cases; a signal comes back negative, and shells
    # add 128 so that a status always fits in one byte.
    code = os.waitstatus_to_exitcode(wait_status)
    return 128 - code if code < 0 else code


def _exec_child(argv: Sequence[str], stdin_fd: int, stdout_fd: int, pipe_fds: list[int]) -> None:
    """In the forked child: wire fds 0 and 1, then become the command. Never returns."""
    try:
        os.dup2(stdin_fd, 0)
        os.dup2(stdout_fd, 1)
        # Every pipe end is now either fd 0/1 or useless here; an extra write end would keep a
        # reader downstream from ever seeing EOF. (os.pipe fds are also close-on-exec, PEP 446,
        # but closing them explicitly does not rely on that.)
        for fd in pipe_fds:
            os.close(fd)
        # Python ignores SIGPIPE, and an ignored signal stays ignored across exec: without this,
        # `yes | head -1` would end with yes failing on EPIPE (status 1) instead of being
        # killed by SIGPIPE (141) as under bash.
        signal.signal(signal.SIGPIPE, signal.SIG_DFL)
        os.execvp(argv[0], list(argv))
    except OSError as exc:
        os.write(2, f"pipeline: {argv[0]}: {exc.strerror}\n".encode())
    finally:
        # Reached only if exec failed (or something above raised): the child must not return
        # into the caller, which would go on running the parent's code in a second process.
        os._exit(COMMAND_NOT_FOUND)


def _pump(input: bytes, to_first: int, from_last: int) -> bytes:
    """One poll() loop over both ends; the input goes out through a shrinking memoryview."""
    os.set_blocking(to_first, False)
    pending = memoryview(input)
    poller = select.poll()
    poller.register(from_last, select.POLLIN)
    open_fds = {from_last}
    if pending:
        poller.register(to_first, select.POLLOUT)
        open_fds.add(to_first)
    else:
        os.close(to_first)
    out = bytearray()

    def stop_feeding() -> None:
        poller.unregister(to_first)
        os.close(to_first)
        open_fds.discard(to_first)

    while from_last in open_fds:
        for fd, _events in poller.poll():
            if fd not in open_fds:
                continue
            if fd == from_last:
                data = os.read(from_last, CHUNK)
                if data:
                    out += data
                    continue
                poller.unregister(from_last)
                open_fds.discard(from_last)
                if to_first in open_fds:
                    stop_feeding()
                continue
            try:
                written = os.write(to_first, pending[:CHUNK])
            except BlockingIOError:
                continue
            except BrokenPipeError:
                stop_feeding()
                continue
            pending = pending[written:]
            if not pending:
                stop_feeding()
    os.close(from_last)
    return bytes(out)


def run_pipeline(
    commands: Sequence[Sequence[str]], input: bytes = b"", pipefail: bool = False
) -> PipelineResult:
    """All pipes up front, as in the reference; statuses collected last command first."""
    if not commands:
        raise ValueError("a pipeline needs at least one command")
    pipes = [os.pipe() for _ in range(len(commands) + 1)]
    all_fds = [fd for pair in pipes for fd in pair]
    sys.stdout.flush()
    sys.stderr.flush()
    pids: list[int] = []
    try:
        for i, argv in enumerate(commands):
            pid = os.fork()
            if pid == 0:
                _exec_child(argv, pipes[i][0], pipes[i + 1][1], all_fds)
            pids.append(pid)
    except BaseException:
        for fd in all_fds:
            os.close(fd)
        for pid in pids:
            os.waitpid(pid, 0)
        raise
    to_first, from_last = pipes[0][1], pipes[-1][0]
    for fd in all_fds:
        if fd not in (to_first, from_last):
            os.close(fd)
    by_pid: dict[int, int] = {}
    try:
        stdout = _pump(input, to_first, from_last)
    finally:
        # last command first (the order does not matter once the output hit EOF); never
        # waitpid(-1), which would also reap children the caller started
        for pid in reversed(pids):
            by_pid[pid] = exit_status(os.waitpid(pid, 0)[1])
    statuses = [by_pid[pid] for pid in pids]
    failures = [s for s in statuses if s != 0]
    status = (failures[-1] if failures else 0) if pipefail else statuses[-1]
    return PipelineResult(stdout, statuses, status)
