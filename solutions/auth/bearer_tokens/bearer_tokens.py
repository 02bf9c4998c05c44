"""Bearer tokens (RFC 6750): opaque tokens, only their hash in Postgres, a resource server's errors."""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs

import psycopg

StartResponse = Callable[..., Any]
Clock = Callable[[], float]  # Unix seconds, like time.time

SELECTOR_BYTES = 12  # secrets.token_urlsafe(12): 16 characters, finds the row
VERIFIER_BYTES = 32  # secrets.token_urlsafe(32): 43 characters, 256 bits of secret

# RFC 6750 §2.1, after the scheme and its first space: *SP b64token (nothing else, not even a
# trailing space).
_CREDENTIALS = re.compile(r" *([A-Za-z0-9\-._~+/]+=*)")
# Our tokens: "<selector>.<verifier>", one b64token with two non-empty halves. Anything else (no
# dot, an empty half, a NUL, a space, non-ASCII) is malformed before it reaches the database.
_TOKEN = re.compile(r"([A-Za-z0-9\-_~+/]+)\.([A-Za-z0-9\-._~+/]+=*)")
# RFC 6749 §3.3: scope-token = 1*( %x21 / %x23-5B / %x5D-7E ).
_SCOPE_TOKEN = re.compile(r"[\x21\x23-\x5b\x5d-\x7e]+")


class MalformedRequest(ValueError):
    """The request presents a token the wrong way: answered 400 invalid_request."""


class InvalidToken(Exception):
    """The token is unknown, wrong, expired or revoked: answered 401 invalid_token.

    The message is a short human-readable reason ("The access token expired") that may go into
    error_description, so keep it to printable ASCII without '"' or '\\'.
    """


@dataclass(frozen=True)
class TokenInfo:
    """What a valid token grants."""

    subject: str
    scopes: frozenset[str]
    expires_at: float  # Unix seconds


def parse_authorization(header: str | None) -> str | None:
    """The token of an `Authorization: Bearer <token>` header value (RFC 6750 §2.1).

    credentials = "Bearer" 1*SP b64token, b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" /
    "+" / "/" ) *"=". The scheme is case-insensitive. Returns None when there is no header or it
    uses another scheme (no Bearer credentials at all); raises MalformedRequest for a Bearer header
    whose credentials do not match the grammar.

    >>> parse_authorization("Bearer mF_9.B5f-4.1JqM")
    'mF_9.B5f-4.1JqM'
    >>> parse_authorization("Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==") is None
    True
    """
    if header is None:
        return None
    scheme, _, credentials = header.partition(" ")
    # Auth schemes are case-insensitive (RFC 9110 §11.1). Another scheme (Basic, ...) is not
    # a malformed Bearer request: the client simply presented no Bearer credentials.
    if scheme.lower() != "bearer":
        return None
    match = _CREDENTIALS.fullmatch(credentials)
    if match is None:
        raise MalformedRequest("the Bearer credentials are not a b64token (RFC 6750 section 2.1)")
    return match.group(1)


def challenge(
    realm: str,
    error: str | None = None,
    description: str | None = None,
    scope: str | None = None,
) -> str:
    """The WWW-Authenticate value of an error response (RFC 6750 §3).

    `Bearer realm="<realm>"`, then `error="..."`, `error_description="..."` and `scope="..."`
    for those given, each as a quoted-string (`"` and `\\` escaped with a backslash), separated
    by ", ".

    >>> challenge("example")
    'Bearer realm="example"'
    >>> challenge("example", "invalid_token", "The access token expired")
    'Bearer realm="example", error="invalid_token", error_description="The access token expired"'
    """
    # The realm always comes first; the RFC's error attributes follow only when there is an error
    # (§3.1: a request without credentials gets no error code).
    params = {"realm": realm, "error": error, "error_description": description, "scope": scope}
    quoted = (f'{name}="{_quote(value)}"' for name, value in params.items() if value is not None)
    return "Bearer " + ", ".join(quoted)


def _quote(value: str) -> str:
    """The inside of a quoted-string (RFC 9110 §5.6.4): backslash-escape backslash and quote."""
    return value.replace("\\", "\\\\").replace('"', '\\"')


def _hash(verifier: str) -> bytes:
    """SHA-256 of the verifier. A fast hash is enough: the verifier has 256 random bits, so there
    is nothing to brute-force, unlike a password (which needs scrypt or PBKDF2)."""
    return hashlib.sha256(verifier.encode()).digest()


def _timestamp(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, tz=UTC)


class TokenStore:
    """Issues, verifies and revokes opaque access tokens kept in the `access_tokens` table.

    A token is "<selector>.<verifier>", both from `secrets.token_urlsafe` (SELECTOR_BYTES and
    VERIFIER_BYTES). The row holds the selector and sha256(verifier.encode("ascii")).digest(),
    never the verifier: see schema.sql. Every time (issue, expiry, revocation) comes from `clock`,
    and must survive any time zone of this process (TZ) or of the database session.
    `conn` is a psycopg 3 connection in autocommit mode.
    """

    def __init__(self, conn: psycopg.Connection[Any], clock: Clock = time.time) -> None:
        self.conn = conn
        self.clock = clock

    def issue(self, subject: str, scopes: Iterable[str], ttl: float = 3600.0) -> str:
        """A new token for `subject` with `scopes`, valid for `ttl` seconds from clock().

        `scopes` is any iterable (a generator can be read only once; it may be empty). Raises
        ValueError for a scope that is not a scope-token (RFC 6749 §3.3: one or more printable
        ASCII characters other than space, '"' and '\\').
        """
        scopes = sorted(set(scopes))
        for scope in scopes:
            # A space would split the scope in two, a quote would break the scope="..." attribute.
            if not _SCOPE_TOKEN.fullmatch(scope):
                raise ValueError(f"not a scope-token (RFC 6749 section 3.3): {scope!r}")
        # `secrets` draws from the OS's CSPRNG; `random` is a Mersenne Twister whose output can be
        # predicted from earlier outputs (and replayed from a seed).
        selector = secrets.token_urlsafe(SELECTOR_BYTES)
        verifier = secrets.token_urlsafe(VERIFIER_BYTES)
        now = self.clock()
        # Only the hash goes to the database: whoever reads the table (a backup, an SQL
        # injection, a replica) cannot turn a row back into a working token.
        self.conn.execute(
            "INSERT INTO access_tokens"
            " (selector, verifier_hash, subject, scope, issued_at, expires_at)"
            " VALUES (%s, %s, %s, %s, %s, %s)",
            [selector, _hash(verifier), subject, " ".join(scopes), _timestamp(now), _timestamp(now + ttl)],
        )
        return f"{selector}.{verifier}"

    def _row(self, token: str) -> tuple[Any, ...] | None:
        """The token's row if the verifier matches the stored hash, else None."""
        match = _TOKEN.fullmatch(token)
        if match is None:
            return None
        selector, verifier = match.groups()
        row: tuple[Any, ...] | None = self.conn.execute(
            "SELECT verifier_hash, subject, scope, expires_at, revoked_at FROM access_tokens WHERE selector = %s",
            [selector],
        ).fetchone()
        if row is None:
            return None
        # The selector is only an index key; the verifier is the secret. compare_digest takes the
        # same time wherever the hashes differ, where == would stop at the first differing byte.
        if not hmac.compare_digest(_hash(verifier), bytes(row[0])):
            return None
        return row

    def verify(self, token: str) -> TokenInfo:
        """What `token` grants, or InvalidToken if it is malformed, unknown, wrong, revoked or
        expired (expired from the instant clock() reaches expires_at).

        Malformed: not "<selector>.<verifier>" with both halves non-empty, as one b64token; it is
        InvalidToken like the rest, never a crash. The verifier's hash is compared in constant
        time and that comparison decides; until it matches, a revoked or expired row must be
        refused exactly like an unknown token (nothing about the row may show).
        """
        row = self._row(token)
        if row is None:
            raise InvalidToken("The access token is invalid")
        _, subject, scope, expires_at, revoked_at = row
        if revoked_at is not None:
            raise InvalidToken("The access token was revoked")
        # The injected clock, not now() in SQL or time.time(): one notion of time for issue and
        # check, and tests can move it. expires_at itself is already too late.
        if self.clock() >= expires_at.timestamp():
            raise InvalidToken("The access token expired")
        return TokenInfo(subject, frozenset(scope.split()), expires_at.timestamp())

    def revoke(self, token: str) -> bool:
        """Revoke `token`; True if this call revoked it, False if it is unknown, wrong, malformed
        or was already revoked. A wrong verifier must not revoke the selector's token; an expired
        one can be revoked; revoked_at is clock(). Of two concurrent revokes, one says True."""
        # Only the whole token revokes: knowing a selector must not let anyone log a user out.
        if self._row(token) is None:
            return False
        selector = token.partition(".")[0]
        # `revoked_at IS NULL` makes a second revoke (or a concurrent one) report False.
        cursor = self.conn.execute(
            "UPDATE access_tokens SET revoked_at = %s WHERE selector = %s AND revoked_at IS NULL",
            [_timestamp(self.clock()), selector],
        )
        return cursor.rowcount == 1


class ResourceServer:
    """A WSGI app guarding resources with Bearer tokens (RFC 6750).

    `required_scopes` maps each path to the scope a token needs for it. Other paths: 404.

    | request                                              | response                                |
    |------------------------------------------------------|-----------------------------------------|
    | valid token with the path's scope                    | 200 JSON {"subject", "scopes": sorted}  |
    | no Authorization header (or another scheme)          | 401, WWW-Authenticate: Bearer realm=".."|
    | malformed Bearer header, or an `access_token`        | 400, error="invalid_request"            |
    |   parameter in the query string, even empty (never   |                                         |
    |   accepted: URLs end up in logs)                     |                                         |
    | unknown, wrong, expired or revoked token             | 401, error="invalid_token"              |
    | valid token without the path's scope (scopes are     | 403, error="insufficient_scope",        |
    |   compared whole and case-sensitively)               |   scope="<the path's scope>"            |

    Every error response carries WWW-Authenticate built by challenge(realm, ...).
    """

    def __init__(self, store: TokenStore, realm: str, required_scopes: Mapping[str, str]) -> None:
        self.store = store
        self.realm = realm
        self.required_scopes = required_scopes

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        required = self.required_scopes.get(environ.get("PATH_INFO", ""))
        if required is None:
            return self._respond(start_response, "404 Not Found", {"error": "not_found"})
        # §2.3 allows ?access_token= only as a last resort; this server refuses it outright, even
        # with a valid token: URLs land in access logs, browser history and Referer headers.
        query = parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True)
        if "access_token" in query:
            return self._error(
                start_response,
                "400 Bad Request",
                "invalid_request",
                "Send the access token in the Authorization header, not the URI",
            )
        try:
            token = parse_authorization(environ.get("HTTP_AUTHORIZATION"))
        except MalformedRequest:
            return self._error(
                start_response, "400 Bad Request", "invalid_request", "The Authorization header is not Bearer b64token"
            )
        if token is None:
            # §3.1: no credentials at all gets the bare challenge, no error code.
            return self._error(start_response, "401 Unauthorized")
        try:
            info = self.store.verify(token)
        except InvalidToken as exc:
            return self._error(start_response, "401 Unauthorized", "invalid_token", str(exc))
        # Scopes are whole tokens: set membership, never a substring test on the scope string.
        if required not in info.scopes:
            return self._error(
                start_response,
                "403 Forbidden",
                "insufficient_scope",
                f"This resource needs the scope {required}",
                scope=required,
            )
        return self._respond(start_response, "200 OK", {"subject": info.subject, "scopes": sorted(info.scopes)})

    def _error(
        self,
        start_response: StartResponse,
        status: str,
        error: str | None = None,
        description: str | None = None,
        scope: str | None = None,
    ) -> Iterable[bytes]:
        # Every error carries the challenge (§3): a 401 without it leaves the client no way to
        # know which scheme and realm to authenticate with.
        header = ("WWW-Authenticate", challenge(self.realm, error, description, scope))
        return self._respond(start_response, status, {"error": error}, [header])

    @staticmethod
    def _respond(
        start_response: StartResponse,
        status: str,
        payload: dict[str, Any],
        headers: list[tuple[str, str]] | None = None,
    ) -> Iterable[bytes]:
        body = json.dumps(payload).encode()
        start_response(
            status,
            [
                *(headers or []),
                ("Content-Type", "application/json"),
                ("Content-Length", str(len(body))),
                ("Cache-Control", "no-store"),
            ],
        )
        return [body]
