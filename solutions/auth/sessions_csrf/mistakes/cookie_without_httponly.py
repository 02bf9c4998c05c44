"""Server-side sessions in signed cookies, rotated on login, with a synchronizer CSRF token."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import threading
from collections.abc import Callable, Iterable, Mapping
from http.cookies import CookieError, SimpleCookie
from typing import Any
from urllib.parse import parse_qs

StartResponse = Callable[..., Any]
COOKIE_NAME = "session"
CSRF_HEADER = "X-CSRF-Token"  # WSGI: environ["HTTP_X_CSRF_TOKEN"]
CSRF_FIELD = "csrf_token"  # the form field, for HTML forms that cannot set headers
MAX_BODY = 64 * 1024

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
    # MISTAKE: readable from JavaScript, so any XSS steals the session.
    cookie = f"{COOKIE_NAME}={value}; Path=/; Secure; SameSite=Lax"
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

    - A request without a valid session cookie gets a new anonymous session (user None, a
      fresh CSRF token) and a Set-Cookie; GET /session is how a client obtains its token.
    - The cookie holds sign_value(secret, session id); a cookie whose signature fails, or whose
      id is not in the store, counts as no cookie.
    - CSRF token: read from the X-CSRF-Token header, else the csrf_token form field; it must
      equal the token of this session (constant-time). Missing or wrong: 403.
    - /transfer without a logged-in session: 401 (checked before the CSRF token).
    - A successful login rotates the session: a new id and a new CSRF token, the old id deleted.
    - Logout deletes the session from the store and sends the cookie with Max-Age=0.
    """

    def __init__(self, users: Mapping[str, str], secret: bytes) -> None:
        self.users = users
        self.secret = secret
        # Server-side: the cookie carries only an id, so logout and rotation really end a
        # session (a self-contained signed cookie stays valid until it expires).
        self._sessions: dict[str, Session] = {}
        self._lock = threading.Lock()

    def _new_session(self, user: str | None) -> tuple[str, Session]:
        # 256 random bits each: unguessable ids and tokens, from `secrets`.
        sid = secrets.token_urlsafe(32)
        session: Session = {"user": user, "csrf": secrets.token_urlsafe(32)}
        with self._lock:
            self._sessions[sid] = session
        return sid, session

    def _load(self, environ: dict[str, Any]) -> tuple[str, Session] | None:
        try:
            cookie = SimpleCookie(environ.get("HTTP_COOKIE", ""))
        except CookieError:
            return None
        morsel = cookie.get(COOKIE_NAME)
        sid = unsign_value(self.secret, morsel.value) if morsel else None
        with self._lock:
            session = self._sessions.get(sid) if sid else None
        return (sid, session) if sid and session else None

    def _csrf_ok(self, session: Session, environ: dict[str, Any], form: dict[str, str]) -> bool:
        # The synchronizer pattern: a cross-site page makes the browser send our cookie, but it
        # cannot read our pages, so it cannot know this token. A missing token is a failure.
        sent = environ.get("HTTP_X_CSRF_TOKEN") or form.get(CSRF_FIELD) or ""
        return hmac.compare_digest(sent.encode(), session["csrf"].encode())

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        method, path = environ.get("REQUEST_METHOD", "GET"), environ.get("PATH_INFO", "/")
        headers: list[tuple[str, str]] = []
        loaded = self._load(environ)
        if loaded is None:
            sid, session = self._new_session(None)
            headers.append(("Set-Cookie", session_cookie(sign_value(self.secret, sid))))
        else:
            sid, session = loaded
        form = _read_form(environ) if method == "POST" else {}

        def reply(status: str, body: dict[str, Any]) -> Iterable[bytes]:
            data = json.dumps(body).encode()
            start_response(status, [("Content-Type", "application/json"),
                                    ("Content-Length", str(len(data))), *headers])
            return [data]

        if (method, path) == ("GET", "/session"):
            return reply("200 OK", {"user": session["user"], "csrf_token": session["csrf"]})
        if method != "POST" or path not in ("/login", "/transfer", "/logout"):
            return reply("404 Not Found", {"error": "not found"})
        if path == "/transfer" and session["user"] is None:
            return reply("401 Unauthorized", {"error": "log in first"})
        if not self._csrf_ok(session, environ, form):
            return reply("403 Forbidden", {"error": "missing or wrong CSRF token"})
        if path == "/transfer":
            return reply("200 OK", {"ok": True, "user": session["user"]})
        if path == "/logout":
            with self._lock:
                self._sessions.pop(sid, None)  # the old cookie is now worthless, even if replayed
            headers[:] = [("Set-Cookie", session_cookie("", max_age=0))]
            return reply("200 OK", {"user": None})
        user, password = form.get("username", ""), form.get("password", "")
        expected = self.users.get(user)
        stored = expected.encode() if expected is not None else b"\0" * 32
        if not (hmac.compare_digest(password.encode(), stored) and expected is not None):
            return reply("401 Unauthorized", {"error": "wrong username or password"})
        # Rotate: a session id planted before login (session fixation) must not become a
        # logged-in session. Fresh id, fresh CSRF token, the old id gone.
        with self._lock:
            self._sessions.pop(sid, None)
        new_sid, _ = self._new_session(user)
        headers[:] = [("Set-Cookie", session_cookie(sign_value(self.secret, new_sid)))]
        return reply("200 OK", {"user": user})


def _read_form(environ: dict[str, Any]) -> dict[str, str]:
    """The url-encoded form fields of a POST body (first value of each)."""
    try:
        length = min(int(environ.get("CONTENT_LENGTH") or 0), MAX_BODY)
    except ValueError:
        length = 0
    body = environ["wsgi.input"].read(length).decode("utf-8", "replace") if length else ""
    return {k: v[0] for k, v in parse_qs(body).items()}
