"""Run a program under a pseudo-terminal: openpty, fork, setsid, a controlling terminal, Ctrl-C."""

from __future__ import annotations

import errno
import fcntl
import os
import select
import signal
import struct
import termios
import time
from collections.abc import Mapping, Sequence
from types import TracebackType

CTRL_C = b"\x03"  # the byte a terminal sends for Ctrl-C; the line discipline turns it into SIGINT
CTRL_D = b"\x04"  # Ctrl-D: end of file, when typed at the start of a line


class Terminal:
    """The terminal emulator's side of a pseudo-terminal, with a program running on the other side.

    `pid` is the program's process, `master_fd` the master end of the pty: what you write to it
    is typed on the keyboard, what you read from it is what the program put on the screen.
    """

    def __init__(self, pid: int, master_fd: int) -> None:
        self.pid = pid
        self.master_fd = master_fd
        self.status: int | None = None  # the raw wait status, once wait() has reaped the program
        # TODO: anything else you need, e.g. a buffer for bytes read past a marker.

    def read_until(self, marker: bytes, timeout: float = 5.0) -> bytes:
        """Read the screen output until `marker` appears; return it up to and including `marker`.

        Output after the marker is kept for the next read. Raises TimeoutError if `marker` does
        not appear within `timeout` seconds (one deadline; `timeout=0`: it must be there
        already), keeping what was read meanwhile; EOFError if the program closes the
        terminal first.

        >>> term.read_until(b"name? ")        # doctest: +SKIP
        b'What is your name? '
        """
        # TODO: select() on master_fd with what is left of one deadline, os.read chunks, and
        # keep whatever comes after the marker for the next call.
        raise NotImplementedError("Terminal.read_until")

    def read_to_eof(self, timeout: float = 5.0) -> bytes:
        """Read everything until the program closes the terminal (usually: it exited).

        Raises TimeoutError if that takes longer than `timeout` seconds.

        >>> spawn(["echo", "hi"]).read_to_eof()   # doctest: +SKIP
        b'hi\\r\\n'
        """
        # TODO: like read_until, until end of file. On Linux a pty master signals "every
        # slave fd is closed" with OSError EIO (errno.EIO), not with b"".
        raise NotImplementedError("Terminal.read_to_eof")

    def send(self, data: bytes) -> None:
        """Type `data` on the keyboard: write all of it to the master."""
        # TODO: os.write to the master until all of data is written (writes may be short).
        raise NotImplementedError("Terminal.send")

    def resize(self, rows: int, cols: int) -> None:
        """Resize the window: the kernel keeps the new size and sends SIGWINCH to the foreground group."""
        # TODO: what a terminal emulator does when its window is dragged (one ioctl on the master).
        raise NotImplementedError("Terminal.resize")

    def interrupt(self) -> None:
        """Press Ctrl-C: the line discipline sends SIGINT to the terminal's foreground group."""
        # TODO: type CTRL_C. (Not os.kill: the kernel knows who is in the foreground.)
        raise NotImplementedError("Terminal.interrupt")

    def wait(self) -> int:
        """Wait for the program to end and return its raw wait status (as os.waitpid gives it)."""
        # TODO: os.waitpid once; remember the status in self.status for later calls.
        raise NotImplementedError("Terminal.wait")

    def close(self) -> None:
        """Close the master (the program's terminal hangs up: SIGHUP), then wait for the program."""
        # TODO: close master_fd once (calling close twice is fine), then wait().
        raise NotImplementedError("Terminal.close")

    def __enter__(self) -> Terminal:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def spawn(argv: Sequence[str], rows: int = 24, cols: int = 80, env: Mapping[str, str] | None = None) -> Terminal:
    """Start `argv` (looked up on PATH) with a new pseudo-terminal as its controlling terminal.

    The program's stdin, stdout and stderr are the slave end, its window is `rows` x `cols`
    (pixel sizes 0), the pty is left in the kernel's default cooked mode, it leads a new
    session (so Ctrl-C reaches it), and it starts with SIGINT at its default action even if
    this process ignores it. `env`, if given, is its whole environment. If exec fails the
    program says why on the terminal and exits with status 127. A caller with fd 0 (or 2)
    closed gets master 0 (or slave 2) from openpty: the program must still get the slave on 0,
    1 and 2 (and dup2(fd, fd) leaves openpty's close-on-exec flag in place).

    >>> with spawn(["tty"]) as term:       # doctest: +SKIP
    ...     term.read_to_eof()
    b'/dev/pts/3\\r\\n'
    """
    # TODO: os.openpty(); set the window size on it (fcntl.ioctl with termios.TIOCSWINSZ and
    # struct.pack("HHHH", rows, cols, 0, 0)).
    # TODO: fork. In the child: os.setsid(), make the slave the controlling terminal
    # (fcntl.ioctl(slave, termios.TIOCSCTTY, 0)), close the master, dup2 the slave onto 0, 1
    # and 2, close it (unless it is one of them), reset SIGINT to SIG_DFL, exec; end with
    # os._exit(127) in a finally, whatever happens.
    # TODO: in the parent, close the slave (or the master never reports end of file) and
    # return Terminal(pid, master).
    raise NotImplementedError("spawn")
