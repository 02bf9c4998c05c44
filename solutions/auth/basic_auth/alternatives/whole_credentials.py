"""HTTP Basic authentication (RFC 7617): the header, the challenge, the check, a WSGI app."""

# Alternative design: parse with one regular expression and binascii's strict mode, and check
# the whole "user-id:password" in one constant-time comparison (cryptography's bytes_eq) against
# the record built from the stored password, so the user-id is compared in constant time too.

from __future__ import annotations

import binascii
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from cryptography.hazmat.primitives.constant_time import bytes_eq

StartResponse = Callable[..., Any]

_CREDENTIALS = re.compile(r"(?i:basic) +([A-Za-z0-9+/]+={0,2})")
_NOBODY = b"\x00no such user\x00:"  # a record no request can equal (user-ids have no NUL here)


class MalformedCredentials(ValueError):
    """The Authorization header is not valid Basic credentials (wrong scheme, bad base64, ...)."""


def build_authorization(user_id: str, password: str) -> str:
    if ":" in user_id:
        raise ValueError("a user-id must not contain a colon")
    token = binascii.b2a_base64(f"{user_id}:{password}".encode(), newline=False)
    return "Basic " + token.decode("ascii")


def parse_authorization(header: str) -> tuple[str, str]:
    match = _CREDENTIALS.fullmatch(header)
    if match is None:
        raise MalformedCredentials("not Basic credentials")
    try:
        user_pass = binascii.a2b_base64(match.group(1), strict_mode=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        raise MalformedCredentials("not base64 of UTF-8") from None
    if ":" not in user_pass:
        raise MalformedCredentials("no colon")
    user_id, password = user_pass.split(":", 1)
    return user_id, password


def challenge(realm: str) -> str:
    quoted = "".join("\\" + c if c in '"\\' else c for c in realm)
    return f'Basic realm="{quoted}", charset="UTF-8"'


def check_credentials(users: Mapping[str, str], user_id: str, password: str) -> bool:
    stored = users.get(user_id)
    known = stored is not None
    record = f"{user_id}:{stored}".encode() if known else _NOBODY + user_id.encode()
    # One comparison of the whole user-pass, known user or not; the verdict needs both.
    same = bytes_eq(f"{user_id}:{password}".encode(), record)
    return known and same


class BasicAuthApp:
    """A WSGI app that greets authenticated users and challenges everyone else."""

    def __init__(self, users: Mapping[str, str], realm: str) -> None:
        self.users = users
        self.realm = realm

    def _who(self, environ: dict[str, Any]) -> str | None:
        try:
            user_id, password = parse_authorization(environ["HTTP_AUTHORIZATION"])
        except (KeyError, MalformedCredentials):
            return None
        return user_id if check_credentials(self.users, user_id, password) else None

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        user_id = self._who(environ)
        if user_id is None:
            status, body = "401 Unauthorized", b"401: credentials required\n"
            extra = [("WWW-Authenticate", challenge(self.realm))]
        else:
            status, body, extra = "200 OK", f"hello, {user_id}".encode(), []
        start_response(status, [*extra, ("Content-Type", "text/plain; charset=utf-8"),
                                ("Content-Length", str(len(body)))])
        return [body]
