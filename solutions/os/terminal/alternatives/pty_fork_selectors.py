"""Run a program under a pseudo-terminal: the stdlib's pty.fork, a selector, a bytearray buffer.

pty.fork() does openpty, fork, setsid, TIOCSCTTY and the three dup2s (login_tty); the child
then sets the window size on its own terminal (fd 0) before exec, so no program can ask for
it before it is set. Reads go through a selectors.DefaultSelector with one deadline.
"""

from __future__ import annotations

import fcntl
import os
import pty
import selectors
import signal
import struct
import sys
import termios
import time
from collections.abc import Mapping, Sequence
from types import TracebackType

CTRL_C = b"\x03"
CTRL_D = b"\x04"


class Terminal:
    """The terminal emulator's side of a pseudo-terminal, with a program running on the other side."""

    def __init__(self, pid: int, master_fd: int) -> None:
        self.pid = pid
        self.master_fd = master_fd
        self.status: int | None = None
        self._buffer = bytearray()
        self._eof = False

    def _fill(self, deadline: float) -> bool:
        """Read what is there into the buffer; False if the deadline passed first."""
        if self._eof:
            return True
        with selectors.DefaultSelector() as selector:
            selector.register(self.master_fd, selectors.EVENT_READ)
            if not selector.select(max(0.0, deadline - time.monotonic())):
                return False
        try:
            data = os.read(self.master_fd, 65536)
        except OSError:  # EIO: every slave fd is closed
            data = b""
        if not data:
            self._eof = True
        self._buffer += data
        return True

    def read_until(self, marker: bytes, timeout: float = 5.0) -> bytes:
        """Read the screen output until `marker` appears; return it up to and including `marker`."""
        deadline = time.monotonic() + timeout
        while (at := self._buffer.find(marker)) < 0:
            if self._eof:
                raise EOFError(f"the program closed the terminal before {marker!r}")
            if time.monotonic() >= deadline or not self._fill(deadline):
                raise TimeoutError(f"{marker!r} not seen in {timeout} s")
        end = at + len(marker)
        found = bytes(self._buffer[:end])
        del self._buffer[:end]
        return found

    def read_to_eof(self, timeout: float = 5.0) -> bytes:
        """Read everything until the program closes the terminal."""
        deadline = time.monotonic() + timeout
        while not self._eof:
            if time.monotonic() >= deadline or not self._fill(deadline):
                raise TimeoutError(f"no end of file in {timeout} s")
        found = bytes(self._buffer)
        self._buffer.clear()
        return found

    def send(self, data: bytes) -> None:
        """Type `data` on the keyboard."""
        sent = 0
        while sent < len(data):
            sent += os.write(self.master_fd, data[sent:])

    def resize(self, rows: int, cols: int) -> None:
        """Resize the window: the kernel sends SIGWINCH to the foreground group."""
        fcntl.ioctl(self.master_fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))

    def interrupt(self) -> None:
        """Press Ctrl-C."""
        self.send(CTRL_C)

    def wait(self) -> int:
        """Wait for the program and return its raw wait status."""
        if self.status is None:
            _, self.status = os.waitpid(self.pid, 0)
        return self.status

    def close(self) -> None:
        """Hang up (close the master), then wait for the program."""
        if self.master_fd != -1:
            fd, self.master_fd = self.master_fd, -1
            os.close(fd)
        self.wait()

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
    """Start `argv` with a new pseudo-terminal as its controlling terminal."""
    sys.stdout.flush()
    sys.stderr.flush()
    pid, master = pty.fork()
    if pid == 0:
        try:
            fcntl.ioctl(0, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
            for signum in (signal.SIGINT, signal.SIGQUIT, signal.SIGPIPE, signal.SIGTSTP):
                signal.signal(signum, signal.SIG_DFL)
            os.execvpe(argv[0], list(argv), dict(os.environ if env is None else env))
        except BaseException as exc:
            os.write(2, f"spawn: {argv[0]}: {exc}\n".encode())
        finally:
            os._exit(127)
    return Terminal(pid, master)
