"""Tests for spawn and Terminal: a real program on a real pseudo-terminal, Ctrl-C through the kernel."""

from __future__ import annotations

import contextlib
import errno
import json
import os
import signal
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import psutil
import pytest

from .terminal import CTRL_C, Terminal, spawn

PATIENCE = 5.0  # seconds any program here may take (each needs milliseconds)

# A Python program that reports what it sees of its terminal, one JSON line.
PROBE = r"""
import json, os
def pgrp():
    try:
        return os.tcgetpgrp(0) == os.getpgrp()
    except OSError as exc:
        return exc.strerror
print(json.dumps({
    "isatty": [os.isatty(fd) for fd in (0, 1, 2)],
    "ttynames": [os.ttyname(fd) if os.isatty(fd) else None for fd in (0, 1, 2)],
    "session_leader": os.getsid(0) == os.getpid(),
    "foreground": pgrp(),
}))
"""

Spawn = Callable[..., Terminal]


@pytest.fixture
def spawned() -> Iterator[Spawn]:
    """spawn(), with every program killed and every master closed when the test ends."""
    terminals: list[Terminal] = []
    slaves_before = set(_slave_fds())

    def start(argv: Sequence[str], **kwargs: Any) -> Terminal:
        term = spawn(argv, **kwargs)
        assert isinstance(term, Terminal), f"spawn returned {term!r}, not a Terminal"
        terminals.append(term)
        return term

    yield start
    for term in terminals:
        with contextlib.suppress(OSError):
            os.close(term.master_fd)
        with contextlib.suppress(psutil.Error, ChildProcessError):
            if psutil.Process(term.pid).ppid() == os.getpid():
                os.kill(term.pid, signal.SIGKILL)
                os.waitpid(term.pid, 0)
    for fd in set(_slave_fds()) - slaves_before:  # slave ends the code under test leaked
        with contextlib.suppress(OSError):
            os.close(fd)


def _stat(pid: int) -> dict[str, int]:
    """The fields of /proc/<pid>/stat that say how a process sits on its terminal."""
    raw = Path(f"/proc/{pid}/stat").read_text()
    fields = raw[raw.rindex(")") + 2 :].split()  # after "pid (comm) "
    return {"pgrp": int(fields[2]), "session": int(fields[3]), "tty_nr": int(fields[4]),
            "tpgid": int(fields[5])}


def _ignored(pid: int) -> set[int]:
    """The signals a process ignores, from the SigIgn mask in /proc/<pid>/status."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("SigIgn:"):
            mask = int(line.split()[1], 16)
            return {n for n in range(1, 65) if mask & (1 << (n - 1))}
    return set()


def _slave_fds() -> dict[int, str]:
    """This process's descriptors that point at a pty slave (/dev/pts/N)."""
    found = {}
    for name in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):
            target = os.readlink(f"/proc/self/fd/{name}")
            if target.startswith("/dev/pts/"):
                found[int(name)] = target
    return found


def _is_zombie(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def _wait_exited(term: Terminal, what: str, timeout: float = PATIENCE) -> None:
    """Wait (without reaping) until the program has exited; explain from /proc if it doesn't."""
    deadline = time.monotonic() + timeout
    while not _is_zombie(term.pid):
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: the program (pid {term.pid}) still runs after "
                                 f"{timeout:g} s.\n{_diagnose_ctrl_c(term.pid)}")
        time.sleep(0.01)


def _diagnose_ctrl_c(pid: int) -> str:
    return _why_ctrl_c_cannot_work(pid) or "It has a controlling terminal and SIGINT is not ignored."


def _why_ctrl_c_cannot_work(pid: int) -> str:
    """What the kernel's view of the process says about Ctrl-C reaching it ("" if it can)."""
    try:
        stat, ignored = _stat(pid), _ignored(pid)
    except OSError:
        return ""  # it has gone: nothing to explain
    if stat["tty_nr"] == 0:
        return (
            "It has no controlling terminal (tty_nr 0 in /proc/<pid>/stat), so the line "
            "discipline has nobody to send SIGINT to when it reads Ctrl-C. In the child, call "
            "os.setsid() (a new session, no terminal yet) and then "
            "fcntl.ioctl(slave, termios.TIOCSCTTY, 0) to make the pty its controlling terminal."
        )
    if stat["tpgid"] != stat["pgrp"]:
        return (
            f"Its controlling terminal's foreground process group is {stat['tpgid']}, but the "
            f"program is in group {stat['pgrp']}: Ctrl-C goes to the foreground group only."
        )
    if signal.SIGINT in ignored:
        return (
            "SIGINT is ignored in the program (SIG_IGN in /proc/<pid>/status SigIgn): an ignored "
            "signal stays ignored across fork and exec, so it inherited that from your process. "
            "Reset it in the child before exec: signal.signal(signal.SIGINT, signal.SIG_DFL)."
        )
    return ""


def _read_to_eof(term: Terminal, what: str) -> bytes:
    """term.read_to_eof() on a program that ends by itself, with the classic mistakes explained."""
    _wait_exited(term, what)  # all its output now sits in the pty: EOF is due right away
    try:
        return term.read_to_eof(timeout=1.0)
    except TimeoutError as exc:  # before OSError: TimeoutError is one
        held = _slave_fds()
        if held:
            raise AssertionError(
                f"{what}: the program has exited, but read_to_eof saw no end of file. Your "
                f"process still holds the slave end of the pty ({held}): the master reports "
                "EOF only once every copy of the slave is closed. Close the slave in the "
                "parent right after fork."
            ) from exc
        raise
    except OSError as exc:
        if exc.errno == errno.EIO:
            raise AssertionError(
                f"{what}: read_to_eof raised {exc!r}. On Linux, reading a pty master after "
                "every slave fd is closed (the program exited) fails with EIO instead of "
                "returning b'': that IS the end of file. Catch OSError with errno.EIO."
            ) from exc
        raise


def _probe(term: Terminal) -> dict[str, object]:
    out = _read_to_eof(term, "the probe")
    line = out.strip().splitlines()[-1] if out.strip() else b""
    try:
        seen: dict[str, object] = json.loads(line)
    except ValueError:
        raise AssertionError(f"the probe's output is not its one JSON line: {out!r}") from None
    return seen


# --- what the program sees ---------------------------------------------------------------------


def test_stdin_stdout_and_stderr_are_the_same_terminal(spawned: Spawn) -> None:
    seen = _probe(spawned([sys.executable, "-c", PROBE]))
    assert seen["isatty"] == [True, True, True], (
        f"isatty(0), isatty(1), isatty(2) in the program: {seen['isatty']}. All three must be the "
        "pty's slave end: dup2(slave, 0), dup2(slave, 1) and dup2(slave, 2) in the child."
    )
    names = seen["ttynames"]
    assert isinstance(names, list) and len(set(names)) == 1 and str(names[0]).startswith("/dev/pts/"), (
        f"the program's terminals: {names}; expected one /dev/pts/N on all three fds"
    )


def test_the_terminal_is_the_programs_controlling_terminal(spawned: Spawn) -> None:
    """A new session led by the program, with the pty as its controlling terminal."""
    seen = _probe(spawned([sys.executable, "-c", PROBE]))
    assert seen["session_leader"] is True, (
        "the program does not lead its own session (getsid() != getpid()): call os.setsid() in "
        "the child. A terminal's first program (a shell) is a session leader."
    )
    assert seen["foreground"] is True, (
        f"os.tcgetpgrp(0) in the program gave {seen['foreground']!r}: the pty is not its "
        "controlling terminal (or it is not in the foreground). After os.setsid(), "
        "fcntl.ioctl(slave, termios.TIOCSCTTY, 0) makes the slave the controlling terminal."
    )


def test_the_real_tty_command_names_the_terminal(spawned: Spawn) -> None:
    out = _read_to_eof(spawned(["tty"]), "`tty`")
    assert out.startswith(b"/dev/pts/") and out.endswith(b"\r\n"), (
        f"`tty` printed {out!r}; expected /dev/pts/N and \\r\\n. (`not a tty` means its stdin is "
        "not the slave; a bare \\n means the output did not go through a terminal, whose line "
        "discipline turns \\n into \\r\\n: termios flag ONLCR.)"
    )


@pytest.mark.parametrize(("rows", "cols"), [(24, 80), (50, 132)], ids=["24x80", "50x132"])
def test_the_window_size_is_the_terminals(spawned: Spawn, rows: int, cols: int) -> None:
    out = _read_to_eof(spawned(["stty", "size"], rows=rows, cols=cols), "`stty size`")
    assert out == f"{rows} {cols}\r\n".encode(), (
        f"`stty size` printed {out!r}, expected {rows} {cols}. The window size is kept by the "
        "kernel's tty and set by the terminal emulator: fcntl.ioctl(master, termios.TIOCSWINSZ, "
        "struct.pack('HHHH', rows, cols, 0, 0))."
    )


# --- talking to it -----------------------------------------------------------------------------

PROMPT = b"What is your name? "
ASK = 'read -r -p "What is your name? " name; echo "Hello, $name!"'


def test_answer_a_prompt_that_appears_only_on_a_terminal(spawned: Spawn) -> None:
    """bash's `read -p` prints its prompt only when its stdin is a terminal."""
    term = spawned(["bash", "--norc", "--noprofile", "-c", ASK])
    try:
        got = term.read_until(PROMPT, timeout=PATIENCE)
    except TimeoutError as exc:
        raise AssertionError(
            f"no prompt {PROMPT!r} within {PATIENCE:g} s ({exc}). bash shows it only when stdin "
            "is a terminal: is fd 0 of the program the slave end?"
        ) from None
    assert got.endswith(PROMPT), f"read_until must return the text up to the marker; got {got!r}"
    term.send(b"Ada\n")
    rest = _read_to_eof(term, "after answering")
    assert rest == b"Ada\r\nHello, Ada!\r\n", (
        f"after typing 'Ada\\n' the screen showed {rest!r}; expected b'Ada\\r\\nHello, Ada!\\r\\n': "
        "the line discipline echoes what you type (ECHO) and the program answers."
    )
    assert os.waitstatus_to_exitcode(term.wait()) == 0


def test_output_past_the_marker_is_kept_for_the_next_read(spawned: Spawn) -> None:
    """One read from the master often returns more than you asked for."""
    term = spawned(["printf", "first\\nsecond\\nthird\\n"])
    _wait_exited(term, "printf")
    assert term.read_until(b"first\r\n", timeout=PATIENCE) == b"first\r\n"
    try:
        second = term.read_until(b"second\r\n", timeout=1.0)
    except (TimeoutError, EOFError) as exc:
        raise AssertionError(
            f"read_until(b'second\\r\\n') failed with {exc!r}, but the program wrote "
            "'first\\nsecond\\nthird\\n' in one go: the first read_until received bytes past "
            "the marker and dropped them. Keep them in a buffer for the next read."
        ) from None
    assert second == b"second\r\n", f"the second read_until returned {second!r}"
    assert _read_to_eof(term, "printf") == b"third\r\n"


def test_ctrl_d_at_the_start_of_a_line_is_end_of_file(spawned: Spawn) -> None:
    term = spawned(["cat"])
    term.send(b"hello\n")
    echoed = term.read_until(b"hello\r\nhello\r\n", timeout=PATIENCE)
    assert echoed == b"hello\r\nhello\r\n", f"expected the echo then cat's copy, got {echoed!r}"
    term.send(b"\x04")
    _wait_exited(term, "cat after Ctrl-D")
    assert os.waitstatus_to_exitcode(term.wait()) == 0, "cat ends normally at end of file"


def test_read_to_eof_ends_when_the_program_exits(spawned: Spawn) -> None:
    before = set(_slave_fds())
    term = spawned(["echo", "bye"])
    assert _read_to_eof(term, "`echo bye`") == b"bye\r\n"
    assert os.waitstatus_to_exitcode(term.wait()) == 0
    left = {fd: target for fd, target in _slave_fds().items() if fd not in before}
    assert not left, f"your process still holds pty slave fds {left}: close the slave after fork"


def test_close_closes_the_master_and_reaps_the_program(spawned: Spawn) -> None:
    term = spawned(["true"])
    fd, pid = term.master_fd, term.pid
    _wait_exited(term, "true")
    term.close()
    assert not os.path.exists(f"/proc/self/fd/{fd}"), f"close() left the master fd {fd} open"
    assert not psutil.pid_exists(pid) or psutil.Process(pid).ppid() != os.getpid(), (
        f"pid {pid} is still a child after close(): wait for it (waitpid), or it stays a zombie"
    )


# --- Ctrl-C ------------------------------------------------------------------------------------

WAIT_FOR_CTRL_C = 'echo ready; exec sleep 30'


def _check_ctrl_c(term: Terminal) -> None:
    term.read_until(b"ready\r\n", timeout=PATIENCE)
    problem = _why_ctrl_c_cannot_work(term.pid)
    if problem:
        raise AssertionError(f"Ctrl-C cannot reach the program (pid {term.pid}). {problem}")
    term.interrupt()
    _wait_exited(term, "Ctrl-C (\\x03 written to the master)")
    status = term.wait()
    assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGINT, (
        f"after Ctrl-C the program ended with wait status {status:#x}; expected it killed by "
        f"SIGINT ({int(signal.SIGINT)})"
    )
    assert b"^C" in _read_to_eof(term, "after Ctrl-C"), (
        "the line discipline echoes Ctrl-C as ^C (ECHOCTL): interrupt() must write \\x03 to the master"
    )


def test_ctrl_c_reaches_the_program_as_sigint(spawned: Spawn) -> None:
    """The kernel, not your code, turns the byte 0x03 into SIGINT for the foreground group."""
    _check_ctrl_c(spawned(["sh", "-c", WAIT_FOR_CTRL_C]))


def test_ctrl_c_works_even_when_the_caller_ignores_sigint(spawned: Spawn) -> None:
    """A script's background job (`cmd &`, nohup) runs with SIGINT ignored; its programs inherit it."""
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        term = spawned(["sh", "-c", WAIT_FOR_CTRL_C])
    finally:
        signal.signal(signal.SIGINT, previous)
    _check_ctrl_c(term)


def test_interrupt_writes_ctrl_c_to_the_terminal(spawned: Spawn) -> None:
    """With ISIG turned off, Ctrl-C is an ordinary byte the program reads."""
    reader = "stty -isig -icanon -echo; echo ready; head -c 1 | od -An -tx1"
    term = spawned(["sh", "-c", reader])
    term.read_until(b"ready\r\n", timeout=PATIENCE)
    term.interrupt()
    out = _read_to_eof(term, "the raw reader")
    assert out.split() == [CTRL_C.hex().encode()], (
        f"the program read {out!r} from its terminal; expected the single byte 03. interrupt() "
        "types Ctrl-C: it writes b'\\x03' to the master, the line discipline does the rest."
    )
