"""Run a shell pipeline (cmd1 | cmd2 | ...) with os.pipe, os.fork, os.dup2 and os.execvp."""

from __future__ import annotations

import os
import signal
import sys
import threading
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


def _exec_child(argv: Sequence[str], stdin_fd: int, stdout_fd: int) -> None:
    """In the forked child: wire fds 0 and 1, then become the command. Never returns."""
    try:
        os.dup2(stdin_fd, 0)
        os.dup2(stdout_fd, 1)
        signal.signal(signal.SIGPIPE, signal.SIG_DFL)
        os.execvp(argv[0], list(argv))  # every other fd is close-on-exec (PEP 446)
    except OSError as exc:
        os.write(2, f"pipeline: {argv[0]}: {exc.strerror}\n".encode())
    finally:
        os._exit(COMMAND_NOT_FOUND)


def _feed(fd: int, data: bytes) -> None:
    """A thread's whole job: blocking writes of the input, then EOF."""
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view[:CHUNK]):]
    except BrokenPipeError:
        pass  # the first command exited without reading it all: normal
    finally:
        os.close(fd)


def run_pipeline(
    commands: Sequence[Sequence[str]], input: bytes = b"", pipefail: bool = False
) -> PipelineResult:
    """Like a shell: pipes made one stage at a time, the parent keeping only the read end of the
    previous stage; a feeder thread writes the input while this thread reads the output."""
    if not commands:
        raise ValueError("a pipeline needs at least one command")
    sys.stdout.flush()
    sys.stderr.flush()
    stdin_read, stdin_write = os.pipe()
    previous = stdin_read  # what the next command reads
    pids: list[int] = []
    try:
        for argv in commands:
            read_end, write_end = os.pipe()
            try:
                pid = os.fork()
                if pid == 0:
                    _exec_child(argv, previous, write_end)
                pids.append(pid)
            finally:
                os.close(previous)
                os.close(write_end)
            previous = read_end
    except BaseException:
        os.close(stdin_write)
        os.close(previous)
        for pid in pids:
            os.waitpid(pid, 0)
        raise
    feeder = threading.Thread(target=_feed, args=(stdin_write, input), daemon=True)
    feeder.start()
    chunks = []
    try:
        while chunk := os.read(previous, CHUNK):
            chunks.append(chunk)
    finally:
        os.close(previous)
        statuses = [exit_status(os.waitpid(pid, 0)[1]) for pid in pids]
        feeder.join()
    status = next((s for s in reversed(statuses) if s != 0), 0) if pipefail else statuses[-1]
    return PipelineResult(b"".join(chunks), statuses, status)
