"""SIGTERM and SIGHUP (an IDE's stop button, a closed terminal) stop a command as Ctrl-C does."""

from __future__ import annotations

import contextlib
import signal
import subprocess
from types import FrameType

AS_CTRL_C = (signal.SIGTERM, signal.SIGHUP)
GRACE = 10.0  # seconds a stopped pytest gets to tear down (stop servers, remove folders)

_received: int | None = None  # the signal that stopped us, if it was one of AS_CTRL_C


def _stop_as_ctrl_c(signum: int, frame: FrameType | None) -> None:
    global _received
    _received = signum
    raise KeyboardInterrupt


def install() -> None:
    """From now on SIGTERM and SIGHUP raise KeyboardInterrupt: every `finally` and `with` runs."""
    for signum in AS_CTRL_C:
        signal.signal(signum, _stop_as_ctrl_c)


def wait_for(proc: subprocess.Popen[bytes] | subprocess.Popen[str]) -> int:
    """The exit code of a child that shares our terminal; if we are stopped while it runs, it
    is stopped too (as by Ctrl-C, then killed after GRACE) before KeyboardInterrupt goes on."""
    try:
        return proc.wait()
    except KeyboardInterrupt:
        stop(proc)
        raise


def stop(proc: subprocess.Popen[bytes] | subprocess.Popen[str]) -> None:
    """End `proc` the way Ctrl-C ends pytest (SIGINT: teardown runs), then by force."""
    if _received is not None:  # a Ctrl-C from the terminal reached it already; this did not
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGINT)
    try:
        proc.wait(GRACE)
    except (subprocess.TimeoutExpired, KeyboardInterrupt):  # too slow, or a second Ctrl-C
        proc.kill()
        proc.wait()
