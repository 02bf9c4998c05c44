"""Tests for the nginx load balancer: round robin, dead and unhealthy instances, forwarded headers."""

from __future__ import annotations

import http.client
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from fixtures.service import Service

NginxFactory = Callable[..., Service]


@dataclass
class Instance:
    """One app instance: a real HTTP server that records every request it receives."""

    name: str
    status: int = 200  # what it answers; 503 plays an instance that is up but unhealthy
    requests: list[dict[str, str]] = field(default_factory=list)
    server: ThreadingHTTPServer | None = None

    @property
    def port(self) -> int:
        assert self.server is not None
        return int(self.server.server_address[1])

    def start(self) -> Instance:
        instance = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                instance.requests.append({k.lower(): v for k, v in self.headers.items()})
                body = instance.name.encode()
                self.send_response(instance.status)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                pass  # keep the test output for what matters

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        # a short poll interval: shutdown() waits up to one interval
        threading.Thread(
            target=self.server.serve_forever, args=(0.02,), daemon=True, name=self.name
        ).start()
        return self

    def kill(self) -> None:
        """Stop listening: connections to its port are now refused, as for a crashed process."""
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()


@pytest.fixture
def apps() -> Iterator[dict[str, Instance]]:
    instances = {name: Instance(name).start() for name in ("app1", "app2", "app3")}
    yield instances
    for instance in instances.values():
        instance.kill()


@pytest.fixture
def balancer(nginx_server: NginxFactory, apps: dict[str, Instance]) -> Service:
    """nginx started with the kata's nginx.conf (yours, or the solution's under --solutions)."""
    return nginx_server("nginx.conf", upstreams={name: app.port for name, app in apps.items()})


def get(lb: Service, headers: dict[str, str] | None = None) -> tuple[int, str]:
    conn = http.client.HTTPConnection(lb.host, lb.port, timeout=10)
    try:
        conn.request("GET", "/", headers=headers or {})
        response = conn.getresponse()
        return response.status, response.read().decode(errors="replace").strip()
    finally:
        conn.close()


def test_requests_go_round_robin_to_all_three_instances(balancer: Service, apps: dict[str, Instance]) -> None:
    answers = [get(balancer) for _ in range(30)]
    statuses = Counter(status for status, _ in answers)
    assert statuses == {200: 30}, (
        f"expected 30 answers with status 200 through nginx, got {dict(statuses)} "
        f"(first body: {answers[0][1]!r}): does the location proxy_pass to the upstream?"
    )
    counts = {name: len(app.requests) for name, app in apps.items()}
    assert counts == {"app1": 10, "app2": 10, "app3": 10}, (
        f"30 requests should be spread round robin, 10 per instance; the instances received {counts}. "
        "Put all three in one upstream block with nginx's default balancing (no ip_hash, no hash)."
    )
    order = [body for _, body in answers[:6]]
    assert order[:3] == order[3:6] and len(set(order[:3])) == 3, f"round robin takes turns: {order}"


def test_a_dead_instance_is_skipped_and_clients_never_see_an_error(
    nginx_server: NginxFactory, apps: dict[str, Instance]
) -> None:
    apps["app2"].kill()  # its port now refuses connections
    lb = nginx_server("nginx.conf", upstreams={name: app.port for name, app in apps.items()})
    answers = [get(lb) for _ in range(12)]
    errors = [a for a in answers if a[0] != 200]
    assert not errors, (
        f"with app2 down, {len(errors)} of 12 requests failed ({errors[:2]}): nginx should retry "
        "the next instance (proxy_next_upstream error) instead of passing the failure on"
    )
    bodies = Counter(body for _, body in answers)
    assert set(bodies) == {"app1", "app3"}, f"the live instances should share the load: {dict(bodies)}"


def test_an_unhealthy_instance_is_taken_out_of_rotation(
    nginx_server: NginxFactory, apps: dict[str, Instance]
) -> None:
    apps["app2"].status = 503  # up, but answering "Service Unavailable"
    lb = nginx_server("nginx.conf", upstreams={name: app.port for name, app in apps.items()})
    answers = [get(lb) for _ in range(30)]
    errors = [a for a in answers if a[0] != 200]
    assert not errors, (
        f"{len(errors)} of 30 clients got {errors[0][0] if errors else ''} from the unhealthy app2: "
        "add http_503 (and http_502) to proxy_next_upstream so nginx tries the next instance"
    )
    tried = len(apps["app2"].requests)
    assert tried <= 3, (
        f"app2 kept failing, yet nginx sent it {tried} of 30 requests: after max_fails failures "
        "an instance should be taken out for fail_timeout (e.g. `server ... max_fails=1 fail_timeout=10s`)"
    )


def test_x_forwarded_for_carries_the_client_address(balancer: Service, apps: dict[str, Instance]) -> None:
    get(balancer)
    seen = [r.get("x-forwarded-for") for app in apps.values() for r in app.requests]
    assert seen == ["127.0.0.1"], (
        f"the instance should see X-Forwarded-For: 127.0.0.1 (the client's address), it saw {seen}"
    )


def test_x_forwarded_for_keeps_the_chain_of_earlier_proxies(balancer: Service, apps: dict[str, Instance]) -> None:
    get(balancer, {"X-Forwarded-For": "203.0.113.7"})
    seen = [r.get("x-forwarded-for") for app in apps.values() for r in app.requests]
    assert seen == ["203.0.113.7, 127.0.0.1"], (
        f"a client behind another proxy sent X-Forwarded-For: 203.0.113.7; the instance should see "
        f"'203.0.113.7, 127.0.0.1' (the chain, with nginx's peer appended), it saw {seen}. "
        "$remote_addr replaces the chain; $proxy_add_x_forwarded_for appends to it."
    )


def test_the_instance_sees_the_host_the_client_asked_for(balancer: Service, apps: dict[str, Instance]) -> None:
    get(balancer, {"Host": "shop.example"})
    seen = [r.get("host") for app in apps.values() for r in app.requests]
    assert seen == ["shop.example"], (
        f"the client asked for Host: shop.example, the instance saw {seen}: by default nginx sends "
        "the upstream's name; set `proxy_set_header Host $host`"
    )
