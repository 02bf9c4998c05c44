"""Tests for run_pipeline: output and exit statuses identical to bash's, no deadlock, no leaks."""

from __future__ import annotations

import contextlib
import linecache
import os
import random
import shlex
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import psutil
import pytest

from dojo.testing import Background

from .pipeline import PipelineResult, exit_status, run_pipeline

# A child that returns from run_pipeline into the test is stopped with this status (see _run).
CHILD_ESCAPED = 86
PATIENCE = 8.0  # seconds before a pipeline counts as stuck (10 MB takes well under 1 s)
STALL = 2.5  # ...or seconds with every child asleep on a pipe and no byte moving
MiB = 1 << 20

Commands = Sequence[Sequence[str]]


# --- helpers -----------------------------------------------------------------------------


def _line(commands: Commands) -> str:
    return " | ".join(shlex.join(argv) for argv in commands)


def _bash(commands: Commands, input: bytes, pipefail: bool, tmp: Path) -> PipelineResult:
    """The same pipeline run by bash: its stdout, ${PIPESTATUS[@]} and $?."""
    status_file = tmp / "bash-status"
    script = (
        ("set -o pipefail; " if pipefail else "")
        + _line(commands)
        + '; s="$? ${PIPESTATUS[*]}"; echo "$s" > "$KATA_STATUS_FILE"'
    )
    proc = subprocess.run(
        ["bash", "-c", script],
        input=input,
        capture_output=True,
        env={**os.environ, "KATA_STATUS_FILE": str(status_file)},
        timeout=30,
        check=False,
    )
    status, *statuses = (int(word) for word in status_file.read_text().split())
    return PipelineResult(proc.stdout, statuses, status)


def _open_fds() -> dict[int, str]:
    """This process's open file descriptors and what each refers to."""
    fds = {}
    for name in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):  # the fd listdir itself used is closed by now
            fds[int(name)] = os.readlink(f"/proc/self/fd/{name}")
    return fds


def _is_write_end(fd: int) -> bool:
    with open(f"/proc/self/fdinfo/{fd}") as info:
        flags = next(line for line in info if line.startswith("flags:")).split()[1]
    return int(flags, 8) & os.O_ACCMODE == os.O_WRONLY


def _proc_fd(pid: int, fd: int) -> str:
    try:
        return os.readlink(f"/proc/{pid}/fd/{fd}")
    except OSError:
        return "?"


def _diagnose(fds_before: dict[int, str], worker: threading.Thread, kids: list[psutil.Process]) -> str:
    """Explain a stuck pipeline from what the kernel shows: who holds which pipe end, who waits."""
    lines = []
    held = {
        fd: target for fd, target in _open_fds().items()
        if fd not in fds_before and target.startswith("pipe:")
    }
    writes_held = {target: fd for fd, target in held.items() if _is_write_end(fd)}
    reads_held = {target: fd for fd, target in held.items() if not _is_write_end(fd)}
    info = []
    first = min(kids, key=lambda k: (k.create_time(), k.pid), default=None)
    input_pipe = _proc_fd(first.pid, 0) if first is not None else None
    for kid in kids:
        try:
            name, pid = kid.name(), kid.pid
            wchan = Path(f"/proc/{pid}/wchan").read_text()
        except (psutil.Error, OSError):
            continue
        info.append((kid, name, pid, wchan, _proc_fd(pid, 0), _proc_fd(pid, 1)))
    for kid, name, pid, wchan, stdin, stdout in info:
        if "pipe_read" in wchan:
            lines.append(f"`{name}` (pid {pid}) is blocked reading its stdin {stdin}.")
            if stdin in writes_held and stdin != input_pipe:
                lines.append(
                    f"  Your process still holds the write end of {stdin} (fd "
                    f"{writes_held[stdin]}), so `{name}` never sees EOF: a reader gets EOF only "
                    "once EVERY copy of the write end is closed, the parent's included. Close "
                    "the children's pipe ends in the parent right after forking."
                )
            elif stdin in writes_held:
                lines.append(
                    f"  That is the input pipe; your process holds its write end (fd "
                    f"{writes_held[stdin]}) and has not finished writing the input and closing "
                    "it. Feed the input while the children run, never after waiting for them."
                )
        elif "pipe_write" in wchan:
            lines.append(
                f"`{name}` (pid {pid}) is blocked writing to a full pipe ({stdout}); a pipe holds "
                "only 64 KiB, and nobody is reading it."
            )
        elif kid.status() == psutil.STATUS_ZOMBIE:
            lines.append(f"`{name}` (pid {pid}) has exited (a zombie until it is waited for).")
        else:
            lines.append(f"`{name}` (pid {pid}) is {kid.status()} ({wchan or 'running'}).")
    if any("blocked writing to a full pipe" in line for line in lines):
        lines.append(
            "  If your code waits for the children (waitpid) before reading their output, or "
            "writes all the input before reading any output, the pipeline deadlocks as soon as "
            "more than a pipe's capacity is in flight: read the output WHILE the children run "
            "(and feed the input at the same time: selectors or a thread), wait after EOF."
        )
    frame = sys._current_frames().get(worker.ident or -1)
    learner_file = run_pipeline.__code__.co_filename
    while frame is not None:
        if frame.f_code.co_filename == learner_file:
            code = linecache.getline(learner_file, frame.f_lineno).strip()
            lines.append(f"run_pipeline was at {Path(learner_file).name}:{frame.f_lineno}: {code}")
            break
        frame = frame.f_back
    for target in sorted(set(writes_held) & set(reads_held)):
        lines.append(
            f"Your process holds both ends of {target} (fds {reads_held[target]} and "
            f"{writes_held[target]}): reading it never reaches EOF while you hold its write end "
            "yourself. Close the children's pipe ends in the parent right after forking."
        )
    if held and not writes_held:
        lines.append(f"Pipe ends your process held: {sorted(held.items())}")
    return "\n".join(lines)


def _children() -> set[int]:
    return {p.pid for p in psutil.Process().children(recursive=True)}


def _progress(kids_before: set[int]) -> tuple[tuple[int, str, int, int], ...] | None:
    """Each child's state and byte counters, or None while some child is busy elsewhere."""
    seen = []
    for pid in sorted(_children() - kids_before):
        try:
            proc = psutil.Process(pid)
            status = proc.status()
            if status != psutil.STATUS_ZOMBIE:
                if "pipe_" not in Path(f"/proc/{pid}/wchan").read_text():
                    return None  # running, exec'ing, sleeping on something else: not stuck
                io = proc.io_counters()
                seen.append((pid, status, io.read_chars, io.write_chars))
            else:
                seen.append((pid, status, 0, 0))
        except (psutil.Error, OSError):
            return None
    return tuple(seen) or None


def _stuck(worker: threading.Thread, kids_before: set[int]) -> bool:
    """Wait for `worker`; True if it is stuck: no byte moved for STALL s, or PATIENCE is over."""
    start = time.monotonic()
    last, since = None, start
    while True:
        worker.join(0.05)
        if not worker.is_alive():
            return False
        now = time.monotonic()
        if now - start > PATIENCE:
            return True
        snapshot = _progress(kids_before)
        if snapshot is None or snapshot != last:
            last, since = snapshot, now
        elif now - since > STALL:
            return True


def _run(commands: Commands, input: bytes = b"", pipefail: bool = False) -> PipelineResult:
    """run_pipeline in a watched thread: a stuck pipeline fails with a diagnosis, not a hang."""
    me = os.getpid()
    fds_before = _open_fds()
    kids_before = _children()

    def call() -> PipelineResult:
        try:
            return run_pipeline(commands, input=input, pipefail=pipefail)
        finally:
            if os.getpid() != me:  # a forked child came back here instead of exec'ing: stop it
                os._exit(CHILD_ESCAPED)

    job = Background(call, name="run_pipeline")
    if _stuck(job.thread, kids_before):
        kids = [psutil.Process(pid) for pid in _children() - kids_before]
        diagnosis = _diagnose(fds_before, job.thread, kids)
        for kid in kids:  # unblocks run_pipeline, which is waiting for them
            with contextlib.suppress(psutil.Error):
                kid.kill()
        job.thread.join(2)
        raise AssertionError(
            f"`{_line(commands)}` (with {len(input)} bytes of input) is stuck: every child "
            f"slept on a pipe with no byte moving for {STALL:g} s (or {PATIENCE:g} s passed).\n"
            f"{diagnosis}"
        )
    result = job.result()
    if CHILD_ESCAPED in result.statuses:
        raise AssertionError(
            f"`{_line(commands)}`: a forked child returned from run_pipeline into the caller "
            f"(statuses {result.statuses}; {CHILD_ESCAPED} means 'escaped'). After fork, the "
            "child must end with exec or os._exit, whatever happens: wrap its code in "
            "try/finally with os._exit(127) in the finally."
        )
    return result


def _explain(commands: Commands, pipefail: bool, ours: PipelineResult, bash: PipelineResult) -> str:
    mode = " under `set -o pipefail`" if pipefail else ""
    lines = [
        f"`{_line(commands)}`{mode}:",
        f"  bash:  stdout={bash.stdout[:80]!r} PIPESTATUS={bash.statuses} $?={bash.status}",
        f"  yours: stdout={ours.stdout[:80]!r} statuses={ours.statuses} status={ours.status}",
    ]
    if 141 in bash.statuses and 141 not in ours.statuses:
        lines.append(
            "A command bash reports as 141 (128 + SIGPIPE) ended otherwise under your pipeline: "
            "Python ignores SIGPIPE, and an ignored signal stays ignored across exec, so the "
            "child saw EPIPE instead of being killed. Restore the default "
            "(signal.signal(signal.SIGPIPE, signal.SIG_DFL)) in the child before execvp."
        )
    elif ours.statuses == bash.statuses and ours.status != bash.status:
        lines.append(
            "Right statuses, wrong summary: $? is the LAST command's status; with pipefail it "
            "is the status of the rightmost command that failed, or 0 if none did."
        )
    elif ours.statuses != bash.statuses:
        lines.append(
            "Statuses differ: each is exit_status(waitpid(pid)) of that command's own child "
            "(128 + N when killed by signal N; 127 when exec failed)."
        )
    return "\n".join(lines)


# --- exit_status ---------------------------------------------------------------------------


@pytest.mark.stage(1, "statuses and pipefail")
@pytest.mark.parametrize(
    ("shell_command", "expected"),
    [("exit 0", 0), ("exit 3", 3), ("exit 255", 255), ("kill -HUP $$", 129), ("kill -TERM $$", 143),
     ("kill -KILL $$", 137)],
)
def test_exit_status_decodes_real_wait_statuses(shell_command: str, expected: int) -> None:
    """os.system returns a raw wait status, as os.waitpid does."""
    raw = os.system(shell_command)
    got = exit_status(raw)
    assert got == expected, (
        f"`{shell_command}` gives raw wait status {raw} (0x{raw:04x}); a shell shows "
        f"$?={expected}, exit_status gave {got}. The exit code sits in the high byte, a "
        "terminating signal in the low 7 bits, and shells report a signal as 128 + its number."
    )


# --- same as bash --------------------------------------------------------------------------

CASES: dict[str, tuple[list[list[str]], bytes]] = {
    "one command": ([["echo", "hello world"]], b""),
    "sort": ([["printf", "b\\na\\nc\\n"], ["sort"]], b""),
    "three stages": ([["seq", "1", "2000"], ["grep", "7"], ["wc", "-l"]], b""),
    "input reaches the first command": ([["tr", "a-z", "A-Z"]], b"hello\npipes\n"),
    "input through sort and uniq": ([["sort"], ["uniq", "-c"]], b"b\na\nb\nb\n"),
    "false | true": ([["false"], ["true"]], b""),
    "true | false": ([["true"], ["false"]], b""),
    "exit codes": ([["sh", "-c", "exit 3"], ["sh", "-c", "exit 5"], ["true"]], b""),
    # codes falling to the right: pipefail takes the rightmost failure, not the largest
    "falling exit codes": ([["sh", "-c", "exit 5"], ["sh", "-c", "exit 3"], ["true"]], b""),
    "failures around a success": ([["sh", "-c", "exit 2"], ["true"], ["sh", "-c", "exit 1"]], b""),
    "killed by a signal": ([["sh", "-c", "kill -TERM $$"], ["cat"]], b""),
    "command not found": ([["no-such-command-kata"], ["cat"]], b"x\n"),
    "yes | head -1": ([["yes"], ["head", "-1"]], b""),
}


@pytest.mark.stage(2, "the same as bash")
@pytest.mark.parametrize("pipefail", [False, True], ids=["plain", "pipefail"])
@pytest.mark.parametrize("case", list(CASES))
def test_output_and_statuses_match_bash(case: str, pipefail: bool, tmp_path: Path) -> None:
    commands, input = CASES[case]
    ours = _run(commands, input, pipefail)
    bash = _bash(commands, input, pipefail, tmp_path)
    assert (ours.stdout, ours.statuses, ours.status) == (bash.stdout, bash.statuses, bash.status), (
        _explain(commands, pipefail, ours, bash)
    )


@pytest.mark.stage(2, "the same as bash")
def test_yes_head_terminates_and_yes_is_killed_by_sigpipe() -> None:
    """yes writes forever; it stops only because head exits and its next write hits no reader."""
    result = _run([["yes"], ["head", "-1"]])
    assert result.stdout == b"y\n"
    assert result.statuses == [141, 0], (
        f"bash gives PIPESTATUS 141 0 (yes killed by SIGPIPE = 13, + 128); yours {result.statuses}. "
        "141 needs SIGPIPE's default action in the child: Python ignores SIGPIPE, and ignored "
        "signals stay ignored across exec, so reset it before execvp."
    )


@pytest.mark.stage(1, "statuses and pipefail")
def test_pipefail_reports_the_rightmost_failure() -> None:
    commands = [["sh", "-c", "exit 3"], ["sh", "-c", "exit 5"], ["true"]]
    plain, strict = _run(commands), _run(commands, pipefail=True)
    assert plain.statuses == strict.statuses == [3, 5, 0]
    assert plain.status == 0, f"without pipefail $? is the last command's status (0), got {plain.status}"
    assert strict.status == 5, (
        f"with pipefail $? is the status of the RIGHTMOST command that failed (5, from the "
        f"second command), got {strict.status}"
    )


@pytest.mark.stage(2, "the same as bash")
def test_a_command_that_cannot_be_executed_exits_127_in_its_own_child(capfd: pytest.CaptureFixture[str]) -> None:
    result = _run([["no-such-command-kata"]], b"")
    assert result.statuses == [127], (
        f"exec of a missing command fails with FileNotFoundError in the child; the child must "
        f"then os._exit(127) like a shell does. Got statuses {result.statuses}."
    )
    assert "no-such-command-kata" in capfd.readouterr().err, (
        "nothing on stderr named the command that could not run: like bash, the child writes a "
        "line to fd 2 (e.g. 'no-such-command-kata: No such file or directory') before os._exit(127)"
    )


@pytest.mark.stage(1, "statuses and pipefail")
def test_pipefail_is_off_unless_asked_for() -> None:
    result = run_pipeline([["false"], ["true"]])
    assert result.status == 0, (
        f"`false | true` without pipefail: $? is the last command's status, 0; got {result.status}. "
        "pipefail must default to False"
    )


@pytest.mark.stage(2, "the same as bash")
def test_a_first_command_that_reads_nothing_ends_the_pipeline_cleanly_every_time() -> None:
    """`true` exits at once: its stdin's reader and its stdout's writer vanish together."""
    for attempt in range(30):
        try:
            result = _run([["true"]], b"x" * MiB)
        except OSError as exc:
            raise AssertionError(
                f"attempt {attempt + 1}: {exc!r}. When the output's EOF and the input's broken pipe "
                "arrive in the same select() round and the EOF is handled first, the input fd is "
                "already closed when its own event comes up: skip events for fds you unregistered"
            ) from exc
        assert (result.stdout, result.statuses) == (b"", [0])


# --- the 64 KiB trap -----------------------------------------------------------------------


@pytest.mark.stage(3, "more than a pipe holds")
def test_ten_megabytes_of_input_flow_through_cat_cat_cat() -> None:
    """Far more than the pipes hold: feed the input and read the output at the same time."""
    data = random.Random(6).randbytes(10 * MiB)
    result = _run([["cat"], ["cat"], ["cat"]], data)
    assert result.statuses == [0, 0, 0]
    assert len(result.stdout) == len(data) and result.stdout == data, (
        f"10 MiB went in, {len(result.stdout)} bytes came out"
        + ("" if len(result.stdout) != len(data) else " (same length, different bytes)")
    )


@pytest.mark.stage(3, "more than a pipe holds")
def test_a_first_command_that_reads_a_little_at_a_time_still_gets_every_byte() -> None:
    """`dd bs=1000` drains the pipe 1000 bytes per read: most big writes only partly fit."""
    data = random.Random(7).randbytes(4 * MiB)
    result = _run([["dd", "bs=1000", "status=none"], ["wc", "-c"]], data)
    assert result.statuses == [0, 0]
    got = int(result.stdout.split()[0]) if result.stdout.split() else 0
    assert got == len(data), (
        f"4 MiB went in, {got} bytes reached the second command. A write to a non-blocking pipe "
        "takes only what fits and returns that count: advance by the number os.write returned, "
        "and send the rest on the next round, never skip it"
    )


@pytest.mark.stage(3, "more than a pipe holds")
def test_output_much_bigger_than_the_input_keeps_flowing_while_input_is_fed() -> None:
    """od turns each byte into three: a blocking write of the input waits on od, od on you."""
    data = random.Random(8).randbytes(MiB)
    expected = subprocess.run(["od", "-An", "-tx1", "-v"], input=data, capture_output=True, check=True).stdout
    result = _run([["od", "-An", "-tx1", "-v"]], data)
    assert result.statuses == [0]
    assert result.stdout == expected, (
        f"od's output differs from running od directly ({len(result.stdout)} bytes, expected "
        f"{len(expected)})"
    )


@pytest.mark.stage(3, "more than a pipe holds")
def test_ten_megabytes_of_output_are_read_before_the_children_are_waited_for() -> None:
    result = _run([["head", "-c", str(10 * MiB), "/dev/zero"], ["cat"]])
    assert result.statuses == [0, 0]
    assert result.stdout == bytes(10 * MiB), f"expected 10 MiB of zeros, got {len(result.stdout)} bytes"


@pytest.mark.stage(3, "more than a pipe holds")
def test_the_first_command_may_exit_without_reading_all_the_input() -> None:
    """Writing to a pipe nobody reads raises BrokenPipeError (EPIPE) in Python: stop feeding."""
    try:
        result = _run([["head", "-c", "5"]], b"abcdefgh" * MiB)
    except BrokenPipeError as exc:
        raise AssertionError(
            "`head -c 5` exits after reading a little, and your next write to its stdin raised "
            "BrokenPipeError (EPIPE: no reader left). Catch it and stop writing: it is normal."
        ) from exc
    assert (result.stdout, result.statuses) == (b"abcde", [0])


# --- nothing left behind -------------------------------------------------------------------


@pytest.mark.stage(4, "nothing left behind")
def test_no_file_descriptor_is_left_open_in_the_caller() -> None:
    before = _open_fds()
    _run([["printf", "x\\ny\\n"], ["sort"], ["cat"]], b"")
    _run([["cat"], ["cat"]], b"some input\n")
    leaked = {fd: target for fd, target in _open_fds().items() if fd not in before}
    assert not leaked, (
        f"run_pipeline left these descriptors open (fd: what, from /proc/self/fd): {leaked}. "
        "Close your copies of the children's pipe ends after forking, and your own two ends "
        "(input and output) when you are done with them."
    )


@pytest.mark.stage(4, "nothing left behind")
def test_every_child_is_waited_for() -> None:
    before = _children()
    _run([["true"], ["sh", "-c", "exit 4"], ["cat"]])
    left = [
        f"pid {p.pid} ({p.name()}, {p.status()})"
        for p in psutil.Process().children(recursive=True)
        if p.pid not in before
    ]
    assert not left, (
        f"children still exist after run_pipeline returned: {left}. A child that exited but "
        "was never waited for stays a zombie; waitpid every child, not only the last."
    )


@pytest.mark.stage(4, "nothing left behind")
def test_children_hold_no_pipe_end_besides_stdin_and_stdout(tmp_path: Path) -> None:
    """A stray write end in a sibling would keep its reader from ever seeing EOF."""
    before = _open_fds()
    listing = _run([["true"], ["sh", "-c", 'cat >/dev/null; ls -l /proc/$$/fd/'], ["cat"]]).stdout
    extra = []
    for line in listing.decode().splitlines():
        if " -> " not in line:
            continue
        left, target = line.split(" -> ", 1)
        fd = int(left.split()[-1])
        if fd > 2 and before.get(fd) != target:  # fds this process had before are inherited
            extra.append(f"fd {fd} -> {target}")
    assert not extra, (
        f"the middle command holds descriptors besides 0, 1 and 2: {extra}. In the child, close "
        "every pipe fd after dup2 (os.pipe fds are close-on-exec unless made inheritable)."
    )
