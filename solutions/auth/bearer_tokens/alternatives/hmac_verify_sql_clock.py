"""Bearer tokens (RFC 6750): opaque tokens, only their hash in Postgres, a resource server's errors."""

from __future__ import annotations

import hashlib
import json
import re
import secrets
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs

import psycopg
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.hmac import HMAC

StartResponse = Callable[..., Any]
Clock = Callable[[], float]  # Unix seconds, like time.time

SELECTOR_BYTES = 12
VERIFIER_BYTES = 32

_AUTHORIZATION = re.compile(r"(?P<scheme>[^ ]*)(?: (?P<rest>.*))?", re.DOTALL)
_B64TOKEN = re.compile(r" *([A-Za-z0-9._~+/-]+=*)")
_SCOPE = re.compile(r"[!#-\[\]-~]+")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# A per-process key: the stored hash and the presented one are both MACed, and cryptography's
# HMAC.verify compares the results in constant time (double HMAC).
_KEY = secrets.token_bytes(32)


class MalformedRequest(ValueError):
    """The request presents a token the wrong way: answered 400 invalid_request."""


class InvalidToken(Exception):
    """The token is unknown, wrong, expired or revoked: answered 401 invalid_token."""


@dataclass(frozen=True)
class TokenInfo:
    subject: str
    scopes: frozenset[str]
    expires_at: float


def parse_authorization(header: str | None) -> str | None:
    match = _AUTHORIZATION.fullmatch(header or "")
    if header is None or match is None or match["scheme"].lower() != "bearer":
        return None
    credentials = _B64TOKEN.fullmatch(match["rest"] or "")
    if credentials is None:
        raise MalformedRequest("Bearer credentials must be one b64token")
    return credentials.group(1)


def challenge(
    realm: str,
    error: str | None = None,
    description: str | None = None,
    scope: str | None = None,
) -> str:
    attributes = {"realm": realm}
    attributes.update(
        {k: v for k, v in (("error", error), ("error_description", description), ("scope", scope)) if v is not None}
    )
    return "Bearer " + ", ".join('{}="{}"'.format(k, re.sub(r'(["\\])', r"\\\1", v)) for k, v in attributes.items())


def _mac(data: bytes) -> HMAC:
    mac = HMAC(_KEY, hashes.SHA256())
    mac.update(data)
    return mac


def _same_hash(presented: bytes, stored: bytes) -> bool:
    try:
        _mac(stored).verify(_mac(presented).finalize())
    except InvalidSignature:
        return False
    return True


def _at(seconds: float) -> datetime:
    return _EPOCH + timedelta(seconds=seconds)


class TokenStore:
    """The clock's instant is handed to SQL, which judges expiry; revoke is one guarded UPDATE."""

    def __init__(self, conn: psycopg.Connection[Any], clock: Clock = time.time) -> None:
        self.conn = conn
        self.clock = clock

    def issue(self, subject: str, scopes: Iterable[str], ttl: float = 3600.0) -> str:
        granted = set()
        for scope in scopes:
            if _SCOPE.fullmatch(scope) is None:
                raise ValueError(f"{scope!r} is not a scope-token")
            granted.add(scope)
        selector, verifier = (secrets.token_urlsafe(SELECTOR_BYTES), secrets.token_urlsafe(VERIFIER_BYTES))
        issued = self.clock()
        with self.conn.cursor() as cur:
            cur.execute(
                "INSERT INTO access_tokens (selector, verifier_hash, subject, scope, issued_at,"
                " expires_at) VALUES (%(sel)s, %(hash)s, %(sub)s, %(scope)s, %(iat)s, %(exp)s)",
                {
                    "sel": selector,
                    "hash": hashlib.sha256(verifier.encode()).digest(),
                    "sub": subject,
                    "scope": " ".join(sorted(granted)),
                    "iat": _at(issued),
                    "exp": _at(issued + ttl),
                },
            )
        return selector + "." + verifier

    def _lookup(self, token: str) -> dict[str, Any] | None:
        parts = token.split(".", 1)
        if len(parts) != 2 or not all(parts) or not re.fullmatch(r"[\w~+/-]+\.[\w.~+/-]+=*", token, re.ASCII):
            return None
        selector, verifier = parts
        with self.conn.cursor() as cur:
            cur.execute(
                "SELECT verifier_hash, subject, scope, expires_at,"
                " expires_at <= %s AS expired, revoked_at IS NOT NULL AS revoked"
                " FROM access_tokens WHERE selector = %s",
                [_at(self.clock()), selector],
            )
            row = cur.fetchone()
            names = [column.name for column in cur.description or []]
        if row is None:
            return None
        found = dict(zip(names, row, strict=True))
        if not _same_hash(hashlib.sha256(verifier.encode()).digest(), bytes(found["verifier_hash"])):
            return None
        return found

    def verify(self, token: str) -> TokenInfo:
        found = self._lookup(token)
        if found is None:
            raise InvalidToken("The access token is invalid")
        if found["revoked"]:
            raise InvalidToken("The access token was revoked")
        if found["expired"]:
            raise InvalidToken("The access token expired")
        expires_at = (found["expires_at"] - _EPOCH).total_seconds()
        return TokenInfo(found["subject"], frozenset(found["scope"].split()), expires_at)

    def revoke(self, token: str) -> bool:
        if self._lookup(token) is None:
            return False
        revoked = self.conn.execute(
            "UPDATE access_tokens SET revoked_at = %s WHERE selector = %s AND revoked_at IS NULL RETURNING selector",
            [_at(self.clock()), token.split(".", 1)[0]],
        ).fetchone()
        return revoked is not None


class ResourceServer:
    def __init__(self, store: TokenStore, realm: str, required_scopes: Mapping[str, str]) -> None:
        self.store = store
        self.realm = realm
        self.required_scopes = required_scopes

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        status, body, extra = self._decide(environ)
        payload = json.dumps(body).encode()
        start_response(
            status,
            [
                *extra,
                ("Content-Type", "application/json"),
                ("Content-Length", str(len(payload))),
                ("Cache-Control", "no-store"),
            ],
        )
        return [payload]

    def _decide(self, environ: dict[str, Any]) -> tuple[str, dict[str, Any], list[tuple[str, str]]]:
        try:
            needed = self.required_scopes[environ.get("PATH_INFO", "")]
        except KeyError:
            return "404 Not Found", {"error": "not_found"}, []

        def refuse(status: str, *args: str | None) -> tuple[str, dict[str, Any], list[tuple[str, str]]]:
            header = ("WWW-Authenticate", challenge(self.realm, *args))
            return status, {"error": args[0] if args else None}, [header]

        if "access_token" in parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True):
            return refuse("400 Bad Request", "invalid_request", "No tokens in the URI")
        try:
            token = parse_authorization(environ.get("HTTP_AUTHORIZATION"))
        except MalformedRequest:
            return refuse("400 Bad Request", "invalid_request", "Malformed Bearer credentials")
        if token is None:
            return refuse("401 Unauthorized")
        try:
            info = self.store.verify(token)
        except InvalidToken as exc:
            return refuse("401 Unauthorized", "invalid_token", str(exc))
        if needed not in info.scopes:
            return refuse("403 Forbidden", "insufficient_scope", "Needs another scope", needed)
        return "200 OK", {"subject": info.subject, "scopes": sorted(info.scopes)}, []
