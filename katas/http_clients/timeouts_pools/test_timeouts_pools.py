"""Tests for timeouts and pools: which timeout fired, a total deadline, keep-alive reuse, a bounded pool."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import replace

import pytest
import requests

from dojo.testing import Background, wait_until
from fixtures.flaky_server import (
    BlackHole,
    FlakyServer,
    closed_port,
    delayed,
    dripped,
    held,
    ok,
    reset,
    stalled,
    status,
    truncated,
)

from .timeouts_pools import (
    CHUNK_SIZE,
    ConnectTimedOut,
    DeadlineExceeded,
    ReadTimedOut,
    fetch,
    make_session,
)

SETTLE = 0.3  # seconds to watch for something that must NOT happen (more connections, more in flight)


@pytest.fixture
def new_session() -> Iterator[Callable[..., requests.Session]]:
    """Makes the session inside the test (so a stub fails the test, not its set-up); closes it after."""
    made: list[requests.Session] = []

    def make(pool_size: int = 2) -> requests.Session:
        s = make_session(pool_size=pool_size)
        assert isinstance(s, requests.Session), "make_session must return a requests.Session"
        made.append(s)
        return s

    yield make
    for s in made:
        s.close()


def outcome(fn: Background[bytes], within: float, hint: str) -> BaseException | bytes:
    """The value or the exception of a background call, failing with `hint` if it is still running."""
    fn.thread.join(within)
    assert not fn.thread.is_alive(), hint
    try:
        return fn.result(0)
    except Exception as exc:  # the exception is what these tests examine
        return exc


# ---- which timeout is which ---------------------------------------------------------------------


@pytest.mark.stage(2, "connect and read timeouts")
def test_a_handshake_that_never_completes_hits_the_connect_timeout(
    new_session: Callable[..., requests.Session], black_hole: BlackHole
) -> None:
    session = new_session()
    call = Background(
        lambda: fetch(
            session, black_hole.url("/"), connect_timeout=0.2, read_timeout=30.0, deadline=60.0
        ),
        name="fetch",
    )
    try:
        got = outcome(
            call, 5.0,
            "fetch(connect_timeout=0.2, read_timeout=30) was still connecting to a host that never "
            "answers the handshake after 5 s: the connect timeout was not applied. Pass "
            "timeout=(connect, read); a single number is used for both",
        )
    finally:
        black_hole.close()  # the client's next SYN is refused, so a stuck thread ends soon
        call.thread.join(5)
    assert isinstance(got, ConnectTimedOut), (
        f"expected ConnectTimedOut, got {got!r}. requests.ConnectTimeout is also a "
        "requests.Timeout and a requests.ConnectionError: test for it before ReadTimeout/Timeout"
    )


@pytest.mark.stage(2, "connect and read timeouts")
def test_a_server_that_accepts_but_never_answers_hits_the_read_timeout(
    flaky_server: FlakyServer, new_session: Callable[..., requests.Session]
) -> None:
    session = new_session()
    url = flaky_server.script("/stuck", held("never"))
    with pytest.raises(ReadTimedOut):
        fetch(session, url, connect_timeout=2.0, read_timeout=0.2, deadline=60.0)
    assert len(flaky_server.hits("/stuck")) == 1


@pytest.mark.stage(2, "connect and read timeouts")
def test_a_slow_answer_within_the_read_timeout_succeeds(
    flaky_server: FlakyServer, new_session: Callable[..., requests.Session]
) -> None:
    session = new_session()
    url = flaky_server.script("/slow", delayed(0.4, ok(b"worth the wait")))
    try:
        body = fetch(session, url, connect_timeout=0.1, read_timeout=5.0, deadline=30.0)
    except ReadTimedOut as exc:
        raise AssertionError(
            "a server answering after 0.4 s tripped a 5 s read timeout: is the tuple the wrong way "
            "round? requests wants timeout=(connect, read)"
        ) from exc
    assert body == b"worth the wait"


@pytest.mark.stage(2, "connect and read timeouts")
def test_a_body_that_stalls_midway_is_a_read_timeout(
    flaky_server: FlakyServer, new_session: Callable[..., requests.Session]
) -> None:
    session = new_session()
    url = flaky_server.script("/half", stalled(b"x" * (4 * CHUNK_SIZE), at=CHUNK_SIZE + 10))
    try:
        fetch(session, url, connect_timeout=2.0, read_timeout=0.3, deadline=60.0)
    except ReadTimedOut:
        pass
    except requests.ConnectionError as exc:
        raise AssertionError(
            f"a body that stopped arriving for 0.3 s raised {exc!r}. While you iterate the body, "
            "requests reports a read timeout as requests.ConnectionError wrapping urllib3's "
            "ReadTimeoutError (it is in exc.args): translate it to ReadTimedOut too"
        ) from exc
    else:
        raise AssertionError("fetch returned although the body stalled: expected ReadTimedOut")


# ---- a deadline for the whole call ---------------------------------------------------------------


@pytest.mark.stage(3, "the deadline")
def test_a_dripping_body_is_cut_off_by_the_deadline(
    flaky_server: FlakyServer, new_session: Callable[..., requests.Session]
) -> None:
    """64 bytes every 20 ms never trips a 2 s read timeout, but takes 4 s in all."""
    session = new_session()
    body = bytes(range(256)) * 50  # 12800 bytes
    url = flaky_server.script("/drip", dripped(body, chunk=64, interval=0.02))
    started = time.monotonic()
    call = Background(
        lambda: fetch(session, url, connect_timeout=2.0, read_timeout=2.0, deadline=0.3),
        name="fetch",
    )
    got = outcome(call, 8.0, "fetch of a dripping body still running after 8 s")
    took = time.monotonic() - started
    assert not isinstance(got, bytes), (
        f"fetch returned the whole dripping body after {took:.1f} s with deadline=0.3: a read "
        "timeout restarts with every byte, so only a deadline checked while streaming "
        "(stream=True, iter_content) bounds the total time"
    )
    assert isinstance(got, DeadlineExceeded), f"expected DeadlineExceeded, got {got!r}"
    request = flaky_server.hits("/drip")[0]
    wait_until(
        lambda: request.aborted, timeout=3.0,
        what="the server to see the client hang up mid-body: close the response after the "
        "deadline (`with session.get(...) as response:`) so the connection isn't left dripping",
    )


PIECE = 1024  # CHUNK_SIZE as the README and the stub give it


@pytest.mark.stage(3, "the deadline")
@pytest.mark.parametrize("stall_at", [PIECE, PIECE - 1], ids=["full-piece", "one-byte-short"])
def test_the_deadline_is_checked_after_each_full_piece_counted_from_the_start(
    stall_at: int, flaky_server: FlakyServer, new_session: Callable[..., requests.Session]
) -> None:
    """The answer starts 0.2 s after the request, past deadline=0.1; then the body stalls."""
    session = new_session()
    late = replace(stalled(b"z" * (4 * PIECE), at=stall_at), delay=0.2)
    url = flaky_server.script("/late", late)
    try:
        got: object = fetch(session, url, connect_timeout=2.0, read_timeout=0.3, deadline=0.1)
    except (DeadlineExceeded, ReadTimedOut) as exc:
        got = exc
    if stall_at == PIECE:
        assert isinstance(got, DeadlineExceeded), (
            f"the first full CHUNK_SIZE ({PIECE} bytes) piece arrived 0.2 s after the request, past deadline=0.1, "
            f"then the body stalled; fetch gave {got!r}, expected DeadlineExceeded. Check the "
            "deadline after each piece, on a clock started before sending (not once the headers "
            "are in)"
        )
    else:
        assert isinstance(got, ReadTimedOut), (
            f"the body stalled one byte short of a full CHUNK_SIZE ({PIECE} bytes) piece; fetch "
            f"gave {got!r}, "
            "expected ReadTimedOut: the deadline is checked after each CHUNK_SIZE piece "
            "(iter_content(chunk_size=CHUNK_SIZE)), and a piece that never completes is the read "
            "timeout's business"
        )


@pytest.mark.stage(4, "keep-alive and pools")
def test_a_pool_needs_at_least_one_connection() -> None:
    for size in (0, -1):
        try:
            session = make_session(pool_size=size)
        except ValueError:
            continue
        session.close()
        raise AssertionError(
            f"make_session(pool_size={size}) returned a session: a blocking pool of {size} "
            "connections makes every request wait forever for a connection that never comes. "
            "Raise ValueError"
        )


# ---- keep-alive and the pool ---------------------------------------------------------------


@pytest.mark.stage(4, "keep-alive and pools")
def test_sequential_requests_reuse_one_keep_alive_connection(
    flaky_server: FlakyServer, new_session: Callable[..., requests.Session]
) -> None:
    session = new_session()
    url = flaky_server.script("/item", ok(b"x" * 3000))
    for _ in range(5):
        assert fetch(session, url, connect_timeout=2, read_timeout=5, deadline=30) == b"x" * 3000
    connections = sorted({r.connection for r in flaky_server.hits("/item")})
    assert len(connections) == 1, (
        f"5 sequential requests came on {len(connections)} TCP connections {connections}: the "
        "connection was not reused. Send through the session you were given, and read (or close) "
        "each response so its connection goes back to the pool"
    )


@pytest.mark.stage(4, "keep-alive and pools")
def test_a_connection_that_errored_is_not_reused(
    flaky_server: FlakyServer, new_session: Callable[..., requests.Session]
) -> None:
    session = new_session()
    stuck = flaky_server.script("/stuck", stalled(b"y" * (4 * CHUNK_SIZE), at=100))
    with pytest.raises(ReadTimedOut):
        fetch(session, stuck, connect_timeout=2, read_timeout=0.2, deadline=30)
    fine = flaky_server.script("/fine", ok(b"fresh"))
    assert fetch(session, fine, connect_timeout=2, read_timeout=5, deadline=30) == b"fresh"
    first, second = flaky_server.hits("/stuck")[0], flaky_server.hits("/fine")[0]
    assert second.connection != first.connection, "a half-read connection must not be reused"


@pytest.mark.stage(1, "status and body")
@pytest.mark.parametrize("code", [400, 404, 410, 429, 499, 500, 503, 599])
def test_an_error_status_raises_http_error(
    code: int, flaky_server: FlakyServer, new_session: Callable[..., requests.Session]
) -> None:
    session = new_session()
    url = flaky_server.script("/gone", status(code))
    try:
        got: object = fetch(session, url, connect_timeout=2, read_timeout=5, deadline=30)
    except requests.HTTPError:
        return
    except Exception as exc:
        got = exc
    raise AssertionError(
        f"a {code} answer gave {got!r}, expected requests.HTTPError: every 4xx and 5xx is an "
        "error the caller must see (response.raise_for_status())"
    )


@pytest.mark.stage(1, "status and body")
@pytest.mark.parametrize("code", [200, 201, 203, 299, 302])
def test_any_other_status_returns_the_body(
    code: int, flaky_server: FlakyServer, new_session: Callable[..., requests.Session]
) -> None:
    session = new_session()
    url = flaky_server.script("/fine", status(code, b"body of a " + str(code).encode()))
    body = fetch(session, url, connect_timeout=2, read_timeout=5, deadline=30)
    assert body == b"body of a " + str(code).encode(), (
        f"a {code} answer: expected its body, got {body!r}; only 4xx and 5xx are errors"
    )


@pytest.mark.stage(1, "status and body")
def test_a_large_body_comes_back_whole(
    flaky_server: FlakyServer, new_session: Callable[..., requests.Session]
) -> None:
    session = new_session()
    body = bytes(range(256)) * 400 + b"end"  # 102403 bytes: 100 pieces and a short last one
    url = flaky_server.script("/big", ok(body))
    got = fetch(session, url, connect_timeout=2, read_timeout=5, deadline=30)
    assert got == body, f"got {len(got)} bytes, expected all {len(body)}, in order"


@pytest.mark.stage(1, "status and body")
def test_other_failures_propagate_as_requests_raised_them(
    flaky_server: FlakyServer, new_session: Callable[..., requests.Session]
) -> None:
    session = new_session()
    ours = (ConnectTimedOut, ReadTimedOut, DeadlineExceeded)
    cases = {
        "a refused connection": f"http://127.0.0.1:{closed_port()}/",
        "a reset mid-body": flaky_server.script("/reset", reset(b"r" * (4 * CHUNK_SIZE), at=100)),
        "a body cut short": flaky_server.script("/cut", truncated(b"t" * (4 * CHUNK_SIZE), at=100)),
    }
    for what, url in cases.items():
        try:
            got: object = fetch(session, url, connect_timeout=2, read_timeout=5, deadline=30)
        except ours as exc:
            got = exc
        except requests.RequestException:
            continue
        raise AssertionError(
            f"{what} gave {got!r}: it is no timeout and no deadline, so let the requests "
            "exception through as it is (a ConnectionError, a ChunkedEncodingError...); and "
            "never return a body shorter than its Content-Length"
        )


@pytest.mark.stage(4, "keep-alive and pools")
@pytest.mark.parametrize("pool_size", [1, 3])
def test_the_pool_bounds_connections_and_requests_wait_for_a_free_one(
    pool_size: int, flaky_server: FlakyServer, new_session: Callable[..., requests.Session]
) -> None:
    session = new_session(pool_size)
    url = flaky_server.script("/report", held("reports", ok(b"report")))
    callers = [
        Background(
            lambda: fetch(session, url, connect_timeout=2, read_timeout=10, deadline=30),
            name=f"caller-{i}",
        )
        for i in range(6)
    ]
    try:
        wait_until(
            lambda: flaky_server.held_count() >= pool_size, timeout=5.0,
            what=f"{pool_size} requests to reach the server at once (6 threads share a pool of "
            f"{pool_size})",
        )
        time.sleep(SETTLE)  # give any extra connection time to show up
        in_flight = flaky_server.held_count()
    finally:
        flaky_server.release("reports")
    results = [c.result(timeout=8) for c in callers]
    assert in_flight == pool_size, (
        f"6 threads on a session with pool_size={pool_size}: the server had {in_flight} requests "
        f"in flight at once. HTTPAdapter(pool_maxsize={pool_size}) alone opens extra connections "
        "when the pool is busy (and discards them later); pool_block=True makes the next caller "
        "wait instead"
    )
    assert results == [b"report"] * 6
    assert flaky_server.connections <= pool_size, (
        f"the server saw {flaky_server.connections} TCP connections from a pool of {pool_size}"
    )


@pytest.mark.stage(4, "keep-alive and pools")
def test_each_host_keeps_its_own_pool(new_session: Callable[..., requests.Session]) -> None:
    with FlakyServer() as first, FlakyServer() as second, FlakyServer() as third:
        servers = (first, second, third)
        session = new_session(1)
        urls = [server.script("/x", ok(b"x")) for server in servers]
        for _ in range(3):  # 1, 2, 3, 1, 2, 3, 1, 2, 3
            for url in urls:
                assert fetch(session, url, connect_timeout=2, read_timeout=5, deadline=30) == b"x"
        counts = tuple(server.connections for server in servers)
        assert counts == (1, 1, 1), (
            f"a session with pool_size=1 calling three hosts in turn, 3 requests each: they came "
            f"on {counts} TCP connections, where keep-alive needs one each. Calling one host threw "
            "away another's pool: HTTPAdapter(pool_connections=n) is how many hosts' pools the "
            "session keeps (the least recently used is closed), not a size; leave it at its "
            "default (10), don't set it to 1 or to pool_size"
        )
    session = new_session(2)
    with FlakyServer() as first, FlakyServer() as second:
        a = first.script("/a", held("a", ok(b"a")))
        b = second.script("/b", held("b", ok(b"b")))
        callers = [
            Background(
                lambda url=url: fetch(session, url, connect_timeout=2, read_timeout=10, deadline=30),
                name=f"caller-{i}",
            )
            for i, url in enumerate([a, b] * 3)
        ]
        try:
            wait_until(
                lambda: first.held_count() >= 2 and second.held_count() >= 2, timeout=5.0,
                what="2 requests in flight at each of two hosts at once: pool_size is per host, "
                "not one limit for the whole session",
            )
            time.sleep(SETTLE)  # give any extra connection time to show up
            in_flight = (first.held_count(), second.held_count())
        finally:
            first.release("a")
            second.release("b")
        results = [c.result(timeout=8) for c in callers]
        assert in_flight == (2, 2), f"in flight at each host: {in_flight}, expected (2, 2)"
        assert results == [b"a", b"b"] * 3


class SilentTLSPeer:
    """Accepts TCP connections and never answers, so a TLS handshake hangs; counts the connections."""

    def __init__(self) -> None:
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self._accepted: list[socket.socket] = []
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._accept, name="silent-tls", daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while True:
            try:
                sock, _ = self._listener.accept()
            except OSError:
                return
            with self._lock:
                self._accepted.append(sock)

    @property
    def connections(self) -> int:
        with self._lock:
            return len(self._accepted)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)  # wakes the accept() (close alone doesn't)
        self._listener.close()  # new connects are refused
        with self._lock:
            for sock in self._accepted:
                with contextlib.suppress(OSError):
                    sock.close()
        self._thread.join(5)


@pytest.mark.stage(4, "keep-alive and pools")
def test_https_is_pooled_and_bounded_too(new_session: Callable[..., requests.Session]) -> None:
    session = new_session(2)
    peer = SilentTLSPeer()
    url = f"https://127.0.0.1:{peer.port}/"
    callers = [
        Background(
            lambda: fetch(session, url, connect_timeout=5, read_timeout=5, deadline=30),
            name=f"tls-caller-{i}",
        )
        for i in range(6)
    ]
    try:
        wait_until(lambda: peer.connections >= 2, timeout=5.0, what="2 TLS handshakes to start")
        time.sleep(SETTLE)  # give any extra connection time to show up
        opened = peer.connections
    finally:
        peer.close()  # the handshakes fail, the waiting callers are refused
        for caller in callers:
            caller.thread.join(8)
    assert opened == 2, (
        f"6 threads fetching one https:// host on a session with pool_size=2 opened {opened} TCP "
        "connections: mount the bounded adapter on https:// as well as http://"
    )
