"""Tests for the WSGI server: environ, start_response, framing, keep-alive, close() and bad input."""

from __future__ import annotations

import contextlib
import email.utils
import http.client
import io
import json
import re
import socket
import struct
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any
from wsgiref.validate import validator

import h11
import pytest
import requests
from hypothesis import given, settings
from hypothesis import strategies as st
from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request as WerkzeugRequest
from werkzeug.wrappers import Response as WerkzeugResponse

from dojo.testing import Background, is_blocked, wait_until

from . import wsgi_server
from .wsgi_server import WSGIServer

CLIENT_TIMEOUT = 5.0  # seconds any client here waits for the server before failing the test
POLL_INTERVAL = 0.01  # serve_forever's poll_interval in these tests
Environ = dict[str, Any]
App = Callable[..., Iterable[bytes]]


# --- the server under test, and what went wrong on its side ---------------------------------------


class Watched:
    """The app's iterable, passed through, remembering what its iteration raised."""

    def __init__(self, result: Iterable[bytes], errors: list[str]) -> None:
        self._result = result
        self._blocks = iter(result)
        self._errors = errors

    def __iter__(self) -> Iterator[bytes]:
        return self

    def __next__(self) -> bytes:
        try:
            return next(self._blocks)
        except StopIteration:
            raise
        except BaseException as exc:
            self._errors.append(f"the app's iterable raised {exc!r}")
            raise

    def close(self) -> None:
        close = getattr(self._result, "close", None)
        if close is not None:
            close()


@dataclass
class Running:
    """A WSGIServer serving from a background thread, and the sockets tests opened to it."""

    server: WSGIServer
    serving: Background[None]
    app_errors: list[str]
    thread_errors: list[str]
    sockets: list[socket.socket] = field(default_factory=list)

    @property
    def port(self) -> int:
        return int(self.server.server_address[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def connect(self) -> socket.socket:
        sock = socket.create_connection(("127.0.0.1", self.port), timeout=CLIENT_TIMEOUT)
        self.sockets.append(sock)
        return sock

    def trouble(self) -> str:
        """What the server side raised, to append to a failure message (empty if nothing)."""
        notes = [*self.app_errors, *self.thread_errors]
        if self.serving.done:
            try:
                self.serving.result(0)
                notes.append("serve_forever() has returned")
            except BaseException as exc:  # reported, not raised: the test's own failure says what
                notes.append(f"serve_forever() raised {exc!r}")
        return "\n  server side: " + "; ".join(notes) if notes else ""

    def stop(self) -> None:
        for sock in self.sockets:
            sock.close()
        stopper = Background(self.server.shutdown, name="shutdown")
        stopper.thread.join(CLIENT_TIMEOUT)
        self.server.server_close()
        self.serving.thread.join(1.0)
        if not stopper.done:  # an error in shutdown() is its own tests' business; a hang is everyone's
            raise AssertionError(
                f"after the test, with every client closed, shutdown() did not return within {CLIENT_TIMEOUT} s"
            )


@pytest.fixture
def serve(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., Running]]:
    """Start a WSGIServer for `app` (wrapped in wsgiref's validator unless lint=False)."""
    thread_errors: list[str] = []
    started: list[Running] = []

    def record(args: threading.ExceptHookArgs) -> None:
        name = args.thread.name if args.thread else "?"
        thread_errors.append(f"thread {name!r} died with {args.exc_type.__name__}: {args.exc_value}")

    monkeypatch.setattr(threading, "excepthook", record)

    def start(app: App, *, lint: bool = True) -> Running:
        app_errors: list[str] = []
        inner = validator(app) if lint else app

        def watched(environ: Environ, start_response: Callable[..., Any]) -> Iterable[bytes]:
            try:
                result = inner(environ, start_response)
            except BaseException as exc:
                app_errors.append(f"the app raised {exc!r}")
                raise
            return Watched(result, app_errors)

        server = WSGIServer(watched, "127.0.0.1", 0)
        # a short poll interval only makes the many shutdowns of this file quicker
        serving = Background(server.serve_forever, POLL_INTERVAL, name="serve_forever")
        running = Running(server, serving, app_errors, thread_errors)
        started.append(running)
        running.serving.thread.join(0.02)
        if running.serving.done:
            running.serving.result(0)  # re-raises what serve_forever raised, NotImplementedError at first
            raise AssertionError("serve_forever() returned at once: it should serve until shutdown()")
        return running

    yield start
    for running in started:
        running.stop()


# --- clients ---------------------------------------------------------------------------------------


@dataclass
class Reply:
    """One response as a client saw it: parsed by h11, and the exact bytes it arrived as."""

    status: int
    headers: dict[str, str]  # lower-case names
    body: bytes
    raw: bytes  # the whole message: status line, headers, framed body
    complete: bool = True  # False: the connection ended inside the body

    @property
    def raw_body(self) -> bytes:
        return self.raw.partition(b"\r\n\r\n")[2]


class Wire:
    """A raw TCP connection; h11 (an independent HTTP/1.1 parser) reads the responses."""

    def __init__(self, running: Running, sock: socket.socket | None = None) -> None:
        self.running = running
        self.sock = sock or running.connect()
        self.conn = h11.Connection(h11.CLIENT)
        self.received = bytearray()
        self.mark = 0  # where in `received` the next response starts
        self._response: h11.Response | None = None

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def head(self, method: str = "GET") -> h11.Response:
        """Wait for the status line and headers of the response to the next request sent."""
        if self.conn.our_state is h11.DONE and self.conn.their_state is h11.DONE:
            self.conn.start_next_cycle()
        # h11 must know what was asked (a HEAD response has no body); the bytes went with send().
        self.conn.send(h11.Request(method=method, target="/", headers=[("Host", "test")]))
        self.conn.send(h11.EndOfMessage())
        while True:
            event = self._next_event()
            if isinstance(event, h11.Response):
                self._response = event
                return event
            if isinstance(event, h11.ConnectionClosed):
                raise AssertionError(
                    f"the server closed the connection without answering the {method} request; "
                    f"bytes received: {bytes(self.received[self.mark:])[:300]!r}{self.running.trouble()}"
                )

    def rest(self, *, may_be_cut: bool = False) -> Reply:
        """Read the body of the response whose head() was read."""
        assert self._response is not None
        body = bytearray()
        complete = True
        while True:
            try:
                event = self._next_event()
            except h11.RemoteProtocolError:
                if not may_be_cut:
                    raise
                complete = False
                break
            if isinstance(event, h11.Data):
                body += event.data
            elif isinstance(event, h11.EndOfMessage):
                break
        end = len(self.received) - len(self.conn.trailing_data[0])
        raw, self.mark = bytes(self.received[self.mark : end]), end
        headers: dict[str, str] = {}
        for name, value in self._response.headers:
            key = name.decode("latin-1")
            headers[key] = f"{headers[key]}, {value.decode('latin-1')}" if key in headers else value.decode("latin-1")
        return Reply(self._response.status_code, headers, bytes(body), raw, complete)

    def response(self, method: str = "GET") -> Reply:
        self.head(method)
        return self.rest()

    def _next_event(self) -> Any:
        while True:
            try:
                event = self.conn.next_event()
            except h11.RemoteProtocolError as exc:
                raise h11.RemoteProtocolError(
                    f"h11 could not parse the response ({exc}); bytes received: "
                    f"{bytes(self.received[self.mark:])[:400]!r}{self.running.trouble()}"
                ) from exc
            if event is not h11.NEED_DATA:
                return event
            try:
                data = self.sock.recv(65536)
            except TimeoutError:
                raise AssertionError(
                    f"no complete response after {CLIENT_TIMEOUT} s; bytes received so far: "
                    f"{bytes(self.received[self.mark:])[:400]!r}{self.running.trouble()}"
                ) from None
            self.received += data
            self.conn.receive_data(data)


def read_until_closed(running: Running, sock: socket.socket, what: str) -> bytes:
    """Everything the server sends until it closes the connection."""
    chunks: list[bytes] = []
    while True:
        try:
            data = sock.recv(65536)
        except TimeoutError:
            raise AssertionError(
                f"{what}: the server neither answered nor closed the connection in {CLIENT_TIMEOUT} s; "
                f"received {b''.join(chunks)[:300]!r}{running.trouble()}"
            ) from None
        except ConnectionResetError:
            break  # what arrived before the reset still counts
        if not data:
            break
        chunks.append(data)
    return b"".join(chunks)


def fetch(running: Running, method: str, path: str, session: Any = requests, **kwargs: Any) -> requests.Response:
    """One request with the `requests` library; a transport failure becomes a teaching failure."""
    try:
        response: requests.Response = session.request(method, running.url + path, timeout=CLIENT_TIMEOUT, **kwargs)
        return response
    except requests.RequestException as exc:
        raise AssertionError(f"{method} {path} with requests failed: {exc!r}{running.trouble()}") from None


GET = b"GET / HTTP/1.1\r\nHost: test\r\n\r\n"


def head_fields(raw: bytes) -> list[tuple[str, str]]:
    """The header fields of the first response in `raw`, names lower-cased, in order."""
    head = raw.partition(b"\r\n\r\n")[0].decode("latin-1")
    fields = []
    for line in head.split("\r\n")[1:]:
        name, _, value = line.partition(":")
        fields.append((name.strip().lower(), value.strip()))
    return fields


def says_close(raw: bytes) -> bool:
    """True if the first response in `raw` carries `Connection: close`."""
    return any(n == "connection" and "close" in v.lower() for n, v in head_fields(raw))


# --- test apps ---------------------------------------------------------------------------------------


def text_app(text: bytes) -> App:
    """Answers `text` with a Content-Length."""

    def app(environ: Environ, start_response: Callable[..., Any]) -> Iterable[bytes]:
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(text)))])
        return [text]

    return app


def streaming_app(*blocks: bytes) -> App:
    """Yields `blocks` one by one, with no Content-Length: the server must frame them."""

    def app(environ: Environ, start_response: Callable[..., Any]) -> Iterable[bytes]:
        start_response("200 OK", [("Content-Type", "text/plain")])
        return iter(blocks)

    return app


def environ_app(environ: Environ, start_response: Callable[..., Any]) -> Iterable[bytes]:
    """Answers the environ as JSON: every string variable and the wsgi.* flags."""
    shown: dict[str, Any] = {k: v for k, v in environ.items() if isinstance(v, str)}
    for key in ("wsgi.version", "wsgi.url_scheme", "wsgi.multithread", "wsgi.multiprocess", "wsgi.run_once"):
        shown[key] = environ.get(key)
    body = json.dumps(shown).encode()
    start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return [body]


def echo_app(environ: Environ, start_response: Callable[..., Any]) -> Iterable[bytes]:
    """Answers with the request body, read until wsgi.input says end-of-file, or else PATH_INFO."""
    body = b""
    while block := environ["wsgi.input"].read(4096):
        body += block
    answer = body or environ["PATH_INFO"].encode("latin-1")
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(answer)))])
    return [answer]


def path_app(environ: Environ, start_response: Callable[..., Any]) -> Iterable[bytes]:
    """Answers PATH_INFO and never reads the request body."""
    answer = environ["PATH_INFO"].encode("latin-1")
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(answer)))])
    return [answer]


# --- the environ ---------------------------------------------------------------------------------------


@pytest.mark.stage(1, "one request, one response")
def test_environ_holds_the_pep_3333_variables(serve: Callable[..., Running]) -> None:
    running = serve(environ_app)
    wire = Wire(running)
    wire.send(b"GET /some/path?x=1&y=two HTTP/1.1\r\nHost: test\r\n\r\n")
    reply = wire.response()
    assert reply.status == 200, (
        f"expected 200 from the app, got {reply.status}: {reply.body[:300]!r}{running.trouble()}"
    )
    env = json.loads(reply.body)
    expected = {
        "REQUEST_METHOD": "GET",
        "SCRIPT_NAME": "",
        "PATH_INFO": "/some/path",
        "QUERY_STRING": "x=1&y=two",
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": str(running.port),
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1",
        "REMOTE_PORT": str(wire.sock.getsockname()[1]),
        "wsgi.version": [1, 0],
        "wsgi.url_scheme": "http",
        "wsgi.multithread": True,
        "wsgi.multiprocess": False,
        "wsgi.run_once": False,
    }
    wrong = {k: f"expected {v!r}, got {env.get(k, '<missing>')!r}" for k, v in expected.items() if env.get(k) != v}
    assert not wrong, f"environ variables differ from PEP 3333's (and the contract table's): {wrong}"


@pytest.mark.stage(1, "one request, one response")
def test_request_headers_become_http_variables(serve: Callable[..., Running]) -> None:
    running = serve(environ_app)
    wire = Wire(running)
    wire.send(
        b"POST /h HTTP/1.1\r\nHost: example.test:8080\r\nX-Custom-Thing: a\r\nx-lower-case: b\r\n"
        b"X-Tight:v\r\nX-Spaced: \t padded value \t\r\n"
        b"Content-Type: text/plain\r\nContent-Length: 5\r\nAccept: text/html\r\naccept: application/json\r\n"
        b"\r\nhello"
    )
    reply = wire.response()
    assert reply.status == 200, (
        f"expected 200, got {reply.status}: wsgiref's validator checks the environ{running.trouble()}"
    )
    env = json.loads(reply.body)
    expected = {
        "HTTP_HOST": "example.test:8080",
        "HTTP_X_CUSTOM_THING": "a",
        "HTTP_X_LOWER_CASE": "b",
        "CONTENT_TYPE": "text/plain",
        "CONTENT_LENGTH": "5",
        "HTTP_ACCEPT": "text/html,application/json",
        "HTTP_X_TIGHT": "v",
        "HTTP_X_SPACED": "padded value",
    }
    wrong = {k: f"expected {v!r}, got {env.get(k, '<missing>')!r}" for k, v in expected.items() if env.get(k) != v}
    assert not wrong, (
        f"header variables are wrong: {wrong}. The CGI rule: upper-case the name, '-' becomes '_', "
        "prefix HTTP_ (except CONTENT_TYPE and CONTENT_LENGTH); a repeated header is joined with ','; "
        "the value is stripped of the spaces and tabs around it (RFC 9112 §5). "
        f"HTTP-like keys the app saw: {sorted(k for k in env if k.upper().startswith(('HTTP', 'CONTENT')))}"
    )
    for key in ("HTTP_CONTENT_TYPE", "HTTP_CONTENT_LENGTH"):
        assert key not in env, f"{key} must not be in the environ: PEP 3333 names it {key[5:]}"


@pytest.mark.stage(1, "one request, one response")
def test_path_info_is_percent_decoded_as_latin1_and_query_string_stays_raw(serve: Callable[..., Running]) -> None:
    running = serve(environ_app)
    wire = Wire(running)
    wire.send(b"GET /caf%C3%A9/a%20b?q=a%20b&x=%2F HTTP/1.1\r\nHost: test\r\n\r\n")
    env = json.loads(wire.response().body)
    assert env.get("PATH_INFO") == "/caf\u00c3\u00a9/a b", (
        f"for /caf%C3%A9/a%20b PATH_INFO should be '/caf\\xc3\\xa9/a b', got {env.get('PATH_INFO')!r}: "
        "percent-decode to bytes, then each byte is one latin-1 character (PEP 3333's native strings); "
        "the app re-encodes to latin-1 and decodes the UTF-8 itself"
    )
    assert env.get("QUERY_STRING") == "q=a%20b&x=%2F", (
        f"QUERY_STRING is passed raw, undecoded; got {env.get('QUERY_STRING')!r}"
    )


@pytest.mark.stage(1, "one request, one response")
def test_wsgi_input_gives_the_body_and_then_end_of_file(serve: Callable[..., Running]) -> None:
    running = serve(echo_app)
    payload = bytes(range(256)) * 400  # 100 KiB, more than one socket read
    reply = fetch(running, "POST", "/echo", data=payload, headers={"Content-Type": "application/octet-stream"})
    assert reply.status_code == 200, f"expected 200, got {reply.status_code}{running.trouble()}"
    assert reply.content == payload, (
        f"the app read {len(reply.content)} bytes from wsgi.input, the client sent {len(payload)}: "
        "wsgi.input.read(n) returns the body, and b'' once Content-Length bytes were read"
    )


# --- a real framework on top --------------------------------------------------------------------------

URLS = Map([
    Rule("/hello/<name>", endpoint="hello"),
    Rule("/search", endpoint="search"),
    Rule("/form", endpoint="form", methods=["POST"]),
    Rule("/upload", endpoint="upload", methods=["POST"]),
])


@WerkzeugRequest.application
def werkzeug_app(request: WerkzeugRequest) -> WerkzeugResponse:
    endpoint, args = URLS.bind_to_environ(request.environ).match()  # NotFound becomes a 404
    if endpoint == "hello":
        return WerkzeugResponse(f"hello {args['name']}")
    if endpoint == "search":
        return WerkzeugResponse(json.dumps({"q": request.args.get("q"), "page": request.args.get("page", type=int)}))
    if endpoint == "form":
        return WerkzeugResponse(json.dumps(request.form.to_dict()))
    upload = request.files["file"]
    received = {"name": upload.filename, "size": len(upload.read()), "note": request.form["note"]}
    return WerkzeugResponse(json.dumps(received))


@pytest.mark.stage(1, "one request, one response")
def test_a_werkzeug_app_routes_reads_query_strings_and_parses_forms(serve: Callable[..., Running]) -> None:
    running = serve(werkzeug_app)
    with requests.Session() as session:
        hello = fetch(running, "GET", "/hello/caf%C3%A9", session)
        assert (hello.status_code, hello.text) == (200, "hello café"), (
            f"Werkzeug routed /hello/caf%C3%A9 to {hello.status_code} {hello.text!r}, expected 'hello café': "
            f"is PATH_INFO percent-decoded into latin-1 characters?{running.trouble()}"
        )
        search = fetch(running, "GET", "/search?q=a+b%26c&page=2", session)
        assert search.json() == {"q": "a b&c", "page": 2}, f"query string parsed as {search.text!r}"
        form = {"name": "Zoë", "message": "a=b&c d"}
        posted = fetch(running, "POST", "/form", session, data=form)
        assert posted.json() == form, f"Werkzeug parsed the urlencoded form as {posted.text!r}"
        files = {"file": ("a.bin", b"\0" * 5000)}
        upload = fetch(running, "POST", "/upload", session, files=files, data={"note": "hi"})
        assert upload.json() == {"name": "a.bin", "size": 5000, "note": "hi"}, f"multipart parsed as {upload.text!r}"
        missing = fetch(running, "GET", "/nowhere", session)
        assert missing.status_code == 404, f"an unknown path should be Werkzeug's 404, got {missing.status_code}"


# --- keep-alive -------------------------------------------------------------------------------------------


def port_app(environ: Environ, start_response: Callable[..., Any]) -> Iterable[bytes]:
    """Answers REMOTE_PORT, which tells the test which TCP connection carried the request."""
    port = environ["REMOTE_PORT"].encode()
    if environ["PATH_INFO"] == "/stream":  # no Content-Length: the server must chunk it
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [port[:2], port[2:]]
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(port)))])
    return [port]


@pytest.mark.stage(2, "framing and keep-alive")
def test_a_requests_session_reuses_one_tcp_connection(serve: Callable[..., Running]) -> None:
    running = serve(port_app)
    with requests.Session() as session:
        ports = [
            fetch(running, "GET", "/", session).text,
            fetch(running, "GET", "/stream", session).text,
            fetch(running, "POST", "/", session, data=b"x" * 3000).text,  # a body the app never reads
            fetch(running, "GET", "/", session).text,
        ]
    assert len(set(ports)) == 1, (
        f"the four requests of one session arrived from client ports {ports}: each new port is a new "
        "TCP connection. HTTP/1.1 connections persist unless a side says `Connection: close`: "
        "serve requests in a loop on the same socket"
    )


@pytest.mark.stage(2, "framing and keep-alive")
def test_connection_close_ends_the_connection_after_the_response(serve: Callable[..., Running]) -> None:
    running = serve(text_app(b"bye"))
    sock = running.connect()
    sock.sendall(b"GET / HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n")
    raw = read_until_closed(running, sock, "after a request with `Connection: close`")
    assert raw.startswith(b"HTTP/1.1 200") and raw.endswith(b"\r\n\r\nbye"), (
        f"expected one 200 response with body b'bye', then the server closing; got {raw[:300]!r}"
    )
    assert says_close(raw), (
        f"the last response on a connection says so: `Connection: close` (RFC 9112 §9.6); got {raw[:300]!r}"
    )


@pytest.mark.stage(2, "framing and keep-alive")
def test_an_idle_keep_alive_connection_does_not_block_other_clients(serve: Callable[..., Running]) -> None:
    running = serve(text_app(b"hi"))
    idle = Wire(running)
    idle.send(GET)
    assert idle.response().body == b"hi"
    # `idle` now sits open, waiting for a next request that doesn't come.
    try:
        other = requests.get(running.url, timeout=CLIENT_TIMEOUT)
    except requests.RequestException as exc:
        raise AssertionError(
            f"a second client got no answer ({exc!r}) while another connection sat idle in keep-alive: "
            "serve each connection in its own thread, so one waiting socket can't stall the others"
            f"{running.trouble()}"
        ) from None
    assert other.text == "hi"


# --- framing --------------------------------------------------------------------------------------------

MDN_CHUNKED = b"7\r\nMozilla\r\n11\r\nDeveloper Network\r\n0\r\n\r\n"  # docs/vectors.md 5.1, RFC 9112 7.1


@pytest.mark.stage(2, "framing and keep-alive")
@pytest.mark.parametrize(
    "blocks",
    [(b"Mozilla", b"Developer Network"), (b"", b"Mozilla", b"", b"Developer Network", b"")],
    ids=["two_blocks", "with_empty_blocks"],
)
def test_a_body_of_unknown_length_is_chunked_exactly_as_rfc_9112_frames_it(
    serve: Callable[..., Running], blocks: tuple[bytes, ...]
) -> None:
    running = serve(streaming_app(*blocks))
    wire = Wire(running)
    wire.send(GET + GET)  # two requests: the second answer proves the first body ended right
    head = wire.head()
    framing = {
        name.decode(): value.decode()
        for name, value in head.headers  # h11 gives lower-case names
        if name in (b"transfer-encoding", b"content-length")
    }
    assert framing == {"transfer-encoding": "chunked"}, (
        f"the app gave no Content-Length and the HTTP/1.1 connection stays open, so the body must be "
        f"sent with `Transfer-Encoding: chunked`; the framing headers were {framing}. Without either "
        "header the client can only read until the connection closes, and it never does."
    )
    reply = wire.rest()
    assert reply.raw_body == MDN_CHUNKED, (
        f"blocks {blocks} should go out as one chunk per non-empty block (hex size, CRLF, data, CRLF) "
        f"and a last-chunk:\n  expected {MDN_CHUNKED!r}\n  got      {reply.raw_body!r}\n"
        "An empty block must send nothing: a chunk of size 0 IS the last-chunk, it ends the body."
    )
    second = wire.response()
    assert second.body == b"MozillaDeveloper Network", f"the second response on the connection was {second.raw[:200]!r}"


@pytest.mark.stage(1, "one request, one response")
def test_a_content_length_from_the_app_frames_the_body_exactly(serve: Callable[..., Running]) -> None:
    def app(environ: Environ, start_response: Callable[..., Any]) -> Iterable[bytes]:
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "11")])
        return iter([b"hello", b"", b" world"])

    running = serve(app)
    wire = Wire(running)
    wire.send(GET + GET)
    first = wire.response()
    assert "transfer-encoding" not in first.headers, (
        f"the app gave a Content-Length, so the body is sent as is, not chunked: {first.headers}"
    )
    assert (first.headers.get("content-length"), first.raw_body) == ("11", b"hello world"), (
        f"expected Content-Length 11 and exactly b'hello world' on the wire, got "
        f"{first.headers.get('content-length')!r} and {first.raw_body!r}"
    )
    assert wire.response().body == b"hello world", "the second response on the same connection is wrong"


@pytest.mark.stage(2, "framing and keep-alive")
def test_an_http_1_0_client_gets_a_body_delimited_by_closing(serve: Callable[..., Running]) -> None:
    running = serve(streaming_app(b"Mozilla", b"Developer Network"))
    conn = http.client.HTTPConnection("127.0.0.1", running.port, timeout=CLIENT_TIMEOUT)
    conn._http_vsn, conn._http_vsn_str = 10, "HTTP/1.0"  # type: ignore[attr-defined]
    try:
        conn.request("GET", "/")
        response = conn.getresponse()
        assert response.getheader("Transfer-Encoding") is None, (
            "an HTTP/1.0 client doesn't understand chunked: with no Content-Length, send the body "
            "as is and close the connection to end it"
        )
        body = response.read()  # reads until the server closes
    except (OSError, http.client.HTTPException) as exc:
        raise AssertionError(f"HTTP/1.0 GET with http.client failed: {exc!r}{running.trouble()}") from None
    finally:
        conn.close()
    assert body == b"MozillaDeveloper Network"


@pytest.mark.stage(2, "framing and keep-alive")
def test_a_head_response_has_headers_and_no_body(serve: Callable[..., Running]) -> None:
    running = serve(text_app(b"hello world"))
    conn = http.client.HTTPConnection("127.0.0.1", running.port, timeout=CLIENT_TIMEOUT)
    try:
        conn.request("HEAD", "/")
        head = conn.getresponse()
        assert (head.status, head.getheader("Content-Length"), head.read()) == (200, "11", b"")
        conn.request("GET", "/")  # same connection: body bytes sent for HEAD would corrupt this
        body = conn.getresponse().read()
    except (OSError, http.client.HTTPException) as exc:
        raise AssertionError(
            f"HEAD then GET on one connection failed: {exc!r}. A HEAD response carries the headers a "
            f"GET would get, and no body bytes at all{running.trouble()}"
        ) from None
    finally:
        conn.close()
    assert body == b"hello world"


@pytest.mark.stage(2, "framing and keep-alive")
def test_a_head_response_to_a_streaming_app_sends_no_chunks(serve: Callable[..., Running]) -> None:
    running = serve(streaming_app(b"Mozilla", b"Developer Network"))
    wire = Wire(running)
    wire.send(b"HEAD / HTTP/1.1\r\nHost: test\r\n\r\n" + GET)
    head = wire.response("HEAD")
    assert head.raw.endswith(b"\r\n\r\n") and head.body == b"", f"HEAD answered {head.raw!r}"
    after = wire.response()
    assert after.body == b"MozillaDeveloper Network", (
        f"the GET after a HEAD got {after.raw[:200]!r}: the HEAD response must not send chunks, "
        "not even the last-chunk b'0\\r\\n\\r\\n'"
    )


# --- request bodies on a persistent connection ------------------------------------------------------------


@pytest.mark.stage(2, "framing and keep-alive")
def test_pipelined_requests_are_answered_in_order_with_bodies_not_mixed(serve: Callable[..., Running]) -> None:
    running = serve(echo_app)
    wire = Wire(running)
    wire.send(
        b"POST /a HTTP/1.1\r\nHost: test\r\nContent-Length: 5\r\n\r\nhello"
        b"GET /second HTTP/1.1\r\nHost: test\r\n\r\n"
        b"POST /c HTTP/1.1\r\nHost: test\r\nContent-Length: 6\r\n\r\nworld!"
    )
    wire.sock.shutdown(socket.SHUT_WR)  # the client sends nothing more: reading on finds end-of-file
    first = wire.response()
    assert first.body == b"hello", (
        f"the app read {first.body[:200]!r} from wsgi.input for a 5-byte body: wsgi.input must stop "
        "at Content-Length, the bytes after it are the next request"
    )
    answers = [wire.response().body, wire.response().body]
    assert answers == [b"/second", b"world!"], (
        f"three requests sent in one packet: the second and third got {answers}, expected "
        "[b'/second', b'world!'] in order"
    )


@pytest.mark.stage(2, "framing and keep-alive")
def test_a_body_the_app_never_reads_is_not_taken_for_the_next_request(serve: Callable[..., Running]) -> None:
    running = serve(path_app)
    smuggled = b"GET /smuggled HTTP/1.1\r\nHost: test\r\n\r\n"  # a body that looks like a request
    wire = Wire(running)
    wire.send(
        b"POST /upload HTTP/1.1\r\nHost: test\r\nContent-Length: %d\r\n\r\n%s" % (len(smuggled), smuggled)
        + b"GET /next HTTP/1.1\r\nHost: test\r\n\r\n"
    )
    answers = [wire.response().body, wire.response().body]
    assert answers == [b"/upload", b"/next"], (
        f"expected answers for /upload and /next, got {answers}: the app ignored the POST body, and "
        "the server parsed that body as a request. Skip what the app left unread of wsgi.input "
        "before reading the next request (this is how request smuggling works)"
    )


# --- start_response, write() and exc_info -------------------------------------------------------------------


@pytest.mark.stage(3, "start_response and app errors")
def test_write_callable_output_comes_before_the_iterable(serve: Callable[..., Running]) -> None:
    def app(environ: Environ, start_response: Callable[..., Any]) -> Iterable[bytes]:
        write = start_response("200 OK", [("Content-Type", "text/plain")])
        write(b"written ")
        return [b"then iterated"]

    running = serve(app)
    reply = fetch(running, "GET", "/")
    assert reply.content == b"written then iterated", (
        f"got {reply.content!r}: write(data) sends at once (headers first if not yet sent); "
        "the iterable's blocks follow"
    )


@pytest.mark.stage(3, "start_response and app errors")
def test_start_response_with_exc_info_replaces_the_status_before_the_first_body_byte(
    serve: Callable[..., Running],
) -> None:
    def app(environ: Environ, start_response: Callable[..., Any]) -> Iterable[bytes]:
        start_response("200 OK", [("Content-Type", "text/plain")])
        try:
            raise LookupError("the database is down")
        except LookupError:
            page = b"custom error page"
            headers = [("Content-Type", "text/plain"), ("Content-Length", str(len(page)))]
            start_response("503 Service Unavailable", headers, sys.exc_info())
            return [page]

    running = serve(app)
    wire = Wire(running)
    wire.send(GET)
    head = wire.head()
    assert head.status_code == 503, (
        f"expected the app's 503, got {head.status_code}: start_response only records the status; the "
        "status line and headers go out with the first non-empty body block, so until then the app "
        f"may call start_response(..., exc_info) to replace them{running.trouble()}"
    )
    assert wire.rest().body == b"custom error page"


@pytest.mark.stage(3, "start_response and app errors")
def test_exc_info_after_the_first_body_byte_is_raised_back_into_the_app(serve: Callable[..., Running]) -> None:
    outcome: list[object] = []

    def app(environ: Environ, start_response: Callable[..., Any]) -> Iterable[bytes]:
        start_response("200 OK", [("Content-Type", "text/plain")])

        def body() -> Iterator[bytes]:
            yield b"partial"
            try:
                raise LookupError("failed mid-stream")
            except LookupError as error:
                try:
                    start_response("500 Internal Server Error", [("Content-Type", "text/plain")], sys.exc_info())
                except LookupError as again:
                    outcome.append(again is error)
                    raise
                outcome.append("start_response returned")
                yield b"an error page, too late"

        return body()

    running = serve(app)
    wire = Wire(running)
    wire.send(GET)
    assert wire.head().status_code == 200
    reply = wire.rest(may_be_cut=True)
    assert outcome == [True], (
        f"after the headers went out, start_response(..., exc_info) must re-raise exc_info's exception "
        f"(PEP 3333); the app saw {outcome}"
    )
    assert not reply.complete and reply.body == b"partial", (
        f"the response already said 200; the server must close the connection without a last-chunk "
        f"so the client knows the body was cut short. Client got body {reply.body!r}, complete={reply.complete}"
    )


@pytest.mark.stage(3, "start_response and app errors")
@pytest.mark.parametrize("framing", ["chunked", "content_length"])
def test_an_app_error_after_the_first_body_byte_cuts_the_connection_and_adds_nothing(
    serve: Callable[..., Running], framing: str
) -> None:
    def app(environ: Environ, start_response: Callable[..., Any]) -> Iterable[bytes]:
        headers = [("Content-Type", "text/plain")] + ([("Content-Length", "11")] if framing == "content_length" else [])
        start_response("200 OK", headers)

        def body() -> Iterator[bytes]:
            yield b"hello"
            raise RuntimeError("failed mid-body")

        return body()

    running = serve(app)
    sock = running.connect()
    sock.sendall(GET + GET)
    raw = read_until_closed(running, sock, "after an app failed in the middle of its body")
    body = raw.partition(b"\r\n\r\n")[2]
    expected = b"5\r\nhello\r\n" if framing == "chunked" else b"hello"
    assert raw.startswith(b"HTTP/1.1 200") and body == expected, (
        f"the 200 and 5 body bytes were out when the app raised: the status can't be taken back, so the "
        f"server sends nothing more (no 500, no last-chunk, no next response) and closes the connection; "
        f"the client then knows the body is incomplete. After the head it got {body[:200]!r}, expected "
        f"{expected!r}{running.trouble()}"
    )


@pytest.mark.stage(3, "start_response and app errors")
@pytest.mark.parametrize("where", ["before_start_response", "after_start_response", "after_an_empty_block"])
def test_an_app_error_before_the_first_body_byte_becomes_a_500(serve: Callable[..., Running], where: str) -> None:
    def app(environ: Environ, start_response: Callable[..., Any]) -> Iterable[bytes]:
        if where == "before_start_response":
            raise RuntimeError("boom")
        start_response("200 OK", [("Content-Type", "text/plain")])
        if where == "after_start_response":
            raise RuntimeError("boom")

        def body() -> Iterator[bytes]:
            yield b""
            raise RuntimeError("boom")

        return body()

    running = serve(app)
    sock = running.connect()
    sock.sendall(GET + GET)
    raw = read_until_closed(running, sock, "after an app error")
    assert status_of(raw) == 500, (
        f"the app raised {where.replace('_', ' ')}, before any body byte: the client should get "
        f"500 Internal Server Error, got {raw[:200]!r}. Nothing may be sent before the first non-empty "
        "body block (not at start_response, not for an empty block)"
    )
    assert raw.count(b"HTTP/1.1 ") == 1 and says_close(raw), (
        "after a 500 the server closes the connection (and says `Connection: close`): the app's "
        f"state is unknown. Two requests were sent; the client got {raw!r}"
    )
    assert fetch(running, "GET", "/next").status_code == 500, "the server should go on serving"


# --- the iterable's close() ----------------------------------------------------------------------------------


class Tracked:
    """An app iterable that records whether the server called close()."""

    def __init__(self, blocks: Iterator[bytes]) -> None:
        self.blocks = blocks
        self.closed = threading.Event()

    def __iter__(self) -> Iterator[bytes]:
        return self.blocks

    def close(self) -> None:
        self.closed.set()


def endless() -> Iterator[bytes]:
    for _ in range(4000):  # 64 MB at most: plenty to notice that the client went away
        yield b"x" * 16384


def failing() -> Iterator[bytes]:
    yield b"first"
    raise RuntimeError("failed after the first block")


@pytest.mark.stage(3, "start_response and app errors")
@pytest.mark.parametrize("case", ["complete", "app_raises_mid_body", "client_disconnects"])
def test_the_iterables_close_is_always_called(serve: Callable[..., Running], case: str) -> None:
    blocks = {"complete": lambda: iter([b"a", b"b"]), "app_raises_mid_body": failing, "client_disconnects": endless}
    tracked = Tracked(blocks[case]())

    def app(environ: Environ, start_response: Callable[..., Any]) -> Iterable[bytes]:
        start_response("200 OK", [("Content-Type", "text/plain")])
        return tracked

    running = serve(app)
    wire = Wire(running)
    wire.send(GET)
    wire.head()
    if case == "client_disconnects":
        # close with RST (SO_LINGER 0), as a client that crashed or gave up would
        wire.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        wire.sock.close()
    else:
        wire.rest(may_be_cut=True)
    try:
        wait_until(tracked.closed.is_set, timeout=CLIENT_TIMEOUT, what="close()")
    except AssertionError:
        raise AssertionError(
            f"the app iterable's close() was never called ({case.replace('_', ' ')}): PEP 3333 "
            "requires calling close() when the request ends, however it ends (use try/finally); apps "
            f"release database connections and files there{running.trouble()}"
        ) from None


# --- bad requests -----------------------------------------------------------------------------------------


def status_of(raw: bytes) -> int | None:
    match = re.match(rb"HTTP/1\.[01] (\d{3}) ", raw)
    return int(match.group(1)) if match else None


@pytest.mark.stage(4, "peers that misbehave")
@pytest.mark.parametrize(
    "request_bytes",
    [
        b"GARBAGE\r\n\r\n",
        b"GET /\r\n\r\n",
        b"GET / HTTP/1.1 extra\r\nHost: test\r\n\r\n",
        b"GET / HTTX/1.1\r\nHost: test\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost test\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: test\r\nContent-Length: twelve\r\n\r\n",
        b"G@T / HTTP/1.1\r\nHost: test\r\n\r\n",
        b"GET foo HTTP/1.1\r\nHost: test\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost : test\r\n\r\n",
        b"GET / HTTP/1.1\r\nBad Name: x\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: test\r\n continued\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: test\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!",
        b"POST / HTTP/1.1\r\nHost: test\r\nContent-Length: -1\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: test\r\nContent-Length: +5\r\n\r\nhello",
        "POST / HTTP/1.1\r\nHost: test\r\nContent-Length: \u0665\r\n\r\nhello".encode(),
    ],
    ids=["one_word", "no_version", "four_words", "not_http", "header_without_colon", "bad_content_length",
         "bad_method", "target_not_a_path", "space_before_colon", "space_in_name", "obsolete_line_folding",
         "two_content_lengths", "negative_length", "plus_sign_length", "arabic_digit_length"],
)
def test_a_malformed_request_gets_400(serve: Callable[..., Running], request_bytes: bytes) -> None:
    called: list[str] = []

    def app(environ: Environ, start_response: Callable[..., Any]) -> Iterable[bytes]:
        called.append(environ["PATH_INFO"])
        return text_app(b"ok")(environ, start_response)

    running = serve(app)
    sock = running.connect()
    sock.sendall(request_bytes)
    raw = read_until_closed(running, sock, f"after {request_bytes!r}")
    assert status_of(raw) == 400, (
        f"{request_bytes!r} should be answered 400 Bad Request (then the connection closed); got "
        f"{raw[:200]!r}. A parse error is the client's fault: answer it, don't let the thread die. "
        "Methods and header names are tokens (RFC 9110 §5.6.2: no spaces, no whitespace before the "
        "colon, no folded lines); Content-Length is one run of ASCII digits, and two different "
        f"lengths are how request smuggling starts{running.trouble()}"
    )
    assert not called, "the app must not be called for a request that could not be parsed"


@pytest.mark.stage(4, "peers that misbehave")
@pytest.mark.parametrize(
    ("request_bytes", "status"),
    [
        (b"GET / HTTP/2.0\r\nHost: test\r\n\r\n", 505),
        (b"POST / HTTP/1.1\r\nHost: test\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n", 501),
        (b"POST / HTTP/1.1\r\nHost: test\r\ntransfer-encoding: gzip, chunked\r\n\r\n", 501),
    ],
    ids=["http_2", "chunked_request_body", "lower_case_transfer_encoding"],
)
def test_what_the_server_does_not_speak_is_refused_with_its_status(
    serve: Callable[..., Running], request_bytes: bytes, status: int
) -> None:
    called: list[str] = []

    def app(environ: Environ, start_response: Callable[..., Any]) -> Iterable[bytes]:
        called.append(environ["PATH_INFO"])
        return text_app(b"ok")(environ, start_response)

    running = serve(app)
    sock = running.connect()
    sock.sendall(request_bytes)
    raw = read_until_closed(running, sock, f"after {request_bytes!r}")
    assert status_of(raw) == status and not called, (
        f"{request_bytes[:60]!r} should get {status} (505: only HTTP/1.0 and 1.1 are spoken; 501: a "
        "request body framed by Transfer-Encoding, which this server does not read, whatever the "
        f"header's case) without calling the app; got {raw[:120]!r}, app called: {bool(called)}"
    )


@pytest.mark.stage(4, "peers that misbehave")
@pytest.mark.parametrize("shape", ["one_huge_header", "too_many_headers"])
def test_too_large_headers_are_refused(serve: Callable[..., Running], shape: str) -> None:
    called: list[str] = []

    def app(environ: Environ, start_response: Callable[..., Any]) -> Iterable[bytes]:
        called.append(environ["PATH_INFO"])
        return text_app(b"ok")(environ, start_response)

    if shape == "one_huge_header":
        headers = b"X-Big: " + b"a" * 100_000 + b"\r\n"
    else:
        headers = b"".join(b"X-H%d: v\r\n" % i for i in range(2000))
    running = serve(app)
    sock = running.connect()
    # the server may answer and close before it has read it all: that's allowed
    with contextlib.suppress(BrokenPipeError, ConnectionResetError):
        sock.sendall(b"GET / HTTP/1.1\r\nHost: test\r\n" + headers + b"\r\n")
    raw = read_until_closed(running, sock, f"after a request with {len(headers)} bytes of headers")
    assert status_of(raw) == 431, (
        f"{len(headers)} bytes of headers ({shape.replace('_', ' ')}) should be refused with "
        f"431 Request Header Fields Too Large, got "
        f"{raw[:120]!r}: cap the request line, each header line and the number of headers, or any "
        f"client can make the server hold unbounded memory{running.trouble()}"
    )
    assert not called, "the app must not be called for a refused request"


# --- shutdown ----------------------------------------------------------------------------------------------


@pytest.mark.stage(5, "shutdown")
def test_shutdown_stops_serving_and_closes_idle_connections(serve: Callable[..., Running]) -> None:
    running = serve(text_app(b"hi"))
    wire = Wire(running)
    wire.send(GET)
    assert wire.response().body == b"hi"
    time.sleep(0.2)  # the connection's thread gets back to waiting for the next request (keep-alive)
    stopper = Background(running.server.shutdown, 30.0, name="shutdown")
    try:
        stopper.result(timeout=CLIENT_TIMEOUT)
    except AssertionError:
        raise AssertionError(
            "shutdown(timeout=30) with one idle keep-alive connection did not return: an idle "
            "connection has no request in progress, so shutdown must wake its thread (shut the "
            "socket down) instead of waiting for it"
        ) from None
    assert running.serving.done, "serve_forever() should have returned when shutdown() returns"
    running.serving.result(0)
    try:
        leftover = wire.sock.recv(1)
    except TimeoutError:
        raise AssertionError("shutdown() left an idle keep-alive connection open: close idle connections") from None
    except ConnectionResetError:
        leftover = b""
    assert leftover == b"", f"the idle connection received {leftover!r} instead of being closed"
    assert refuses_connections(running.port), (
        "after shutdown() the port still accepts connections: close the listening socket"
    )


def refuses_connections(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except ConnectionRefusedError:
        return True
    return False


@pytest.mark.stage(1, "one request, one response")
def test_the_default_address_is_localhost_on_a_port_the_os_picks() -> None:
    servers = [WSGIServer(text_app(b"default")), WSGIServer(text_app(b"default"))]
    serving = [Background(server.serve_forever, name="serve_forever") for server in servers]
    try:
        addresses = [server.server_address for server in servers]
        assert addresses[0][0] == "127.0.0.1" and addresses[0][1] != addresses[1][1], (
            f"WSGIServer(app) twice listens on {addresses}: the defaults are host 127.0.0.1 and port "
            "0, which asks the OS for a free port (server_address then holds the real one)"
        )
        got = requests.get(f"http://127.0.0.1:{addresses[1][1]}/", timeout=CLIENT_TIMEOUT)
        assert got.content == b"default"
    finally:
        for server, thread in zip(servers, serving, strict=True):
            Background(server.shutdown, name="shutdown").thread.join(CLIENT_TIMEOUT)
            server.server_close()
            thread.thread.join(1.0)


@pytest.mark.stage(5, "shutdown")
def test_shutdown_before_serve_forever_returns_and_releases_the_port() -> None:
    server = WSGIServer(text_app(b"never served"), "127.0.0.1", 0)
    port = server.server_address[1]
    try:
        Background(server.shutdown, name="shutdown").result(timeout=CLIENT_TIMEOUT)
        Background(server.shutdown, name="second shutdown").result(timeout=CLIENT_TIMEOUT)
    except AssertionError:
        raise AssertionError(
            "shutdown() on a server whose serve_forever() never ran (then once more) did not return: "
            "it must not wait for a loop that isn't running"
        ) from None
    finally:
        server.server_close()
    assert refuses_connections(port), "shutdown() must release the port even if serve_forever() never ran"
    Background(server.serve_forever, name="serve_forever").result(timeout=CLIENT_TIMEOUT)


@pytest.mark.stage(5, "shutdown")
def test_shutdown_lets_requests_in_progress_finish_and_closes_their_connections(
    serve: Callable[..., Running],
) -> None:
    gates = {"/a": threading.Event(), "/b": threading.Event()}
    entered = threading.Semaphore(0)

    def app(environ: Environ, start_response: Callable[..., Any]) -> Iterable[bytes]:
        entered.release()
        gates[environ["PATH_INFO"]].wait(CLIENT_TIMEOUT)
        return text_app(b"done " + environ["PATH_INFO"].encode())(environ, start_response)

    running = serve(app)
    first, second = Wire(running), Wire(running)
    first.send(b"GET /a HTTP/1.1\r\nHost: test\r\n\r\n")
    second.send(b"GET /b HTTP/1.1\r\nHost: test\r\n\r\n")
    assert entered.acquire(timeout=CLIENT_TIMEOUT) and entered.acquire(timeout=CLIENT_TIMEOUT), (
        f"the app was not called for two requests on two connections{running.trouble()}"
    )
    stoppers = [Background(running.server.shutdown, 30.0, name=f"shutdown-{i}") for i in range(2)]
    assert is_blocked(stoppers[0].thread), (
        "shutdown() returned while two requests were still in progress: let them finish (up to its timeout)"
    )
    wait_until(lambda: running.serving.done, timeout=CLIENT_TIMEOUT, what="serve_forever() to return")
    assert refuses_connections(running.port), "while shutting down, stop accepting: close the listening socket"
    gates["/a"].set()
    assert first.response().body == b"done /a", "a request in progress at shutdown() gets its whole response"
    assert read_until_closed(running, first.sock, "after the last response during shutdown") == b"", (
        "once its request in progress is answered, a connection is closed during shutdown(), not kept alive"
    )
    assert all(is_blocked(stopper.thread) for stopper in stoppers), (
        "shutdown() (called from two threads) returned while one request was still in progress: wait "
        "until every connection is done (a condition in a loop, notify_all: each caller must be woken)"
    )
    gates["/b"].set()
    assert second.response().body == b"done /b"
    for stopper in stoppers:
        stopper.result(timeout=CLIENT_TIMEOUT)


@pytest.mark.stage(5, "shutdown")
def test_shutdown_cuts_off_a_client_that_stopped_reading_after_its_timeout(serve: Callable[..., Running]) -> None:
    yielded = [0]

    def counted() -> Iterator[bytes]:
        for block in endless():
            yielded[0] += 1
            yield block

    tracked = Tracked(counted())

    def app(environ: Environ, start_response: Callable[..., Any]) -> Iterable[bytes]:
        start_response("200 OK", [("Content-Type", "text/plain")])
        return tracked

    running = serve(app)
    sock = running.connect()
    sock.sendall(GET)  # and never reads: the server's send buffer fills and sendall() blocks
    wait_until(lambda: yielded[0] > 64, timeout=CLIENT_TIMEOUT, what="the app to stream")
    stopper = Background(running.server.shutdown, 0.2, name="shutdown")
    try:
        stopper.result(timeout=CLIENT_TIMEOUT)
    except AssertionError:
        raise AssertionError(
            "shutdown(timeout=0.2) never returned: a client that stopped reading holds its "
            "connection's thread in sendall() forever. After the timeout, cut off the connections "
            f"still busy (socket.shutdown(SHUT_RDWR) wakes a thread blocked on it){running.trouble()}"
        ) from None
    try:
        wait_until(tracked.closed.is_set, timeout=CLIENT_TIMEOUT, what="close()")
    except AssertionError:
        raise AssertionError("the cut-off response's iterable was never closed") from None


@pytest.mark.stage(5, "shutdown")
def test_an_app_stuck_forever_does_not_keep_the_process_alive() -> None:
    """Connection threads are daemons: after shutdown(), an app that never returns can't block exit."""
    script = textwrap.dedent(f"""
        import importlib.util, socket, sys, threading
        spec = importlib.util.spec_from_file_location("wsgi_server", {wsgi_server.__file__!r})
        module = importlib.util.module_from_spec(spec)
        sys.modules["wsgi_server"] = module
        spec.loader.exec_module(module)
        entered = threading.Event()
        def app(environ, start_response):
            entered.set()
            threading.Event().wait()  # forever
        server = module.WSGIServer(app, "127.0.0.1", 0)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        client = socket.create_connection(server.server_address)
        client.sendall(b"GET / HTTP/1.1\\r\\nHost: test\\r\\n\\r\\n")
        entered.wait(5)
        server.shutdown(timeout=0.1)
        print("shutdown returned", flush=True)
    """)
    try:
        done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=CLIENT_TIMEOUT)
    except subprocess.TimeoutExpired:
        raise AssertionError(
            "after shutdown(timeout=0.1) returned, the process did not exit: a connection thread whose "
            "app never returns is not a daemon thread (threading.Thread(..., daemon=True)), and Python "
            "waits for every non-daemon thread before it exits"
        ) from None
    assert "shutdown returned" in done.stdout, f"the script failed: {done.stderr[-1500:]}"


# --- apps that misbehave: header names in any case, lying lengths ----------------------------------------


@pytest.mark.stage(4, "peers that misbehave")
@pytest.mark.parametrize(
    ("length", "date"), [("content-length", "date"), ("CONTENT-LENGTH", "DATE"), ("Content-length", "dAtE")]
)
def test_the_apps_content_length_and_date_count_in_any_letter_case(
    serve: Callable[..., Running], length: str, date: str
) -> None:
    stamp = "Tue, 15 Nov 1994 08:12:31 GMT"

    def app(environ: Environ, start_response: Callable[..., Any]) -> Iterable[bytes]:
        start_response("200 OK", [("content-type", "text/plain"), (length, "11"), (date, stamp)])
        return iter([b"hello", b" world"])

    running = serve(app)
    wire = Wire(running)
    wire.send(GET + GET)
    first = wire.response()
    fields = head_fields(first.raw)
    framing = [f for f in fields if f[0] in ("content-length", "transfer-encoding")]
    assert framing == [("content-length", "11")], (
        f"the app sent `{length}: 11`; the response's framing headers were {framing}. Header names are "
        "case-insensitive (RFC 9110 §5.1): look the app's headers up by lower-cased name, or an app "
        "that writes `content-length` gets a chunked Transfer-Encoding next to its own length"
    )
    dates = [v for n, v in fields if n == "date"]
    assert dates == [stamp], (
        f"the app gave its own Date (as `{date}`); the response carried Date {dates}: add a Date only "
        "when the app gave none, whatever the case of its header name"
    )
    assert first.raw_body == b"hello world", f"the body on the wire was {first.raw_body!r}"
    assert wire.response().body == b"hello world", "the second response on the connection is wrong"


@pytest.mark.stage(4, "peers that misbehave")
def test_the_server_adds_a_date_when_the_app_gives_none(serve: Callable[..., Running]) -> None:
    running = serve(text_app(b"hi"))
    wire = Wire(running)
    wire.send(GET)
    dates = [v for n, v in head_fields(wire.response().raw) if n == "date"]
    assert len(dates) == 1 and email.utils.parsedate_to_datetime(dates[0]).tzinfo is not None, (
        f"a response must carry one Date in IMF-fixdate form (RFC 9110 §6.6.1, "
        f"email.utils.formatdate(usegmt=True)); got {dates}"
    )


def endless_after_hello() -> Iterator[bytes]:
    yield b"hello"
    while True:
        yield b" and more"


@pytest.mark.stage(4, "peers that misbehave")
@pytest.mark.parametrize("shape", ["one_block", "several_blocks", "endless"])
def test_never_more_body_than_the_apps_content_length(serve: Callable[..., Running], shape: str) -> None:
    """PEP 3333: send no more than Content-Length allows, and stop iterating once it is sent."""
    blocks = {
        "one_block": lambda: iter([b"hello world"]),
        "several_blocks": lambda: iter([b"hel", b"lo", b" world", b"!"]),
        "endless": endless_after_hello,
    }
    tracked = Tracked(blocks[shape]())

    def app(environ: Environ, start_response: Callable[..., Any]) -> Iterable[bytes]:
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "5")])
        return tracked

    running = serve(app)
    sock = running.connect()
    sock.sendall(GET + b"GET /second HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n")
    raw = read_until_closed(running, sock, "after two pipelined GETs, the second with `Connection: close`")
    _, sep, after = raw.partition(b"\r\n\r\n")
    assert sep and after[:5] == b"hello", f"expected a response with body b'hello', got {raw[:300]!r}"
    rest = after[5:]
    assert rest == b"" or rest.startswith(b"HTTP/1.1 "), (
        f"the app announced Content-Length 5 and yielded more ({shape.replace('_', ' ')}); after the 5 "
        f"bytes the server sent {rest[:60]!r}. Never send more than that length: on a keep-alive "
        "connection the extra bytes are read as the start of the next response. PEP 3333: stop "
        f"iterating once Content-Length bytes are sent{running.trouble()}"
    )
    assert tracked.closed.is_set(), "the iterable's close() must be called when the server stops iterating early"


@pytest.mark.stage(4, "peers that misbehave")
@pytest.mark.parametrize("case", ["Content-Length 5", "HEAD", "204 No Content", "304 Not Modified"])
def test_bytes_given_to_write_obey_the_same_framing_as_the_iterables(
    serve: Callable[..., Running], case: str
) -> None:
    """write() is the other way into the body: Content-Length, HEAD, 204 and 304 bound it too."""
    status = case if case in ("204 No Content", "304 Not Modified") else "200 OK"
    headers = [] if status != "200 OK" else [("Content-Type", "text/plain"), ("Content-Length", "5")]

    def app(environ: Environ, start_response: Callable[..., Any]) -> Iterable[bytes]:
        start_response(status, headers)(b"hello world")
        return []

    running = serve(app)
    sock = running.connect()
    method = "HEAD" if case == "HEAD" else "GET"
    last = b"GET /second HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n"
    sock.sendall(f"{method} / HTTP/1.1\r\nHost: test\r\n\r\n".encode() + last)
    raw = read_until_closed(running, sock, f"after a {method} and a pipelined GET with `Connection: close`")
    _, sep, after = raw.partition(b"\r\n\r\n")
    allowed = b"hello" if case == "Content-Length 5" else b""
    rest = after[len(allowed) :]
    assert sep and after.startswith(allowed) and (rest == b"" or rest.startswith(b"HTTP/1.1 ")), (
        f"{method} to an app that answers {status} ({case}) and passes b'hello world' to write(): after "
        f"the head the server sent {after[:70]!r}, expected {allowed!r} and then the next response. "
        "Bytes given to write() obey the rules of the iterable's blocks: never more than the "
        "Content-Length, no body for HEAD, 204 or 304; extra bytes are read as the start of the next "
        f"response{running.trouble()}"
    )


@pytest.mark.stage(4, "peers that misbehave")
def test_a_body_shorter_than_its_content_length_ends_the_connection(serve: Callable[..., Running]) -> None:
    def app(environ: Environ, start_response: Callable[..., Any]) -> Iterable[bytes]:
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "11")])
        return [b"hello"]

    running = serve(app)
    sock = running.connect()
    sock.sendall(GET + GET)
    raw = read_until_closed(running, sock, "after an app sent 5 of the 11 bytes it announced")
    assert raw.count(b"HTTP/1.1 ") == 1 and raw.endswith(b"\r\n\r\nhello"), (
        f"the app announced 11 bytes and gave 5: the client waits for 6 more, and any next response "
        f"would be read as those 6. The only way to tell it is to close the connection after the 5 "
        f"bytes; got {raw[:300]!r}{running.trouble()}"
    )


@pytest.mark.stage(4, "peers that misbehave")
@pytest.mark.parametrize("status", ["204 No Content", "304 Not Modified"])
def test_a_204_or_304_response_has_no_body_and_no_framing(serve: Callable[..., Running], status: str) -> None:
    def app(environ: Environ, start_response: Callable[..., Any]) -> Iterable[bytes]:
        start_response(status, [])
        return [b"not sent"]

    running = serve(app)
    wire = Wire(running)
    wire.send(GET + GET)
    first = wire.response()
    framing = [f for f in head_fields(first.raw) if f[0] in ("content-length", "transfer-encoding")]
    assert first.status == int(status[:3]) and not framing and first.raw.endswith(b"\r\n\r\n"), (
        f"a {status} response never has a body (RFC 9110 §15.3.5, §15.4.5): no chunked framing, no "
        f"body bytes, even if the app yields some; got framing {framing} and {first.raw[-60:]!r}"
    )
    second = wire.response()
    assert second.status == int(status[:3]) and second.raw.endswith(b"\r\n\r\n"), (
        f"the second response on the connection was {second.raw[:200]!r}: bytes were sent after the first"
    )


@pytest.mark.stage(3, "start_response and app errors")
def test_app_tracebacks_go_to_wsgi_errors(serve: Callable[..., Running], capsys: pytest.CaptureFixture[str]) -> None:
    class FailingClose:
        def __iter__(self) -> Iterator[bytes]:
            yield b"fine"

        def close(self) -> None:
            raise LookupError("close-failed-7")

    def app(environ: Environ, start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ["PATH_INFO"] == "/fail":
            raise RuntimeError("app-failed-3")
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "4")])
        return FailingClose()

    running = serve(app, lint=False)  # the validator would wrap (and hide) the iterable's close()
    wire = Wire(running)
    wire.send(b"GET /close HTTP/1.1\r\nHost: test\r\n\r\n" + GET)
    first, second = wire.response(), wire.response()
    assert (first.body, second.body) == (b"fine", b"fine"), (
        "a close() that raises comes after a complete response: the connection can carry the next one"
    )
    assert fetch(running, "GET", "/fail").status_code == 500
    err = capsys.readouterr().err
    assert "RuntimeError: app-failed-3" in err and "LookupError: close-failed-7" in err, (
        "an app that raises (and an iterable whose close() raises) must be logged with its traceback to "
        f"environ['wsgi.errors'] (sys.stderr); stderr held: {err[-600:]!r}"
    )


# --- clients that misbehave: lower-case headers, stray CRLFs, stalls, huge unread bodies -----------------


@pytest.mark.stage(2, "framing and keep-alive")
def test_request_framing_headers_count_in_any_letter_case(serve: Callable[..., Running]) -> None:
    running = serve(echo_app)
    wire = Wire(running)
    wire.send(
        b"POST /a HTTP/1.1\r\nhost: test\r\ncontent-length: 5\r\n\r\nhello"
        b"\r\n"  # a stray CRLF after a body, as old clients send: skipped (RFC 9112 §2.2)
        b"POST /b HTTP/1.1\r\nHost: test\r\nCONTENT-LENGTH: 6\r\n\r\nworld!"
        b"GET /last HTTP/1.1\r\nHost: test\r\nconnection: Keep-Alive, CLOSE\r\n\r\n"
    )
    answers = [wire.response().body for _ in range(3)]
    assert answers == [b"hello", b"world!", b"/last"], (
        f"three pipelined requests with `content-length`, `CONTENT-LENGTH` and `connection: ..., CLOSE` "
        f"got {answers}: header names (and the Connection tokens) are case-insensitive (RFC 9110 §5.1), "
        "and a blank line before a request line is skipped"
    )
    rest = read_until_closed(running, wire.sock, "after `connection: Keep-Alive, CLOSE`")
    assert rest == b"", f"after `connection: Keep-Alive, CLOSE` the server sent {rest[:100]!r} instead of closing"


@pytest.mark.stage(2, "framing and keep-alive")
def test_an_http_1_0_request_is_answered_once_and_the_connection_closed(serve: Callable[..., Running]) -> None:
    running = serve(environ_app)
    sock = running.connect()
    sock.sendall(b"GET /old HTTP/1.0\r\nHost: test\r\n\r\nGET /again HTTP/1.0\r\n\r\n")
    raw = read_until_closed(running, sock, "after an HTTP/1.0 request")
    assert raw.count(b" 200 ") == 1 and says_close(raw), (
        f"HTTP/1.0 connections close after one response that says `Connection: close` (keep-alive is "
        f"opt-in there, and this server doesn't offer it): got {raw[:300]!r}"
    )
    env = json.loads(raw.partition(b"\r\n\r\n")[2])
    assert env.get("SERVER_PROTOCOL") == "HTTP/1.0", (
        f"SERVER_PROTOCOL comes from the request line: expected 'HTTP/1.0', got {env.get('SERVER_PROTOCOL')!r}"
    )


@pytest.mark.stage(1, "one request, one response")
def test_content_type_and_length_are_absent_when_not_sent(serve: Callable[..., Running]) -> None:
    running = serve(environ_app)
    wire = Wire(running)
    wire.send(GET)
    env = json.loads(wire.response().body)
    present = {k: env[k] for k in ("CONTENT_TYPE", "CONTENT_LENGTH") if k in env}
    assert not present, f"a GET without a body sent no Content-Type or Content-Length; the environ had {present}"


@pytest.mark.stage(1, "one request, one response")
@pytest.mark.parametrize(
    ("target", "path", "query"),
    [("http://example.test/a%20b?x=1", "/a b", "x=1"), ("http://example.test", "/", "")],
    ids=["with_path_and_query", "bare_authority"],
)
def test_an_absolute_form_target_gives_its_path_and_query(
    serve: Callable[..., Running], target: str, path: str, query: str
) -> None:
    running = serve(environ_app)
    wire = Wire(running)
    wire.send(b"GET %s HTTP/1.1\r\nHost: example.test\r\n\r\n" % target.encode())
    env = json.loads(wire.response().body)
    assert (env.get("PATH_INFO"), env.get("QUERY_STRING")) == (path, query), (
        f"a request for {target!r} (the absolute form clients send to proxies, which a server must "
        f"accept: RFC 9112 §3.2.2) should give PATH_INFO {path!r} and QUERY_STRING {query!r}; got "
        f"{env.get('PATH_INFO')!r} and {env.get('QUERY_STRING')!r}"
    )


OPS = st.lists(
    st.one_of(
        st.tuples(st.sampled_from(["read", "readline"]), st.one_of(st.none(), st.integers(-2, 24))),
        st.tuples(st.just("readlines"), st.one_of(st.none(), st.integers(-1, 40))),
        st.tuples(st.just("iterate"), st.none()),
    ),
    min_size=1,
    max_size=6,
)
BODIES = st.lists(st.sampled_from([b"a", b"bc", b"\n", b"\r\n", b"xyz ", b"\xff\x00"]), max_size=16).map(b"".join)


def apply_op(stream: Any, name: str, arg: int | None) -> Any:
    if name == "iterate":
        return [line.decode("latin-1") for line in stream]
    if name == "readlines":
        return [line.decode("latin-1") for line in stream.readlines(arg)]
    return getattr(stream, name)(arg).decode("latin-1")


def input_ops_app(environ: Environ, start_response: Callable[..., Any]) -> Iterable[bytes]:
    """Runs the reads named in the X-Ops header on wsgi.input and answers what each returned."""
    results = [apply_op(environ["wsgi.input"], name, arg) for name, arg in json.loads(environ["HTTP_X_OPS"])]
    answer = json.dumps(results).encode()
    start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(answer)))])
    return [answer]


SAMPLE_BODY = b"first line\nsecond\r\n\n\xff\x00 no newline at the end"


@pytest.mark.stage(2, "framing and keep-alive")
def test_every_size_of_every_read_matches_io_bytesio(serve: Callable[..., Running]) -> None:
    """read(size), readline(size), readlines(hint) for every size around the body's, then read(None)."""
    running = serve(input_ops_app)
    sizes: list[int | None] = [None, *range(-2, len(SAMPLE_BODY) + 2)]
    cases = [[(name, size), ("read", None)] for name in ("read", "readline", "readlines") for size in sizes]
    wire = Wire(running)
    wire.send(b"".join(  # pipelined on one connection: each body ends where the next request starts
        b"POST / HTTP/1.1\r\nHost: test\r\nX-Ops: %s\r\nContent-Length: %d\r\n\r\n%s"
        % (json.dumps(ops).encode(), len(SAMPLE_BODY), SAMPLE_BODY) for ops in cases
    ))
    wrong = []
    for ops in cases:
        oracle = io.BytesIO(SAMPLE_BODY)
        expected = [apply_op(oracle, name, arg) for name, arg in ops]
        try:
            reply = wire.response()
        except (AssertionError, h11.ProtocolError) as exc:
            wrong.append(f"{ops[0][0]}({ops[0][1]}): the connection broke ({str(exc)[:120]}): a read of "
                         "the previous body went past its Content-Length into this request")
            break
        got = json.loads(reply.body) if reply.status == 200 else f"status {reply.status}"
        if got != expected:
            wrong.append(f"{ops[0][0]}({ops[0][1]}) then read(None): got {got}, io.BytesIO gives {expected}")
    assert not wrong, (
        f"wsgi.input must read like io.BytesIO({SAMPLE_BODY!r}) (a size of None or below 0: the rest; "
        "readline stops after b'\\n' or at the size; readlines(hint) stops once the lines read total "
        f"`hint` bytes, hint <= 0: no limit), and end at Content-Length. {len(wrong)} reads differ:\n  "
        + "\n  ".join(wrong[:8])
    )


@pytest.mark.stage(2, "framing and keep-alive")
def test_wsgi_input_reads_like_a_file_holding_only_the_body(serve: Callable[..., Running]) -> None:
    """read(n), readline(n), readlines(hint) and iteration, against io.BytesIO(body) as the oracle."""
    running = serve(input_ops_app)

    @settings(max_examples=50, deadline=None)
    @given(body=BODIES, ops=OPS)
    def reads_agree(body: bytes, ops: list[tuple[str, int | None]]) -> None:
        oracle = io.BytesIO(body)
        expected = [apply_op(oracle, name, arg) for name, arg in ops]
        wire = Wire(running)
        wire.send(
            b"POST / HTTP/1.1\r\nHost: test\r\nX-Ops: %s\r\nContent-Length: %d\r\n\r\n%s"
            % (json.dumps(ops).encode(), len(body), body)
            + b"GET /after HTTP/1.1\r\nHost: test\r\nX-Ops: []\r\n\r\n"
        )
        reply = wire.response()
        assert reply.status == 200, f"the app failed reading wsgi.input: {reply.body[:300]!r}{running.trouble()}"
        assert json.loads(reply.body) == expected, (
            f"for the body {body!r}, these reads of wsgi.input {ops} gave {json.loads(reply.body)}, but "
            f"io.BytesIO(body) gives {expected}. wsgi.input behaves like a file that holds exactly the "
            "body: a negative or None size means 'the rest', readline stops after b'\\n' or at the size, "
            "readlines(hint) stops once the lines read total `hint` bytes (hint <= 0 or None: no limit), "
            "and every read ends at Content-Length"
        )
        after = wire.response().status
        assert after == 200, (
            f"the request right after the body {body!r} got {after} after the reads {ops}: a read of "
            "wsgi.input went past Content-Length and took the start of the next request (io.BytesIO(body) "
            "holds the body and nothing more)"
        )
        wire.sock.close()

    reads_agree()


@pytest.mark.stage(4, "peers that misbehave")
@pytest.mark.parametrize("unread", [1 << 20, (1 << 20) + 1], ids=["1_MiB", "1_MiB_plus_1"])
def test_an_unread_body_is_skipped_up_to_1_mib_and_past_that_the_connection_closes(
    serve: Callable[..., Running], unread: int
) -> None:
    running = serve(path_app)
    sock = running.connect()
    upload = b"POST /upload HTTP/1.1\r\nHost: test\r\nContent-Length: %d\r\n\r\n" % unread

    def send() -> None:
        with contextlib.suppress(OSError):  # the server may close before it has read it all
            sock.sendall(upload + b"x" * unread + GET)

    sender = Background(send, name="upload")
    if unread > 1 << 20:
        raw = read_until_closed(running, sock, "after an upload of more than 1 MiB the app never read")
        assert raw.count(b"HTTP/1.1 ") <= 1, (
            f"{unread} bytes the app never read: more than 1 MiB is not worth reading just to keep the "
            f"connection; answer, then close it. The client got {raw.count(b'HTTP/1.1 ')} responses"
        )
    else:
        wire = Wire(running, sock)
        answers = [wire.response().body, wire.response().body]
        assert answers == [b"/upload", b"/"], (
            f"the app ignored a 1 MiB body; the server should skip it (up to 1 MiB is worth it to keep "
            f"the connection) and answer the next request; got {answers}"
        )
    sender.result(timeout=CLIENT_TIMEOUT)


@pytest.mark.stage(4, "peers that misbehave")
def test_stalled_and_silent_clients_do_not_block_others(serve: Callable[..., Running]) -> None:
    running = serve(echo_app)
    stalled_head = running.connect()
    stalled_head.sendall(b"GET / HTTP/1.1\r\nHost: te")  # and nothing more
    stalled_body = Wire(running)
    stalled_body.send(b"POST /slow HTTP/1.1\r\nHost: test\r\nContent-Length: 20\r\n\r\nonly ten b")
    running.connect()  # connects and never sends a byte
    try:
        other = requests.get(running.url + "/other", timeout=CLIENT_TIMEOUT)
    except requests.RequestException as exc:
        raise AssertionError(
            f"a client got no answer ({exc!r}) while others sat silent or in the middle of their requests "
            "(one inside the header section, one inside its body): read each request in its "
            f"connection's own thread, never in the accept loop{running.trouble()}"
        ) from None
    assert other.text == "/other"
    stalled_body.send(b"ytes more.")
    assert stalled_body.response().body == b"only ten bytes more.", "the stalled body, once complete, is answered"


@pytest.mark.stage(4, "peers that misbehave")
@pytest.mark.parametrize("where", ["request_line", "header_line", "header_count"])
def test_header_limits_hold_exactly_at_the_limit(serve: Callable[..., Running], where: str) -> None:
    """8190 bytes per line (counting its CRLF) and 100 header lines are fine; one more is refused."""
    running = serve(path_app)
    outcomes = []
    for extra in (0, 1):
        if where == "request_line":
            path = b"/" + b"a" * (8190 - len(b"GET  HTTP/1.1\r\n") - 1 + extra)
            head = b"GET %s HTTP/1.1\r\nHost: test\r\n\r\n" % path
        elif where == "header_line":
            head = b"GET / HTTP/1.1\r\nX-Big: " + b"a" * (8190 - len(b"X-Big: \r\n") + extra) + b"\r\nHost: t\r\n\r\n"
        else:
            head = b"GET / HTTP/1.1\r\n" + b"".join(b"X-H%d: v\r\n" % i for i in range(100 + extra)) + b"\r\n"
        sock = running.connect()
        sock.sendall(head + b"GET /next HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n")
        outcomes.append(status_of(read_until_closed(running, sock, f"after a {where.replace('_', ' ')} at the limit")))
    want = {"request_line": 414, "header_line": 431, "header_count": 431}[where]
    assert outcomes == [200, want], (
        f"at exactly the limit ({where.replace('_', ' ')}: a line of 8190 bytes with its CRLF, or 100 header "
        f"lines) the request is served; one more byte or line gets {want}. Got statuses {outcomes}"
    )
