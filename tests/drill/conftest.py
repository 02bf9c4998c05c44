"""Fakes for drills: a clock moved by hand, scripted events, a runner that reads the scratch file."""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import random
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from dojo import catalogue as catalogue_mod
from dojo.drill.command import World
from dojo.drill.session import Event
from dojo.drill.workspace import Workspace
from dojo.learner.events import Change
from dojo.learner.state import RunRecord
from tests.cli.conftest import TOPIC_OF, build_repo

START = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)  # a Monday


class FakeClock:
    """Monotonic seconds that move only when a test (or a scripted wait) moves them."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Script:
    """A `wait` for Drill: scripted events at given clock times; waiting moves the clock.

    Each step is (seconds after the script starts, event or an action). An action is a callable
    run when its time comes (e.g. a save to the scratch file) that returns the event to deliver.
    """

    def __init__(self, clock: FakeClock, steps: list[tuple[float, Event | Callable[[], Event]]]):
        self.clock = clock
        self.origin = clock.now
        self.steps = list(steps)
        self.waits: list[float] = []

    def wait(self, timeout: float) -> Event | None:
        self.waits.append(timeout)
        if self.steps and self.origin + self.steps[0][0] <= self.clock.now + timeout:
            at, event = self.steps.pop(0)
            self.clock.now = max(self.clock.now, self.origin + at)
            return event() if callable(event) else event
        self.clock.now += timeout
        return None

    interactive = True


class ContentRunner:
    """A runner that passes when the scratch file holds the solution, and counts its calls;
    `effect` (an exception) is raised instead, e.g. KeyboardInterrupt for Ctrl-C mid-run."""

    def __init__(self, clock: FakeClock, seconds: float = 2.0) -> None:
        self.clock = clock
        self.seconds = seconds  # how long each run takes on the fake clock
        self.calls = 0
        self.effect: BaseException | None = None

    def __call__(self, workspace: Workspace) -> RunRecord:
        self.calls += 1
        self.clock.now += self.seconds
        if self.effect is not None:
            raise self.effect
        kata = workspace.kata
        text = "".join(p.read_text() for p in workspace.files().values())
        solution = "".join(p.read_text() for p in kata.solution_files())
        if text == solution:
            return RunRecord(fingerprint="x", passed=2, failed=0)
        return RunRecord(fingerprint="x", passed=0, failed=2)


def save_solution(workspace_of: Callable[[], Workspace]) -> Callable[[], Event]:
    """An action for Script: write the solution into the current scratch copy, as a save."""

    def act() -> Event:
        workspace = workspace_of()
        for name, path in workspace.files().items():
            path.write_text((workspace.kata.solution_dir / name).read_text())
        return Change(frozenset(workspace.files().values()))

    return act


def tree_digest(folder: Path) -> str:
    """A hash of every file under `folder` except caches: proof that nothing in it changed."""
    digest = hashlib.sha256()
    for path in sorted(folder.rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts:
            digest.update(str(path.relative_to(folder)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The CLI tests' tiny kata repository (three katas, two topics, committed to git)."""
    root = build_repo(tmp_path / "repo")
    monkeypatch.chdir(root)
    return root


@pytest.fixture
def catalogue(repo: Path) -> catalogue_mod.Catalogue:
    return catalogue_mod.load(repo / "katas.toml")


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


class Harness:
    """The world of in-process drills: a fake clock, scripted events per drill, a fake runner."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.runner = ContentRunner(clock)
        self.scripts: list[list[tuple[float, Event | Callable[[], Event]]]] = []
        self.workspaces: list[Path] = []
        self.current: Workspace | None = None
        self.why_not: dict[str, str] = {}

    def workspace(self) -> Workspace:
        assert self.current is not None
        return self.current

    def world(self) -> World:
        def events(folder: Path) -> contextlib.AbstractContextManager[Script]:
            self.workspaces.append(folder)
            kata_name = folder.name.rsplit("-", 1)[0].split("-", 2)[-1]  # scratch-<pid>-<kata>-XXXX
            topic = TOPIC_OF[kata_name]
            cat = catalogue_mod.load(folder.parents[2] / "katas.toml")
            self.current = Workspace(cat.get(f"{topic}/{kata_name}"), folder)
            steps = self.scripts.pop(0) if self.scripts else []
            return contextlib.nullcontext(Script(self.clock, steps))

        @contextlib.contextmanager
        def runner(root: Path) -> Iterator[ContentRunner]:
            yield self.runner

        return World(
            clock=self.clock,
            now=lambda: START + dt.timedelta(seconds=self.clock.now - 1000.0),
            rng=random.Random(7),
            why_not=lambda service: self.why_not.get(service, ""),
            runner=runner,
            events=events,
        )


@pytest.fixture
def harness(clock: FakeClock) -> Harness:
    return Harness(clock)
