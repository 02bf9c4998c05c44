"""A flight recorder for the test process: what it runs now, so a run that dies says where and why."""

from __future__ import annotations

import contextlib
import json
import os
import sys
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import NoReturn

from .timelimit import HARD_STOP_GRACE

FLIGHT_SUFFIX = ".flight.json"
# pytest's "internal error": what a session that ended without its summary exits with, when the
# code that ended it asked for 0 (a script or CI must never read that as success)
NO_SUMMARY_EXIT = 3


@dataclass
class Flight:
    """What the test process was doing: on disk beside the engine's report while it runs."""

    running: str = ""  # "test_put_blocks", "the import of bounded_queue.py", "collecting the tests"
    cause: str = ""  # what ended the process, if it could say: "os._exit(0) called from x.py:41 ..."
    hard_stop_at: float = 0.0  # time.time() when the hard stop ends the process (0: not armed)


def path_for(report: Path) -> Path:
    """Where the flight of a run writing its report to `report` is kept."""
    return report.with_name(report.name + FLIGHT_SUFFIX)


def read(path: Path) -> Flight | None:
    """The flight kept at `path`; None if there is none or it can't be read (cut mid-write)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return Flight(running=str(data["running"]), cause=str(data["cause"]),
                      hard_stop_at=float(data["hard_stop_at"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None


class Recorder:
    """Keeps the flight in memory, on disk when given a path (a kata run), and stands guard over
    os._exit: the learner's call says what it did before it ends the process, never with 0."""

    def __init__(self, path: Path | None, stderr: int) -> None:
        self.path = path
        self.stderr = stderr  # the terminal's stderr: pytest's capture dies with the process
        self.flight = Flight(running="collecting the tests")
        self.pid = os.getpid()
        self.real_exit = os._exit
        self._write()

    def running(self, what: str, limit: float | None) -> None:
        self.flight.running = what
        self.flight.hard_stop_at = time.time() + limit + HARD_STOP_GRACE if limit else 0.0
        self._write()

    def _write(self) -> None:
        if self.path is not None:
            with contextlib.suppress(OSError):
                self.path.write_text(json.dumps(asdict(self.flight)), encoding="utf-8")

    def guarded_exit(self, status: int) -> NoReturn:
        """os._exit while the session runs: in the session's own process, say who called it."""
        if os.getpid() == self.pid:
            caller = sys._getframe(1)
            self.flight.cause = (f"os._exit({status}) called from {Path(caller.f_code.co_filename).name}:"
                                 f"{caller.f_lineno} ends the test process")
            self._write()
            for stream in (sys.__stdout__, sys.__stderr__):  # what pytest printed so far comes first
                with contextlib.suppress(Exception):
                    stream.flush()  # type: ignore[union-attr]
            with contextlib.suppress(OSError):
                os.write(self.stderr, f"\nkata: {self.flight.cause} during {self.flight.running}; pytest "
                                      "ends without its summary\n".encode())
            self.real_exit(status or NO_SUMMARY_EXIT)
        self.real_exit(status)  # a forked child (multiprocessing, a test's fork) ends as it asks


_recorder: Recorder | None = None


def start(path: Path | None, stderr: int) -> None:
    """Record this session's flight (to `path` if given) and guard os._exit until `stop`."""
    global _recorder
    stop()
    _recorder = Recorder(path, stderr)
    os._exit = _recorder.guarded_exit


def stop() -> None:
    global _recorder
    if _recorder is not None:
        os._exit = _recorder.real_exit
        _recorder = None


def running(what: str, limit: float | None = None) -> None:
    """The session now runs `what`, under a time limit of `limit` seconds (if any)."""
    if _recorder is not None:
        _recorder.running(what, limit)


@contextlib.contextmanager
def during(what: str, limit: float | None = None) -> Iterator[None]:
    """Record `what` while the block runs, then what was running before it."""
    if _recorder is None:
        yield
        return
    before = _recorder.flight.running
    _recorder.running(what, limit)
    try:
        yield
    finally:
        _recorder.running(before, None)
