"""Server-side sessions in signed cookies, rotated on login, with a synchronizer CSRF token."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from collections.abc import Callable, Iterable, Mapping
from http.cookies import CookieError, SimpleCookie
from typing import Any
from urllib.parse import parse_qs

StartResponse = Callable[..., Any]
COOKIE_NAME = "session"
CSRF_HEADER = "X-CSRF-Token"  # WSGI: environ["HTTP_X_CSRF_TOKEN"]
CSRF_FIELD = "csrf_token"  # the form field, for HTML forms that cannot set headers
MAX_BODY = 64 * 1024  # bytes of a POST body, at most; more is 413
TOKEN_BYTES = 32  # random bytes in a session id and in a CSRF token: 256 bits
# Compared against when the user-id is unknown, so both cost the same work.
_DUMMY_PASSWORD = b"compared against when the user-id is unknown"

Session = dict[str, Any]


def _signature(secret: bytes, value: str) -> str:
    mac = hmac.new(secret, value.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac).rstrip(b"=").decode("ascii")


def sign_value(secret: bytes, value: str) -> str:
    """`value` + "." + base64url(HMAC-SHA256(secret, value)) without padding.

    The format of itsdangerous.Signer(secret, key_derivation="none", digest_method=sha256).
    """
    return f"{value}.{_signature(secret, value)}"


def unsign_value(secret: bytes, signed: str) -> str | None:
    """The value if `signed` carries a valid signature (split on the last "."), else None.

    Compare the signatures in constant time.
    """
    value, dot, signature = signed.rpartition(".")
    if not dot:
        return None  # no signature at all is a forgery, not a legacy cookie
    # compare_digest: with ==, the time to reject would say how much of a guess was right.
    if not hmac.compare_digest(_signature(secret, value).encode(), signature.encode()):
        return None
    return value


def session_cookie(value: str, *, max_age: int | None = None) -> str:
    """The Set-Cookie header value for the session cookie.

    "session=<value>; Path=/; HttpOnly; Secure; SameSite=Lax", plus "; Max-Age=<n>" when
    `max_age` is given (Max-Age=0 deletes the cookie).
    """
    # HttpOnly: script (an XSS) cannot read it. Secure: never sent over plain HTTP.
    # SameSite=Lax: not sent on cross-site POSTs, a second line of defence against CSRF.
    cookie = f"{COOKIE_NAME}={value}; Path=/; HttpOnly; Secure; SameSite=Lax"
    return cookie if max_age is None else f"{cookie}; Max-Age={max_age}"


class SessionApp:
    """A WSGI app with server-side sessions and CSRF protection. All responses are JSON.

    | request                            | needs                    | response                       |
    |------------------------------------|--------------------------|--------------------------------|
    | GET /session                       | -                        | 200 {"user", "csrf_token"}     |
    | POST /login (form: username,       | session + CSRF token     | 200 {"user"}; 401 bad password |
    |   password, csrf_token)            |                          |                                |
    | POST /transfer                     | logged in + CSRF token   | 200 {"ok": true}               |
    | POST /logout                       | session + CSRF token     | 200, session deleted           |
    | any other method or path           | -                        | 404                            |

    - A request without a valid session cookie gets a new anonymous session (user None, a
      fresh CSRF token) and a Set-Cookie; GET /session is how a client obtains its token.
      Session ids and CSRF tokens: at least 128 random bits each, from `secrets`.
    - The cookie holds sign_value(secret, session id); a cookie whose signature fails, or whose
      id is not in the store, counts as no cookie.
    - CSRF token, on every POST: read from the X-CSRF-Token header, else the csrf_token form
      field; it must equal the token of this session (constant-time). Missing or wrong: 403.
    - /transfer without a logged-in session: 401 (checked before the CSRF token).
    - Login compares the password in constant time, with the same work for an unknown user,
      who never gets in (401).
    - A successful login rotates the session: a new id and a new CSRF token, the old id deleted.
    - Logout deletes the session from the store and sends the cookie with Max-Age=0.
    - A POST body (url-encoded form) longer than MAX_BODY bytes: 413, unread; a Content-Length
      that is not a number: 400.
    """

    def __init__(self, users: Mapping[str, str], secret: bytes) -> None:
        self.users = users
        self.secret = secret
        # Server-side: the cookie carries only an id, so logout and rotation really end a
        # session (a self-contained signed cookie stays valid until it expires). Every use of
        # the store below is one dict operation, atomic under the GIL (and locked per object in
        # free-threaded builds), so a threaded server needs no lock of ours; a store with
        # read-modify-write steps, or one in Redis, would.
        self._sessions: dict[str, Session] = {}

    def _new_session(self, user: str | None) -> tuple[str, Session]:
        # 256 random bits each: unguessable ids and tokens, from `secrets`.
        sid = secrets.token_urlsafe(TOKEN_BYTES)
        session: Session = {"user": user, "csrf": secrets.token_urlsafe(TOKEN_BYTES)}
        self._sessions[sid] = session
        return sid, session

    def _load(self, environ: dict[str, Any]) -> tuple[str, Session] | None:
        try:
            cookie = SimpleCookie(environ.get("HTTP_COOKIE", ""))
        except CookieError:
            return None
        morsel = cookie.get(COOKIE_NAME)
        sid = unsign_value(self.secret, morsel.value) if morsel else None
        session = self._sessions.get(sid) if sid else None
        return (sid, session) if sid and session else None

    def _csrf_ok(self, session: Session, environ: dict[str, Any], form: dict[str, str]) -> bool:
        # The synchronizer pattern: a cross-site page makes the browser send our cookie, but it
        # cannot read our pages, so it cannot know this token. A missing token is a failure.
        sent = environ.get("HTTP_X_CSRF_TOKEN") or form.get(CSRF_FIELD) or ""
        return hmac.compare_digest(sent.encode(), session["csrf"].encode())

    def _password_ok(self, user: str, password: str) -> bool:
        expected = self.users.get(user)
        # The same comparison for an unknown user (no enumeration by timing); the verdict also
        # needs the user to exist, so whoever sends the dummy itself stays out.
        stored = expected.encode() if expected is not None else _DUMMY_PASSWORD
        return hmac.compare_digest(password.encode(), stored) and expected is not None

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        method, path = environ.get("REQUEST_METHOD", "GET"), environ.get("PATH_INFO", "/")
        headers: list[tuple[str, str]] = []
        loaded = self._load(environ)
        if loaded is None:
            sid, session = self._new_session(None)
            headers.append(("Set-Cookie", session_cookie(sign_value(self.secret, sid))))
        else:
            sid, session = loaded

        def reply(status: str, body: dict[str, Any]) -> Iterable[bytes]:
            data = json.dumps(body).encode()
            start_response(status, [("Content-Type", "application/json"),
                                    ("Content-Length", str(len(data))), *headers])
            return [data]

        if (method, path) == ("GET", "/session"):
            return reply("200 OK", {"user": session["user"], "csrf_token": session["csrf"]})
        # Only POST changes state: a GET /logout would be a CSRF through any <img> tag, and
        # SameSite=Lax still sends the cookie on a top-level GET.
        if method != "POST" or path not in ("/login", "/transfer", "/logout"):
            return reply("404 Not Found", {"error": "not found"})
        form = _read_form(environ)
        if isinstance(form, str):
            return reply(form, {"error": "bad or oversized body"})
        if path == "/transfer" and session["user"] is None:
            return reply("401 Unauthorized", {"error": "log in first"})
        if not self._csrf_ok(session, environ, form):
            return reply("403 Forbidden", {"error": "missing or wrong CSRF token"})
        if path == "/transfer":
            return reply("200 OK", {"ok": True, "user": session["user"]})
        if path == "/logout":
            self._sessions.pop(sid, None)  # the old cookie is now worthless, even if replayed
            headers[:] = [("Set-Cookie", session_cookie("", max_age=0))]
            return reply("200 OK", {"user": None})
        user = form.get("username", "")
        if not self._password_ok(user, form.get("password", "")):
            return reply("401 Unauthorized", {"error": "wrong username or password"})
        # Rotate: a session id planted before login (session fixation) must not become a
        # logged-in session. Fresh id, fresh CSRF token, the old id gone.
        self._sessions.pop(sid, None)
        new_sid, _ = self._new_session(user)
        headers[:] = [("Set-Cookie", session_cookie(sign_value(self.secret, new_sid)))]
        return reply("200 OK", {"user": user})


def _read_form(environ: dict[str, Any]) -> dict[str, str] | str:
    """The url-encoded form fields of a POST body (first value of each), or the error status.

    Never more than MAX_BODY bytes are read: a bigger body is refused before reading it.
    """
    declared = environ.get("CONTENT_LENGTH") or "0"
    if not (declared.isascii() and declared.isdigit()):  # "²".isdigit(), but int("²") fails
        return "400 Bad Request"
    if int(declared) > MAX_BODY:
        return "413 Content Too Large"
    body = environ["wsgi.input"].read(int(declared)).decode("utf-8", "replace")
    return {k: v[0] for k, v in parse_qs(body).items()}
