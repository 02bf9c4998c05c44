"""Tests for sessions and CSRF: itsdangerous-compatible signing, cookie flags, a real HTTPS app."""

from __future__ import annotations

import datetime as dt
import hashlib
import ipaddress
import ssl
import string
import threading
from collections.abc import Iterator
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, make_server

import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from hypothesis import given, settings
from hypothesis import strategies as st
from itsdangerous import BadSignature, Signer

from dojo.testing import CompareSpy, spy_on_compare_digest

from . import sessions_csrf
from .sessions_csrf import COOKIE_NAME, SessionApp, session_cookie, sign_value, unsign_value

SECRET = b"server-side secret for signing session ids, 32+ bytes"
USERS = {"alice": "wonderland", "bob": "builder"}


def signer(secret: bytes = SECRET) -> Signer:
    """itsdangerous (Flask's signing library) set to plain HMAC-SHA256: the real peer."""
    return Signer(secret, key_derivation="none", digest_method=hashlib.sha256)


# --- signing -------------------------------------------------------------------------------------

VALUES = st.text(alphabet=string.ascii_letters + string.digits + "-_.~", max_size=60)


@settings(max_examples=100, deadline=None)
@given(value=VALUES)
def test_sign_value_matches_itsdangerous(value: str) -> None:
    assert sign_value(SECRET, value) == signer().sign(value).decode()
    assert unsign_value(SECRET, signer().sign(value).decode()) == value


def test_unsign_refuses_tampered_forged_and_unsigned_values() -> None:
    good = signer().sign("session-id-123").decode()
    _, signature = good.rsplit(".", 1)
    cases = {
        "another value, same signature": f"session-id-124.{signature}",
        "signed with another secret": signer(b"x" * 40).sign("session-id-123").decode(),
        "no signature at all": "session-id-123",
        "an empty signature": "session-id-123.",
        "a truncated signature": good[:-4],
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
def compare_spy(monkeypatch: pytest.MonkeyPatch) -> CompareSpy:
    spy = spy_on_compare_digest(monkeypatch, sessions_csrf)
    return spy


def test_the_signature_is_compared_in_constant_time(compare_spy: CompareSpy) -> None:
    forged = "session-id-123." + "A" * 43
    assert unsign_value(SECRET, forged) is None
    forms = {"A" * 43, ("A" * 43).encode()}
    assert any(a in forms or b in forms for a, b in compare_spy.calls), (
        "timing attack: the cookie's signature never went through hmac.compare_digest "
        f"(calls: {compare_spy.calls!r}); == leaks how much of a forged signature was right"
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


def test_session_cookie_sets_httponly_secure_samesite_and_path() -> None:
    header = session_cookie("abc.def")
    assert _morsel(header).value == "abc.def"
    check_flags(header)
    assert _morsel(header)["max-age"] == "", "no Max-Age: a session cookie lasts for the browser session"


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


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


class Site:
    """The learner's SessionApp served over HTTPS on 127.0.0.1, and clients that trust it."""

    def __init__(self, base: str, cert: Path) -> None:
        self.base = base
        self.cert = cert
        self.clients: list[requests.Session] = []

    def client(self) -> requests.Session:
        """A fresh browser: its own cookie jar, no proxies, trusting our certificate."""
        session = requests.Session()
        session.trust_env = False
        session.verify = str(self.cert)
        self.clients.append(session)
        return session

    def url(self, path: str) -> str:
        return self.base + path


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    cert, key = _self_signed(tmp_path)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server = make_server("127.0.0.1", 0, SessionApp(USERS, SECRET), handler_class=_QuietHandler)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                              daemon=True, name="https")
    thread.start()
    result = Site(f"https://127.0.0.1:{server.server_port}", cert)
    try:
        yield result
    finally:
        for client in result.clients:
            client.close()
        server.shutdown()
        server.server_close()
        thread.join(5)


def get_session(site: Site, browser: requests.Session) -> dict[str, Any]:
    response = browser.get(site.url("/session"), timeout=5)
    assert response.status_code == 200, (
        f"GET /session: expected 200, got {response.status_code} {response.text[:200]!r}"
    )
    body: dict[str, Any] = response.json()
    assert set(body) >= {"user", "csrf_token"}, f"GET /session must return user and csrf_token: {body}"
    return body


def login(site: Site, browser: requests.Session, user: str = "alice",
          password: str = "wonderland") -> requests.Response:
    token = get_session(site, browser)["csrf_token"]
    return browser.post(site.url("/login"), timeout=5,
                        data={"username": user, "password": password, "csrf_token": token})


def cookie_value(browser: requests.Session) -> str:
    value = browser.cookies.get(COOKIE_NAME)
    assert value, f"the browser holds no {COOKIE_NAME!r} cookie: did the app send Set-Cookie?"
    return str(value)


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


def test_a_wrong_password_is_refused(site: Site) -> None:
    browser = site.client()
    response = login(site, browser, password="wonderlanD")
    assert response.status_code == 401, f"wrong password: expected 401, got {response.status_code}"
    assert get_session(site, browser)["user"] is None


@pytest.mark.parametrize("token", [None, "", "forged-token"], ids=["missing", "empty", "wrong"])
def test_login_needs_the_csrf_token(site: Site, token: str | None) -> None:
    """Login CSRF: otherwise a hostile page logs the victim into the attacker's account."""
    browser = site.client()
    get_session(site, browser)
    form = {"username": "alice", "password": "wonderland"}
    if token is not None:
        form["csrf_token"] = token
    response = browser.post(site.url("/login"), data=form, timeout=5)
    assert response.status_code == 403, (
        f"login with a {token!r} CSRF token: expected 403, got {response.status_code}; a missing "
        "token must fail like a wrong one"
    )
    assert get_session(site, browser)["user"] is None


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
    seen_by_attacker = get_session(site, attacker)
    assert seen_by_attacker["user"] is None, (
        f"session fixation: the pre-login id now belongs to {seen_by_attacker['user']!r}; delete "
        "the old session when you rotate"
    )
    assert get_session(site, victim)["csrf_token"] != planted_state["csrf_token"], (
        "the CSRF token must change on login too: the attacker knew the old one"
    )


@pytest.mark.parametrize("token", [None, "", "forged-token"], ids=["missing", "empty", "wrong"])
def test_a_state_change_without_the_right_csrf_token_is_refused(
    site: Site, token: str | None
) -> None:
    """A cross-site form: the browser sends the cookie, but the page cannot know the token."""
    browser = site.client()
    assert login(site, browser).status_code == 200
    headers = {} if token is None else {"X-CSRF-Token": token}
    response = browser.post(site.url("/transfer"), headers=headers, timeout=5)
    assert response.status_code == 403, (
        f"POST /transfer with the session cookie and a {token!r} CSRF token: expected 403, got "
        f"{response.status_code}. A missing token is the cross-site case: refuse it"
    )


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


def test_a_transfer_without_login_is_unauthorized(site: Site) -> None:
    browser = site.client()
    token = get_session(site, browser)["csrf_token"]
    response = browser.post(site.url("/transfer"), headers={"X-CSRF-Token": token}, timeout=5)
    assert response.status_code == 401, f"anonymous transfer: expected 401, got {response.status_code}"


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
        state = get_session(site, intruder)
        assert state["user"] is None, (
            f"{what}: the cookie {value!r} was accepted as {state['user']!r}'s session; verify "
            "the signature (unsign_value) and look the id up in the server-side store"
        )


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
    assert get_session(site, thief)["user"] is None, (
        "the cookie from before logout still opens the session: logout must delete the session "
        "on the server-side store, not only ask the browser to forget the cookie"
    )
