"""Tests for engine_api: the learner's stdlib client against the real daemon, docker-py as the witness."""

from __future__ import annotations

import socket
import uuid
from typing import Any

import docker  # type: ignore[import-untyped]
import pytest

from dojo.testing import Background, wait_until
from fixtures.docker_tools import DockerScope

from .engine_api import DEFAULT_SOCKET, Engine, EngineError, UnixHTTPConnection


@pytest.fixture
def engine(docker_api: Any) -> Engine:
    return Engine(DEFAULT_SOCKET)


@pytest.fixture
def labels(docker_scope: DockerScope) -> dict[str, str]:
    """Labels for every container of the test: one of its own, plus the scope's (cleanup)."""
    return {**docker_scope.labels, "kata.engine_api": uuid.uuid4().hex[:8]}


def witness(docker_api: Any, container_id: str) -> dict[str, Any]:
    """docker-py's view of a container (an independent client of the same daemon)."""
    return docker_api.api.inspect_container(container_id)  # type: ignore[no-any-return]


def test_version_over_the_unix_socket(engine: Engine, docker_api: Any) -> None:
    conn = UnixHTTPConnection(DEFAULT_SOCKET, timeout=10)
    try:
        conn.request("GET", "/_ping")
        resp = conn.getresponse()
        assert (resp.status, resp.read()) == (200, b"OK"), "GET /_ping should answer 200 OK"
        assert conn.sock is not None and conn.sock.family == socket.AF_UNIX, (
            "connect() must open an AF_UNIX socket to the daemon's socket path")
    finally:
        conn.close()
    got = engine.version()
    expected = docker_api.version()
    assert (got.get("ApiVersion"), got.get("Version")) == (expected["ApiVersion"], expected["Version"]), (
        f"version() = {got}, docker-py says ApiVersion {expected['ApiVersion']}, Version {expected['Version']}")


def test_containers_filters_by_label_and_running_state(
    engine: Engine, docker_api: Any, docker_scope: DockerScope, labels: dict[str, str],
    python_base_image: str,
) -> None:
    running = docker_scope.run(python_base_image, command=["sleep", "30"], labels=labels)
    exited = docker_scope.run(python_base_image, command=["true"], labels=labels)
    docker_scope.run(python_base_image, command=["sleep", "30"])  # same scope, not our label
    exited.wait(timeout=30)
    ours = {"kata.engine_api": labels["kata.engine_api"]}
    listed = {c["Id"] for c in engine.containers(labels=ours)}
    assert listed == {running.id}, (
        f"containers(labels=...) returned {len(listed)} container(s), expected only the running one "
        "with that label: is `filters` the URL-encoded JSON {\"label\": [\"key=value\"]}, and is all=0?")
    every = {c["Id"] for c in engine.containers(all=True, labels=ours)}
    assert every == {running.id, exited.id}, (
        "containers(all=True, labels=...) must also list the exited container (query all=1)")


def test_create_and_start(
    engine: Engine, docker_api: Any, labels: dict[str, str], python_base_image: str,
) -> None:
    name = f"kata-engine-{labels['kata.engine_api']}"
    cid = engine.create(python_base_image, ["sleep", "30"], labels=labels, name=name)
    seen = witness(docker_api, cid)
    assert seen["Name"] == f"/{name}", f"the container is named {seen['Name']}, expected /{name} (?name=)"
    assert seen["Config"]["Image"] == python_base_image and seen["Config"]["Cmd"] == ["sleep", "30"], (
        f"docker-py sees Image {seen['Config']['Image']!r}, Cmd {seen['Config']['Cmd']}")
    assert labels.items() <= (seen["Config"]["Labels"] or {}).items(), "the labels were not set"
    assert seen["HostConfig"].get("Init") is True, "HostConfig.Init must be true (signals reach the process)"
    assert seen["State"]["Status"] == "created", f"create() must not start it: {seen['State']['Status']}"
    engine.start(cid)
    assert witness(docker_api, cid)["State"]["Status"] == "running", "start() did not start it"
    engine.start(cid)  # 304 Not Modified: already running is not an error


def test_logs_are_streamed_frame_by_frame_while_it_runs(
    engine: Engine, docker_api: Any, labels: dict[str, str], python_base_image: str,
) -> None:
    script = "echo out 1; echo err 1 >&2; echo out 2; exec sleep 30"
    cid = engine.create(python_base_image, ["sh", "-c", script], labels=labels)
    engine.start(cid)
    frames: list[tuple[int, bytes]] = []

    def follow() -> None:
        for frame in engine.logs(cid, follow=True):
            frames.append(frame)

    reader = Background(follow, name="logs(follow=True)")
    try:
        wait_until(lambda: len(frames) >= 3 or reader.done, timeout=8,
                   what="three frames from logs(follow=True) while the container runs: read frame by "
                        "frame (8-byte header, then the payload), not the body to its end")
    except AssertionError:
        docker_api.api.stop(cid, timeout=0)
        raise
    assert not reader.done or frames, "logs(follow=True) ended before the container did"
    assert witness(docker_api, cid)["State"]["Running"], "the frames must arrive while it still runs"
    docker_api.api.stop(cid, timeout=0)
    reader.result(timeout=10)  # the stream ends when the container stops
    by_stream = {s: b"".join(p for t, p in frames if t == s) for s in (1, 2)}
    assert by_stream == {1: b"out 1\nout 2\n", 2: b"err 1\n"}, (
        f"frames demultiplexed by stream id: {by_stream}; expected stdout (1) 'out 1\\nout 2\\n' and "
        "stderr (2) 'err 1\\n'. Header: struct.unpack('>BxxxL', header) -> (stream, length)")


def test_logs_of_a_finished_container_keep_every_byte(
    engine: Engine, docker_api: Any, labels: dict[str, str], python_base_image: str,
) -> None:
    # a long line (the daemon cuts lines into 16 KiB messages) and bytes that look like headers
    script = ("head -c 40000 /dev/zero | tr '\\0' x; echo; printf '\\001\\000\\000\\000\\000\\n' >&2; "
              "echo done")
    cid = engine.create(python_base_image, ["sh", "-c", script], labels=labels)
    engine.start(cid)
    assert engine.wait(cid) == 0
    frames = list(engine.logs(cid, follow=False))
    assert all(stream in (1, 2) for stream, _ in frames), (
        f"stream ids {sorted({s for s, _ in frames})}: each frame's first byte is 1 or 2")
    stdout = b"".join(p for s, p in frames if s == 1)
    stderr = b"".join(p for s, p in frames if s == 2)
    assert stdout == b"x" * 40000 + b"\ndone\n", (
        f"stdout has {len(stdout)} bytes, expected 40006: read exactly `length` payload bytes per frame")
    assert stderr == b"\x01\x00\x00\x00\x00\n", f"stderr = {stderr!r}: payload bytes are data, not headers"


def test_wait_stop_and_remove(
    engine: Engine, docker_api: Any, labels: dict[str, str], python_base_image: str,
) -> None:
    failing = engine.create(python_base_image, ["sh", "-c", "exit 3"], labels=labels)
    engine.start(failing)
    assert engine.wait(failing) == 3, "wait() returns the container's exit code (StatusCode)"
    sleeper = engine.create(python_base_image, ["sleep", "30"], labels=labels)
    engine.start(sleeper)
    engine.stop(sleeper, timeout=1)
    assert witness(docker_api, sleeper)["State"]["Status"] == "exited", "stop() did not stop it"
    engine.stop(sleeper, timeout=1)  # 304 Not Modified: already stopped is not an error
    engine.remove(sleeper)
    with pytest.raises(docker.errors.NotFound):
        witness(docker_api, sleeper)
    with pytest.raises(EngineError) as gone:
        engine.remove(sleeper)
    assert gone.value.status == 404, f"removing it twice: expected EngineError 404, got {gone.value.status}"
    running = engine.create(python_base_image, ["sleep", "30"], labels=labels)
    engine.start(running)
    with pytest.raises(EngineError) as refused:
        engine.remove(running)
    assert refused.value.status == 409, "a running container is not removed without force (409 Conflict)"
    engine.remove(running, force=True)
    with pytest.raises(docker.errors.NotFound):
        witness(docker_api, running)
