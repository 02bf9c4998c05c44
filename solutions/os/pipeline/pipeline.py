"""Run a shell pipeline (cmd1 | cmd2 | ...) with os.pipe, os.fork, os.dup2 and os.execvp."""

from __future__ import annotations

import os
import selectors
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
    """Write `input` and read the output at the same time, until the output reaches EOF."""
    # Both directions in one loop: writing everything first deadlocks as soon as the
    # pipeline holds more than the pipes' capacity (64 KiB each) of unread output.
    os.set_blocking(to_first, False)
    out: list[bytes] = []
    sel = selectors.DefaultSelector()
    sel.register(from_last, selectors.EVENT_READ)
    offset = 0
    if input:
        sel.register(to_first, selectors.EVENT_WRITE)
    else:
        os.close(to_first)  # nothing to send: EOF for the first command right away
    try:
        while sel.get_map():
            for key, _ in sel.select():
                if key.fd not in sel.get_map():
                    # closed by an earlier event of this same batch (the output hit EOF first):
                    # writing to it now would be EBADF, or worse, a write to a reused fd
                    continue
                if key.fd == from_last:
                    data = os.read(from_last, CHUNK)
                    if data:
                        out.append(data)
                        continue
                    sel.unregister(from_last)  # EOF: every writer of the last pipe is gone
                    if input and offset < len(input):
                        # The output ended before all input was taken; stop feeding.
                        sel.unregister(to_first)
                        os.close(to_first)
                        offset = len(input)
                    continue
                try:
                    # a non-blocking write takes what fits: advance by what it says it took
                    offset += os.write(to_first, input[offset : offset + CHUNK])
                except BlockingIOError:
                    continue  # the pipe filled up between select() and write(): try later
                except BrokenPipeError:
                    offset = len(input)  # the first command exited without reading it all
                if offset >= len(input):
                    sel.unregister(to_first)
                    os.close(to_first)  # EOF for the first command
    finally:
        sel.close()
        os.close(from_last)
    return b"".join(out)


def run_pipeline(
    commands: Sequence[Sequence[str]], input: bytes = b"", pipefail: bool = False
) -> PipelineResult:
    """Run `commands[0] | commands[1] | ...` like bash, without the subprocess module.

    Each command is an argv list, looked up on PATH (os.execvp). The first command reads
    `input` on its stdin; the last command's stdout is captured and returned; stderr is
    inherited. Every command runs in its own child process, all at the same time.

    - status: the last command's status; with `pipefail`, the status of the rightmost
      command that failed (non-zero), or 0 if all succeeded (bash's `set -o pipefail`).
    - A command that cannot be executed reports COMMAND_NOT_FOUND (127).
    - When this returns, every child has been waited for and no new file descriptor is
      left open in this process.

    >>> run_pipeline([["printf", "b\\na\\n"], ["sort"]]).stdout
    b'a\\nb\\n'
    >>> run_pipeline([["yes"], ["head", "-1"]]).statuses   # yes dies of SIGPIPE
    [141, 0]
    """
    if not commands:
        raise ValueError("a pipeline needs at least one command")
    # n + 1 pipes: input -> cmd0 -> cmd1 -> ... -> cmd(n-1) -> output. Command i reads
    # pipes[i] and writes pipes[i + 1].
    pipes = [os.pipe() for _ in range(len(commands) + 1)]
    all_fds = [fd for pair in pipes for fd in pair]
    # Flush Python's buffers first: a child that ran any Python code that flushes them (a
    # debugging print, a future edit) would otherwise print them a second time. Today's child
    # only execs or os._exit()s, which discard them, so this is belt and braces.
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
        # A fork failed: closing every end lets the children already started see EOF and exit.
        for fd in all_fds:
            os.close(fd)
        for pid in pids:
            os.waitpid(pid, 0)
        raise
    # Keep only our two ends: the write end of the input pipe and the read end of the output
    # pipe. Any other copy we kept of a write end would keep EOF from its reader forever.
    to_first, from_last = pipes[0][1], pipes[-1][0]
    for fd in all_fds:
        if fd not in (to_first, from_last):
            os.close(fd)
    try:
        stdout = _pump(input, to_first, from_last)
    finally:
        # Wait only now: a child blocked on a full pipe that nobody reads would never exit.
        statuses = [exit_status(os.waitpid(pid, 0)[1]) for pid in pids]
    if pipefail:
        status = next((s for s in reversed(statuses) if s != 0), 0)
    else:
        status = statuses[-1]
    return PipelineResult(stdout, statuses, status)
