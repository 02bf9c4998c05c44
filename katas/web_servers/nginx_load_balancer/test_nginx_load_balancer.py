"""Tests for the nginx load balancer: round robin, failing instances of every kind, forwarded headers.

A real nginx runs the kata's config in front of three real HTTP servers. Every verdict is counted at
the instances (who received which request), never read off a clock.
"""

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

SLOW = 0.5  # seconds a slow instance takes to answer: slow, not broken (the README allows >= 1 s)


@dataclass
class Instance:
    """One app instance: a real HTTP server that records every request it receives, and can misbehave.

    behaviour: "ok" answers `status` at once; "slow" answers after SLOW seconds; "hang" accepts the
    request and never answers; "crash" reads the request and closes the connection halfway through
    the status line, as a process dying mid-response does.
    """

    name: str
    status: int = 200
    behaviour: str = "ok"
    requests: list[dict[str, str]] = field(default_factory=list)
    server: ThreadingHTTPServer | None = None
    released: threading.Event = field(default_factory=threading.Event)

    @property
    def port(self) -> int:
        assert self.server is not None
        return int(self.server.server_address[1])

    def start(self) -> Instance:
        instance = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def handle_one(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length).decode(errors="replace") if length else ""
                seen = {k.lower(): v for k, v in self.headers.items()}
                instance.requests.append({**seen, ":method": self.command, ":body": body})
                if instance.behaviour == "hang":
                    instance.released.wait(30)  # accepted, read, and never answered
                    self.close_connection = True
                    return
                if instance.behaviour == "crash":
                    self.wfile.write(b"HTTP/1.1 20")  # the process dies mid-response
                    self.wfile.flush()
                    self.close_connection = True
                    return
                if instance.behaviour == "slow":
                    instance.released.wait(SLOW)
                answer = instance.name.encode()
                self.send_response(instance.status)
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            do_GET = do_POST = handle_one

            def log_message(self, format: str, *args: object) -> None:
                pass  # keep the test output for what matters

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        # a short poll interval: shutdown() waits up to one interval
        threading.Thread(target=self.server.serve_forever, args=(0.02,), daemon=True, name=self.name).start()
        return self

    def kill(self) -> None:
        """Stop listening: connections to its port are now refused, as for a crashed process."""
        self.released.set()
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()


@pytest.fixture
def apps() -> Iterator[dict[str, Instance]]:
    instances = {name: Instance(name).start() for name in ("app1", "app2", "app3")}
    yield instances
    for instance in instances.values():
        instance.kill()


def start(nginx_server: NginxFactory, apps: dict[str, Instance]) -> Service:
    """nginx started with the kata's nginx.conf (yours, or the solution's under --solutions)."""
    return nginx_server("nginx.conf", upstreams={name: app.port for name, app in apps.items()})


@pytest.fixture
def balancer(nginx_server: NginxFactory, apps: dict[str, Instance]) -> Service:
    return start(nginx_server, apps)


def request(
    lb: Service, headers: dict[str, str] | None = None, method: str = "GET", body: str | None = None
) -> tuple[int, str]:
    """One request on its own connection: (status, body); (0, why) if nginx gave no answer in 8 s."""
    conn = http.client.HTTPConnection(lb.host, lb.port, timeout=8)
    try:
        conn.request(method, "/", body=body, headers=headers or {})
        response = conn.getresponse()
        return response.status, response.read().decode(errors="replace").strip()
    except (TimeoutError, OSError, http.client.HTTPException) as exc:
        return 0, f"no answer from nginx: {type(exc).__name__}: {exc}"
    finally:
        conn.close()


def received(apps: dict[str, Instance]) -> dict[str, int]:
    return {name: len(app.requests) for name, app in apps.items()}


@pytest.mark.stage(1, "round robin and headers")
def test_requests_go_round_robin_to_all_three_instances(balancer: Service, apps: dict[str, Instance]) -> None:
    answers = [request(balancer) for _ in range(30)]
    statuses = Counter(status for status, _ in answers)
    assert statuses == {200: 30}, (
        f"expected 30 answers with status 200 through nginx, got {dict(statuses)} "
        f"(first body: {answers[0][1]!r}): does the location proxy_pass to the upstream?"
    )
    counts = received(apps)
    assert counts == {"app1": 10, "app2": 10, "app3": 10}, (
        f"30 requests should be spread round robin, 10 per instance; the instances received {counts}. "
        "Put all three in one upstream block with nginx's default balancing (no ip_hash, no hash, "
        "no weights, no backup)."
    )
    order = [body for _, body in answers[:6]]
    assert order[:3] == order[3:6] and len(set(order[:3])) == 3, f"round robin takes turns: {order}"


@pytest.mark.stage(2, "dead and sick instances")
def test_a_dead_instance_is_skipped_and_clients_never_see_an_error(
    nginx_server: NginxFactory, apps: dict[str, Instance]
) -> None:
    apps["app2"].kill()  # its port now refuses connections
    lb = start(nginx_server, apps)
    answers = [request(lb) for _ in range(12)]
    errors = [a for a in answers if a[0] != 200]
    assert not errors, (
        f"with app2 down, {len(errors)} of 12 requests failed ({errors[:2]}): nginx should retry "
        "the next instance (proxy_next_upstream error) instead of passing the failure on"
    )
    bodies = Counter(body for _, body in answers)
    assert set(bodies) == {"app1", "app3"}, f"the live instances should share the load: {dict(bodies)}"


@pytest.mark.stage(2, "dead and sick instances")
@pytest.mark.parametrize("status", [502, 503])
def test_an_unhealthy_instance_is_taken_out_of_rotation(
    nginx_server: NginxFactory, apps: dict[str, Instance], status: int
) -> None:
    apps["app2"].status = status  # up, but answering "Bad Gateway" / "Service Unavailable"
    lb = start(nginx_server, apps)
    answers = [request(lb) for _ in range(30)]
    errors = [a for a in answers if a[0] != 200]
    assert not errors, (
        f"{len(errors)} of 30 clients got {errors[0][0] if errors else ''} from the unhealthy app2: "
        f"add http_{status} to proxy_next_upstream (both http_502 and http_503) so nginx tries the next instance"
    )
    tried = len(apps["app2"].requests)
    assert tried <= 3, (
        f"app2 kept failing, yet nginx sent it {tried} of 30 requests: after max_fails failures "
        "an instance should be taken out for fail_timeout (e.g. `server ... max_fails=1 fail_timeout=10s`)"
    )
    assert received(apps)["app1"] > 0 and received(apps)["app3"] > 0, f"the healthy ones share: {received(apps)}"


@pytest.mark.stage(3, "hung and slow instances")
def test_an_instance_that_accepts_and_never_answers_times_out_and_is_skipped(
    nginx_server: NginxFactory, apps: dict[str, Instance]
) -> None:
    apps["app2"].behaviour = "hang"  # the connection is accepted, the request read, no answer ever
    lb = start(nginx_server, apps)
    answers: list[tuple[int, str]] = []
    for _ in range(6):
        answers.append(request(lb))
        if answers[-1][0] != 200:
            break  # one client left waiting is enough: don't wait for the next
    errors = [a for a in answers if a[0] != 200]
    if errors and errors[0][0] == 0:
        pytest.fail(
            f"app2 accepts connections and never answers, and the client was still waiting after 8 s "
            f"({errors[0][1]}): a connect timeout does not help once the connection is accepted. Set "
            "proxy_read_timeout (at most 2 s; the default is 60 s)"
        )
    assert not errors, (
        f"app2 accepts connections and never answers; a client got {errors[:1]}: nginx timed out but "
        "passed its 504 on: keep `timeout` in proxy_next_upstream (and no proxy_next_upstream_tries 1) "
        "so the request goes to the next instance"
    )
    assert set(body for _, body in answers) == {"app1", "app3"}, f"answers came from {Counter(answers)}"
    tried = len(apps["app2"].requests)
    assert tried <= 3, (
        f"app2 hung on every request, yet nginx kept sending it {tried} of 6: a timeout counts as a "
        "failure, and after max_fails failures the instance should be out for fail_timeout"
    )


@pytest.mark.stage(3, "hung and slow instances")
def test_a_slow_instance_is_not_a_dead_one(nginx_server: NginxFactory, apps: dict[str, Instance]) -> None:
    apps["app2"].behaviour = "slow"  # answers after half a second
    lb = start(nginx_server, apps)
    answers = [request(lb) for _ in range(3)]
    assert [status for status, _ in answers] == [200] * 3, f"answers: {answers}"
    bodies = Counter(body for _, body in answers)
    assert bodies == {"app1": 1, "app2": 1, "app3": 1}, (
        f"app2 answers in {SLOW} s, slow but healthy; its answers should reach the clients in its "
        f"turn, yet the clients got {dict(bodies)} (app2 received {len(apps['app2'].requests)}): a "
        "proxy_read_timeout shorter than 1 s gives up on a healthy instance and takes it out"
    )


@pytest.mark.stage(2, "dead and sick instances")
def test_an_instance_that_dies_mid_response_is_retried_on_the_next(
    nginx_server: NginxFactory, apps: dict[str, Instance]
) -> None:
    apps["app2"].behaviour = "crash"  # reads the request, sends half a status line, closes
    lb = start(nginx_server, apps)
    answers = [request(lb) for _ in range(9)]
    errors = [a for a in answers if a[0] != 200]
    assert not errors, (
        f"app2 closes the connection in the middle of its response; {len(errors)} of 9 clients got "
        f"{errors[:1]}: a connection closed before the response header is an `error` for "
        "proxy_next_upstream, so the request should go to the next instance"
    )
    assert len(apps["app2"].requests) <= 3, (
        f"app2 failed every time, yet got {len(apps['app2'].requests)} of 9 requests: it should be taken "
        "out after max_fails failures"
    )


@pytest.mark.stage(3, "hung and slow instances")
def test_a_post_is_never_sent_to_a_second_instance(nginx_server: NginxFactory, apps: dict[str, Instance]) -> None:
    """A POST that may have been processed must not run twice: nginx's default, unless told otherwise."""
    apps["app2"].behaviour = "hang"  # receives the POST, may be charging the card right now
    lb = start(nginx_server, apps)
    answers = [request(lb, method="POST", body=f"order {n}") for n in range(3)]
    posts = Counter(r[":body"] for app in apps.values() for r in app.requests if r[":method"] == "POST")
    twice = sorted(body for body, count in posts.items() if count > 1)
    assert not twice, (
        f"{twice} reached more than one instance: the one that hung may have processed it already. "
        "A non-idempotent request must not be retried on the next instance: leave `non_idempotent` "
        "out of proxy_next_upstream"
    )
    assert sorted(posts) == [f"order {n}" for n in range(3)], f"every POST should reach one instance: {dict(posts)}"
    statuses = sorted(status for status, _ in answers)
    assert statuses[:2] == [200, 200] and statuses[2] in (502, 504), (
        f"the two healthy instances answer 200 and the hung one's POST fails back to its client "
        f"with 502/504 once proxy_read_timeout expires (at most 2 s); the clients got {answers}"
    )


@pytest.mark.stage(1, "round robin and headers")
def test_x_forwarded_for_carries_the_client_address(balancer: Service, apps: dict[str, Instance]) -> None:
    request(balancer)
    seen = [r.get("x-forwarded-for") for app in apps.values() for r in app.requests]
    assert seen == ["127.0.0.1"], (
        f"the instance should see X-Forwarded-For: 127.0.0.1 (the client's address), it saw {seen}: "
        "proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for"
    )


@pytest.mark.stage(1, "round robin and headers")
@pytest.mark.parametrize("chain", ["203.0.113.7", "203.0.113.7, 198.51.100.23"])
def test_x_forwarded_for_keeps_the_chain_of_earlier_proxies(
    balancer: Service, apps: dict[str, Instance], chain: str
) -> None:
    request(balancer, {"X-Forwarded-For": chain})
    seen = [r.get("x-forwarded-for") for app in apps.values() for r in app.requests]
    assert seen == [f"{chain}, 127.0.0.1"], (
        f"a client behind other proxies sent X-Forwarded-For: {chain}; the instance should see "
        f"'{chain}, 127.0.0.1' (the chain, with nginx's peer appended), it saw {seen}. "
        "$remote_addr replaces the chain; $proxy_add_x_forwarded_for appends to it."
    )


@pytest.mark.stage(1, "round robin and headers")
def test_the_instance_sees_the_host_the_client_asked_for(balancer: Service, apps: dict[str, Instance]) -> None:
    for host in ("shop.example", "api.shop.example"):
        request(balancer, {"Host": host})
    seen = [r.get("host") for app in apps.values() for r in app.requests]
    assert sorted(seen, key=str) == ["api.shop.example", "shop.example"], (
        f"the clients asked for Host: shop.example and api.shop.example, the instances saw {seen}: by "
        "default nginx sends the upstream's name; set `proxy_set_header Host $host`"
    )
