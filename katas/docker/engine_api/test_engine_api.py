"""Tests for engine_api: the learner's stdlib client against the real daemon, docker-py as the witness."""

from __future__ import annotations

import contextlib
import gc
import os
import socket
import tempfile
import threading
import uuid
import warnings
from collections.abc import Callable, Iterator
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


@pytest.mark.stage(1, "containers over the socket")
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


@pytest.mark.stage(1, "containers over the socket")
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
    unfiltered = {c["Id"] for c in engine.containers()}
    assert running.id in unfiltered and exited.id not in unfiltered, (
        "containers() without labels lists every running container, and no exited one (all=0)")


@pytest.mark.stage(1, "containers over the socket")
def test_create_and_start(
    engine: Engine, docker_api: Any, labels: dict[str, str], python_base_image: str,
) -> None:
    name = f"kata-engine-{labels['kata.engine_api']}"
    cid = engine.create(python_base_image, ["sleep", "30"], labels=labels, name=name)
    seen = witness(docker_api, cid)
    assert cid == seen["Id"], (
        f"create() returned {cid!r}; the daemon's Id is {seen['Id']!r}: return the whole Id it answered")
    assert seen["Name"] == f"/{name}", f"the container is named {seen['Name']}, expected /{name} (?name=)"
    assert seen["Config"]["Image"] == python_base_image and seen["Config"]["Cmd"] == ["sleep", "30"], (
        f"docker-py sees Image {seen['Config']['Image']!r}, Cmd {seen['Config']['Cmd']}")
    assert labels.items() <= (seen["Config"]["Labels"] or {}).items(), "the labels were not set"
    assert seen["HostConfig"].get("Init") is True, "HostConfig.Init must be true (signals reach the process)"
    assert seen["State"]["Status"] == "created", f"create() must not start it: {seen['State']['Status']}"
    engine.start(cid)
    assert witness(docker_api, cid)["State"]["Status"] == "running", "start() did not start it"
    try:
        engine.start(cid)
    except EngineError as exc:
        raise AssertionError(
            f"starting a running container raised {exc}: the daemon answers 304 Not Modified, and "
            "already running is not an error") from exc


@pytest.mark.stage(2, "log frames")
def test_logs_are_streamed_frame_by_frame_while_it_runs(
    engine: Engine, docker_api: Any, labels: dict[str, str], python_base_image: str,
) -> None:
    script = "echo out 1; echo err 1 >&2; echo out 2; exec sleep 30"
    cid = engine.create(python_base_image, ["sh", "-c", script], labels=labels)
    engine.start(cid)
    frames: list[tuple[int, bytes]] = []

    def follow() -> None:
        for frame in engine.logs(cid):  # follow=True is the default
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


@pytest.mark.stage(2, "log frames")
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


@pytest.mark.stage(3, "lifecycle and errors")
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
    engine.stop(sleeper, 1)  # 304 Not Modified: already stopped is not an error
    engine.remove(sleeper)
    with pytest.raises(docker.errors.NotFound):
        witness(docker_api, sleeper)
    with pytest.raises(EngineError) as gone:
        engine.remove(sleeper)
    assert gone.value.status == 404, f"removing it twice: expected EngineError 404, got {gone.value.status}"
    _same_error(gone.value, docker_api.api.remove_container, sleeper)
    running = engine.create(python_base_image, ["sleep", "30"], labels=labels)
    engine.start(running)
    with pytest.raises(EngineError) as refused:
        engine.remove(running)
    assert refused.value.status == 409, "a running container is not removed without force (409 Conflict)"
    _same_error(refused.value, docker_api.api.remove_container, running)
    engine.remove(running, force=True)
    with pytest.raises(docker.errors.NotFound):
        witness(docker_api, running)


def _same_error(got: EngineError, witness_call: Callable[..., Any], *args: Any) -> None:
    """The daemon's message, as docker-py's APIError.explanation shows it, and both in str()."""
    with pytest.raises(docker.errors.APIError) as expected:
        witness_call(*args)
    explanation = expected.value.explanation
    assert got.message == explanation, (
        f"EngineError.message is {got.message!r}; the daemon said {explanation!r}: the body is JSON "
        "{\"message\": ...}, or for some errors plain text, which is the message itself (stripped)")
    assert str(got.status) in str(got) and explanation in str(got), (
        f"str(EngineError) is {str(got)!r}: it should show the status and the daemon's message")


@pytest.mark.stage(3, "lifecycle and errors")
def test_every_path_but_version_carries_the_api_version(engine: Engine, docker_api: Any) -> None:
    """A daemon refuses a version it does not speak, with a plain-text (not JSON) error."""
    too_new = Engine(DEFAULT_SOCKET, api_version="1.99")
    try:
        spoken = too_new.version().get("ApiVersion")
    except EngineError as exc:
        raise AssertionError(
            f"version() with api_version='1.99' raised {exc}: GET /version has no version prefix, it is "
            "how a client learns which version to ask for") from exc
    assert spoken == docker_api.version()["ApiVersion"], (
        f"version() says ApiVersion {spoken!r}, docker-py {docker_api.version()['ApiVersion']!r}")
    with pytest.raises(EngineError) as refused:
        too_new.containers()
    assert refused.value.status == 400, (
        f"GET /v1.99/containers/json: expected EngineError 400 (version too new), got {refused.value.status}: "
        "is every path but /version prefixed with /v{api_version}?")
    witness_client = docker.APIClient(base_url=f"unix://{DEFAULT_SOCKET}", version="1.99")
    try:
        _same_error(refused.value, witness_client.containers)
    finally:
        witness_client.close()
    # "too old" comes back as plain text, not JSON: the body itself is the message
    with pytest.raises(EngineError) as too_old:
        Engine(DEFAULT_SOCKET, api_version="1.0").containers()
    plain = _raw_body("/v1.0/containers/json")
    assert not plain.startswith(b"{"), f"the daemon answered {plain!r}: this test expected plain text"
    assert (too_old.value.status, too_old.value.message) == (400, plain.decode().strip()), (
        f"EngineError for a plain-text error body: ({too_old.value.status}, {too_old.value.message!r}); "
        f"the daemon said 400 and {plain!r}: a body that is not JSON is the message itself, stripped")


def _raw_body(path: str) -> bytes:
    """The daemon's answer body to GET `path`, over a plain socket (HTTP/1.0: read to the end)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(10)
        sock.connect(DEFAULT_SOCKET)
        sock.sendall(f"GET {path} HTTP/1.0\r\nHost: docker\r\n\r\n".encode())
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    return answer.partition(b"\r\n\r\n")[2]


@pytest.mark.stage(4, "timeouts and leaks")
def test_wait_and_logs_wait_as_long_as_the_container_runs(
    docker_api: Any, labels: dict[str, str], python_base_image: str,
) -> None:
    quick = Engine(DEFAULT_SOCKET, timeout=1)  # a container silent for 3 s outlasts it
    cid = quick.create(python_base_image, ["sh", "-c", "sleep 3; echo late; exit 4"], labels=labels)
    quick.start(cid)
    follower = Background(lambda: list(quick.logs(cid)), name="logs(follow=True)")
    try:
        status = quick.wait(cid)
    except OSError as exc:
        raise AssertionError(
            f"wait() raised {exc!r} while the container was still running: wait() and logs() must "
            "wait as long as the container runs (no read timeout: timeout=None), whatever the "
            "engine's timeout") from exc
    assert status == 4, f"wait() returned {status}, expected the exit code 4"
    try:
        frames = follower.result(timeout=30)
    except OSError as exc:
        raise AssertionError(
            f"logs(follow=True) raised {exc!r} while the container was quiet: wait() and logs() must "
            "wait as long as the container runs (no read timeout: timeout=None)") from exc
    assert frames == [(1, b"late\n")], f"logs of a container quiet for 3 s: {frames}"


@pytest.mark.stage(4, "timeouts and leaks")
def test_stop_waits_for_the_grace_period_on_top_of_the_timeout(
    docker_api: Any, labels: dict[str, str], python_base_image: str,
) -> None:
    engine = Engine(DEFAULT_SOCKET, timeout=3)
    # ignores SIGTERM: the daemon kills it after the grace period of 4 s, longer than the timeout
    cid = engine.create(python_base_image, ["sh", "-c", "trap '' TERM; sleep 60"], labels=labels)
    engine.start(cid)
    try:
        engine.stop(cid, 4)
    except OSError as exc:
        raise AssertionError(
            f"stop(id, 4) with a 3 s engine timeout raised {exc!r}: the daemon answers only after the "
            "grace period, so the call may stay silent for timeout + t seconds (and t must be sent "
            "as ?t=4: the daemon's own default is 10 s)") from exc
    state = witness(docker_api, cid)["State"]
    assert (state["Status"], state["ExitCode"]) == ("exited", 137), (
        f"after stop(id, 4) the container is {state['Status']} with exit code {state['ExitCode']}; "
        "expected killed (137) once the grace period was over")


@pytest.fixture
def silent_daemon() -> Iterator[str]:
    """A unix socket that accepts connections and reads requests, but never answers."""
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "silent.sock")
        server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        server.bind(path)
        server.listen()
        held: list[socket.socket] = []

        def serve() -> None:
            with contextlib.suppress(OSError):
                while True:
                    conn, _ = server.accept()
                    held.append(conn)  # kept open: the client waits for an answer that never comes

        threading.Thread(target=serve, daemon=True, name="silent daemon").start()
        try:
            yield path
        finally:
            with contextlib.suppress(OSError):
                server.shutdown(socket.SHUT_RDWR)
            server.close()
            for conn in held:
                conn.close()


@pytest.mark.stage(4, "timeouts and leaks")
def test_a_silent_daemon_makes_every_call_give_up_after_the_timeout(silent_daemon: str) -> None:
    conn = UnixHTTPConnection(silent_daemon, timeout=0.5)

    def ask() -> None:
        try:
            conn.request("GET", "/_ping")
            conn.getresponse()
        finally:
            conn.close()

    engine = Engine(silent_daemon, timeout=0.5)
    calls: dict[str, Callable[[], object]] = {
        "UnixHTTPConnection(timeout=0.5)": ask,
        "version()": engine.version,
        "containers()": engine.containers,
        "create()": lambda: engine.create("kata-no-image", ["true"]),
        "start()": lambda: engine.start("kata-none"),
        "stop(id, 1)": lambda: engine.stop("kata-none", 1),
        "remove()": lambda: engine.remove("kata-none"),
    }
    for what, call in calls.items():
        waiting = Background(call, name=what)
        with pytest.raises(OSError) as gave_up:
            try:
                waiting.result(timeout=15)
            except AssertionError as exc:
                raise AssertionError(
                    f"{what} against a silent daemon, with a 0.5 s timeout, was still waiting after "
                    "15 s: set the socket's timeout (sock.settimeout(self.timeout) in connect, the "
                    "engine's timeout on each connection) so a silent daemon makes a call give up"
                ) from exc
        assert isinstance(gave_up.value, TimeoutError), (
            f"{what} against a silent daemon raised {gave_up.value!r}; expected TimeoutError")


def _unclosed_sockets(action: Callable[[], object]) -> list[str]:
    """ResourceWarnings (a socket garbage-collected while still open) that `action` causes."""
    gc.collect()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ResourceWarning)
        with contextlib.suppress(OSError, EngineError):  # the failure is the scenario
            action()
        gc.collect()
    return [str(w.message) for w in caught if issubclass(w.category, ResourceWarning)]


@pytest.mark.stage(4, "timeouts and leaks")
def test_no_connection_is_left_open(
    engine: Engine, labels: dict[str, str], python_base_image: str, silent_daemon: str,
) -> None:
    cid = engine.create(python_base_image, ["sh", "-c", "echo one; echo two; sleep 30"], labels=labels)
    engine.start(cid)
    wait_until(lambda: len(list(engine.logs(cid, follow=False))) >= 2, timeout=10,
               what="the container's two lines in its logs")

    def abandon_a_followed_stream() -> None:
        stream = engine.logs(cid)
        next(stream)
        stream.close()  # what a for loop's break (or the garbage collector) does to a generator

    scenarios: dict[str, Callable[[], object]] = {
        "version()": engine.version,
        "containers()": engine.containers,
        "logs(follow=False), read to the end": lambda: list(engine.logs(cid, follow=False)),
        "logs(follow=True), abandoned after one frame": abandon_a_followed_stream,
        "an error answer (remove of a missing container)": lambda: engine.remove("kata-missing"),
        "a socket path where no daemon listens": Engine("/nonexistent/docker.sock").version,
        "a call that timed out (a silent daemon)": Engine(silent_daemon, timeout=0.2).version,
    }
    for what, action in scenarios.items():
        leaked = _unclosed_sockets(action)
        assert not leaked, (
            f"{what} left a socket open (found by the garbage collector: {leaked[0]}). Close every "
            "connection whatever happens (try/finally), also when connect() fails and when the "
            "caller stops reading a logs generator early")
    engine.remove(cid, force=True)


@pytest.mark.stage(3, "lifecycle and errors")
def test_remove_takes_the_anonymous_volumes_with_it(
    engine: Engine, docker_api: Any, labels: dict[str, str], python_base_image: str,
) -> None:
    created = docker_api.api.create_container(python_base_image, command=["true"], volumes=["/data"],
                                              labels=labels)
    mounts = witness(docker_api, created["Id"])["Mounts"]
    volume = next(m["Name"] for m in mounts if m["Destination"] == "/data")
    try:
        engine.remove(created["Id"])
        left = {v.name for v in docker_api.volumes.list()}
        assert volume not in left, (
            f"after remove(), the container's anonymous volume {volume[:12]} is still there: "
            "DELETE /containers/{id}?v=1 removes them with it (docker rm -v)")
    finally:
        with contextlib.suppress(docker.errors.APIError):
            docker_api.volumes.get(volume).remove(force=True)
