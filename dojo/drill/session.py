"""One timed drill: wait for saves and keys, run the tests on the scratch copy, stop at green,
at the end of the time box, or when the learner gives up. Clock, events and runner are injected."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from rich.console import Console
from rich.markup import escape

from ..learner.events import Change, Key
from ..learner.state import RunRecord
from .log import ABANDONED, GREEN, TIMED_OUT
from .workspace import Workspace

Clock = Callable[[], float]  # seconds, only ever going forward (time.monotonic)
Event = Change | Key
Wait = Callable[[float], Event | None]  # the next event within that many seconds, or None
Runner = Callable[[Workspace], RunRecord | None]  # the tests against the scratch copy

TICK = 1.0  # seconds between looks at the clock when nothing happens
NOTICES = (600.0, 300.0, 60.0)  # time left worth saying (10, 5 and 1 minutes)
KEYS = "r re-run · q give up"


def clock_text(seconds: float) -> str:
    """12:05 for 725 s; 1:02:05 past an hour."""
    whole = max(0, round(seconds))
    hours, rest = divmod(whole, 3600)
    return f"{hours}:{rest // 60:02}:{rest % 60:02}" if hours else f"{rest // 60}:{rest % 60:02}"


def is_green(record: RunRecord | None) -> bool:
    """Every test ran and passed (a skipped test is not a pass: the drill goes on)."""
    return record is not None and record.green


@dataclass(frozen=True)
class Result:
    """How a drill ended: the outcome, seconds to green (or spent), runs, the last run."""

    outcome: str
    seconds: float
    runs: int
    last: RunRecord | None = None
    quit_key: bool = False  # given up with q rather than Ctrl-C (a mock goes on after q)


class Drill:
    """The loop of one drill, until `deadline` (a time of `clock`)."""

    def __init__(self, workspace: Workspace, deadline: float, *, clock: Clock, wait: Wait,
                 runner: Runner, console: Console) -> None:
        self.workspace = workspace
        self.deadline = deadline
        self.clock = clock
        self.wait = wait
        self.runner = runner
        self.console = console
        self.started = clock()
        self.runs = 0
        self.last: RunRecord | None = None
        self.seen = workspace.fingerprint()  # the stub: saving it unchanged starts no run
        self._notices = [n for n in NOTICES if n < deadline - self.started]

    def remaining(self) -> float:
        return self.deadline - self.clock()

    def _run(self) -> float | None:
        """One test run; the time (since the start) of the save it tested if it went green."""
        at = self.clock() - self.started  # the save is what counts, not how slow pytest was
        self.seen = self.workspace.fingerprint()
        self.runs += 1
        self.console.rule(f"[dim]run {self.runs} · {clock_text(at)} in · "
                          f"{clock_text(self.remaining())} left[/dim]", align="left")
        self.last = self.runner(self.workspace)
        if is_green(self.last):
            return at
        self.console.print(self._verdict(), soft_wrap=True)
        return None

    def _verdict(self) -> str:
        record, left = self.last, clock_text(self.remaining())
        if record is None:
            return f"[yellow]the run was cut short[/yellow] · {left} left"
        if record.error:
            return f"[red]✗ the tests cannot run: {escape(record.error)}[/red] · {left} left"
        if record.failed:
            return f"[red]✗ {record.failed} of {record.total} failing[/red] · {left} left"
        if record.skipped:
            return f"[yellow]~ {record.skipped} of {record.total} skipped[/yellow] · {left} left"
        return f"[yellow]no test passed[/yellow] · {left} left"

    def _notice(self) -> None:
        """Say so when the time left crosses 10, 5 and 1 minutes."""
        left = self.remaining()
        while self._notices and left <= self._notices[0]:
            mark = self._notices.pop(0)
            self.console.print(f"[yellow]{int(mark // 60)} min left[/yellow]")

    def _wants_run(self, event: Event) -> bool:
        """r, or a save that changed a scratch file (editors write several times per save, and
        runs write bytecode beside it: only new content counts)."""
        match event:
            case Key(key):
                return key == "r"
            case Change(paths):
                return self.workspace.concerns(paths) and self.workspace.fingerprint() != self.seen

    def loop(self) -> Result:
        """Run until green, time up, q or Ctrl-C (which is caught: the drill is abandoned)."""
        try:
            while True:
                self._notice()
                left = self.remaining()
                if left <= 0:
                    return Result(TIMED_OUT, self.deadline - self.started, self.runs, self.last)
                event = self.wait(min(left, TICK))
                if event is None:
                    continue
                if event == Key("q"):
                    return Result(ABANDONED, self.clock() - self.started, self.runs, self.last,
                                  quit_key=True)
                if not self._wants_run(event):
                    if isinstance(event, Key):
                        self.console.print(f"[dim]keys: {KEYS}[/dim]")
                    continue
                green = self._run()
                if green is not None and green <= self.deadline - self.started:
                    return Result(GREEN, green, self.runs, self.last)
        except KeyboardInterrupt:
            return Result(ABANDONED, self.clock() - self.started, self.runs, self.last)
