"""`kata watch`, driven by real saves to the learner's file and by keys."""

from __future__ import annotations

import os
import pty
import signal
import subprocess
import termios
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from .conftest import KATA_COMMAND, cli_env, solve

pytestmark = pytest.mark.time_limit(300)
PATIENCE = 90.0  # seconds: a loaded machine runs pytest slowly; success usually takes 2-5 s


class WatchSession:
    """`kata watch` in a subprocess: collects its output, sends keys, waits for phrases."""

    def __init__(self, repo: Path, *args: str, stdin: int | None = None) -> None:
        self.proc = subprocess.Popen(
            [*KATA_COMMAND, "watch", *args], cwd=repo, env=cli_env(),
            stdin=subprocess.PIPE if stdin is None else stdin,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )
        self.output = ""
        self._lock = threading.Lock()
        threading.Thread(target=self._collect, daemon=True).start()

    def _collect(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            with self._lock:
                self.output += line

    def wait_for(self, phrase: str, after: int = 0) -> int:
        """Wait until `phrase` shows up past offset `after`; the offset just past it."""
        deadline = time.monotonic() + PATIENCE
        while time.monotonic() < deadline:
            with self._lock:
                where = self.output.find(phrase, after)
            if where >= 0:
                return where + len(phrase)
            if self.proc.poll() is not None and where < 0:
                time.sleep(0.2)  # let the reader thread drain the pipe
                with self._lock:
                    if self.output.find(phrase, after) < 0:
                        break
            time.sleep(0.05)
        raise AssertionError(f"`kata watch` never printed {phrase!r}; its output:\n{self.output}")

    def key(self, key: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(key + "\n")
        self.proc.stdin.flush()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=30)


@pytest.fixture
def sessions() -> Iterator[list[WatchSession]]:
    started: list[WatchSession] = []
    yield started
    for session in started:
        session.stop()


@pytest.mark.parametrize("poll", [False, True], ids=["os-events", "polling"])
def test_watch_reruns_on_save_goes_green_and_follows_the_keys(repo: Path, sessions, poll: bool):
    session = WatchSession(repo, "adder", *(["--poll"] if poll else []))
    sessions.append(session)
    at = session.wait_for("2 of 2 tests failing")
    at = session.wait_for("watching basics/adder for saves; keys:", at)
    children = psutil.Process(session.proc.pid).children(recursive=True)
    assert children, "a warm pytest waits for the next save"

    solve(repo, "adder")  # a real save: the watcher sees it, not a key
    at = session.wait_for("adder: all 2 tests pass", at)
    at = session.wait_for("adder is done! press n for the next kata, greeter", at)

    session.key("h")
    at = session.wait_for("hint 1 of 2: Python has an operator for this.", at)
    session.key("n")
    at = session.wait_for("basics/greeter · Greet someone by name", at)
    at = session.wait_for("greeter: 1 of 1 test failing", at)
    session.key("p")
    at = session.wait_for("basics/adder · Add two numbers", at)
    at = session.wait_for("adder: all 2 tests pass", at)
    session.key("l")
    at = session.wait_for("basics: 1/2 done", at)
    session.key("q")
    session.wait_for("stopped watching", at)
    assert session.proc.wait(timeout=PATIENCE) == 0
    _, alive = psutil.wait_procs(children, timeout=PATIENCE)
    assert not alive, f"watch left processes behind: {alive}"


def test_watch_starts_with_the_first_unfinished_kata(repo: Path, sessions, kata):
    solve(repo, "adder")
    assert kata("run", "adder").returncode == 0
    session = WatchSession(repo)
    sessions.append(session)
    at = session.wait_for("basics/greeter · Greet someone by name")
    session.key("q")
    session.wait_for("stopped watching", at)
    assert session.proc.wait(timeout=PATIENCE) == 0


def test_watch_stops_cleanly_on_sigterm_and_leaves_no_process(repo: Path, sessions):
    session = WatchSession(repo, "greeter")
    sessions.append(session)
    at = session.wait_for("watching basics/greeter for saves")
    children = psutil.Process(session.proc.pid).children(recursive=True)
    session.proc.send_signal(signal.SIGTERM)
    session.wait_for("stopped watching", at)
    assert session.proc.wait(timeout=PATIENCE) == 0
    _, alive = psutil.wait_procs(children, timeout=PATIENCE)
    assert not alive, f"watch left processes behind: {alive}"


def test_on_a_terminal_keys_need_no_enter_and_the_terminal_is_restored(repo: Path, sessions):
    leader, follower = pty.openpty()
    try:
        before = termios.tcgetattr(follower)
        session = WatchSession(repo, "shouter", stdin=follower)
        sessions.append(session)
        at = session.wait_for("watching strings/shouter for saves; keys:")
        os.write(leader, b"q")  # no newline: only cbreak mode delivers it
        session.wait_for("stopped watching", at)
        assert session.proc.wait(timeout=PATIENCE) == 0
        after = termios.tcgetattr(follower)
        assert after[3] & termios.ICANON and after[3] & termios.ECHO, "line mode and echo are back"
        assert after[3] == before[3]
    finally:
        os.close(leader)
        os.close(follower)
