"""Run a shell pipeline (cmd1 | cmd2 | ...) with os.pipe, os.fork, os.dup2 and os.execvp."""

from __future__ import annotations

import os
import signal
from collections.abc import Sequence
from dataclasses import dataclass

# The status a shell reports when a command cannot be found or executed (bash uses 126 for
# "found but not executable"; 127 for both is fine here).
COMMAND_NOT_FOUND = 127


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
    # TODO: decode the wait status (os.WIFEXITED / os.WEXITSTATUS / os.WTERMSIG, or
    # os.waitstatus_to_exitcode, which gives -S for a signal).
    raise NotImplementedError("exit_status")


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
    # TODO: one os.pipe() between each pair of neighbours, plus one for the input and one
    # for the output.
    # TODO: fork a child per command. In the child: dup2 the right pipe ends onto fd 0 and
    # fd 1, close every pipe fd, restore SIGPIPE's default action, execvp; whatever happens
    # (even an exception), the child must end with os._exit and never return.
    # TODO: in the parent, close every pipe end the children use (or a reader never sees
    # EOF), then feed the input and read the output at the same time (a pipe holds only
    # 64 KiB), and only after the output reaches EOF wait for every child.
    raise NotImplementedError("run_pipeline")
