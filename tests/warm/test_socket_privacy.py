"""The warm server's socket: private to its user, and each end checks who is at the other."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import stat
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from dojo.running import warm
from dojo.running.warm_client import WarmPytest
from tests.second_user import as_other_user, other_uid

from .conftest import PATIENCE, ProbeRepo

pytestmark = [
    pytest.mark.skipif(not warm.can_fork(), reason="the warm server needs fork"),
    pytest.mark.time_limit(300),
]
SECRET = "KATA_TEST_SECRET"


@pytest.fixture
def open_folder() -> Iterator[Path]:
    """A folder every user may write in, as /tmp is."""
    folder = Path(tempfile.mkdtemp(prefix="kata-socktest-"))
    folder.chmod(0o1777)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def shared_file(folder: Path, name: str) -> Path:
    """A file the other user can write its findings to."""
    path = folder / name
    path.write_text("nothing")
    path.chmod(0o666)
    return path


def test_a_long_clone_path_puts_the_socket_in_a_private_folder(tmp_path: Path) -> None:
    root = tmp_path / ("a-very-long-clone-path-" * 5)
    (root / ".kata").mkdir(parents=True)
    path = warm.socket_path(root)
    assert len(os.fsencode(path)) <= warm.MAX_SOCKET_PATH
    folder = path.parent.lstat()
    assert folder.st_uid == os.geteuid() and stat.S_IMODE(folder.st_mode) == 0o700, oct(folder.st_mode)

    def squat() -> None:
        with socket.socket(socket.AF_UNIX) as listener:
            listener.bind(os.fspath(path))  # what another user did at /tmp/kata-warm-<hash>.sock

    with pytest.raises(AssertionError, match="PermissionError"):
        as_other_user(squat)
    assert warm.socket_path(root) == path, "clients find the same socket from the root alone"


def test_a_client_never_talks_to_a_server_of_another_user(
    open_folder: Path, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    sock_path = open_folder / "warm.sock"
    heard = shared_file(open_folder, "heard")
    listening = shared_file(open_folder, "listening")

    def listen() -> None:
        with socket.socket(socket.AF_UNIX) as listener:
            listener.bind(os.fspath(sock_path))
            os.chmod(sock_path, 0o777)
            listener.listen(1)
            listening.write_text("yes")
            listener.settimeout(20)
            conn, _ = listener.accept()
            conn.settimeout(5)
            with contextlib.suppress(OSError):
                data, fds, _, _ = socket.recv_fds(conn, 1 << 20, 4)
                heard.write_text(json.dumps({"data": data.decode(errors="replace"), "fds": len(fds)}))
                conn.sendall(b'{"exit": 0, "timed_out": false}\n')

    owner = threading.Thread(target=as_other_user, args=(listen,))
    owner.start()
    for _ in range(400):
        if listening.read_text() == "yes":
            break
        time.sleep(0.05)
    code = warm.run(sock_path, ["katas"], cwd=tmp_path, env={SECRET: "s3cret"}, timeout=5)
    owner.join(30)
    said = heard.read_text()
    assert SECRET not in said and '"fds": 2' not in said, f"another user's server was sent: {said}"
    assert code is None, "a server of another user is not trusted: the run goes cold"
    assert f"uid {other_uid()}" in capfd.readouterr().err


def test_a_server_never_runs_a_request_of_another_user(
    probe_repo: ProbeRepo, open_folder: Path
) -> None:
    sock_path = open_folder / "warm.sock"
    env = {**os.environ, "KATA_SOLUTIONS": "0"}
    env.pop("PYTEST_ADDOPTS", None)
    env.pop("PYTEST_XDIST_WORKER", None)
    marker = open_folder / "ran"
    probe_repo.act(f"open({str(marker)!r}, 'w').close()\nreturn 42")
    runner = WarmPytest(probe_repo.root, env, [probe_repo.root / "katas" / "probe"], sock_path=sock_path)
    runner.ensure()
    try:
        assert runner.wait_ready(PATIENCE), (probe_repo.root / ".kata" / "warm.log").read_text()
        os.chmod(sock_path, 0o777)  # reachable: only the server's own check stands in the way
        answer = shared_file(open_folder, "answer")

        def ask() -> None:  # by hand: our own client would refuse a server of another user
            _, write_end = os.pipe()
            request = {"args": ["katas/probe/probe", "-p", "no:cacheprovider"],
                       "cwd": str(probe_repo.root), "env": {}, "timeout": 60}
            with socket.socket(socket.AF_UNIX) as client:
                client.connect(os.fspath(sock_path))
                client.settimeout(60)
                try:
                    socket.send_fds(client, [json.dumps(request).encode() + b"\n"], [write_end, write_end])
                    reply = client.recv(1 << 16)
                except (BrokenPipeError, ConnectionResetError):
                    reply = b""  # hung up on before the request was even read
                answer.write_text(repr(reply))

        as_other_user(ask)
        assert answer.read_text() == "b''", f"the server answered another user: {answer.read_text()}"
        assert not marker.exists(), "the server ran the tests for another user"
    finally:
        runner.close()
