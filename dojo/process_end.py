"""Why a test process ended without pytest's summary, in words: from its flight record and exit status."""

from __future__ import annotations

import signal
import time
from pathlib import Path

from . import flight
from .timelimit import HARD_STOP_GRACE

PREFIX = "the test process "  # every explanation starts so: a run cut short, not a collection error
HARD_STOP_EXIT = 1  # faulthandler's exit status when the hard stop ends the process
# exit statuses pytest itself uses for a session that did not really happen (interrupted,
# internal error, usage error): with no word from the learner's code, they mean just that
_PYTEST_OWN = {2, 3, 4}
_BUDGET_EXCEEDED = -1  # what the launchers report for a run killed at the end of its budget


def explain(report: Path, exit_code: int) -> str | None:
    """What ended the run that was to write `report`, or None if it was not cut short by the
    code under test (pytest never started, the learner pressed Ctrl-C, the budget ran out)."""
    note = flight.read(flight.path_for(report))
    if note is None or exit_code == _BUDGET_EXCEEDED:
        return None
    during = note.running or "the run"
    if note.cause:
        return f"{PREFIX}ended during {during}: {note.cause}"
    if exit_code < 0:
        return f"{PREFIX}ended during {during}: killed by {_signal_name(-exit_code)}"
    if exit_code == HARD_STOP_EXIT and note.hard_stop_at and time.time() >= note.hard_stop_at - 1:
        return (f"{PREFIX}was stopped during {during}: it ran {HARD_STOP_GRACE:g} s past its time limit "
                "without letting the limit interrupt it (SIGALRM ignored or blocked? stuck in C code?); "
                "where each thread was is printed above")
    if exit_code in _PYTEST_OWN:
        return None
    return (f"{PREFIX}ended during {during} with exit status {exit_code}, before pytest's summary "
            "(an exit() from C code?)")


def is_cut_short(error: str) -> bool:
    """Whether a run's recorded error is one of `explain`'s, not a collection error."""
    return error.startswith(PREFIX)


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"
