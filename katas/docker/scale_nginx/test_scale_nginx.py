"""Tests for scale_nginx: `--scale web=3` behind the learner's nginx, then 4 replicas, nginx untouched."""

from __future__ import annotations

import http.client
import shutil
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

import pytest
from pytest_docker.plugin import DockerComposeExecutor

from dojo.timelimit import paused
from fixtures import compose
from fixtures.docker_tools import DockerScope
from fixtures.errors import ServiceUnavailable

HERE = Path(__file__).parent
REQUESTS = 100  # over 3 to 7 replicas (repeats add some), each gets some unless nginx sticks to one
STATIC_HINT = ("a name in proxy_pass (or in an upstream block) is resolved once, when nginx starts: "
               "put it in a variable and give nginx a `resolver 127.0.0.11 valid=1s` (Docker's TTL is 600 s)")
# A replica that Docker's DNS lists but whose server drops every connection (crashed, restarting),
# until SIGUSR1 heals it (SIGUSR2 makes it sick again). Healed, it stays: an address that vanishes
# can hang a request for seconds on a stale ARP entry, even behind a correct nginx.
DROPPER = """
import http.server, signal, socket, struct
sick = True
def set_sick(value):
    def handler(*_):
        global sick
        sick = value
    return handler
signal.signal(signal.SIGUSR1, set_sick(False))
signal.signal(signal.SIGUSR2, set_sick(True))
print("ready", flush=True)
NAME = socket.gethostname().encode()
class Handler(http.server.BaseHTTPRequestHandler):
    def handle(self):
        if not sick:
            return super().handle()
        print("dropped", flush=True)
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Length", str(len(NAME)))
        self.end_headers()
        self.wfile.write(NAME)
    def log_message(self, *args):
        pass
http.server.ThreadingHTTPServer(("0.0.0.0", 8000), Handler).serve_forever()
"""


@dataclass
class Stack:
    """The compose project: web scaled to 3 behind lb (nginx), or why it did not come up."""

    name: str
    run: DockerComposeExecutor | None
    client: Any
    error: str = ""
    extras: DockerScope | None = None  # what the tests add to the network, removed before `down`
    dropper: Any = None
    healed: set[str] = field(default_factory=set)  # hostnames of extras that now answer like replicas

    def require(self) -> DockerComposeExecutor:
        if self.run is None:
            pytest.fail(f"`docker-compose up` failed:\n{self.error}", pytrace=False)
        return self.run

    def containers(self, service: str) -> list[Any]:
        return list(self.client.containers.list(filters={"label": [
            f"com.docker.compose.project={self.name}", f"com.docker.compose.service={service}"]}))

    def scaled(self) -> set[str]:
        """Hostnames of compose's replicas of web (a container's hostname is its short id)."""
        return {c.attrs["Config"]["Hostname"] for c in self.containers("web")}

    def replicas(self) -> set[str]:
        """Every address of web that answers: compose's replicas and the healed extras."""
        return self.scaled() | self.healed

    def lb(self) -> Any:
        found = self.containers("lb")
        assert found, "the lb (nginx) container is not running: is nginx.conf valid? " + self.lb_log()
        return found[0]

    def lb_log(self) -> str:
        found = self.client.containers.list(all=True, filters={"label": [
            f"com.docker.compose.project={self.name}", "com.docker.compose.service=lb"]})
        return found[0].logs().decode("utf-8", "replace")[-1000:] if found else ""

    def port(self) -> int:
        return int(self.lb().attrs["NetworkSettings"]["Ports"]["80/tcp"][0]["HostPort"])

    def network(self) -> str:
        """The compose network nginx and the replicas share."""
        return next(iter(self.lb().attrs["NetworkSettings"]["Networks"]))

    def get(self, why: str = "") -> str:
        """One request on a fresh connection; the body names the replica that answered."""
        port = self.port()
        deadline = time.monotonic() + 5
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=10) as resp:
                    return str(resp.read().decode())
            except urllib.error.HTTPError as exc:
                self.fail(exc.code, exc.read(), why)
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)

    def get_kept_alive(self, connection: http.client.HTTPConnection) -> str:
        """One request on a connection the client keeps open, as browsers and client pools do."""
        connection.request("GET", "/")
        resp = connection.getresponse()
        body = resp.read()
        if resp.status != 200:
            self.fail(resp.status, body)
        return body.decode()

    def fail(self, status: int, body: bytes, why: str = "") -> NoReturn:
        pytest.fail(f"nginx answered {status}: {body[:200]!r}{why}; nginx's log:\n{self.lb_log()}",
                    pytrace=False)


@pytest.fixture(scope="module")
def stack(kata_file: Callable[[str], Path], tmp_path_factory: pytest.TempPathFactory,
          docker_api: Any, python_base_image: str) -> Iterator[Stack]:
    """The given compose file with the learner's nginx.conf, up with 3 replicas of web."""
    project = tmp_path_factory.mktemp("scale_nginx")
    shutil.copy(HERE / "docker-compose.yml", project / "docker-compose.yml")
    shutil.copy(kata_file("nginx.conf"), project / "nginx.conf")
    shutil.copytree(HERE / "app", project / "app", ignore=shutil.ignore_patterns("__pycache__"))
    name = compose.project_name("scalenginx")
    try:
        with paused(), compose.project(project / "docker-compose.yml", name):
            command = compose.compose_command()
            assert command is not None
            run = DockerComposeExecutor(command, str(project / "docker-compose.yml"), name)
            run.execute("up -d --scale web=3")
            extras = DockerScope(docker_api)
            try:
                yield Stack(name, run, docker_api, extras=extras)
            finally:
                extras.close()
    except ServiceUnavailable as exc:
        pytest.skip(str(exc))
    except Exception as exc:
        if "returned" not in str(exc):  # not a failed compose command: a real bug, show it
            raise
        yield Stack(name, None, docker_api, error=str(exc)[-2000:])


def spread_message(seen: Counter[str], replicas: set[str], how: str) -> str:
    missing = replicas - set(seen)
    if len(seen) == 1:
        cause = ("every request went to one replica: nginx resolved web to a single address, or it "
                 "picks a replica per client (ip_hash, hash $remote_addr) or per connection (a TCP "
                 "`stream` proxy), and all came from one client")
    else:
        cause = f"nginx knows only some of them. {STATIC_HINT}"
    return (f"{len(missing)} of {len(replicas)} replicas got none of {REQUESTS} requests {how} "
            f"(hits: {dict(seen)}): {cause}")


@pytest.mark.stage(1, "spreading the load")
def test_every_replica_gets_traffic(stack: Stack) -> None:
    stack.require()
    replicas = stack.replicas()  # 3, or more once a later test (in a repeat) has scaled up
    assert len(replicas) >= 3, f"expected 3 running replicas of web, found {sorted(replicas)}"
    seen = Counter(stack.get() for _ in range(REQUESTS))
    assert set(seen) <= replicas, f"answers from unknown hosts: {seen}"
    assert replicas <= set(seen), spread_message(seen, replicas, "on fresh connections")


@pytest.mark.stage(1, "spreading the load")
def test_requests_on_one_kept_alive_connection_are_spread_too(stack: Stack) -> None:
    stack.require()
    replicas = stack.replicas()
    connection = http.client.HTTPConnection("127.0.0.1", stack.port(), timeout=10)
    try:
        seen = Counter(stack.get_kept_alive(connection) for _ in range(REQUESTS))
    finally:
        connection.close()
    assert set(seen) <= replicas, f"answers from unknown hosts: {seen}"
    assert replicas <= set(seen), (
        spread_message(seen, replicas, "sent over one kept-alive connection")
        + ". A load balancer picks a replica per request, not per connection")


@pytest.mark.stage(2, "scaling up live")
def test_a_new_replica_gets_traffic_without_restarting_nginx(stack: Stack) -> None:
    run = stack.require()
    lb = stack.lb()
    started = lb.attrs["State"]["StartedAt"]
    before = stack.scaled()
    with paused():
        run.execute(f"up -d --no-recreate --scale web={len(before) + 1}")
    new = stack.scaled() - before
    assert len(new) == 1, f"scaling up by one should add one replica, the replicas are now {sorted(stack.scaled())}"
    deadline = time.monotonic() + 10
    seen: Counter[str] = Counter()
    while time.monotonic() < deadline and not new <= set(seen):
        seen[stack.get()] += 1
    lb.reload()
    assert lb.attrs["State"]["StartedAt"] == started, "nginx was restarted: it must pick the replica up by itself"
    assert new <= set(seen), (
        f"the new replica {new.pop()} got none of {sum(seen.values())} requests in 10 s after scaling to "
        f"{len(before) + 1} (hits: {dict(seen)}). {STATIC_HINT}")


def wait_for_log(container: Any, line: bytes) -> None:
    deadline = time.monotonic() + 20
    while line not in container.logs():
        assert time.monotonic() < deadline, f"the test's container did not start: {container.logs()[-500:]!r}"
        time.sleep(0.1)


@pytest.mark.stage(3, "a broken replica")
def test_a_replica_that_drops_connections_costs_no_request(stack: Stack, python_base_image: str) -> None:
    """Docker's DNS lists a running container even when its server has crashed: nginx must move on."""
    stack.require()
    assert stack.extras is not None
    if stack.dropper is None:
        with paused():
            stack.dropper = stack.extras.run(python_base_image, command=["python3", "-c", DROPPER])
            wait_for_log(stack.dropper, b"ready")  # a signal before its handler would kill it
            stack.client.networks.get(stack.network()).connect(stack.dropper, aliases=["web"])
    dropper = stack.dropper
    dropper.kill(signal="SIGUSR2")  # sick: drop every connection

    def drops() -> int:
        return int(dropper.logs().count(b"dropped"))

    before = drops()
    deadline = time.monotonic() + 10
    seen: Counter[str] = Counter()
    try:
        while time.monotonic() < deadline and drops() < before + 3:
            seen[stack.get(why=" while one address of web drops every connection: nginx must try another "
                               "replica (proxy_next_upstream error, the default), not pass the error on")] += 1
    finally:
        dropper.kill(signal="SIGUSR1")  # healed: from now on a replica like the others
        stack.healed.add(dropper.attrs["Config"]["Hostname"])
    assert drops() > before, (f"in 10 s nginx sent none of {sum(seen.values())} requests to an address of "
                              f"web that joined the network (hits: {dict(seen)}). {STATIC_HINT}")
