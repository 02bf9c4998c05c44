"""Bearer tokens (RFC 6750): opaque tokens, only their hash in Postgres, a resource server's errors."""

from __future__ import annotations

import hashlib
import json
import secrets
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

import psycopg

StartResponse = Callable[..., Any]
Clock = Callable[[], float]  # Unix seconds, like time.time

SELECTOR_BYTES = 12
VERIFIER_BYTES = 32

_TOKEN_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~+/")
_SCOPE_CHARS = frozenset(chr(c) for c in range(0x21, 0x7F)) - {'"', "\\"}
# Compared against when the selector is unknown, so an unknown selector costs the same work.
_DUMMY_HEX = hashlib.sha256(b"no such token").hexdigest()


class MalformedRequest(ValueError):
    """The request presents a token the wrong way: answered 400 invalid_request."""


class InvalidToken(Exception):
    """The token is unknown, wrong, expired or revoked: answered 401 invalid_token."""


@dataclass(frozen=True)
class TokenInfo:
    subject: str
    scopes: frozenset[str]
    expires_at: float


def _is_b64token(text: str) -> bool:
    """1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"=", without a regex."""
    body = text.rstrip("=")
    return bool(body) and all(char in _TOKEN_CHARS for char in body)


def parse_authorization(header: str | None) -> str | None:
    if header is None:
        return None
    words = header.split(" ", 1)
    if words[0].casefold() != "bearer" or not words[0].isascii():
        return None
    token = words[1].lstrip(" ") if len(words) == 2 else ""
    if not _is_b64token(token):
        raise MalformedRequest("expected Bearer b64token")
    return token


def challenge(
    realm: str,
    error: str | None = None,
    description: str | None = None,
    scope: str | None = None,
) -> str:
    parts = []
    for name, value in (("realm", realm), ("error", error), ("error_description", description), ("scope", scope)):
        if value is not None:
            escaped = "".join("\\" + char if char in '"\\' else char for char in value)
            parts.append(f'{name}="{escaped}"')
    return "Bearer " + ", ".join(parts)


def _hex(verifier: str) -> str:
    return hashlib.sha256(verifier.encode()).hexdigest()


class TokenStore:
    """Times cross into SQL as epoch seconds (to_timestamp, extract(epoch)); revoke locks the row."""

    def __init__(self, conn: psycopg.Connection[Any], clock: Clock = time.time) -> None:
        self.conn = conn
        self.clock = clock

    def issue(self, subject: str, scopes: Iterable[str], ttl: float = 3600.0) -> str:
        wanted = list(dict.fromkeys(scopes))
        if any(not scope or not set(scope) <= _SCOPE_CHARS for scope in wanted):
            raise ValueError(f"not a list of scope-tokens: {wanted!r}")
        selector = secrets.token_urlsafe(SELECTOR_BYTES)
        verifier = secrets.token_urlsafe(VERIFIER_BYTES)
        now = self.clock()
        self.conn.execute(
            "INSERT INTO access_tokens"
            " (selector, verifier_hash, subject, scope, issued_at, expires_at)"
            " VALUES (%s, decode(%s, 'hex'), %s, %s, to_timestamp(%s), to_timestamp(%s))",
            [selector, _hex(verifier), subject, " ".join(wanted), now, now + ttl],
        )
        return f"{selector}.{verifier}"

    def _authentic(self, token: str, lock: bool = False) -> tuple[Any, ...] | None:
        selector, _, verifier = token.partition(".")
        if not (selector and verifier and "." not in selector and _is_b64token(token)):
            return None
        row = self.conn.execute(
            "SELECT encode(verifier_hash, 'hex'), subject, scope,"
            " extract(epoch FROM expires_at)::float8, revoked_at IS NOT NULL"
            " FROM access_tokens WHERE selector = %s" + (" FOR UPDATE" if lock else ""),
            [selector],
        ).fetchone()
        stored = row[0] if row is not None else _DUMMY_HEX
        matches = secrets.compare_digest(_hex(verifier), stored)
        return row if row is not None and matches else None

    def verify(self, token: str) -> TokenInfo:
        row = self._authentic(token)
        if row is None:
            raise InvalidToken("The access token is invalid")
        _, subject, scope, expires_at, revoked = row
        if revoked:
            raise InvalidToken("The access token was revoked")
        if not self.clock() < expires_at:
            raise InvalidToken("The access token expired")
        return TokenInfo(subject, frozenset(scope.split(" ")) - {""}, expires_at)

    def revoke(self, token: str) -> bool:
        with self.conn.transaction():
            row = self._authentic(token, lock=True)
            if row is None or row[4]:
                return False
            self.conn.execute(
                "UPDATE access_tokens SET revoked_at = to_timestamp(%s) WHERE selector = %s",
                [self.clock(), token.partition(".")[0]],
            )
            return True


class _Refusal(Exception):
    def __init__(
        self, status: str, error: str | None = None, description: str | None = None, scope: str | None = None
    ) -> None:
        super().__init__(status)
        self.status, self.error, self.description, self.scope = status, error, description, scope


class ResourceServer:
    def __init__(self, store: TokenStore, realm: str, required_scopes: Mapping[str, str]) -> None:
        self.store = store
        self.realm = realm
        self.required_scopes = required_scopes

    def _grant(self, environ: dict[str, Any]) -> TokenInfo:
        names = [name for name, _ in parse_qsl(environ.get("QUERY_STRING", ""), keep_blank_values=True)]
        if "access_token" in names:
            raise _Refusal("400 Bad Request", "invalid_request", "Use the Authorization header")
        try:
            token = parse_authorization(environ.get("HTTP_AUTHORIZATION"))
        except MalformedRequest:
            raise _Refusal("400 Bad Request", "invalid_request", "Malformed credentials") from None
        if token is None:
            raise _Refusal("401 Unauthorized")
        try:
            return self.store.verify(token)
        except InvalidToken as exc:
            raise _Refusal("401 Unauthorized", "invalid_token", str(exc)) from None

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path not in self.required_scopes:
            return self._send(start_response, "404 Not Found", {"error": "not_found"}, [])
        needed = self.required_scopes[path]
        try:
            info = self._grant(environ)
            if needed not in info.scopes:
                raise _Refusal("403 Forbidden", "insufficient_scope", "Needs more scope", needed)
        except _Refusal as refusal:
            value = challenge(self.realm, refusal.error, refusal.description, refusal.scope)
            return self._send(start_response, refusal.status, {"error": refusal.error}, [("WWW-Authenticate", value)])
        return self._send(start_response, "200 OK", {"subject": info.subject, "scopes": sorted(info.scopes)}, [])

    @staticmethod
    def _send(
        start_response: StartResponse, status: str, payload: dict[str, Any], headers: list[tuple[str, str]]
    ) -> Iterable[bytes]:
        body = json.dumps(payload).encode()
        start_response(
            status,
            [
                *headers,
                ("Content-Type", "application/json"),
                ("Content-Length", str(len(body))),
                ("Cache-Control", "no-store"),
            ],
        )
        return [body]
