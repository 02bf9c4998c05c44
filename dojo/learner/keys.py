"""Single keypresses for watch mode: cbreak mode on a terminal, characters of lines from a pipe."""

from __future__ import annotations

import contextlib
import os
import stat
import sys
import threading
from collections.abc import Callable
from types import TracebackType
from typing import Any


def _can_send_keys(fd: int) -> bool:
    """A pipe, socket or file can carry keys; a character device that is no terminal
    (stdin from /dev/null: a service, an IDE's run button, `< /dev/null`) never will."""
    try:
        mode = os.fstat(fd).st_mode
    except OSError:
        return False
    return not stat.S_ISCHR(mode)


class KeyReader:
    """Calls `on_key` with each key from stdin, in a daemon thread, while the `with` lasts.

    On a terminal, stdin is switched to cbreak mode (keys arrive unbuffered and unechoed, Ctrl-C
    still interrupts) and restored on exit. From a pipe, each non-blank character of each line is
    a key, so scripts and tests can drive watch mode; at end of input, keys simply stop coming.
    """

    def __init__(self, on_key: Callable[[str], None], stream: Any = None) -> None:
        self.on_key = on_key
        self.stream = stream if stream is not None else sys.stdin
        self.fd: int | None = None
        self.is_terminal = False
        self._saved: list[Any] | None = None

    def __enter__(self) -> KeyReader:
        try:
            self.fd = self.stream.fileno()
        except (AttributeError, OSError, ValueError):
            return self  # no real stdin (a test runner's fake): no keys
        self.is_terminal = os.isatty(self.fd)
        if not self.is_terminal and not _can_send_keys(self.fd):
            self.fd = None  # /dev/null and the like: no key will ever come, so none is offered
            return self
        if self.is_terminal:
            import termios
            import tty

            with contextlib.suppress(termios.error):
                self._saved = termios.tcgetattr(self.fd)
                tty.setcbreak(self.fd)
        threading.Thread(target=self._read, name="kata-keys", daemon=True).start()
        return self

    def _read(self) -> None:
        assert self.fd is not None
        while True:
            try:
                data = os.read(self.fd, 64)
            except OSError:
                return
            if not data:
                return
            for key in data.decode(errors="ignore"):
                if not key.isspace():
                    self.on_key(key.lower())

    @property
    def interactive(self) -> bool:
        return self.fd is not None

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._saved is not None and self.fd is not None:
            import termios

            with contextlib.suppress(termios.error):
                termios.tcsetattr(self.fd, termios.TCSADRAIN, self._saved)
