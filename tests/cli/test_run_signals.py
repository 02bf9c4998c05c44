"""SIGTERM and SIGHUP stop `kata run` as Ctrl-C does: no orphaned pytest, no temp folder left behind."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import psutil
import pytest

from dojo.learner import scratch
from tests.second_user import other_uid

from .conftest import KATA_COMMAND, cli_env

pytestmark = pytest.mark.time_limit(300)


def gone(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while True:
        try:
            if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                return True
        except psutil.NoSuchProcess:
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)


def hanging_run(repo: Path, tmp: Path) -> tuple[subprocess.Popen[str], int]:
    """`kata run adder` whose learner code hangs; the run and the pytest pid it is stuck in."""
    pid_file = repo / "pytest.pid"
    catalogue = repo / "katas.toml"  # a limit far beyond the test's patience: only a stop ends it
    catalogue.write_text(catalogue.read_text().replace('files = ["adder.py"]\n',
                                                       'files = ["adder.py"]\ntime_limit = 300\n'))
    (repo / "katas" / "basics" / "adder" / "adder.py").write_text(
        "import os, time\n\ndef add(a: int, b: int) -> int:\n"
        f"    open({str(pid_file)!r}, 'w').write(str(os.getpid()))\n"
        "    while True:\n        time.sleep(0.01)\n"
    )
    run = subprocess.Popen([*KATA_COMMAND, "run", "adder"], cwd=repo, env={**cli_env(), "TMPDIR": str(tmp)},
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 60
    while not pid_file.is_file() or not pid_file.read_text():
        assert time.monotonic() < deadline and run.poll() is None, run.communicate()[0]
        time.sleep(0.05)
    return run, int(pid_file.read_text())


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP], ids=["SIGTERM", "SIGHUP"])
def test_a_stopped_kata_run_takes_its_pytest_and_temp_folder_with_it(
    repo: Path, tmp_path: Path, signum: int
) -> None:
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    run, pytest_pid = hanging_run(repo, tmp)
    assert pytest_pid != run.pid
    run.send_signal(signum)
    try:
        run.wait(timeout=30)
        orphaned = not gone(pytest_pid, 15)
    finally:
        with contextlib.suppress(ProcessLookupError):  # never leave it spinning, whatever happened
            os.kill(pytest_pid, signal.SIGKILL)
    output, _ = run.communicate(timeout=30)  # EOF once every holder of its pipe is gone
    assert not orphaned, f"pytest {pytest_pid} outlived `kata run`:\n{output}"
    assert run.returncode != 0, output
    assert "Traceback" not in output, output
    assert list(tmp.glob("kata-run-*")) == [], "the run's temp folder is removed"


def test_a_killed_kata_run_takes_its_pytest_with_it(repo: Path, tmp_path: Path) -> None:
    """SIGKILL can't be caught or passed on: the pytest notices its parent's death by itself."""
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    run, pytest_pid = hanging_run(repo, tmp)
    output: list[str] = []
    assert run.stdout is not None
    # read what pytest still writes into the dead run's pipe: a full pipe would hold it up
    stdout = run.stdout
    reader = threading.Thread(target=lambda: output.append(stdout.read()), daemon=True)
    reader.start()
    run.kill()
    try:
        run.wait(timeout=30)
        orphaned = not gone(pytest_pid, 45)  # its teardown on a loaded machine (CI beside others)
        state = _signal_state(pytest_pid) if orphaned else ""
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pytest_pid, signal.SIGKILL)
    reader.join(timeout=30)
    assert not orphaned, (f"pytest {pytest_pid} outlived a SIGKILLed `kata run` ({state}); it wrote:\n"
                          f"{''.join(output)}")


def _signal_state(pid: int) -> str:
    """Its parent, state and signal masks, as the kernel has them: why a SIGINT did not end it."""
    try:
        lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    except OSError as exc:
        return f"no status: {exc}"
    wanted = ("State", "PPid", "SigPnd", "ShdPnd", "SigBlk", "SigIgn", "SigCgt")
    return ", ".join(line.replace("\t", " ") for line in lines if line.split(":")[0] in wanted)


def test_a_temp_folder_a_killed_run_left_is_swept_by_the_next_run(
    repo: Path, tmp_path: Path, kata: object
) -> None:
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    run, pytest_pid = hanging_run(repo, tmp)
    run.kill()  # nothing can clean up after SIGKILL...
    run.wait()
    with contextlib.suppress(ProcessLookupError):
        os.kill(pytest_pid, signal.SIGKILL)
    assert gone(pytest_pid, 15)
    run.communicate()
    left = list(tmp.glob("kata-run-*"))
    assert left, "a SIGKILLed run leaves its folder (if not, this test checks nothing)"
    busy = tmp / f"kata-run-{os.getpid()}-alive"  # a live process's folder stays
    busy.mkdir()
    (repo / "katas" / "basics" / "adder" / "adder.py").write_text(
        "def add(a: int, b: int) -> int:\n    return a + b\n")
    again = subprocess.run([*KATA_COMMAND, "run", "adder"], cwd=repo, env={**cli_env(), "TMPDIR": str(tmp)},
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=120)
    assert again.returncode == 0, again.stdout
    assert list(tmp.glob("kata-run-*")) == [busy], "...so the next run sweeps it"


def test_the_sweep_leaves_live_runs_other_users_and_recent_unnamed_folders(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    dead = subprocess.Popen(["true"])
    dead.wait()
    folders = {name: tmp_path / name for name in (
        f"kata-run-{dead.pid}-abc", f"kata-run-{os.getpid()}-abc", "kata-run-oldunnamed",
        "kata-run-newunnamed", f"kata-run-{dead.pid}-theirs")}
    for folder in folders.values():
        folder.mkdir()
    day_ago = time.time() - 2 * 24 * 3600
    os.utime(folders["kata-run-oldunnamed"], (day_ago, day_ago))
    uid = other_uid()
    os.chown(folders[f"kata-run-{dead.pid}-theirs"], uid, uid)
    removed = scratch.sweep("kata-run-")
    assert sorted(p.name for p in removed) == sorted([f"kata-run-{dead.pid}-abc", "kata-run-oldunnamed"])
