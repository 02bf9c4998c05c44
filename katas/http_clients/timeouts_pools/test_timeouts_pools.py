"""Tests for timeouts and pools: which timeout fired, a total deadline, keep-alive reuse, a bounded pool."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import pytest
import requests

from dojo.testing import Background, wait_until
from fixtures.flaky_server import BlackHole, FlakyServer, delayed, dripped, held, ok, stalled, status

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
def new_session() -> Iterator[Callable[[], requests.Session]]:
    """Makes the session inside the test (so a stub fails the test, not its set-up); closes it after."""
    made: list[requests.Session] = []

    def make() -> requests.Session:
        s = make_session(pool_size=2)
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


def test_a_handshake_that_never_completes_hits_the_connect_timeout(
    new_session: Callable[[], requests.Session], black_hole: BlackHole
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


def test_a_server_that_accepts_but_never_answers_hits_the_read_timeout(
    flaky_server: FlakyServer, new_session: Callable[[], requests.Session]
) -> None:
    session = new_session()
    url = flaky_server.script("/stuck", held("never"))
    with pytest.raises(ReadTimedOut):
        fetch(session, url, connect_timeout=2.0, read_timeout=0.2, deadline=60.0)
    assert len(flaky_server.hits("/stuck")) == 1


def test_a_slow_answer_within_the_read_timeout_succeeds(
    flaky_server: FlakyServer, new_session: Callable[[], requests.Session]
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


def test_a_body_that_stalls_midway_is_a_read_timeout(
    flaky_server: FlakyServer, new_session: Callable[[], requests.Session]
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
            "ReadTimeoutError (look at exc.args[0]): translate it to ReadTimedOut too"
        ) from exc
    else:
        raise AssertionError("fetch returned although the body stalled: expected ReadTimedOut")


# ---- a deadline for the whole call ---------------------------------------------------------------


def test_a_dripping_body_is_cut_off_by_the_deadline(
    flaky_server: FlakyServer, new_session: Callable[[], requests.Session]
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


# ---- keep-alive and the pool ---------------------------------------------------------------


def test_sequential_requests_reuse_one_keep_alive_connection(
    flaky_server: FlakyServer, new_session: Callable[[], requests.Session]
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


def test_a_connection_that_errored_is_not_reused(
    flaky_server: FlakyServer, new_session: Callable[[], requests.Session]
) -> None:
    session = new_session()
    stuck = flaky_server.script("/stuck", stalled(b"y" * (4 * CHUNK_SIZE), at=100))
    with pytest.raises(ReadTimedOut):
        fetch(session, stuck, connect_timeout=2, read_timeout=0.2, deadline=30)
    fine = flaky_server.script("/fine", ok(b"fresh"))
    assert fetch(session, fine, connect_timeout=2, read_timeout=5, deadline=30) == b"fresh"
    first, second = flaky_server.hits("/stuck")[0], flaky_server.hits("/fine")[0]
    assert second.connection != first.connection, "a half-read connection must not be reused"


def test_an_error_status_raises_http_error(
    flaky_server: FlakyServer, new_session: Callable[[], requests.Session]
) -> None:
    session = new_session()
    url = flaky_server.script("/gone", status(410))
    with pytest.raises(requests.HTTPError):
        fetch(session, url, connect_timeout=2, read_timeout=5, deadline=30)


def test_the_pool_bounds_connections_and_requests_wait_for_a_free_one(
    flaky_server: FlakyServer, new_session: Callable[[], requests.Session]
) -> None:
    session = new_session()
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
            lambda: flaky_server.held_count() >= 2, timeout=5.0,
            what="2 requests to reach the server at once (6 threads share a pool of 2)",
        )
        time.sleep(SETTLE)  # give any extra connection time to show up
        in_flight = flaky_server.held_count()
    finally:
        flaky_server.release("reports")
    results = [c.result(timeout=8) for c in callers]
    assert in_flight == 2, (
        f"6 threads on a session with pool_size=2: the server had {in_flight} requests in flight "
        "at once. HTTPAdapter(pool_maxsize=2) alone opens extra connections when the pool is busy "
        "(and discards them later); pool_block=True makes the 3rd caller wait instead"
    )
    assert results == [b"report"] * 6
    assert flaky_server.connections <= 2, (
        f"the server saw {flaky_server.connections} TCP connections from a pool of 2"
    )
