"""Tests for sessions and CSRF: itsdangerous-compatible signing, cookie flags, a real HTTPS app."""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import ipaddress
import json
import ssl
import string
from collections.abc import Iterator
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any
from urllib.parse import urlencode
from wsgiref.util import setup_testing_defaults

import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from hypothesis import given, settings
from hypothesis import strategies as st
from itsdangerous import BadSignature, Signer

from dojo.constant_time import ConstantTimeOracle
from dojo.testing import local_http, serve_wsgi

from . import sessions_csrf
from .sessions_csrf import COOKIE_NAME, SessionApp, session_cookie, sign_value, unsign_value

SECRET = b"server-side secret for signing session ids, 32+ bytes"
USERS = {"alice": "wonderland", "bob": "builder"}
MAX_BODY = 64 * 1024  # the README's limit on a POST body


def signer(secret: bytes = SECRET) -> Signer:
    """itsdangerous (Flask's signing library) set to plain HMAC-SHA256: the real peer."""
    return Signer(secret, key_derivation="none", digest_method=hashlib.sha256)


# --- signing -------------------------------------------------------------------------------------

VALUES = st.text(alphabet=string.ascii_letters + string.digits + "-_.~", max_size=60)


@pytest.mark.stage(1, "signed cookies")
@settings(max_examples=100, deadline=None)
@given(value=VALUES)
def test_sign_value_matches_itsdangerous(value: str) -> None:
    assert sign_value(SECRET, value) == signer().sign(value).decode()
    assert unsign_value(SECRET, signer().sign(value).decode()) == value


@pytest.mark.stage(1, "signed cookies")
def test_unsign_refuses_tampered_forged_and_unsigned_values() -> None:
    good = signer().sign("session-id-123").decode()
    _, signature = good.rsplit(".", 1)
    cases = {
        "another value, same signature": f"session-id-124.{signature}",
        "signed with another secret": signer(b"x" * 40).sign("session-id-123").decode(),
        "no signature at all": "session-id-123",
        "an empty signature": "session-id-123.",
        "a truncated signature": good[:-4],
        "the signature in swapped case": f"session-id-123.{signature.swapcase()}",
        "a signature of the value with a dot more": f"session-id-123..{signature}",
    }
    for what, cookie in cases.items():
        with pytest.raises(BadSignature):
            signer().unsign(cookie)  # the peer agrees these are forgeries
        got = unsign_value(SECRET, cookie)
        assert got is None, (
            f"{what}: unsign_value({cookie!r}) returned {got!r}; a forged cookie must give None, "
            "or anyone can pick their own session id"
        )




@pytest.fixture
def oracle(monkeypatch: pytest.MonkeyPatch) -> ConstantTimeOracle:
    return ConstantTimeOracle(monkeypatch, sessions_csrf)


@pytest.mark.stage(5, "constant time")
def test_the_signature_verdict_is_a_constant_time_comparison(oracle: ConstantTimeOracle) -> None:
    forged = "session-id-123." + "A" * 43  # as long as a real signature, wrong everywhere
    oracle.answer = True  # "equal"
    got = unsign_value(SECRET, forged)
    assert oracle.calls, (
        "timing attack: the cookie's signature never went through a constant-time comparison "
        "(hmac.compare_digest, secrets.compare_digest or cryptography's HMAC.verify); == leaks "
        "how much of a forged signature was right"
    )
    assert got == "session-id-123", (
        f"the constant-time comparison answered 'equal' (the test forced it), yet unsign_value "
        f"returned {got!r}: something else decides too (an == beside it?). Compare the "
        "signatures (as text, as raw digests, or the whole signed value: your choice) in "
        "constant time, and let that comparison alone decide"
    )
    oracle.answer = False  # "different", for a genuine signature
    genuine = signer().sign("session-id-123").decode()
    got = unsign_value(SECRET, genuine)
    assert got is None, (
        f"the constant-time comparison answered 'different' (the test forced it) for a genuine "
        f"signature, yet unsign_value returned {got!r}: the verdict comes from somewhere else"
    )


# --- the cookie's attributes ----------------------------------------------------------------------


def _morsel(set_cookie: str) -> Any:
    jar: SimpleCookie = SimpleCookie()
    jar.load(set_cookie)
    assert COOKIE_NAME in jar, f"expected a cookie named {COOKIE_NAME!r} in {set_cookie!r}"
    return jar[COOKIE_NAME]


def check_flags(set_cookie: str) -> None:
    """The session cookie's protective attributes, parsed by the standard library's parser."""
    morsel = _morsel(set_cookie)
    assert morsel["httponly"], (
        f"no HttpOnly in {set_cookie!r}: JavaScript (any XSS) could read the session id"
    )
    assert morsel["secure"], f"no Secure in {set_cookie!r}: the browser would send it over HTTP"
    assert morsel["samesite"].lower() == "lax", (
        f"SameSite is {morsel['samesite']!r} in {set_cookie!r}, expected Lax: the browser then "
        "leaves the cookie off cross-site POSTs"
    )
    assert morsel["path"] == "/", f"Path is {morsel['path']!r}, expected / (the whole site)"


@pytest.mark.stage(1, "signed cookies")
def test_session_cookie_sets_httponly_secure_samesite_and_path() -> None:
    header = session_cookie("abc.def")
    assert _morsel(header).value == "abc.def"
    check_flags(header)
    assert _morsel(header)["max-age"] == "", "no Max-Age: a session cookie lasts for the browser session"


@pytest.mark.stage(1, "signed cookies")
def test_session_cookie_with_max_age_zero_deletes_the_cookie() -> None:
    header = session_cookie("", max_age=0)
    check_flags(header)
    assert _morsel(header)["max-age"] == "0", f"expected Max-Age=0 in {header!r}"


# --- the app, over real HTTPS, with a real requests.Session --------------------------------------


def _self_signed(folder: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 (its own CA) and its key, written to `folder`."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1)).not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                       critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


class Site:
    """The learner's SessionApp served over HTTPS on 127.0.0.1, and clients that trust it."""

    def __init__(self, base: str, cert: Path) -> None:
        self.base = base
        self.cert = cert
        self.clients: list[requests.Session] = []

    def client(self) -> requests.Session:
        """A fresh browser: its own cookie jar, no proxies, trusting our certificate."""
        session = local_http()
        session.verify = str(self.cert)
        self.clients.append(session)
        return session

    def url(self, path: str) -> str:
        return self.base + path


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return _self_signed(tmp_path_factory.mktemp("tls"))


@pytest.fixture
def site(certificate: tuple[Path, Path]) -> Iterator[Site]:
    cert, key = certificate
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    with serve_wsgi(SessionApp(USERS, SECRET), context) as port:
        result = Site(f"https://127.0.0.1:{port}", cert)
        try:
            yield result
        finally:
            for client in result.clients:
                client.close()


def get_session(site: Site, browser: requests.Session) -> dict[str, Any]:
    response = browser.get(site.url("/session"), timeout=5)
    assert response.status_code == 200, (
        f"GET /session: expected 200, got {response.status_code} {response.text[:200]!r}"
    )
    assert response.headers.get("Content-Type", "").startswith("application/json"), (
        f"responses are JSON: Content-Type application/json, got {response.headers.get('Content-Type')!r}")
    body: dict[str, Any] = response.json()
    assert set(body) >= {"user", "csrf_token"}, f"GET /session must return user and csrf_token: {body}"
    return body


def unlike(token: str) -> str:
    """A token as long as `token`, from the same alphabet, different in every character."""
    return "".join("A" if c != "A" else "B" for c in token)


def login(site: Site, browser: requests.Session, user: str = "alice",
          password: str = "wonderland") -> requests.Response:
    token = get_session(site, browser)["csrf_token"]
    return browser.post(site.url("/login"), timeout=5,
                        data={"username": user, "password": password, "csrf_token": token})


def cookie_value(browser: requests.Session) -> str:
    value = browser.cookies.get(COOKIE_NAME)
    assert value, f"the browser holds no {COOKIE_NAME!r} cookie: did the app send Set-Cookie?"
    return str(value)


@pytest.mark.stage(2, "login and transfer")
def test_a_first_visit_gets_a_signed_session_cookie_with_the_right_flags(site: Site) -> None:
    browser = site.client()
    response = browser.get(site.url("/session"), timeout=5)
    assert response.status_code == 200, f"GET /session: got {response.status_code}"
    assert response.json()["user"] is None
    assert len(response.json()["csrf_token"]) >= 32, "a CSRF token needs 128+ random bits"
    header = response.headers.get("Set-Cookie")
    assert header, "a first visit must get a session cookie (Set-Cookie)"
    check_flags(header)
    try:
        signer().unsign(_morsel(header).value)
    except BadSignature:
        pytest.fail(f"the cookie {_morsel(header).value!r} is not sign_value(secret, session id)")


@pytest.mark.stage(2, "login and transfer")
def test_a_user_logs_in_and_makes_a_transfer(site: Site) -> None:
    browser = site.client()
    response = login(site, browser)
    assert response.status_code == 200, f"login: got {response.status_code} {response.text[:200]!r}"
    assert response.json()["user"] == "alice"
    state = get_session(site, browser)
    assert state["user"] == "alice", "after login, GET /session must show the user"
    response = browser.post(site.url("/transfer"), headers={"X-CSRF-Token": state["csrf_token"]},
                            timeout=5)
    assert response.status_code == 200, f"transfer: got {response.status_code} {response.text!r}"
    assert response.json().get("ok") is True, f"a transfer answers {{\"ok\": true}}, got {response.json()}"


@pytest.mark.stage(2, "login and transfer")
@pytest.mark.parametrize(("user", "password"), [("alice", "wonderlanD"), ("alice", ""),
                                              ("mallory", "wonderland"), ("", "")])
def test_a_wrong_password_or_an_unknown_user_is_refused(site: Site, user: str, password: str) -> None:
    browser = site.client()
    response = login(site, browser, user, password)
    assert response.status_code == 401, (
        f"login as {user!r} / {password!r}: expected 401, got {response.status_code}")
    assert get_session(site, browser)["user"] is None


@pytest.mark.stage(5, "constant time")
def test_the_login_password_verdict_is_a_constant_time_comparison(
        site: Site, oracle: ConstantTimeOracle) -> None:
    browser = site.client()
    token = get_session(site, browser)["csrf_token"]
    oracle.answer = True  # every constant-time comparison answers "equal"
    response = browser.post(site.url("/login"), timeout=5, data={
        "username": "alice", "password": "wonderlanX", "csrf_token": token})
    assert response.status_code == 200, (
        f"with the constant-time comparison answering 'equal' (the test forced it), a wrong "
        f"password got {response.status_code}: the password is decided by == (or something "
        "beside a constant-time comparison), and the time to refuse leaks how much was right")
    other = site.client()
    token = get_session(site, other)["csrf_token"]
    response = other.post(site.url("/login"), timeout=5, data={
        "username": "mallory", "password": "whatever the dummy is", "csrf_token": token})
    assert response.status_code == 401, (
        f"the unknown user 'mallory' got {response.status_code} when the comparison against the "
        "dummy answered 'equal' (the test forced it): whoever sends the dummy password logs in. "
        "Compare against a dummy for equal work, but an unknown user never gets in")


TOKENS = ["missing", "empty", "wrong", "another session's"]


@pytest.mark.stage(3, "forgery and fixation")
@pytest.mark.parametrize("kind", TOKENS)
@pytest.mark.parametrize("route", ["/login", "/transfer", "/logout"])
def test_every_state_change_needs_this_sessions_csrf_token(site: Site, route: str,
                                                           kind: str) -> None:
    """A cross-site form: the browser sends the cookie, but the page cannot know the token.

    Login CSRF logs the victim into the attacker's account; a forced logout ends the victim's
    session; both are state changes like a transfer."""
    browser = site.client()
    if route == "/login":
        real = get_session(site, browser)["csrf_token"]
    else:
        assert login(site, browser).status_code == 200
        real = get_session(site, browser)["csrf_token"]
    token = {"missing": None, "empty": "", "wrong": unlike(real)}.get(kind)
    if kind == "another session's":
        mallory = site.client()
        assert login(site, mallory, "bob", "builder").status_code == 200
        token = get_session(site, mallory)["csrf_token"]
    form = {"username": "alice", "password": "wonderland"} if route == "/login" else {}
    headers = {}
    if token is not None:
        if route == "/login":
            form["csrf_token"] = token
        else:
            headers["X-CSRF-Token"] = token
    response = browser.post(site.url(route), data=form, headers=headers, timeout=5)
    assert response.status_code == 403, (
        f"POST {route} with the session cookie and {kind} CSRF token ({token!r}): expected 403, "
        f"got {response.status_code}. Check the token on every state-changing route, /logout "
        "and /login included; a missing token is the cross-site case, not an excuse to skip "
        "the check, and the token must be this session's own"
    )
    after = get_session(site, browser)["user"]
    expected_user = None if route == "/login" else "alice"
    assert after == expected_user, (
        f"the refused POST {route} changed the session anyway: user is now {after!r}, expected "
        f"{expected_user!r}; refuse before acting"
    )


@pytest.mark.stage(2, "login and transfer")
@pytest.mark.parametrize("route", ["/login", "/transfer", "/logout"])
@pytest.mark.parametrize("where", ["header", "form field"])
def test_the_csrf_token_is_read_from_the_header_or_the_form(site: Site, route: str,
                                                            where: str) -> None:
    browser = site.client()
    if route != "/login":
        assert login(site, browser).status_code == 200
    token = get_session(site, browser)["csrf_token"]
    form = {"username": "alice", "password": "wonderland"} if route == "/login" else {}
    headers = {"X-CSRF-Token": token} if where == "header" else {}
    if where == "form field":
        form["csrf_token"] = token
    response = browser.post(site.url(route), data=form, headers=headers, timeout=5)
    assert response.status_code == 200, (
        f"POST {route} with the right token in the {where}: expected 200, got "
        f"{response.status_code} {response.text[:200]!r}. On every POST the token comes from "
        "the X-CSRF-Token header, else from the csrf_token form field (HTML forms cannot set "
        "headers)"
    )


@pytest.mark.stage(5, "constant time")
def test_the_csrf_token_verdict_is_a_constant_time_comparison(
        site: Site, oracle: ConstantTimeOracle) -> None:
    browser = site.client()
    assert login(site, browser).status_code == 200
    wrong = unlike(get_session(site, browser)["csrf_token"])
    oracle.answer = True  # every constant-time comparison answers "equal"
    response = browser.post(site.url("/transfer"), headers={"X-CSRF-Token": wrong}, timeout=5)
    assert response.status_code == 200, (
        f"with the constant-time comparison answering 'equal' (the test forced it), a wrong "
        f"CSRF token got {response.status_code}: the CSRF token is decided by == (or something "
        "beside a constant-time comparison). The token is a secret like a password: compare "
        "it with hmac.compare_digest, or the time to refuse tells how much of a guess was right"
    )


@pytest.mark.stage(3, "forgery and fixation")
def test_login_rotates_the_session_against_fixation(site: Site) -> None:
    """The attacker plants a session id in the victim's browser before the victim logs in."""
    attacker = site.client()
    planted_state = get_session(site, attacker)
    planted = cookie_value(attacker)
    victim = site.client()
    victim.cookies.set(COOKIE_NAME, planted, domain="127.0.0.1", path="/")
    response = victim.post(site.url("/login"), timeout=5, data={
        "username": "alice", "password": "wonderland", "csrf_token": planted_state["csrf_token"]})
    assert response.status_code == 200, f"login: got {response.status_code} {response.text!r}"
    assert cookie_value(victim) != planted, (
        "session fixation: after login the session id is the one from before login; the "
        "attacker who planted it is now logged in as the victim. Issue a new id on login"
    )
    response = attacker.get(site.url("/session"), timeout=5)
    seen_by_attacker = response.json()
    assert seen_by_attacker["user"] is None, (
        f"session fixation: the pre-login id now belongs to {seen_by_attacker['user']!r}; delete "
        "the old session when you rotate"
    )
    assert response.headers.get("Set-Cookie") and seen_by_attacker["csrf_token"] != planted_state[
        "csrf_token"], (
        "after the victim's login the planted id still names a session (the server sent no new "
        "cookie, and the attacker's old CSRF token still works): rotation means a new id and "
        "the old id deleted from the store"
    )
    assert get_session(site, victim)["csrf_token"] != planted_state["csrf_token"], (
        "the CSRF token must change on login too: the attacker knew the old one"
    )


@pytest.mark.stage(3, "forgery and fixation")
def test_a_csrf_token_is_bound_to_its_session(site: Site) -> None:
    mallory = site.client()
    assert login(site, mallory, "bob", "builder").status_code == 200
    mallorys_token = get_session(site, mallory)["csrf_token"]
    victim = site.client()
    assert login(site, victim).status_code == 200
    response = victim.post(site.url("/transfer"), headers={"X-CSRF-Token": mallorys_token},
                           timeout=5)
    assert response.status_code == 403, (
        f"the victim's session accepted another session's CSRF token ({response.status_code}): "
        "the token must be bound to the session, or the attacker uses their own"
    )


@pytest.mark.stage(2, "login and transfer")
def test_a_transfer_without_login_is_unauthorized(site: Site) -> None:
    browser = site.client()
    token = get_session(site, browser)["csrf_token"]
    response = browser.post(site.url("/transfer"), headers={"X-CSRF-Token": token}, timeout=5)
    assert response.status_code == 401, f"anonymous transfer: expected 401, got {response.status_code}"
    response = browser.post(site.url("/transfer"), timeout=5)
    assert response.status_code == 401, (
        f"anonymous transfer without a CSRF token: expected 401 (login is checked before the "
        f"token), got {response.status_code}")


@pytest.mark.stage(3, "forgery and fixation")
def test_only_post_changes_state(site: Site) -> None:
    browser = site.client()
    assert login(site, browser).status_code == 200
    token = get_session(site, browser)["csrf_token"]
    for method, path in [("GET", "/logout"), ("GET", "/transfer"), ("PUT", "/logout"),
                         ("DELETE", "/transfer"), ("GET", "/login")]:
        response = browser.request(method, site.url(path), headers={"X-CSRF-Token": token},
                                   timeout=5)
        assert response.status_code in (404, 405), (
            f"{method} {path} (with the right token, even): expected 404 (or 405), got "
            f"{response.status_code}. Only POST changes state: a GET is what an <img> tag on "
            "any site sends, and SameSite=Lax attaches the cookie to top-level GETs")
        assert get_session(site, browser)["user"] == "alice", f"{method} {path} logged the user out"
    for method in ("GET", "POST"):
        response = browser.request(method, site.url("/nowhere"), headers={"X-CSRF-Token": token},
                                   timeout=5)
        assert response.status_code == 404, f"{method} /nowhere: expected 404, got {response.status_code}"


@pytest.mark.stage(3, "forgery and fixation")
def test_a_tampered_or_forged_cookie_is_no_session(site: Site) -> None:
    browser = site.client()
    assert login(site, browser).status_code == 200
    sid, signature = cookie_value(browser).rsplit(".", 1)
    forgeries = {
        "session id changed": f"{sid[:-1]}{'A' if sid[-1] != 'A' else 'B'}.{signature}",
        "signed with a guessed secret": signer(b"secret" * 6).sign(sid).decode(),
        "signature stripped": sid,
        "a valid signature of an id never issued": signer().sign("made-up-id").decode(),
    }
    for what, value in forgeries.items():
        intruder = site.client()
        intruder.cookies.set(COOKIE_NAME, value, domain="127.0.0.1", path="/")
        response = intruder.get(site.url("/session"), timeout=5)
        state = response.json()
        assert state["user"] is None, (
            f"{what}: the cookie {value!r} was accepted as {state['user']!r}'s session; verify "
            "the signature (unsign_value) and look the id up in the server-side store"
        )
        assert response.headers.get("Set-Cookie"), (
            f"{what}: a cookie that is no session counts as no cookie: the response must start "
            "a new anonymous session and send its Set-Cookie"
        )


@pytest.mark.stage(2, "login and transfer")
def test_logout_ends_the_session_on_the_server(site: Site) -> None:
    browser = site.client()
    assert login(site, browser).status_code == 200
    stolen = cookie_value(browser)
    token = get_session(site, browser)["csrf_token"]
    response = browser.post(site.url("/logout"), headers={"X-CSRF-Token": token}, timeout=5)
    assert response.status_code == 200, f"logout: got {response.status_code} {response.text!r}"
    deletion = response.headers.get("Set-Cookie", "")
    assert deletion and _morsel(deletion)["max-age"] == "0", (
        f"logout must delete the cookie with Max-Age=0, got Set-Cookie: {deletion!r}"
    )
    assert COOKIE_NAME not in browser.cookies, "the browser still holds the session cookie"
    thief = site.client()
    thief.cookies.set(COOKIE_NAME, stolen, domain="127.0.0.1", path="/")
    response = thief.get(site.url("/session"), timeout=5)
    assert response.json()["user"] is None, (
        "the cookie from before logout still opens the session: logout must delete the session "
        "on the server-side store, not only ask the browser to forget the cookie"
    )
    assert response.headers.get("Set-Cookie") and response.json()["csrf_token"] != token, (
        "the cookie from before logout still names a session (no new cookie was issued, and its "
        "CSRF token still works): logout deletes the session from the store, it does not just "
        "set its user to None"
    )


# --- the body of a POST, through the WSGI interface directly ------------------------------------


class Body(io.BytesIO):
    """wsgi.input that remembers the largest read asked of it."""

    def __init__(self, data: bytes) -> None:
        super().__init__(data)
        self.asked: list[int | None] = []

    def read(self, size: int | None = -1) -> bytes:
        self.asked.append(size)
        return super().read(size)


class Direct:
    """One browser talking to SessionApp through WSGI calls, without a server in between."""

    def __init__(self) -> None:
        self.app = SessionApp(USERS, SECRET)
        self.cookie = ""

    def call(self, method: str, path: str, body: bytes = b"", **environ: Any) -> tuple[str, Any]:
        env: dict[str, Any] = {"REQUEST_METHOD": method, "PATH_INFO": path,
                               "CONTENT_LENGTH": str(len(body)), "wsgi.input": Body(body),
                               "CONTENT_TYPE": "application/x-www-form-urlencoded"}
        if self.cookie:
            env["HTTP_COOKIE"] = f"{COOKIE_NAME}={self.cookie}"
        env.update(environ)
        setup_testing_defaults(env)
        answer: dict[str, Any] = {}

        def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            answer["status"], answer["headers"] = status, headers
            return lambda data: None

        data = b"".join(self.app(env, start_response))
        for name, value in answer["headers"]:
            if name.lower() == "set-cookie":
                self.cookie = _morsel(value).value
        self.input = env["wsgi.input"]
        return answer["status"], data

    def token(self) -> str:
        status, data = self.call("GET", "/session")
        assert status.startswith("200"), f"GET /session: {status}"
        return str(json.loads(data)["csrf_token"])


def login_form(token: str, size: int) -> bytes:
    """A login form of exactly `size` bytes (a padding field at the end)."""
    form = urlencode({"username": "alice", "password": "wonderland", "csrf_token": token})
    form += "&pad="
    return (form + "x" * (size - len(form))).encode()


@pytest.mark.stage(4, "request bodies")
def test_a_body_of_exactly_max_body_bytes_is_read() -> None:
    browser = Direct()
    body = login_form(browser.token(), MAX_BODY)
    status, data = browser.call("POST", "/login", body)
    assert status.startswith("200"), (
        f"a login form of exactly {MAX_BODY} bytes (MAX_BODY, 64 KiB) got {status} {data[:100]!r}: "
        "the limit is inclusive")


@pytest.mark.stage(4, "request bodies")
def test_a_body_over_max_body_is_refused_unread() -> None:
    browser = Direct()
    body = login_form(browser.token(), MAX_BODY + 1)
    status, _ = browser.call("POST", "/login", body)
    assert status.startswith("413"), (
        f"a login form of {MAX_BODY + 1} bytes got {status}: a body over MAX_BODY is refused "
        "with 413 (Content Too Large), or one request makes the server buffer anything")
    status, _ = browser.call("POST", "/login", b"username=alice", CONTENT_LENGTH=str(10**12))
    asked = browser.input.asked
    assert status.startswith("413") and all(n is not None and 0 <= n <= MAX_BODY for n in asked), (
        f"Content-Length 10**12: got {status}, reads asked of wsgi.input: {asked}. Refuse before "
        "reading, and never read more than MAX_BODY (nor read(-1): on a socket that waits for the "
        "client to close)")


@pytest.mark.stage(4, "request bodies")
@pytest.mark.parametrize("length", ["abc", "-1", "1e3", "\u00b2", " "])
def test_a_content_length_that_is_not_a_number_is_a_bad_request(length: str) -> None:
    browser = Direct()
    token = browser.token()
    status, _ = browser.call("POST", "/logout", b"", CONTENT_LENGTH=length,
                             HTTP_X_CSRF_TOKEN=token)
    assert status.startswith("400"), (
        f"Content-Length {length!r}: expected 400 Bad Request, got {status} (int() of it raises, "
        "or reads a negative size: never a 500, never read(-1))")


@pytest.mark.stage(4, "request bodies")
def test_a_post_without_a_body_is_an_empty_form() -> None:
    browser = Direct()
    token = browser.token()
    status, data = browser.call("POST", "/logout", b"", CONTENT_LENGTH="", HTTP_X_CSRF_TOKEN=token)
    assert status.startswith("200"), (
        f"POST /logout with no Content-Length and the token in the header: expected 200, got "
        f"{status} {data[:100]!r}; no Content-Length means no body")
    assert all(n is not None and n >= 0 for n in browser.input.asked), (
        f"reads asked of wsgi.input: {browser.input.asked}; read(-1) or read() on a socket waits "
        "for the client to close")
