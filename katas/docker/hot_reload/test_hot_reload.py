"""Tests for hot_reload: a real container with the code bind-mounted; the test edits files on the host.

The reloader's loop is also run as a process on the host, with a child that writes down its own
life (started, got SIGTERM, finished cleaning up), and inotify counting how often the reloader
looks at the folder: restarts are judged by what happened, and "nothing happened" is judged
after the reloader has looked at the folder a few more times, not after a nap.
"""

from __future__ import annotations

import contextlib
import ctypes
import http.client
import os
import signal
import struct
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from dojo.testing import wait_until
from fixtures.docker_tools import DockerScope

from .hot_reload import container_options, snapshot

APP_DIR = "/app"  # the README's contract, not the module's constants: a wrong one must show
RELOADER = "/reloader/hot_reload.py"
PORT = 8000
RELOAD_WITHIN = 3.0  # seconds from saving a file to the new answer
SERVER = '''"""A tiny dev server: answers every GET with its version."""
import http.server

VERSION = {version}


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = f"version {{VERSION}}".encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


http.server.HTTPServer(("0.0.0.0", {port}), Handler).serve_forever()
'''


def write_server(app_dir: Path, version: int | str, atomic: bool = False) -> None:
    """Save server.py as an editor would: in place, or to a temporary file renamed over it."""
    source = SERVER.format(version=version, port=PORT)
    target = app_dir / "server.py"
    if atomic:
        temporary = app_dir / ".server.py.swp"
        temporary.write_text(source)
        temporary.chmod(0o644)
        os.replace(temporary, target)
    else:
        target.write_text(source)
    target.chmod(0o644)


@pytest.fixture
def app_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "app"
    folder.mkdir()
    folder.chmod(0o755)  # the container's user (nobody) must be able to list and read it
    write_server(folder, 1)
    return folder


Start = Callable[[], tuple[Any, int]]


@pytest.fixture
def start(app_dir: Path, kata_file: Callable[[str], Path], docker_scope: DockerScope,
          python_base_image: str) -> Start:
    """Runs the container described by the learner's container_options(); returns it and its port."""

    def run() -> tuple[Any, int]:
        options = dict(container_options(app_dir, kata_file("hot_reload.py"), python_base_image))
        ctr = docker_scope.run(options.pop("image"), **options)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            ctr.reload()
            ports = (ctr.attrs["NetworkSettings"]["Ports"] or {}).get(f"{PORT}/tcp")
            if ports:
                return ctr, int(ports[0]["HostPort"])
            if ctr.status in ("exited", "dead"):
                break
            time.sleep(0.05)
        pytest.fail(f"the container did not publish port {PORT} on 127.0.0.1 (status {ctr.status}); "
                    f"its log:\n{logs(ctr)}", pytrace=False)

    return run


def logs(ctr: Any) -> str:
    return str(ctr.logs().decode("utf-8", "replace"))[-1500:]


def answer(port: int) -> str | None:
    """The body of GET /, or None while there is no whole answer: a server being restarted may be
    killed in the middle of one (a cut-off body is http.client's IncompleteRead, not an OSError)."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=1) as resp:
            return str(resp.read().decode())
    except (OSError, http.client.HTTPException):
        return None


def wait_for(ctr: Any, port: int, expected: str, timeout: float, after: str) -> None:
    """Poll GET / until it answers `expected`; fail with what it answered and the container's log."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = answer(port)
        if last == expected:
            return
        time.sleep(0.05)
    ctr.reload()
    pytest.fail(f"{after}: expected {expected!r} within {timeout:g} s, the server answered {last!r} "
                f"(container {ctr.status}). The reloader did not pick up the change. Its log:\n"
                f"{logs(ctr)}", pytrace=False)


@pytest.mark.stage(1, "snapshots")
def test_snapshot_lists_python_files_and_their_mtimes(tmp_path: Path) -> None:
    (tmp_path / "pkg").mkdir()
    for name in ("a.py", "pkg/b.py", "notes.txt"):
        (tmp_path / name).write_text("x = 1\n")
    os.utime(tmp_path / "a.py", (1_000_000, 1_000_000))
    got = snapshot(str(tmp_path))
    expected = {str(tmp_path / "a.py"): 1_000_000.0,
                str(tmp_path / "pkg" / "b.py"): os.stat(tmp_path / "pkg" / "b.py").st_mtime}
    assert got == expected, f"snapshot() = {got}, expected every .py file (subfolders too) -> st_mtime"


@pytest.mark.stage(4, "in the container")
def test_code_is_bind_mounted_read_only_for_an_unprivileged_user(start: Start, app_dir: Path) -> None:
    ctr, _port = start()
    mounts = {m["Destination"]: m for m in ctr.attrs["Mounts"]}
    app = mounts.get(APP_DIR)
    assert app is not None, f"nothing is mounted at {APP_DIR}: mounts are {sorted(mounts)}"
    assert app["Type"] == "bind" and app["Source"] == str(app_dir.resolve()), (
        f"{APP_DIR} is a {app['Type']} mount of {app.get('Source') or app.get('Name')}: bind-mount the "
        f"host folder {app_dir} itself (a named volume is a copy the daemon keeps, not your files)")
    assert app["RW"] is False, f"{APP_DIR} is mounted read-write: mode 'ro' makes it read-only"
    reloader = mounts.get(RELOADER)
    assert reloader is not None and reloader["RW"] is False, (
        f"the reloader must be mounted read-only at {RELOADER}: mounts are {sorted(mounts)}")
    user = ctr.attrs["Config"].get("User") or ""
    assert user.split(":")[0] not in ("", "0", "root"), f"the container runs as root (User={user!r})"
    status, output = ctr.exec_run(["sh", "-c", f"touch {APP_DIR}/written-by-container"])
    assert status != 0 and not (app_dir / "written-by-container").exists(), (
        f"the container could write into {APP_DIR}: it must be read-only ({output!r})")


@pytest.mark.stage(4, "in the container")
def test_the_port_is_published_on_loopback_only(start: Start) -> None:
    ctr, _port = start()
    bindings = ctr.attrs["NetworkSettings"]["Ports"][f"{PORT}/tcp"]
    addresses = sorted({b["HostIp"] for b in bindings})
    assert addresses == ["127.0.0.1"], (
        f"port {PORT} is published on {addresses}: a dev server belongs on 127.0.0.1 only, "
        "('127.0.0.1', None) in docker-py's ports")


@pytest.mark.stage(4, "in the container")
def test_edits_on_the_host_reload_the_server(start: Start, app_dir: Path) -> None:
    ctr, port = start()
    wait_for(ctr, port, "version 1", 15, "after start")
    write_server(app_dir, 2)
    wait_for(ctr, port, "version 2", RELOAD_WITHIN, "after server.py was rewritten in place")
    write_server(app_dir, 3, atomic=True)
    wait_for(ctr, port, "version 3", RELOAD_WITHIN,
             "after server.py was replaced by a rename (how many editors save)")


@pytest.mark.stage(4, "in the container")
def test_a_broken_edit_does_not_kill_the_reloader(start: Start, app_dir: Path) -> None:
    ctr, port = start()
    wait_for(ctr, port, "version 1", 15, "after start")
    (app_dir / "server.py").write_text("VERSION = (  # a save in the middle of typing\n")
    deadline = time.monotonic() + RELOAD_WITHIN
    while answer(port) is not None and time.monotonic() < deadline:
        time.sleep(0.05)
    # The broken server has crashed: let the reloader look at the folder a few more times, which
    # inotify on the host sees through the bind mount (the same inode), to give it the chance to
    # misbehave.
    looks = FolderLooks(app_dir)

    def looked_or_ended() -> bool:
        ctr.reload()
        return looks.seen() >= 3 or ctr.status != "running"

    try:
        wait_until(looked_or_ended, timeout=10,
                   what="the reloader in the container to look at /app 3 more times")
    finally:
        looks.close()
    assert ctr.status == "running", (
        f"the container {ctr.status} after a syntax error in server.py: the reloader must outlive a "
        f"crashing child and wait for the next change. Its log:\n{logs(ctr)}")
    write_server(app_dir, 4)
    wait_for(ctr, port, "version 4", RELOAD_WITHIN, "after the syntax error was fixed")


@pytest.mark.stage(1, "snapshots")
def test_snapshot_skips_a_python_file_that_cannot_be_stat_ed(tmp_path: Path) -> None:
    (tmp_path / "kept.py").write_text("x = 1\n")
    (tmp_path / "dangling.py").symlink_to(tmp_path / "gone.py")  # what a vanished file looks like
    got = snapshot(str(tmp_path))
    assert got == {str(tmp_path / "kept.py"): os.stat(tmp_path / "kept.py").st_mtime}, (
        f"snapshot() = {got}: a .py name whose file is gone (deleted meanwhile, a dangling link) "
        "is left out, and the others are still listed")


# -- the reloader's loop, as a process on the host ---------------------------------------------

CHILD = r'''
"""A stand-in server: writes its life to LOG; its behaviour comes from MODE_FILE at start."""
import os, signal, sys, time

log, mode_file = sys.argv[1], sys.argv[2]
mode = open(mode_file).read().split()


def note(line):
    fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    os.write(fd, (line + "\n").encode())
    os.close(fd)


def previous_state():
    """The previous child's process state: 'gone' once it has exited AND been reaped."""
    try:
        lines = open(log).read().split("\n")
        last = [l.split()[1] for l in lines if l.startswith("start ")][-1]
    except (OSError, IndexError):
        return "none"
    try:
        return open(f"/proc/{last}/stat").read().rsplit(")", 1)[1].split()[0]
    except OSError:
        return "gone"


def on_term(signum, frame):
    note(f"term {os.getpid()}")
    time.sleep(float(mode[1]))  # cleaning up, as a server closing its connections
    note(f"clean {os.getpid()}")
    os._exit(0)


note(f"start {os.getpid()} {previous_state()}")
if mode[0] == "crash":
    note(f"crash {os.getpid()}")
    sys.exit(3)
signal.signal(signal.SIGTERM, on_term)
while True:
    signal.pause()
'''

IN_CLOSE_NOWRITE, IN_OPEN, IN_Q_OVERFLOW = 0x10, 0x20, 0x4000


class FolderLooks:
    """Counts how often a folder is opened for reading (os.walk, scandir, listdir) via inotify.

    Open and close alternate, so the kernel does not merge consecutive events into one.
    """

    def __init__(self, folder: Path) -> None:
        libc = ctypes.CDLL(None, use_errno=True)
        self.fd = libc.inotify_init1(os.O_NONBLOCK | os.O_CLOEXEC)
        assert self.fd >= 0 and libc.inotify_add_watch(
            self.fd, str(folder).encode(), IN_OPEN | IN_CLOSE_NOWRITE) >= 0, "inotify unavailable"
        self.count = 0

    def seen(self) -> int:
        while True:
            try:
                data = os.read(self.fd, 65536)
            except BlockingIOError:
                return self.count
            offset = 0
            while offset < len(data):
                _wd, mask, _cookie, length = struct.unpack_from("iIII", data, offset)
                offset += 16 + length
                self.count += 10_000 if mask & IN_Q_OVERFLOW else bool(mask & IN_OPEN)

    def close(self) -> None:
        os.close(self.fd)


class Reloader:
    """`hot_reload.py WATCH python3 child.py LOG MODE_FILE` on the host, and what it did."""

    def __init__(self, reloader: Path, root: Path) -> None:
        self.watch = root / "src"
        self.watch.mkdir()
        (self.watch / "app.py").write_text("x = 1\n")
        self.log, self.mode_file, child = root / "life.log", root / "mode", root / "child.py"
        child.write_text(CHILD)
        self.mode("graceful 0")
        self.looks = FolderLooks(self.watch)
        self.stdout: list[str] = []
        env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}  # a pipe buffers
        self.proc = subprocess.Popen(
            [sys.executable, str(reloader), str(self.watch),
             sys.executable, str(child), str(self.log), str(self.mode_file)],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, cwd=root)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.stdout.append(line.decode(errors="replace"))

    def mode(self, mode: str) -> None:
        """How the next child behaves: 'graceful SECONDS' (SIGTERM -> clean up that long, exit)
        or 'crash' (exits at once, as a server with a syntax error)."""
        self.mode_file.write_text(mode)

    def events(self) -> list[list[str]]:
        return [line.split() for line in self.log.read_text().splitlines()] if self.log.exists() else []

    def starts(self) -> list[list[str]]:
        return [e for e in self.events() if e[0] == "start"]

    def describe(self) -> str:
        status = "running" if self.proc.poll() is None else f"exited with {self.proc.returncode}"
        return (f"reloader {status}; the children's log: {[' '.join(e) for e in self.events()]}; "
                f"its output: {''.join(self.stdout)[-800:]!r}")

    def wait(self, predicate: Callable[[], bool], what: str, timeout: float = 10.0) -> None:
        try:
            wait_until(predicate, timeout=timeout, what=what)
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{self.describe()}") from None

    def wait_for_start(self, number: int, after: str) -> list[str]:
        self.wait(lambda: len(self.starts()) >= number,
                  f"start #{number} of the command {after}: the reloader did not (re)start it")
        return self.starts()[number - 1]

    def let_it_look(self, times: int = 3) -> None:
        """Wait until the reloader has looked at the folder `times` more times."""
        target = self.looks.seen() + times
        self.wait(lambda: self.looks.seen() >= target,
                  f"the reloader to look at {self.watch} {times} more times (every 0.1 s)")

    def touch(self, name: str, mtime: float) -> None:
        path = self.watch / name
        path.parent.mkdir(exist_ok=True)
        path.write_text(f"# saved at {mtime}\n")
        os.utime(path, (mtime, mtime))

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        for event in self.events():  # children the reloader left behind
            if event[0] == "start":
                with contextlib.suppress(OSError):
                    os.kill(int(event[1]), signal.SIGKILL)
        self.looks.close()


@pytest.fixture
def reloader(tmp_path: Path, kata_file: Callable[[str], Path]) -> Iterator[Reloader]:
    running = Reloader(kata_file("hot_reload.py"), tmp_path)
    yield running
    running.close()


@pytest.mark.stage(2, "restarting on change")
def test_the_command_restarts_on_every_change_and_only_then(reloader: Reloader) -> None:
    first = reloader.wait_for_start(1, "at launch")
    reloader.wait(lambda: len(reloader.stdout) >= 1,
                  "a line of output for the first start, printed at once (flush: stdout is a pipe "
                  "in `docker logs`)")
    reloader.let_it_look()
    assert len(reloader.starts()) == 1, (
        f"the command was restarted while no file changed: restart only when the snapshot "
        f"differs. {reloader.describe()}")
    changes = [("an edit", lambda: reloader.touch("app.py", 2_000_000_000)),
               ("a new file in a subfolder", lambda: reloader.touch("pkg/new.py", 2_000_000_000)),
               ("a deleted file", lambda: (reloader.watch / "app.py").unlink()),
               ("an older mtime (git checkout, cp -p)", lambda: reloader.touch("pkg/new.py", 1_000_000))]
    previous = first
    for number, (what, change) in enumerate(changes, start=2):
        change()
        started = reloader.wait_for_start(number, f"after {what}")
        events = [" ".join(e) for e in reloader.events()]
        assert f"term {previous[1]}" in events, (
            f"after {what} the old command (pid {previous[1]}) never got SIGTERM: stop it with "
            f"terminate() first. {reloader.describe()}")
        assert started[2] == "gone", (
            f"after {what} the new command started while the old one (pid {previous[1]}) was still "
            f"there (state {started[2]}): wait until it has exited, or the new server cannot bind "
            f"the port (and an unwaited child stays a zombie). {reloader.describe()}")
        reloader.wait(lambda n=number: len(reloader.stdout) >= n,  # type: ignore[misc]
                      f"one line of output per start of the command, printed at once (flush: "
                      f"stdout is a pipe in `docker logs`); {number} starts so far")
        previous = started
    reloader.let_it_look()
    assert len(reloader.starts()) == len(changes) + 1, (
        f"{len(changes)} changes, {len(reloader.starts()) - 1} restarts: one restart per change. "
        f"{reloader.describe()}")


@pytest.mark.stage(3, "stopping the child")
def test_a_crashing_command_stays_down_until_the_next_change(reloader: Reloader) -> None:
    reloader.mode("crash")
    reloader.wait(lambda: any(e[0] == "crash" for e in reloader.events()), "the command to crash")
    reloader.let_it_look()
    assert reloader.proc.poll() is None, (
        f"the reloader must outlive a crashing child: a syntax error mid-edit is not the end. "
        f"{reloader.describe()}")
    assert len(reloader.starts()) == 1, (
        f"a crashed command was started again although no file changed: it stays down until the "
        f"next change (a crash loop would flood the log). {reloader.describe()}")
    reloader.mode("graceful 0")
    reloader.touch("app.py", 2_000_000_000)
    reloader.wait_for_start(2, "after the crash and an edit")
    assert reloader.proc.poll() is None, f"the reloader exited: {reloader.describe()}"


@pytest.mark.stage(3, "stopping the child")
def test_the_old_command_gets_two_seconds_after_sigterm_then_sigkill(reloader: Reloader) -> None:
    reloader.mode("graceful 1.5")  # the first child needs 1.5 s to shut down: it gets them
    first = reloader.wait_for_start(1, "at launch")
    reloader.mode("graceful 2.5")  # the second needs 2.5 s: it is killed after 2
    reloader.touch("app.py", 2_000_000_000)
    second = reloader.wait_for_start(2, "after an edit")
    events = [" ".join(e) for e in reloader.events()]
    assert f"clean {first[1]}" in events, (
        f"the old command got SIGTERM and needed 1.5 s to finish, but did not get to: wait up to 2 s "
        f"for it to exit before SIGKILL. {reloader.describe()}")
    reloader.touch("app.py", 2_000_000_001)
    third = reloader.wait_for_start(3, "after a second edit (the old command ignores SIGTERM for 2.5 s)")
    events = [" ".join(e) for e in reloader.events()]
    assert f"term {second[1]}" in events and f"clean {second[1]}" not in events, (
        f"the old command needed 2.5 s after SIGTERM and was allowed to finish: SIGKILL it once 2 s "
        f"have passed. {reloader.describe()}")
    assert third[2] == "gone", f"the killed command was not waited for: {reloader.describe()}"


@pytest.mark.stage(3, "stopping the child")
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_sigterm_and_sigint_stop_the_command_and_exit_0(reloader: Reloader, signum: int) -> None:
    child = reloader.wait_for_start(1, "at launch")[1]
    reloader.proc.send_signal(signum)
    reloader.wait(lambda: reloader.proc.poll() is not None,
                  f"the reloader to exit after {signal.Signals(signum).name}")
    assert reloader.proc.returncode == 0, (
        f"after {signal.Signals(signum).name} the reloader exited with {reloader.proc.returncode}: "
        f"handle the signal (as PID 1 the default action is ignored), stop the child, return 0. "
        f"{reloader.describe()}")
    events = [" ".join(e) for e in reloader.events()]
    assert f"clean {child}" in events, (
        f"the reloader exited and left its command (pid {child}) running as an orphan: stop it "
        f"(SIGTERM, wait) on the way out, in a finally. {reloader.describe()}")


@pytest.mark.stage(2, "restarting on change")
def test_it_polls_instead_of_spinning(reloader: Reloader) -> None:
    reloader.wait_for_start(1, "at launch")
    before = reloader.looks.seen()
    time.sleep(1.0)  # a window to count in: a loop that sleeps 0.1 s looks about 10 times
    looks = reloader.looks.seen() - before
    assert looks <= 30, (
        f"the reloader looked at the folder {looks} times in one second: sleep POLL_INTERVAL "
        "between two snapshots, a loop without it burns a whole CPU")
