"""Two pytest sessions of one user at once never touch each other's servers, processes or folders."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from fixtures import cleanup, pidfiles

SHARED_TMP = "/dev/shm" if os.access("/dev/shm", os.W_OK) else "/tmp"
CONFTEST = 'pytest_plugins = ["dojo.pytest_plugin", "fixtures.plugin"]\n'

# Each session starts Redis, Postgres, a server of its own and a plain child process, says so,
# waits until a third session has started (and swept) beside it, then checks all of them still work.
SESSION = """
import os, subprocess, sys, time
from pathlib import Path

HERE = Path(__file__).parent
NAME = os.environ["SESSION_NAME"]


def test_my_servers_and_children_outlive_the_other_sessions(
    redis_client, postgres_conn, server_process, tmp_path
):
    redis_client.set("owner", NAME)
    postgres_conn.execute("CREATE TABLE mine (name text)")
    postgres_conn.execute("INSERT INTO mine VALUES (%s)", (NAME,))
    echo = server_process("echo", [sys.executable, "-m", "http.server", "{port}",
                                   "--bind", "127.0.0.1", "--directory", str(tmp_path)],
                          ready="http:/")
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"])
    (HERE / f"ready-{NAME}").write_text("")
    deadline = time.monotonic() + 90
    while not (HERE / "third-done").exists():
        assert time.monotonic() < deadline, "the third session never finished"
        time.sleep(0.1)
    assert redis_client.get("owner") == NAME
    assert postgres_conn.execute("SELECT name FROM mine").fetchall() == [(NAME,)]
    import urllib.request
    assert urllib.request.urlopen(f"http://{echo.address}/", timeout=5).status == 200
    assert child.poll() is None, "my child process was killed"
    child.kill()
    child.wait()
"""

THIRD = """
def test_a_session_starting_beside_two_others(redis_client, postgres_conn):
    redis_client.set("k", "v")
    postgres_conn.execute("SELECT 1")
"""


@pytest.fixture
def shared_state() -> Iterator[dict[str, str]]:
    """One private state folder for all the sessions, as the default one is for one user."""
    folder = tempfile.mkdtemp(prefix="kata-state-", dir=SHARED_TMP)
    yield {"KATA_STATE_DIR": folder}
    shutil.rmtree(folder, ignore_errors=True)


def _project(root: Path, source: str) -> Path:
    root.mkdir()
    (root / "katas.toml").write_text("")
    (root / "conftest.py").write_text(CONFTEST)
    (root / "test_session.py").write_text(textwrap.dedent(source))
    return root


def _pytest(root: Path, env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-p", "no:asyncio", "-rA",
         "--services=local"],
        cwd=root, env={**os.environ, **env}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True, start_new_session=True,
    )


def _wait_for(path: Path, sessions: list[subprocess.Popen[str]], timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        ended = [s for s in sessions if s.poll() is not None]
        if ended or time.monotonic() > deadline:
            for session in sessions:
                session.kill()
            pytest.fail(f"{path.name} never appeared:\n" + "\n".join(
                (s.communicate()[0] or "") for s in sessions))
        time.sleep(0.1)


@pytest.mark.time_limit(300)
def test_two_sessions_with_services_and_children_side_by_side_see_no_error(
    tmp_path: Path, shared_state: dict[str, str]
) -> None:
    for tool in ("redis-server", "pg_ctl", "initdb"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is not on PATH: the sessions need local Redis and Postgres")
    first = _project(tmp_path / "first", SESSION)
    second = _project(tmp_path / "second", SESSION)
    sessions = [_pytest(first, {**shared_state, "SESSION_NAME": "first"}),
                _pytest(second, {**shared_state, "SESSION_NAME": "second"})]
    try:
        _wait_for(first / "ready-first", sessions)
        _wait_for(second / "ready-second", sessions)
        third = _project(tmp_path / "third", THIRD)
        run = _pytest(third, shared_state)
        third_output = run.communicate(timeout=120)[0]
        for root in (first, second):
            (root / "third-done").write_text("")
        outputs = [s.communicate(timeout=120)[0] for s in sessions]
    finally:
        for session in sessions:
            if session.poll() is None:
                os.killpg(session.pid, 9)
                session.wait()
    for name, output, code in (("first", outputs[0], sessions[0].returncode),
                               ("second", outputs[1], sessions[1].returncode),
                               ("third", third_output, run.returncode)):
        assert code == 0, f"the {name} session failed beside the others:\n{output}"
        assert "error" not in output.lower(), f"the {name} session saw an error:\n{output}"
        assert "leftover" not in output, f"the {name} session swept a living session:\n{output}"
    assert not list(Path(shared_state["KATA_STATE_DIR"]).glob("session-*")), "a session left its folder"


def _shift_wall_clock(monkeypatch: pytest.MonkeyPatch, seconds: float) -> None:
    """What an NTP step does to psutil's epoch start times: the kernel's boot time moves."""
    import psutil._pslinux as linux

    boot = linux.boot_time()
    monkeypatch.setattr(linux, "boot_time", lambda: boot + seconds)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the boot time is psutil's on Linux")
def test_a_clock_step_does_not_make_a_living_session_look_dead(monkeypatch: pytest.MonkeyPatch) -> None:
    """The cause of a living session swept by another: start times compared across a clock change."""
    owner = cleanup.owner_id()
    _shift_wall_clock(monkeypatch, 1.0)  # /proc/stat's btime is whole seconds: it flips by 1
    assert cleanup._owner_alive(owner), "a clock step made this living session look dead"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the boot time is psutil's on Linux")
def test_a_clock_step_does_not_hide_a_dead_sessions_server(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    server = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    try:
        record = pidfiles.describe(server.pid, tmp_path)
        assert record is not None
        pidfiles.write(tmp_path / "pid.json", record)
        _shift_wall_clock(monkeypatch, -1.0)
        again = pidfiles.read(tmp_path / "pid.json")
        assert again is not None and pidfiles.still_running(again), "the recorded server was not recognised"
        assert psutil.pid_exists(server.pid)
    finally:
        server.kill()
        server.wait()


def test_a_dead_sessions_folder_with_our_pid_is_swept_not_adopted(tmp_path: Path) -> None:
    """A session that got the pid of a dead one must not take on its folder: its old owner line
    would make this living session look dead to the next one, which would kill our servers."""
    state = Path(tempfile.mkdtemp(prefix="kata-state-", dir=SHARED_TMP))
    orphan = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"], start_new_session=True)
    cleanup.configure(state)
    try:
        stale = state / f"session-{os.getpid()}"
        stale.mkdir()
        (stale / "owner").write_text(f"{os.uname().nodename}:{os.getpid()}:{cleanup.STABLE_MARK}1.0")
        record = pidfiles.describe(orphan.pid, tmp_path)
        assert record is not None
        pidfiles.write(stale / f"pid-{orphan.pid}.json", record)
        removed = cleanup.sweep_processes()
        assert any(f"process {orphan.pid}" in line for line in removed), removed
        assert orphan.wait(10) is not None
        fresh = cleanup.session_dir()
        assert (fresh / "owner").read_text() == cleanup.owner_id()
        assert not list(fresh.glob("pid-*.json"))
    finally:
        cleanup.remove_session_dir()
        cleanup.configure(cleanup.default_state_dir())
        if orphan.poll() is None:
            orphan.kill()
            orphan.wait()
        shutil.rmtree(state, ignore_errors=True)


def test_a_stale_folder_with_our_pid_is_not_adopted_when_a_server_starts(tmp_path: Path) -> None:
    state = Path(tempfile.mkdtemp(prefix="kata-state-", dir=SHARED_TMP))
    cleanup.configure(state)
    try:
        stale = state / f"session-{os.getpid()}"
        stale.mkdir()
        (stale / "owner").write_text(f"{os.uname().nodename}:{os.getpid()}:{cleanup.STABLE_MARK}1.0")
        (stale / "pid-1.json").write_text("{}")
        fresh = cleanup.session_dir()
        assert (fresh / "owner").read_text() == cleanup.owner_id()
        assert not (fresh / "pid-1.json").exists()
    finally:
        cleanup.remove_session_dir()
        cleanup.configure(cleanup.default_state_dir())
        shutil.rmtree(state, ignore_errors=True)
