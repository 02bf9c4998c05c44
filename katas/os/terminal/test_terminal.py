"""Tests for spawn and Terminal: a real program on a real pseudo-terminal, Ctrl-C through the kernel."""

from __future__ import annotations

import contextlib
import errno
import json
import os
import signal
import sys
import termios
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
import fcntl, json, os, struct, termios
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
    "winsize": struct.unpack("HHHH", fcntl.ioctl(0, termios.TIOCGWINSZ, bytes(8))),
    "lflag": termios.tcgetattr(0)[3],
    "oflag": termios.tcgetattr(0)[1],
}))
"""

Spawn = Callable[..., Terminal]


@pytest.fixture
def spawned() -> Iterator[Spawn]:
    """spawn(), with every program killed and every master closed when the test ends."""
    terminals: list[Terminal] = []
    slaves_before = set(_slave_fds())

    def start(argv: Sequence[str], **kwargs: Any) -> Terminal:
        me = os.getpid()
        term = spawn(argv, **kwargs)
        if os.getpid() != me:  # a forked child came back out of spawn(): never run tests twice
            os.write(2, b"spawn() returned in the forked child: it must exec or os._exit\n")
            os._exit(70)
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
    return {"pgrp": int(fields[2]), "session": int(fields[3]), "tty_nr": int(fields[4]), "tpgid": int(fields[5])}


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
            raise AssertionError(
                f"{what}: the program (pid {term.pid}) still runs after {timeout:g} s.\n{_diagnose_ctrl_c(term.pid)}"
            )
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


@pytest.mark.stage(1, "what the program sees")
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


@pytest.mark.stage(1, "what the program sees")
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


@pytest.mark.stage(1, "what the program sees")
def test_the_real_tty_command_names_the_terminal(spawned: Spawn) -> None:
    out = _read_to_eof(spawned(["tty"]), "`tty`")
    assert out.startswith(b"/dev/pts/") and out.endswith(b"\r\n"), (
        f"`tty` printed {out!r}; expected /dev/pts/N and \\r\\n. (`not a tty` means its stdin is "
        "not the slave; a bare \\n means the output did not go through a terminal, whose line "
        "discipline turns \\n into \\r\\n: termios flag ONLCR.)"
    )


@pytest.mark.stage(1, "what the program sees")
@pytest.mark.parametrize(("rows", "cols"), [(24, 80), (50, 132), (1, 1)], ids=["24x80", "50x132", "1x1"])
def test_the_window_size_has_no_pixel_size(spawned: Spawn, rows: int, cols: int) -> None:
    seen = _probe(spawned([sys.executable, "-c", PROBE], rows=rows, cols=cols))
    assert seen["winsize"] == [rows, cols, 0, 0], (
        f"TIOCGWINSZ in the program: {seen['winsize']} (rows, cols, pixel width, pixel height); "
        f"expected [{rows}, {cols}, 0, 0]: the window is rows x cols, pixel sizes unknown (0)."
    )


@pytest.mark.stage(1, "what the program sees")
def test_the_window_is_24_by_80_by_default(spawned: Spawn) -> None:
    out = _read_to_eof(spawned(["stty", "size"]), "`stty size`")
    assert out == b"24 80\r\n", f"`stty size` printed {out!r}: spawn's default window is 24 x 80"


@pytest.mark.stage(1, "what the program sees")
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


@pytest.mark.stage(2, "talking to it")
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


@pytest.mark.stage(2, "talking to it")
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


@pytest.mark.stage(2, "talking to it")
def test_ctrl_d_at_the_start_of_a_line_is_end_of_file(spawned: Spawn) -> None:
    term = spawned(["cat"])
    term.send(b"hello\n")
    echoed = term.read_until(b"hello\r\nhello\r\n", timeout=PATIENCE)
    assert echoed == b"hello\r\nhello\r\n", f"expected the echo then cat's copy, got {echoed!r}"
    term.send(b"\x04")
    _wait_exited(term, "cat after Ctrl-D")
    assert os.waitstatus_to_exitcode(term.wait()) == 0, "cat ends normally at end of file"


@pytest.mark.stage(2, "talking to it")
def test_read_to_eof_ends_when_the_program_exits(spawned: Spawn) -> None:
    before = set(_slave_fds())
    term = spawned(["echo", "bye"])
    assert _read_to_eof(term, "`echo bye`") == b"bye\r\n"
    assert os.waitstatus_to_exitcode(term.wait()) == 0
    left = {fd: target for fd, target in _slave_fds().items() if fd not in before}
    assert not left, f"your process still holds pty slave fds {left}: close the slave after fork"


@pytest.mark.stage(2, "talking to it")
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

WAIT_FOR_CTRL_C = "echo ready; exec sleep 30"


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


@pytest.mark.stage(3, "keys and the line discipline")
def test_ctrl_c_reaches_the_program_as_sigint(spawned: Spawn) -> None:
    """The kernel, not your code, turns the byte 0x03 into SIGINT for the foreground group."""
    _check_ctrl_c(spawned(["sh", "-c", WAIT_FOR_CTRL_C]))


@pytest.mark.stage(3, "keys and the line discipline")
def test_ctrl_c_works_even_when_the_caller_ignores_sigint(spawned: Spawn) -> None:
    """A script's background job (`cmd &`, nohup) runs with SIGINT ignored; its programs inherit it."""
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        term = spawned(["sh", "-c", WAIT_FOR_CTRL_C])
    finally:
        signal.signal(signal.SIGINT, previous)
    _check_ctrl_c(term)


@pytest.mark.stage(3, "keys and the line discipline")
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


# --- the line discipline: cooked by default, raw on request ----------------------------------


@pytest.mark.stage(3, "keys and the line discipline")
def test_the_program_starts_in_cooked_mode(spawned: Spawn) -> None:
    """A fresh pty is canonical, echoing, signal-generating, and turns \\n into \\r\\n."""
    seen = _probe(spawned([sys.executable, "-c", PROBE]))
    lflag, oflag = int(seen["lflag"]), int(seen["oflag"])  # type: ignore[call-overload]
    flags = {
        "ICANON": bool(lflag & termios.ICANON),
        "ECHO": bool(lflag & termios.ECHO),
        "ISIG": bool(lflag & termios.ISIG),
        "OPOST": bool(oflag & termios.OPOST),
        "ONLCR": bool(oflag & termios.ONLCR),
    }
    assert all(flags.values()), (
        f"termios.tcgetattr(0) in the program: {flags}. A new pty starts in the kernel's cooked "
        "mode and the program decides otherwise (stty raw, curses): the emulator must not put "
        "the pty in raw mode (tty.setraw is for the emulator's OWN terminal, not the one it "
        "creates) nor change its flags."
    )


@pytest.mark.stage(3, "keys and the line discipline")
def test_the_line_discipline_edits_the_line_before_the_program_sees_it(spawned: Spawn) -> None:
    """In canonical mode Backspace (DEL) is handled by the kernel: cat reads the edited line."""
    term = spawned(["cat"])
    term.send(b"abd\x7fc\n")
    screen = term.read_until(b"c\r\nabc\r\n", timeout=PATIENCE)
    assert screen == b"abd\b \bc\r\nabc\r\n", (
        f"typing 'abd', Backspace, 'c', Enter into cat showed {screen!r}; expected the echo with "
        "the erase (\\b \\b) and then cat's copy of the edited line. send() must write the "
        "bytes to the master unchanged, in order."
    )
    term.send(b"\x04")
    _wait_exited(term, "cat after Ctrl-D")


@pytest.mark.stage(3, "keys and the line discipline")
def test_in_raw_mode_every_byte_reaches_the_program_at_once(spawned: Spawn) -> None:
    """After `stty raw -echo` there are no lines, no echo, no \\r\\n: bytes go straight through."""
    term = spawned(["sh", "-c", "stty raw -echo; echo ready; head -c 4 | od -An -tx1"])
    term.read_until(b"ready", timeout=PATIENCE)
    attrs = termios.tcgetattr(term.master_fd)  # Linux: the master reports the slave's termios
    assert not attrs[3] & (termios.ICANON | termios.ECHO), "stty raw -echo did not take effect"
    term.send(b"x\x03\xff\n")  # no Enter needed, and Ctrl-C is only a byte now
    out = _read_to_eof(term, "the raw reader")
    assert out.split() == [b"78", b"03", b"ff", b"0a"], (
        f"the raw program read {out!r}; expected the four bytes 78 03 ff 0a. send() must write "
        "the bytes as they are (not text, no encoding, nothing added)."
    )


@pytest.mark.stage(3, "keys and the line discipline")
def test_resizing_the_window_sends_sigwinch_with_the_new_size(spawned: Spawn) -> None:
    """resize() is a TIOCSWINSZ on the master; the kernel signals the foreground group."""
    program = (
        "import fcntl, os, signal, struct, sys, termios\n"
        "def on_winch(signum, frame):\n"
        "    size = struct.unpack('HHHH', fcntl.ioctl(0, termios.TIOCGWINSZ, bytes(8)))\n"
        "    print('winch', *size, flush=True)\n"
        "    sys.exit(0)\n"
        "signal.signal(signal.SIGWINCH, on_winch)\n"
        "print('ready', os.get_terminal_size(0).lines, os.get_terminal_size(0).columns, flush=True)\n"
        "while True:\n"
        "    signal.pause()\n"
    )
    term = spawned([sys.executable, "-c", program], rows=24, cols=80)
    assert term.read_until(b"\r\n", timeout=PATIENCE) == b"ready 24 80\r\n"
    term.resize(40, 120)
    out = _read_to_eof(term, "the SIGWINCH listener")
    assert out == b"winch 40 120 0 0\r\n", (
        f"after resize(40, 120) the program printed {out!r} (rows, cols, pixel width and height); "
        "expected b'winch 40 120 0 0\\r\\n' (pixel sizes unknown: 0). "
        "resize() sets the size the kernel keeps for the terminal: fcntl.ioctl(master, "
        "termios.TIOCSWINSZ, struct.pack('HHHH', rows, cols, 0, 0)); the kernel then sends "
        "SIGWINCH to the foreground process group (which needs the pty to be the program's "
        "controlling terminal)."
    )


# --- the documented refusals and endings ---------------------------------------------------------


@pytest.mark.stage(4, "refusals and timeouts")
def test_a_program_that_cannot_be_run_exits_127(spawned: Spawn) -> None:
    term = spawned(["no-such-program-kata"])
    out = _read_to_eof(term, "a program that does not exist")
    status = term.wait()
    assert out.strip(), (
        "a program that cannot be run left nothing on the screen: the child must say why "
        "(on the terminal, its fd 2) before os._exit(127)"
    )
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 127, (
        f"spawn of a missing program: wait status {status:#x}, output {out!r}. When exec fails "
        "the child must end with os._exit(127), never return into the caller (try/finally)."
    )


@pytest.mark.stage(4, "refusals and timeouts")
def test_read_until_raises_eof_error_when_the_program_ends_first(spawned: Spawn) -> None:
    term = spawned(["echo", "hi"])
    _wait_exited(term, "echo")
    with pytest.raises(EOFError):
        term.read_until(b"never printed", timeout=PATIENCE)


@pytest.mark.stage(4, "refusals and timeouts")
def test_a_timeout_keeps_what_was_read(spawned: Spawn) -> None:
    """TimeoutError when the marker does not come; the output read meanwhile is not lost."""
    term = spawned(["sh", "-c", "echo partial; exec sleep 30"])
    term.read_until(b"par", timeout=PATIENCE)
    with pytest.raises(TimeoutError):
        term.read_until(b"never printed", timeout=0.3)
    try:
        rest = term.read_until(b"\r\n", timeout=1.0)
    except TimeoutError:
        rest = b"(nothing: TimeoutError)"
    assert rest == b"tial\r\n", (
        f"after a read_until that timed out, the next read_until returned {rest!r}; expected "
        "b'tial\\r\\n'. Bytes read while waiting for a marker that never came are still the "
        "program's output: keep them for the next read."
    )


@pytest.mark.stage(2, "talking to it")
def test_wait_is_remembered(spawned: Spawn) -> None:
    term = spawned(["sh", "-c", "exit 3"])
    _wait_exited(term, "exit 3")
    first = term.wait()
    assert os.waitstatus_to_exitcode(first) == 3, f"wait() returned {first:#x}, not exit status 3"
    try:
        second: object = term.wait()
    except ChildProcessError as exc:
        second = exc
    assert second == first and term.status == first, (
        f"a second wait() gave {second!r}: it must return the remembered status (term.status): "
        "the program was reaped already, and waitpid on it again fails with ChildProcessError"
    )


@pytest.mark.stage(4, "refusals and timeouts")
def test_closing_hangs_up_a_running_program_and_reaps_it(spawned: Spawn) -> None:
    with spawned(["sh", "-c", "echo ready; exec sleep 30"]) as term:
        fd, pid = term.master_fd, term.pid
        term.read_until(b"ready\r\n", timeout=PATIENCE)
    assert not os.path.exists(f"/proc/self/fd/{fd}") or fd < 0, f"leaving `with` left the master fd {fd} open"
    status = term.status
    assert status is not None and os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGHUP, (
        f"after close() the program's wait status is {status!r}; expected killed by SIGHUP: "
        "closing the master hangs up the terminal and the kernel sends SIGHUP to the session. "
        "close() closes the master first, then waits."
    )
    assert not psutil.pid_exists(pid) or psutil.Process(pid).ppid() != os.getpid()


@pytest.mark.stage(5, "hostile conditions")
def test_a_big_send_arrives_whole(spawned: Spawn) -> None:
    """send() writes everything, however the kernel cuts the writes."""
    size = 200_000
    term = spawned(["sh", "-c", f"stty raw -echo; echo ready; head -c {size} | wc -c"])
    term.read_until(b"ready", timeout=PATIENCE)
    term.send(b"y" * size)
    out = _read_to_eof(term, "the byte counter")
    assert out.split() == [str(size).encode()], (
        f"the program counted {out!r} bytes of the {size} sent: os.write on the master may "
        "write only part of the data; send() must loop until all of it is written."
    )


@pytest.mark.stage(5, "hostile conditions")
def test_a_signal_during_a_read_does_not_break_it(spawned: Spawn) -> None:
    """A handled signal interrupts select/read (EINTR); the read goes on with its deadline."""
    caught: list[int] = []
    previous = signal.signal(signal.SIGUSR1, lambda signum, frame: caught.append(signum))
    try:
        term = spawned(["sh", "-c", "sleep 0.2; kill -USR1 $PPID; sleep 0.2; echo done"])
        got = term.read_until(b"done\r\n", timeout=PATIENCE)
    finally:
        signal.signal(signal.SIGUSR1, previous)
    assert caught and got == b"done\r\n", (
        f"read_until across a signal returned {got!r} (signals caught: {caught}); a signal "
        "handled while select or read waits must not lose the read nor end it early."
    )


@pytest.mark.stage(5, "hostile conditions")
def test_a_caller_without_stdin_still_gives_the_program_its_terminal(spawned: Spawn) -> None:
    """A daemon runs with fd 0 closed: openpty then hands out 0 as the master."""
    saved = os.dup(0)
    os.close(0)
    try:
        term = spawned(["tty"])
        out = _read_to_eof(term, "`tty` spawned by a caller without fd 0")
        term.close()
        still_open = _is_open(0)
    finally:
        with contextlib.suppress(OSError):
            os.close(0)
        os.dup2(saved, 0)
        os.close(saved)
    assert out.startswith(b"/dev/pts/"), (
        f"`tty` printed {out!r}: its stdin is not the terminal. With fd 0 closed in the caller, "
        "the master can be fd 0: in the child close the master BEFORE dup2(slave, 0..2), and "
        "close the slave only if it is not one of 0, 1, 2."
    )
    assert not still_open, "close() left the master open when it was fd 0 (0 is a valid fd)"


@pytest.mark.stage(5, "hostile conditions")
def test_a_caller_without_stdin_and_stderr_still_gives_the_program_all_three(spawned: Spawn) -> None:
    """With fds 0 and 2 closed, openpty hands out master 0 and slave 2."""
    saved = {fd: os.dup(fd) for fd in (0, 2)}
    for fd in saved:
        os.close(fd)
    try:
        term = spawned(["sh", "-c", "tty; tty >&2"])
        out = _read_to_eof(term, "`tty; tty >&2` spawned by a caller without fds 0 and 2")
        term.close()
    finally:
        for fd, copy in saved.items():
            with contextlib.suppress(OSError):
                os.close(fd)
            os.dup2(copy, fd)
            os.close(copy)
    lines = out.split()
    assert len(lines) == 2 and all(line.startswith(b"/dev/pts/") for line in lines), (
        f"`tty; tty >&2` printed {out!r}; expected the terminal's name twice (stdout, stderr). "
        "When the slave is itself fd 0, 1 or 2, it must not be closed after the dup2s (close "
        "it only if it is above 2), and dup2(fd, fd) does nothing, so openpty's close-on-exec "
        "flag stays on it: os.set_inheritable(fd, True) instead."
    )


@pytest.mark.stage(1, "what the program sees")
def test_the_environment_can_be_given(spawned: Spawn) -> None:
    env = {"PATH": os.environ["PATH"], "GREETING": "hello from env"}
    out = _read_to_eof(spawned(["sh", "-c", 'echo "$GREETING"'], env=env), "sh with env")
    assert out == b"hello from env\r\n", (
        f"with env={env}, the program printed {out!r}: spawn(..., env=...) gives the program "
        "exactly that environment (execvpe), with argv[0] looked up on its PATH."
    )


@pytest.mark.stage(2, "talking to it")
def test_close_twice_is_harmless(spawned: Spawn) -> None:
    term = spawned(["true"])
    _wait_exited(term, "true")
    term.close()
    term.close()  # a `with` block around a term that was closed inside it
    assert os.waitstatus_to_exitcode(term.wait()) == 0


@pytest.mark.stage(4, "refusals and timeouts")
def test_timeout_zero_does_not_wait(spawned: Spawn) -> None:
    """timeout=0 is a deadline already passed: TimeoutError at once if the marker is not there."""
    term = spawned(["sleep", "30"])
    with pytest.raises(TimeoutError):
        term.read_until(b"never printed", timeout=0)
    with pytest.raises(TimeoutError):
        term.read_to_eof(timeout=0)


def _is_open(fd: int) -> bool:
    try:
        os.fstat(fd)
    except OSError:
        return False
    return True


DRIBBLE = "while :; do printf .; sleep 0.05; done"  # a byte every 50 ms, for ever


@contextlib.contextmanager
def _unless_stuck(what: str, seconds: int = 10) -> Iterator[None]:
    """Fail with the cause if the block is still running after `seconds` (one generous limit)."""

    def stuck(signum: int, frame: object) -> None:
        raise AssertionError(
            f"{what} was still waiting after {seconds} s, against a program that writes a byte "
            "every 50 ms. The timeout is ONE deadline for the whole call (time.monotonic() + "
            "timeout, and select on what is left of it), not a fresh timeout for every read."
        )

    previous = signal.signal(signal.SIGALRM, stuck)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


@pytest.mark.stage(4, "refusals and timeouts")
def test_the_timeout_is_one_deadline_not_one_per_read(spawned: Spawn) -> None:
    term = spawned(["sh", "-c", DRIBBLE])
    with _unless_stuck("read_until(b'never printed', timeout=0.5)"), pytest.raises(TimeoutError):
        term.read_until(b"never printed", timeout=0.5)
    with _unless_stuck("read_to_eof(timeout=0.5)"), pytest.raises(TimeoutError):
        term.read_to_eof(timeout=0.5)
