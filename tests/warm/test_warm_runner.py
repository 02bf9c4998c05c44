"""The warm server: fresh learner code every run, and no child can take it down or outlive it."""

from __future__ import annotations

import functools
import json
import os
import socket
import sys
import time
from pathlib import Path

import psutil
import pytest

from dojo.running import launch as launch_mod
from dojo.running import warm
from dojo.running.warm_client import WarmPytest

from .conftest import ProbeRepo, run_warm

pytestmark = [
    pytest.mark.skipif(not warm.can_fork(), reason="the warm server needs fork"),
    pytest.mark.time_limit(300),
]
NODE = "katas/probe/probe/test_probe.py::test_act"


def server_alive(runner: WarmPytest) -> bool:
    return runner.active


def test_each_run_imports_the_learners_file_as_it_is_now(probe_repo: ProbeRepo, server, tmp_path):
    first = run_warm(probe_repo, server, tmp_path)
    assert (first.code, first.tests) == (0, {NODE: "passed"}), first.output

    probe_repo.act("return 41  # an edit that breaks it")
    second = run_warm(probe_repo, server, tmp_path)
    assert (second.code, second.tests) == (1, {NODE: "failed"}), second.output
    assert "assert 41 == 42" in second.output, "assertions in tests are still rewritten"
    assert "cannot be rewritten" not in second.output, "plugins were loaded as pytest loads them"

    probe_repo.act("return 40 + 2")
    third = run_warm(probe_repo, server, tmp_path)
    assert (third.code, third.tests) == (0, {NODE: "passed"}), third.output


def test_the_server_never_imports_the_learners_module(probe_repo: ProbeRepo, tmp_path):
    # a learner file that would kill whoever imports it: the warm-up must not
    probe_repo.act("return 42")
    probe_repo.learner_file.write_text("import os\nos._exit(9)\n")
    runner = WarmPytest(probe_repo.root, {**os.environ, "KATA_SOLUTIONS": "0"},
                        [probe_repo.root / "katas" / "probe"])
    try:
        runner.ensure()
        assert runner.wait_ready(120), (probe_repo.root / ".kata" / "warm.log").read_text()
        outcome = run_warm(probe_repo, runner, tmp_path)
        assert outcome.code == 9, outcome.output  # the child ran it and died of it
        assert server_alive(runner)
    finally:
        runner.close()


@pytest.mark.parametrize(
    ("body", "expected_code"),
    [
        ("os._exit(1)", 1),
        ("import ctypes\nctypes.string_at(0)  # a segmentation fault", -11),
        ("os.kill(os.getpid(), signal.SIGKILL)", -9),
        ("raise SystemExit(7)", 1),  # pytest turns it into a failed test
    ],
    ids=["os-exit", "segfault", "sigkill", "system-exit"],
)
def test_a_child_that_dies_leaves_the_server_serving(
    probe_repo: ProbeRepo, server, tmp_path, body: str, expected_code: int
):
    probe_repo.act(body)
    broken = run_warm(probe_repo, server, tmp_path)
    assert broken.code == expected_code, broken.output
    assert server_alive(server)

    probe_repo.act("return 42")
    fixed = run_warm(probe_repo, server, tmp_path)
    assert (fixed.code, fixed.tests) == (0, {NODE: "passed"}), fixed.output


def test_a_hang_is_killed_at_the_timeout_with_everything_it_started(
    probe_repo: ProbeRepo, server, tmp_path
):
    # blocks SIGALRM so the engine's own limit can't stop it: only the server's timeout can
    pids = tmp_path / "pids"
    probe_repo.act(f"""
        started = [{probe_repo.sleeper(300)}, {probe_repo.sleeper(301, start_new_session=True)}]
        open({str(pids)!r}, "w").write(" ".join(str(p.pid) for p in started))
        signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGALRM])
        while True:
            time.sleep(1)
    """)
    started = time.monotonic()
    hung = run_warm(probe_repo, server, tmp_path, timeout=3)
    assert hung.code == -1, f"a timed-out run reports -1; got {hung.code}\n{hung.output}"
    assert time.monotonic() - started < 60, "the timeout, not the test, ended the run"
    assert server_alive(server)
    assert len(pids.read_text().split()) == 2, "the run started its two sleepers"
    _, alive = psutil.wait_procs(probe_repo.leftovers(), timeout=10)
    assert not alive, f"the hung run's processes outlived it: {alive}"


def test_processes_a_run_leaves_behind_are_stopped(probe_repo: ProbeRepo, server, tmp_path):
    # os._exit skips every cleanup: the sleepers (one escaped into its own session) are orphans
    pids = tmp_path / "pids"
    probe_repo.act(f"""
        started = [{probe_repo.sleeper(300)}, {probe_repo.sleeper(301, start_new_session=True)}]
        open({str(pids)!r}, "w").write(" ".join(str(p.pid) for p in started))
        os._exit(0)
    """)
    outcome = run_warm(probe_repo, server, tmp_path)
    # the run ended without pytest's summary: never a success, whatever status the code asked for
    assert outcome.code == 3, outcome.output
    assert "os._exit(0) called from probe.py" in outcome.output
    assert len(pids.read_text().split()) == 2, "the run started its two sleepers"
    _, alive = psutil.wait_procs(probe_repo.leftovers(), timeout=10)
    assert not alive, f"processes outlived the run: {alive}"
    assert server_alive(server)


def test_a_client_that_goes_away_stops_its_run(probe_repo: ProbeRepo, server, tmp_path):
    probe_repo.act(f"""
        {probe_repo.sleeper(300)}.wait()
    """)
    client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    client.connect(str(server.sock_path))
    request = {"args": ["katas/probe/probe", "-q"], "cwd": str(probe_repo.root),
               "env": server.env, "timeout": None}
    with open(os.devnull, "w") as sink:
        socket.send_fds(client, [json.dumps(request).encode() + b"\n"], [sink.fileno()] * 2)
    deadline = time.monotonic() + 120
    while not probe_repo.leftovers():  # the run has reached the learner's code
        assert time.monotonic() < deadline, "the run never started its sleeper"
        time.sleep(0.05)
    client.close()  # as Ctrl-C in `kata run` does
    _, alive = psutil.wait_procs(probe_repo.leftovers(), timeout=30)
    assert not alive, f"the abandoned run is still going: {alive}"
    assert server_alive(server)


def test_kata_run_uses_the_watchs_server_while_one_is_active(
    probe_repo: ProbeRepo, server, tmp_path, monkeypatch
):
    ppid_file = tmp_path / "ppid"
    probe_repo.act(f"""
        open({str(ppid_file)!r}, "w").write(str(os.getppid()))
        return 42
    """)
    monkeypatch.chdir(probe_repo.root)
    launch = launch_mod.warm_launcher(probe_repo.root, timeout=120)
    assert launch(["katas/probe/probe", "-q", "-p", "no:cacheprovider"]) == 0
    assert int(ppid_file.read_text()) == server._proc.pid, "the server's child ran the tests"

    server.close()
    assert launch(["katas/probe/probe", "-q", "-p", "no:cacheprovider"]) == 0
    assert int(ppid_file.read_text()) == os.getpid(), "without a server, a cold pytest ran them"


def test_a_lost_server_means_cold_runs_not_errors(probe_repo: ProbeRepo, server, tmp_path):
    assert server._proc is not None
    server._proc.kill()
    server._proc.wait()
    assert warm.run(server.sock_path, ["katas/probe/probe"], cwd=probe_repo.root, env=server.env,
                    timeout=None) is None, "no answer: the caller runs pytest cold"


def test_the_socket_path_fits_in_sun_path(tmp_path: Path):
    deep = tmp_path / ("d" * 120)
    path = warm.socket_path(deep)
    assert len(os.fsencode(path)) <= warm.MAX_SOCKET_PATH
    assert path == warm.socket_path(deep), "clients find the server's socket from the root alone"
    assert warm.socket_path(Path("/r")) == Path("/r/.kata/warm.sock")
    assert sys.platform in ("linux", "darwin")


def test_a_restart_for_another_topic_replaces_the_server(probe_repo: ProbeRepo, server, tmp_path):
    old = server._proc
    assert old is not None
    server.restart([probe_repo.root / "katas"])
    assert old.poll() is not None, "the old server is stopped"
    assert server.wait_ready(120) and server._proc is not old
    outcome = run_warm(probe_repo, server, tmp_path)
    assert (outcome.code, outcome.tests) == (0, {NODE: "passed"}), outcome.output


def test_a_daemon_that_did_not_answer_the_warm_up_is_asked_again(monkeypatch: pytest.MonkeyPatch):
    """A learner may start Docker while `kata watch` runs: the warm server must not remember 'no'."""
    from fixtures import backends

    answers = iter([None, "a client"])
    probe = functools.cache(lambda: next(answers))
    monkeypatch.setattr(backends, "docker_client", probe)
    assert probe() is None  # the warm-up's session: no daemon yet
    child = os.fork()  # as the warm server forks each run
    if child == 0:
        os._exit(0 if probe() == "a client" else 1)
    _, status = os.waitpid(child, 0)
    assert os.waitstatus_to_exitcode(status) == 0, "each run after the warm-up pings the daemon again"
