"""Tests for scale_nginx: `--scale web=3` behind the learner's nginx, then 4 replicas, nginx untouched."""

from __future__ import annotations

import shutil
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from pytest_docker.plugin import DockerComposeExecutor

from dojo.pytest_plugin import kata_of, settings_of
from dojo.switch import source_file
from dojo.timelimit import paused
from fixtures import compose
from fixtures.errors import ServiceUnavailable

HERE = Path(__file__).parent
REQUESTS = 60  # spread over 3 replicas, each gets some unless nginx sticks to one address
STATIC_HINT = ("a name in proxy_pass (or in an upstream block) is resolved once, when nginx starts: "
               "put it in a variable and give nginx a `resolver 127.0.0.11 valid=1s`")


@dataclass
class Stack:
    """The compose project: web scaled to 3 behind lb (nginx), or why it did not come up."""

    name: str
    run: DockerComposeExecutor | None
    client: Any
    error: str = ""

    def require(self) -> DockerComposeExecutor:
        if self.run is None:
            pytest.fail(f"`docker-compose up` failed:\n{self.error}", pytrace=False)
        return self.run

    def containers(self, service: str) -> list[Any]:
        return list(self.client.containers.list(filters={"label": [
            f"com.docker.compose.project={self.name}", f"com.docker.compose.service={service}"]}))

    def replicas(self) -> set[str]:
        """Hostnames of the running web replicas (a container's hostname is its short id)."""
        return {c.attrs["Config"]["Hostname"] for c in self.containers("web")}

    def lb(self) -> Any:
        found = self.containers("lb")
        assert found, "the lb (nginx) container is not running: is nginx.conf valid? " + self.lb_log()
        return found[0]

    def lb_log(self) -> str:
        found = self.client.containers.list(all=True, filters={"label": [
            f"com.docker.compose.project={self.name}", "com.docker.compose.service=lb"]})
        return found[0].logs().decode("utf-8", "replace")[-1000:] if found else ""

    def get(self) -> str:
        port = int(self.lb().attrs["NetworkSettings"]["Ports"]["80/tcp"][0]["HostPort"])
        deadline = time.monotonic() + 5
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=3) as resp:
                    return str(resp.read().decode())
            except urllib.error.HTTPError as exc:
                pytest.fail(f"nginx answered {exc.code}: {exc.read()[:200]!r}; nginx's log:\n"
                            f"{self.lb_log()}", pytrace=False)
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)


@pytest.fixture(scope="module")
def stack(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
          docker_api: Any, python_base_image: str) -> Iterator[Stack]:
    """The given compose file with the learner's nginx.conf, up with 3 replicas of web."""
    kata = kata_of(request)
    assert kata is not None
    project = tmp_path_factory.mktemp("scale_nginx")
    shutil.copy(HERE / "docker-compose.yml", project / "docker-compose.yml")
    shutil.copy(source_file(kata, "nginx.conf", settings_of(request.config)), project / "nginx.conf")
    shutil.copytree(HERE / "app", project / "app", ignore=shutil.ignore_patterns("__pycache__"))
    name = compose.project_name("scalenginx")
    try:
        with paused(), compose.project(project / "docker-compose.yml", name):
            command = compose.compose_command()
            assert command is not None
            run = DockerComposeExecutor(command, str(project / "docker-compose.yml"), name)
            run.execute("up -d --scale web=3")
            yield Stack(name, run, docker_api)
    except ServiceUnavailable as exc:
        pytest.skip(str(exc))
    except Exception as exc:
        if "returned" not in str(exc):  # not a failed compose command: a real bug, show it
            raise
        yield Stack(name, None, docker_api, error=str(exc)[-2000:])


def test_every_replica_gets_traffic(stack: Stack) -> None:
    run = stack.require()
    with paused():  # back to 3 if an earlier test (or a repeat) scaled up
        run.execute("up -d --no-recreate --scale web=3")
    replicas = stack.replicas()
    assert len(replicas) == 3, f"expected 3 running replicas of web, found {sorted(replicas)}"
    seen = Counter(stack.get() for _ in range(REQUESTS))
    assert set(seen) <= replicas, f"answers from unknown hosts: {seen}"
    missing = replicas - set(seen)
    assert not missing, (f"{len(missing)} of 3 replicas got none of {REQUESTS} requests (hits: "
                         f"{dict(seen)}): nginx knows only some of them. {STATIC_HINT}")


def test_a_new_replica_gets_traffic_without_restarting_nginx(stack: Stack) -> None:
    run = stack.require()
    lb = stack.lb()
    started = lb.attrs["State"]["StartedAt"]
    before = stack.replicas()
    with paused():
        run.execute(f"up -d --no-recreate --scale web={len(before) + 1}")
    new = stack.replicas() - before
    assert len(new) == 1, f"scaling up by one should add one replica, the replicas are now {sorted(stack.replicas())}"
    deadline = time.monotonic() + 10
    seen: Counter[str] = Counter()
    while time.monotonic() < deadline and not new <= set(seen):
        seen[stack.get()] += 1
    lb.reload()
    assert lb.attrs["State"]["StartedAt"] == started, "nginx was restarted: it must pick the replica up by itself"
    assert new <= set(seen), (
        f"the new replica {new.pop()} got none of {sum(seen.values())} requests in 10 s after scaling to "
        f"{len(before) + 1} (hits: {dict(seen)}). {STATIC_HINT}")
