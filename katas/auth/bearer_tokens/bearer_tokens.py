"""Bearer tokens (RFC 6750): opaque tokens, only their hash in Postgres, a resource server's errors."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import psycopg

StartResponse = Callable[..., Any]
Clock = Callable[[], float]  # Unix seconds, like time.time

SELECTOR_BYTES = 12  # secrets.token_urlsafe(12): 16 characters, finds the row
VERIFIER_BYTES = 32  # secrets.token_urlsafe(32): 43 characters, 256 bits of secret


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
    # TODO: split off the scheme, compare it case-insensitively, match the b64token grammar.
    raise NotImplementedError("parse_authorization")


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
    # TODO: always the realm; add the attributes that are not None.
    raise NotImplementedError("challenge")


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
        # TODO: check the scopes, draw selector and verifier from `secrets`, INSERT the selector
        #       and the verifier's SHA-256 (see schema.sql), return "<selector>.<verifier>".
        raise NotImplementedError("TokenStore.issue")

    def verify(self, token: str) -> TokenInfo:
        """What `token` grants, or InvalidToken if it is malformed, unknown, wrong, revoked or
        expired (expired from the instant clock() reaches expires_at).

        Malformed: not "<selector>.<verifier>" with both halves non-empty, as one b64token; it is
        InvalidToken like the rest, never a crash. The verifier's hash is compared in constant
        time and that comparison decides; until it matches, a revoked or expired row must be
        refused exactly like an unknown token (nothing about the row may show).
        """
        # TODO: split on ".", find the row by selector, compare the hashes in constant time,
        #       then check revocation and expiry against self.clock().
        raise NotImplementedError("TokenStore.verify")

    def revoke(self, token: str) -> bool:
        """Revoke `token`; True if this call revoked it, False if it is unknown, wrong, malformed
        or was already revoked. A wrong verifier must not revoke the selector's token; an expired
        one can be revoked; revoked_at is clock(). Of two concurrent revokes, one says True."""
        # TODO: check the token as verify does (expiry aside), then mark the row revoked.
        raise NotImplementedError("TokenStore.revoke")


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
        # TODO: refuse a token in the query string, parse the header, verify the token, check the
        #       scope, and answer with the right status and WWW-Authenticate.
        raise NotImplementedError("ResourceServer.__call__")
