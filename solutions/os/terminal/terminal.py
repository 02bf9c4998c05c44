"""Run a program under a pseudo-terminal: openpty, fork, setsid, a controlling terminal, Ctrl-C."""

from __future__ import annotations

import errno
import fcntl
import io
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
CHUNK = io.DEFAULT_BUFFER_SIZE  # the most one read takes; any size works, the bytes are buffered


class Terminal:
    """The terminal emulator's side of a pseudo-terminal, with a program running on the other side.

    `pid` is the program's process, `master_fd` the master end of the pty: what you write to it
    is typed on the keyboard, what you read from it is what the program put on the screen.
    """

    def __init__(self, pid: int, master_fd: int) -> None:
        self.pid = pid
        self.master_fd = master_fd
        self.status: int | None = None  # the raw wait status, once wait() has reaped the program
        # Bytes read from the master but not yet returned: read() hands out data in chunks
        # that need not end at a marker, and what lies past it belongs to the next call.
        self._pending = b""

    def read_until(self, marker: bytes, timeout: float = 5.0) -> bytes:
        """Read the screen output until `marker` appears; return it up to and including `marker`.

        Output after the marker is kept for the next read. Raises TimeoutError if `marker` does
        not appear within `timeout` seconds, EOFError if the program closes the terminal first.

        >>> term.read_until(b"name? ")        # doctest: +SKIP
        b'What is your name? '
        """
        # A deadline, not a timeout per read: a program that dribbles bytes must not keep
        # us here for ever.
        deadline = time.monotonic() + timeout
        while marker not in self._pending:
            chunk = self._read_chunk(deadline)
            if chunk is None:
                raise TimeoutError(f"{marker!r} not seen in {timeout} s; got {self._pending!r}")
            if not chunk:
                raise EOFError(f"the program closed the terminal before {marker!r}: {self._pending!r}")
            self._pending += chunk
        end = self._pending.index(marker) + len(marker)
        found, self._pending = self._pending[:end], self._pending[end:]
        return found

    def read_to_eof(self, timeout: float = 5.0) -> bytes:
        """Read everything until the program closes the terminal (usually: it exited).

        Raises TimeoutError if that takes longer than `timeout` seconds.

        >>> spawn(["echo", "hi"]).read_to_eof()   # doctest: +SKIP
        b'hi\\r\\n'
        """
        deadline = time.monotonic() + timeout
        while True:
            chunk = self._read_chunk(deadline)
            if chunk is None:
                raise TimeoutError(f"no end of file in {timeout} s; got {self._pending!r}")
            if not chunk:
                found, self._pending = self._pending, b""
                return found
            self._pending += chunk

    def _read_chunk(self, deadline: float) -> bytes | None:
        """One read from the master: bytes, b"" at end of file, None when the deadline passed."""
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return None
        ready, _, _ = select.select([self.master_fd], [], [], remaining)
        if not ready:
            return None
        try:
            return os.read(self.master_fd, CHUNK)
        except OSError as exc:
            # Linux reports "every slave fd is closed" on the master as EIO, not as b"".
            if exc.errno == errno.EIO:
                return b""
            raise

    def send(self, data: bytes) -> None:
        """Type `data` on the keyboard: write all of it to the master."""
        view = memoryview(data)
        while view:
            written = os.write(self.master_fd, view)  # a short write is possible: loop
            view = view[written:]

    def resize(self, rows: int, cols: int) -> None:
        """Resize the window: the kernel keeps the new size and sends SIGWINCH to the foreground group."""
        # Like a terminal emulator whose window was dragged: TIOCSWINSZ on the master. The
        # kernel, not this code, signals the program (only if the size really changed).
        fcntl.ioctl(self.master_fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))

    def interrupt(self) -> None:
        """Press Ctrl-C: the line discipline sends SIGINT to the terminal's foreground group."""
        # No os.kill here: the terminal emulator doesn't know which process is in front, the
        # kernel does (the foreground process group of the program's controlling terminal).
        self.send(CTRL_C)

    def wait(self) -> int:
        """Wait for the program to end and return its raw wait status (as os.waitpid gives it)."""
        if self.status is None:
            self.status = os.waitpid(self.pid, 0)[1]
        return self.status

    def close(self) -> None:
        """Close the master (the program's terminal hangs up: SIGHUP), then wait for the program."""
        if self.master_fd >= 0:
            os.close(self.master_fd)
            self.master_fd = -1
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
    """Start `argv` (looked up on PATH) with a new pseudo-terminal as its controlling terminal.

    The program's stdin, stdout and stderr are the slave end, its window is `rows` x `cols`,
    it leads a new session (so Ctrl-C reaches it), and it starts with SIGINT at its default
    action even if this process ignores it. If exec fails the program exits with status 127.

    >>> with spawn(["tty"]) as term:       # doctest: +SKIP
    ...     term.read_to_eof()
    b'/dev/pts/3\\r\\n'
    """
    master, slave = os.openpty()
    # The window size lives in the terminal (the kernel's tty), not in the program: a terminal
    # emulator sets it with TIOCSWINSZ, and programs read it back (stty size, curses).
    fcntl.ioctl(master, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
    pid = os.fork()
    if pid == 0:
        try:
            # A new session has no controlling terminal; TIOCSCTTY makes the slave ours. Without
            # both, Ctrl-C has no foreground process group to send SIGINT to.
            os.setsid()
            fcntl.ioctl(slave, termios.TIOCSCTTY, 0)
            # The master first: in a caller with fd 0 closed (a daemon) openpty hands out
            # master 0, and closing it after the dup2s would close the program's stdin.
            os.close(master)
            for fd in (0, 1, 2):
                if fd == slave:  # dup2(fd, fd) would keep openpty's close-on-exec flag on it
                    os.set_inheritable(fd, True)
                else:
                    os.dup2(slave, fd)
            if slave > 2:
                os.close(slave)
            # Ignored signals stay ignored across exec, and a program started from a script's
            # background job inherits SIGINT ignored: a terminal's program starts with defaults.
            for signum in (signal.SIGINT, signal.SIGQUIT, signal.SIGPIPE, signal.SIGTSTP):
                signal.signal(signum, signal.SIG_DFL)
            if env is None:
                os.execvp(argv[0], list(argv))
            else:
                os.execvpe(argv[0], list(argv), dict(env))
        except OSError as exc:
            os.write(2, f"spawn: {argv[0]}: {exc.strerror}\n".encode())
        finally:
            os._exit(127)  # never return into the caller's code
    # Our copy of the slave must go: the master reports EOF (EIO) only once every slave fd is
    # closed, so keeping it would make read_to_eof wait for ever.
    os.close(slave)
    return Terminal(pid, master)
