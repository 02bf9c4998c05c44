"""Tests for hot_reload: a real container with the code bind-mounted; the test edits files on the host."""

from __future__ import annotations

import os
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from fixtures.docker_tools import DockerScope

from .hot_reload import APP_DIR, PORT, container_options, snapshot

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
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=1) as resp:
            return str(resp.read().decode())
    except OSError:
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


def test_snapshot_lists_python_files_and_their_mtimes(tmp_path: Path) -> None:
    (tmp_path / "pkg").mkdir()
    for name in ("a.py", "pkg/b.py", "notes.txt"):
        (tmp_path / name).write_text("x = 1\n")
    os.utime(tmp_path / "a.py", (1_000_000, 1_000_000))
    got = snapshot(str(tmp_path))
    expected = {str(tmp_path / "a.py"): 1_000_000.0,
                str(tmp_path / "pkg" / "b.py"): os.stat(tmp_path / "pkg" / "b.py").st_mtime}
    assert got == expected, f"snapshot() = {got}, expected every .py file (subfolders too) -> st_mtime"


def test_code_is_bind_mounted_read_only_for_an_unprivileged_user(start: Start, app_dir: Path) -> None:
    ctr, _port = start()
    mounts = {m["Destination"]: m for m in ctr.attrs["Mounts"]}
    app = mounts.get(APP_DIR)
    assert app is not None, f"nothing is mounted at {APP_DIR}: mounts are {sorted(mounts)}"
    assert app["Type"] == "bind" and app["Source"] == str(app_dir.resolve()), (
        f"{APP_DIR} is a {app['Type']} mount of {app.get('Source') or app.get('Name')}: bind-mount the "
        f"host folder {app_dir} itself (a named volume is a copy the daemon keeps, not your files)")
    assert app["RW"] is False, f"{APP_DIR} is mounted read-write: mode 'ro' makes it read-only"
    user = ctr.attrs["Config"].get("User") or ""
    assert user.split(":")[0] not in ("", "0", "root"), f"the container runs as root (User={user!r})"
    status, output = ctr.exec_run(["sh", "-c", f"touch {APP_DIR}/written-by-container"])
    assert status != 0 and not (app_dir / "written-by-container").exists(), (
        f"the container could write into {APP_DIR}: it must be read-only ({output!r})")


def test_edits_on_the_host_reload_the_server(start: Start, app_dir: Path) -> None:
    ctr, port = start()
    wait_for(ctr, port, "version 1", 15, "after start")
    write_server(app_dir, 2)
    wait_for(ctr, port, "version 2", RELOAD_WITHIN, "after server.py was rewritten in place")
    write_server(app_dir, 3, atomic=True)
    wait_for(ctr, port, "version 3", RELOAD_WITHIN,
             "after server.py was replaced by a rename (how many editors save)")


def test_a_broken_edit_does_not_kill_the_reloader(start: Start, app_dir: Path) -> None:
    ctr, port = start()
    wait_for(ctr, port, "version 1", 15, "after start")
    (app_dir / "server.py").write_text("VERSION = (  # a save in the middle of typing\n")
    deadline = time.monotonic() + RELOAD_WITHIN
    while answer(port) is not None and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.3)  # the broken server has crashed by now: give the reloader time to misbehave
    ctr.reload()
    assert ctr.status == "running", (
        f"the container {ctr.status} after a syntax error in server.py: the reloader must outlive a "
        f"crashing child and wait for the next change. Its log:\n{logs(ctr)}")
    write_server(app_dir, 4)
    wait_for(ctr, port, "version 4", RELOAD_WITHIN, "after the syntax error was fixed")
