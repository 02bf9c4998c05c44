"""Server-side sessions in signed cookies, rotated on login, with a synchronizer CSRF token."""

# Alternative design: the store is its own class (with a lock, ready for compound steps), the
# routes a table of handlers, unsign_value compares the whole signed value it would have made
# with the one received, and the CSRF and password checks go through cryptography's HMAC.verify
# over an HMAC of what was sent (the expected HMAC is computed from the stored secret).

from __future__ import annotations

import base64
import hashlib
import hmac as std_hmac
import json
import secrets
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from http.cookies import CookieError, SimpleCookie
from typing import Any
from urllib.parse import parse_qsl

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, hmac

StartResponse = Callable[..., Any]
COOKIE_NAME = "session"
CSRF_HEADER = "X-CSRF-Token"
CSRF_FIELD = "csrf_token"
MAX_BODY = 64 * 1024
_CHECK_KEY = secrets.token_bytes(32)  # keys the HMACs that stand for compared secrets


def sign_value(secret: bytes, value: str) -> str:
    mac = std_hmac.new(secret, value.encode(), hashlib.sha256).digest()
    return value + "." + base64.urlsafe_b64encode(mac).decode("ascii").rstrip("=")


def _same_secret(sent: str, expected: str) -> bool:
    """sent == expected, in constant time: HMAC.verify of the expected value's MAC."""
    mac = hmac.HMAC(_CHECK_KEY, hashes.SHA256())
    mac.update(sent.encode())
    reference = hmac.HMAC(_CHECK_KEY, hashes.SHA256())
    reference.update(expected.encode())
    try:
        mac.verify(reference.finalize())
    except InvalidSignature:
        return False
    return True


def unsign_value(secret: bytes, signed: str) -> str | None:
    if "." not in signed:
        return None
    value = signed.rsplit(".", 1)[0]
    # the whole cookie against the whole cookie we would have issued for this value
    return value if std_hmac.compare_digest(sign_value(secret, value).encode(), signed.encode()) else None


def session_cookie(value: str, *, max_age: int | None = None) -> str:
    parts = [f"{COOKIE_NAME}={value}", "Path=/", "HttpOnly", "Secure", "SameSite=Lax"]
    if max_age is not None:
        parts.append(f"Max-Age={max_age}")
    return "; ".join(parts)


@dataclass
class _Session:
    user: str | None
    csrf: str = field(default_factory=lambda: secrets.token_hex(32))


class _Store:
    def __init__(self) -> None:
        self._by_id: dict[str, _Session] = {}
        self._lock = threading.Lock()

    def create(self, user: str | None) -> tuple[str, _Session]:
        sid, session = secrets.token_hex(32), _Session(user)
        with self._lock:
            self._by_id[sid] = session
        return sid, session

    def get(self, sid: str) -> _Session | None:
        with self._lock:
            return self._by_id.get(sid)

    def delete(self, sid: str) -> None:
        with self._lock:
            self._by_id.pop(sid, None)

    def rotate(self, sid: str, user: str) -> str:
        with self._lock:
            self._by_id.pop(sid, None)
            new_sid = secrets.token_hex(32)
            self._by_id[new_sid] = _Session(user)
        return new_sid


class _Refused(Exception):
    def __init__(self, status: str, error: str) -> None:
        self.status, self.error = status, error


class SessionApp:
    """A WSGI app with server-side sessions and CSRF protection. All responses are JSON."""

    def __init__(self, users: Mapping[str, str], secret: bytes) -> None:
        self.users = users
        self.secret = secret
        self.store = _Store()
        self.routes: dict[tuple[str, str], Callable[..., dict[str, Any]]] = {
            ("GET", "/session"): self._session,
            ("POST", "/login"): self._login,
            ("POST", "/transfer"): self._transfer,
            ("POST", "/logout"): self._logout,
        }

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        cookies: list[str] = []
        sid, session = self._current(environ, cookies)
        handler = self.routes.get((environ.get("REQUEST_METHOD", ""), environ.get("PATH_INFO", "")))
        try:
            if handler is None:
                raise _Refused("404 Not Found", "no such route")
            form = _form(environ) if environ["REQUEST_METHOD"] == "POST" else {}
            body = handler(sid, session, environ, form, cookies)
            status = "200 OK"
        except _Refused as refused:
            status, body = refused.status, {"error": refused.error}
        data = json.dumps(body).encode()
        headers = [("Content-Type", "application/json"), ("Content-Length", str(len(data)))]
        start_response(status, headers + [("Set-Cookie", c) for c in cookies[-1:]])
        return [data]

    def _current(self, environ: dict[str, Any], cookies: list[str]) -> tuple[str, _Session]:
        try:
            morsel = SimpleCookie(environ.get("HTTP_COOKIE", "")).get(COOKIE_NAME)
        except CookieError:
            morsel = None
        sid = unsign_value(self.secret, morsel.value) if morsel is not None else None
        session = self.store.get(sid) if sid is not None else None
        if sid is None or session is None:
            sid, session = self.store.create(None)
            cookies.append(session_cookie(sign_value(self.secret, sid)))
        return sid, session

    def _require_token(self, session: _Session, environ: dict[str, Any], form: dict[str, str]) -> None:
        sent = environ.get("HTTP_X_CSRF_TOKEN") or form.get(CSRF_FIELD)
        if not sent or not _same_secret(sent, session.csrf):
            raise _Refused("403 Forbidden", "CSRF token missing or wrong")

    def _session(self, sid: str, session: _Session, *_: Any) -> dict[str, Any]:
        return {"user": session.user, "csrf_token": session.csrf}

    def _login(self, sid: str, session: _Session, environ: dict[str, Any], form: dict[str, str],
               cookies: list[str]) -> dict[str, Any]:
        self._require_token(session, environ, form)
        user = form.get("username", "")
        stored = self.users.get(user)
        right = _same_secret(form.get("password", ""), stored if stored is not None else "\x00")
        if stored is None or not right:
            raise _Refused("401 Unauthorized", "wrong username or password")
        cookies.append(session_cookie(sign_value(self.secret, self.store.rotate(sid, user))))
        return {"user": user}

    def _transfer(self, sid: str, session: _Session, environ: dict[str, Any],
                  form: dict[str, str], cookies: list[str]) -> dict[str, Any]:
        if session.user is None:
            raise _Refused("401 Unauthorized", "log in first")
        self._require_token(session, environ, form)
        return {"ok": True, "user": session.user}

    def _logout(self, sid: str, session: _Session, environ: dict[str, Any], form: dict[str, str],
                cookies: list[str]) -> dict[str, Any]:
        self._require_token(session, environ, form)
        self.store.delete(sid)
        cookies.append(session_cookie("", max_age=0))
        return {"user": None}


def _form(environ: dict[str, Any]) -> dict[str, str]:
    declared = environ.get("CONTENT_LENGTH", "")
    if declared == "":
        return {}
    try:
        length = int(declared, 10)
    except ValueError:
        raise _Refused("400 Bad Request", "Content-Length is not a number") from None
    if length < 0 or not declared.strip().isdigit() or not declared.isascii():
        raise _Refused("400 Bad Request", "Content-Length is not a number")
    if length > MAX_BODY:
        raise _Refused("413 Content Too Large", f"more than {MAX_BODY} bytes")
    body = environ["wsgi.input"].read(length) if length else b""
    fields: dict[str, str] = {}
    for name, value in parse_qsl(body.decode("utf-8", "replace")):
        fields.setdefault(name, value)
    return fields
