"""Per-test time limits that fail a hanging test with the threads' stacks, and let the run go on."""

from __future__ import annotations

import contextlib
import faulthandler
import inspect
import os
import signal
import sys
import threading
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType

# Seconds after the limit before the whole process is stopped: only reached when the main thread
# is stuck in C code that never returns to the interpreter (signals are handled between bytecodes).
HARD_STOP_GRACE = 15.0
# Where the hard stop writes every thread's stack: the terminal's stderr, saved before pytest
# captures it (a dump into the capture would die with the process, unseen). None: sys.stderr.
_hard_stop_output: int | None = None


def hard_stops_write_to(fd: int | None) -> None:
    """Send the hard stop's dump of every thread to `fd` (the terminal's stderr)."""
    global _hard_stop_output
    _hard_stop_output = fd


def _arm_hard_stop(seconds: float) -> None:
    """End the process after `seconds`, dumping every thread's stack first."""
    output = sys.stderr if _hard_stop_output is None else _hard_stop_output
    faulthandler.dump_traceback_later(seconds, exit=True, file=output)


class KataTimeout(BaseException):
    """A test ran past its limit. A BaseException, so a learner's `except Exception` can't swallow it."""

    def __init__(self, message: str, seconds: float) -> None:
        super().__init__(message)
        self.seconds = seconds  # the limit that ran out


# The modules whose trace functions are debuggers (pdb and breakpoint() trace through bdb;
# PyCharm and VS Code through pydevd), as pytest-timeout recognises them: a learner stepping
# through their code must not lose the session to the time limit.
DEBUGGER_MODULES = ("bdb", "pydevd", "pydevd_frame_evaluator", "debugpy")
_stood_down_said = False


def debugger_active() -> bool:
    """Whether a debugger traces this thread now (sys.settrace, or sys.monitoring on 3.12+)."""
    monitoring = getattr(sys, "monitoring", None)
    if monitoring is not None and monitoring.get_tool(monitoring.DEBUGGER_ID) is not None:
        return True
    trace = sys.gettrace()
    if trace is None:
        return False  # coverage traces too, but through its own module, not one of these
    module = inspect.getmodule(trace) or inspect.getmodule(type(trace))
    parts = module.__name__.split(".") if module is not None else []
    return any(part.startswith(DEBUGGER_MODULES) for part in parts)


def _stand_down() -> None:
    """No limit for the rest of this test: a debugger holds it. Said once per session."""
    global _stood_down_said
    faulthandler.cancel_dump_traceback_later()
    if not _stood_down_said:
        _stood_down_said = True
        note = "\nkata: a debugger is active, so the time limit stands down for this test\n"
        # no terminal to tell? the stand-down itself is what matters
        with contextlib.suppress(OSError, ValueError, AttributeError):
            os.write(sys.stderr.fileno() if _hard_stop_output is None else _hard_stop_output, note.encode())


def describe_threads(
    learner_dirs: tuple[Path, ...], started_after: set[int], frame: FrameType | None
) -> str:
    """Where the main thread and every thread started during the test was, learner frames first."""
    frames = sys._current_frames()
    lines: list[str] = []
    for thread in threading.enumerate():
        ident = thread.ident
        if ident is None:
            continue
        is_main = thread is threading.main_thread()
        if not is_main and ident in started_after:
            continue
        stack_top = frame if is_main and frame is not None else frames.get(ident)
        if stack_top is None:
            continue
        summary = traceback.extract_stack(stack_top)
        own = [f for f in summary if any(_under(f.filename, d) for d in learner_dirs)]
        shown = own or summary[-3:]
        label = "main thread" if is_main else f"thread {thread.name!r}"
        lines.append(f"  {label}:")
        lines.extend(
            f"    {Path(f.filename).name}:{f.lineno} in {f.name}: {(f.line or '').strip()}"
            for f in shown
        )
    return "\n".join(lines)


def _under(filename: str, folder: Path) -> bool:
    try:
        return Path(filename).resolve().is_relative_to(folder)
    except (OSError, ValueError):
        return False


@contextmanager
def time_limit(
    seconds: float, learner_dirs: tuple[Path, ...], what: str, *, headline: str | None = None
) -> Iterator[None]:
    """Raise KataTimeout in the main thread after `seconds`; stop the process if even that hangs.

    The message starts with `headline`, by default "<what> timed out after N s: deadlock or
    infinite loop?", and goes on with where each thread was.
    """
    if threading.current_thread() is not threading.main_thread():
        # Signals only reach the main thread; elsewhere keep only the hard stop.
        _arm_hard_stop(seconds + HARD_STOP_GRACE)
        try:
            yield
        finally:
            faulthandler.cancel_dump_traceback_later()
        return

    threads_before = {t.ident for t in threading.enumerate() if t.ident is not None}

    def on_alarm(signum: int, frame: FrameType | None) -> None:
        __tracebackhide__ = True  # the learner's frames matter, not this handler's
        if debugger_active():
            _stand_down()
            return
        where = describe_threads(learner_dirs, threads_before, frame)
        first = headline or f"{what} timed out after {seconds:g} s: deadlock or infinite loop?"
        raise KataTimeout(f"{first}\nWhere each thread was when the time ran out:\n{where}", seconds)

    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    _arm_hard_stop(seconds + HARD_STOP_GRACE)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        faulthandler.cancel_dump_traceback_later()


@contextmanager
def paused() -> Iterator[None]:
    """Stop the clock of the current test meanwhile: for work that isn't the test's, such as
    starting a session-long server on behalf of all tests (it has its own readiness timeout)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    remaining, _ = signal.getitimer(signal.ITIMER_REAL)
    signal.setitimer(signal.ITIMER_REAL, 0)
    if remaining > 0:
        faulthandler.cancel_dump_traceback_later()
    try:
        yield
    finally:
        if remaining > 0:
            signal.setitimer(signal.ITIMER_REAL, remaining)
            _arm_hard_stop(remaining + HARD_STOP_GRACE)
