"""Tests for compose_redis: bring the learner's compose file up for real and watch the counter."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml
from pytest_docker.plugin import DockerComposeExecutor

from dojo.timelimit import paused
from fixtures import compose
from fixtures.errors import ServiceUnavailable

HERE = Path(__file__).parent
DEFAULT_NETWORKS = {"bridge", "host", "none"}
STOP_GRACE = 3  # seconds `stop` waits after SIGTERM before it sends SIGKILL (the bound on down)
KILLED = 128 + signal.SIGKILL  # a container's exit code when it had to be killed


@dataclass
class Stack:
    """The compose project under test: its name, a compose executor, or why `up` failed."""

    name: str
    run: DockerComposeExecutor | None
    client: Any
    error: str = ""
    ports: dict[str, int] = field(default_factory=dict)

    def require(self) -> DockerComposeExecutor:
        if self.run is None:
            pytest.fail(f"`docker-compose up` failed:\n{self.error}", pytrace=False)
        return self.run

    def container(self, service: str) -> Any:
        found = self.client.containers.list(all=True, filters={"label": [
            f"com.docker.compose.project={self.name}", f"com.docker.compose.service={service}"]})
        if not found:
            pytest.fail(f"the project has no `{service}` service (no container for it)", pytrace=False)
        return found[0]

    def web_port(self) -> int:
        bindings = (self.container("web").attrs["NetworkSettings"]["Ports"] or {}).get("8000/tcp")
        if not bindings:
            pytest.fail("web's port 8000 is not published on the host: ports: "
                        '["127.0.0.1::8000"] (host address, host port left to the daemon, '
                        "container port)", pytrace=False)
        return int(bindings[0]["HostPort"])

    def get(self, timeout: float = 15.0) -> dict[str, Any]:
        """GET / on web; a name Redis' DNS does not know fails at once, a refusal is retried."""
        port = self.web_port()
        deadline = time.monotonic() + timeout
        body: dict[str, Any] = {}
        redis_failing_since = None
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=3) as resp:
                    return dict(json.loads(resp.read()))
            except urllib.error.HTTPError as exc:
                # the app answers but cannot reach Redis: a started Redis answers within a second
                body = json.loads(exc.read() or b"{}")
                redis_failing_since = redis_failing_since or time.monotonic()
                if "not known" in body.get("error", "") or time.monotonic() - redis_failing_since > 3:
                    break
            except OSError as exc:
                body = {"error": f"no answer from the app on 127.0.0.1:{port}: {exc}"}
            time.sleep(0.1)
        pytest.fail(f"GET / on web did not count a hit: {body}. The app connects to "
                    f"{body.get('redis', 'REDIS_HOST:REDIS_PORT')}: Redis must be reachable there by "
                    f"its service name, on a network both services share{self.why_not(body)}",
                    pytrace=False)

    def why_not(self, body: dict[str, Any]) -> str:
        """What else the failure says: a Redis that is not running, or a port nothing listens on."""
        found = self.client.containers.list(all=True, filters={"label": [
            f"com.docker.compose.project={self.name}", "com.docker.compose.service=redis"]})
        if found and found[0].status != "running":
            log = found[0].logs(tail=5).decode("utf-8", "replace").strip()
            return (f". The redis container is {found[0].status} (exit code "
                    f"{found[0].attrs['State']['ExitCode']}); its last lines:\n{log}")
        if "refused" in body.get("error", ""):
            return (". Connection refused: the name resolved, but nothing listens on that port "
                    "(Redis listens on 6379)")
        return ""


@pytest.fixture(scope="module")
def stack(kata_file: Callable[[str], Path], tmp_path_factory: pytest.TempPathFactory,
          docker_api: Any, python_base_image: str) -> Iterator[Stack]:
    """The learner's compose file, with the app next to it, up once for the module."""
    project = tmp_path_factory.mktemp("compose_redis")
    shutil.copy(kata_file("docker-compose.yml"), project / "docker-compose.yml")
    shutil.copytree(HERE / "app", project / "app", ignore=shutil.ignore_patterns("__pycache__"))
    name = compose.project_name("composeredis")
    try:
        with paused(), compose.project(project / "docker-compose.yml", name):
            command = compose.compose_command()
            assert command is not None
            executor = DockerComposeExecutor(command, str(project / "docker-compose.yml"), name)
            yield Stack(name, executor, docker_api)
    except ServiceUnavailable as exc:
        pytest.skip(str(exc))
    except Exception as exc:
        if "returned" not in str(exc):  # not a failed compose command: a real bug, show it
            raise
        yield Stack(name, None, docker_api, error=str(exc)[-2000:])


@pytest.mark.stage(1, "the counting stack")
def test_app_counts_in_redis_reached_by_service_name(stack: Stack) -> None:
    stack.require()
    first = stack.get()
    second = stack.get()
    assert second["hits"] == first["hits"] + 1, f"two GETs counted {first['hits']} then {second['hits']}"
    host = first["redis"].split(":")[0]
    assert host == "redis", (f"the app reaches Redis at {first['redis']}: use the service name "
                             "`redis` (Docker's DNS resolves it on the project's network)")
    assert first["redis"] == "redis:6379", (
        f"the app reaches Redis at {first['redis']}: REDIS_PORT is Redis' own port, 6379")
    _code, out = stack.container("redis").exec_run(["redis-cli", "GET", "hits"])
    assert out.decode().strip() == str(second["hits"]), (
        f"the project's own Redis holds hits={out.decode().strip()!r}, the app said {second['hits']}")


@pytest.mark.stage(2, "ports and networks")
def test_redis_is_private_and_web_is_published_on_loopback(stack: Stack) -> None:
    stack.require()
    web, redis = stack.container("web"), stack.container("redis")
    redis_ports = redis.attrs["NetworkSettings"]["Ports"] or {}
    published = {p: b for p, b in redis_ports.items() if b}
    assert not published, (
        f"Redis is published on the host ({published}): anyone who can reach the host can talk to "
        "your database. Leave out `ports:`; the app reaches it over the compose network")
    web_bindings = (web.attrs["NetworkSettings"]["Ports"] or {}).get("8000/tcp") or []
    addresses = {b["HostIp"] for b in web_bindings}
    assert addresses == {"127.0.0.1"}, (
        f"web's port 8000 is published on {addresses or 'nothing'}: on loopback only, "
        '"127.0.0.1::8000" (0.0.0.0 would open it to the network)')
    asked = {b.get("HostPort") or "" for b in (web.attrs["HostConfig"]["PortBindings"] or {}).get("8000/tcp") or []}
    assert asked <= {"", "0"}, (
        f"web asks for host port {sorted(asked)}: leave the host port to the daemon "
        '("127.0.0.1::8000"), a fixed one collides with whatever else holds it (a second copy of '
        "the project, another app)")
    web_nets = set(web.attrs["NetworkSettings"]["Networks"])
    redis_nets = set(redis.attrs["NetworkSettings"]["Networks"])
    shared = (web_nets & redis_nets) - DEFAULT_NETWORKS
    assert shared, (f"web is on {sorted(web_nets)}, redis on {sorted(redis_nets)}: they must share a "
                    "user-defined network (the default bridge has no DNS for names)")


@pytest.mark.stage(3, "restarts and stops")
def test_counter_survives_app_restart_but_not_down_v(stack: Stack) -> None:
    run = stack.require()
    before = stack.get()["hits"]
    with paused():
        run.execute("restart -t 1 web")
    after_restart = stack.get()["hits"]
    assert after_restart == before + 1, (
        f"after `restart web` the counter went from {before} to {after_restart}: the count must live "
        "in Redis, which the app's restart does not touch")
    with paused():
        run.execute("down -v -t 1")
        run.execute("up -d")
    fresh = stack.get()["hits"]
    assert fresh == 1, (f"after `down -v` and `up` the counter is {fresh}, expected 1: down removes the "
                        "containers (and -v their volumes), so Redis starts empty")


@pytest.mark.stage(1, "the counting stack")
def test_images_come_from_the_environment_with_the_readme_defaults(
    kata_file: Callable[[str], Path], tmp_path: Path,
) -> None:
    """`config` only: what compose makes of the file with the variables set, and unset."""
    command = compose.compose_command()
    if command is None:
        pytest.skip("neither `docker compose` nor `docker-compose` is installed")
    shutil.copy(kata_file("docker-compose.yml"), tmp_path / "docker-compose.yml")
    (tmp_path / "app").mkdir()
    stand_ins = {"KATA_IMAGE_PYTHON": "ci.local/python:stand-in", "KATA_IMAGE_REDIS": "ci.local/redis:stand-in"}
    bare = {k: v for k, v in os.environ.items() if k not in stand_ins}
    for env, expected in ((bare, {"web": "python:3.11-slim", "redis": "redis:7.4"}),
                          ({**bare, **stand_ins}, {"web": stand_ins["KATA_IMAGE_PYTHON"],
                                                   "redis": stand_ins["KATA_IMAGE_REDIS"]})):
        done = subprocess.run([*command.split(), "-f", str(tmp_path / "docker-compose.yml"), "config"],
                              capture_output=True, text=True, timeout=60, env=env, cwd=tmp_path)
        assert done.returncode == 0, f"`{command} config` rejects the file: {done.stderr.strip()[-800:]}"
        services = (yaml.safe_load(done.stdout) or {}).get("services") or {}
        images = {name: (services.get(name) or {}).get("image") for name in expected}
        assert images == expected, (
            f"with {', '.join(k for k in stand_ins if k in env) or 'no KATA_IMAGE_* set'} the services "
            f"run {images}, expected {expected}: image: ${{KATA_IMAGE_REDIS:-redis:7.4}} (and "
            "${KATA_IMAGE_PYTHON:-python:3.11-slim}) lets CI substitute its stand-ins")


@pytest.mark.stage(3, "restarts and stops")
def test_web_stops_on_sigterm_so_down_takes_a_moment(stack: Stack) -> None:
    """Watched by behaviour, not by a clock: a container that ignored SIGTERM exits 137 (killed)."""
    run = stack.require()
    stack.get()  # web is up and serving
    with paused():
        run.execute(f"stop -t {STOP_GRACE} web")
        state = stack.container("web").attrs["State"]
        run.execute("up -d")  # back up, for whatever runs next
    assert state["ExitCode"] != KILLED, (
        f"web ignored SIGTERM for {STOP_GRACE} s and was killed (exit code {KILLED}): Python as PID 1 "
        "of its container gets no default signal handling, so `down` waits out its timeout. "
        "`init: true` puts docker-init at PID 1, which forwards the signal")
