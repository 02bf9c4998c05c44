"""Run a program under a pseudo-terminal: subprocess.Popen on the slave, and select.poll.

Popen does the fork, the dup2s and the exec; start_new_session=True calls setsid() in the
child, and a preexec_fn (run after it, before exec) makes fd 0 the controlling terminal and
gives SIGINT and friends their default actions back. A program that cannot be run is reported
the way a shell would: a tiny program on the same terminal prints why and exits 127.
"""

from __future__ import annotations

import errno
import fcntl
import os
import select
import signal
import struct
import subprocess
import sys
import termios
import time
from collections.abc import Mapping, Sequence
from types import TracebackType

CTRL_C = b"\x03"
CTRL_D = b"\x04"
_NOT_RUN = "import sys; sys.stderr.write(sys.argv[1]); sys.exit(127)"


class Terminal:
    """The terminal emulator's side of a pseudo-terminal, with a program running on the other side."""

    def __init__(self, pid: int, master_fd: int) -> None:
        self.pid = pid
        self.master_fd = master_fd
        self.status: int | None = None
        self._chunks: list[bytes] = []  # read but not handed out yet

    def _read(self, deadline: float) -> bytes | None:
        poller = select.poll()
        poller.register(self.master_fd, select.POLLIN)
        remaining_ms = max(0, int((deadline - time.monotonic()) * 1000))
        if not poller.poll(remaining_ms):
            return None
        try:
            return os.read(self.master_fd, 1024)
        except OSError as exc:
            if exc.errno != errno.EIO:
                raise
            return b""

    def read_until(self, marker: bytes, timeout: float = 5.0) -> bytes:
        """Read the screen output until `marker` appears; return it up to and including `marker`."""
        deadline = time.monotonic() + timeout
        seen = b"".join(self._chunks)
        while marker not in seen:
            chunk = self._read(deadline)
            if chunk is None:
                self._chunks = [seen]  # what was read is still the program's output
                raise TimeoutError(f"{marker!r} not seen in {timeout} s")
            if chunk == b"":
                self._chunks = [seen]
                raise EOFError(f"the program closed the terminal before {marker!r}")
            seen += chunk
        head, _, tail = seen.partition(marker)
        self._chunks = [tail]
        return head + marker

    def read_to_eof(self, timeout: float = 5.0) -> bytes:
        """Read everything until the program closes the terminal."""
        deadline = time.monotonic() + timeout
        while True:
            chunk = self._read(deadline)
            if chunk is None:
                raise TimeoutError(f"no end of file in {timeout} s")
            if chunk == b"":
                found, self._chunks = b"".join(self._chunks), []
                return found
            self._chunks.append(chunk)

    def send(self, data: bytes) -> None:
        """Type `data` on the keyboard."""
        with os.fdopen(os.dup(self.master_fd), "wb", buffering=0, closefd=True) as keyboard:
            view = memoryview(data)
            while view:
                view = view[keyboard.write(view) :]

    def resize(self, rows: int, cols: int) -> None:
        """Resize the window: the kernel sends SIGWINCH to the foreground group."""
        fcntl.ioctl(self.master_fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))

    def interrupt(self) -> None:
        """Press Ctrl-C."""
        os.write(self.master_fd, CTRL_C)

    def wait(self) -> int:
        """Wait for the program and return its raw wait status."""
        if self.status is None:
            self.status = os.waitpid(self.pid, 0)[1]
        return self.status

    def close(self) -> None:
        """Hang up (close the master), then wait for the program."""
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


def _become_the_terminals_program() -> None:
    # After setsid() (start_new_session): fd 0 is the slave; make it our controlling terminal.
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)
    for signum in (signal.SIGINT, signal.SIGQUIT, signal.SIGTSTP):
        signal.signal(signum, signal.SIG_DFL)


def spawn(argv: Sequence[str], rows: int = 24, cols: int = 80, env: Mapping[str, str] | None = None) -> Terminal:
    """Start `argv` with a new pseudo-terminal as its controlling terminal."""
    master, slave = os.openpty()
    fcntl.ioctl(master, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
    options = {
        "stdin": slave,
        "stdout": slave,
        "stderr": slave,
        "start_new_session": True,
        "preexec_fn": _become_the_terminals_program,
        "env": None if env is None else dict(env),
    }
    try:
        try:
            proc = subprocess.Popen(list(argv), **options)  # type: ignore[call-overload]
        except OSError as exc:
            why = f"spawn: {argv[0]}: {exc.strerror}\n"
            proc = subprocess.Popen([sys.executable, "-c", _NOT_RUN, why], **options)  # type: ignore[call-overload]
    finally:
        os.close(slave)
    # The Terminal reaps the program with os.waitpid (it keeps the raw status): Popen must
    # not try to as well.
    proc.returncode = 0
    return Terminal(proc.pid, master)
