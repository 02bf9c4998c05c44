"""HTTP Basic authentication (RFC 7617): the header, the challenge, the check, a WSGI app."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

StartResponse = Callable[..., Any]


class MalformedCredentials(ValueError):
    """The Authorization header is not valid Basic credentials (wrong scheme, bad base64, ...)."""


def build_authorization(user_id: str, password: str) -> str:
    """The Authorization header value for `user_id` and `password`, encoded as UTF-8.

    Raises ValueError if `user_id` contains a colon (RFC 7617 §2 forbids it).

    >>> build_authorization("Aladdin", "open sesame")
    'Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ=='
    """
    # TODO: refuse a colon in the user-id, then "Basic " + base64 of the UTF-8 "user:password".
    raise NotImplementedError("build_authorization")


def parse_authorization(header: str) -> tuple[str, str]:
    """(user_id, password) from an Authorization header value.

    The scheme is case-insensitive and may be followed by several spaces; the credentials are
    strict base64 of UTF-8 "user-id:password", split on the first colon (passwords may hold
    colons). Anything else raises MalformedCredentials.

    >>> parse_authorization("Basic YWxhZGRpbjpvcGVuOnNlc2FtZQ==")
    ('aladdin', 'open:sesame')
    """
    # TODO: check the scheme, decode base64 strictly (b64decode(..., validate=True)),
    #       decode UTF-8, split on the first colon.
    raise NotImplementedError("parse_authorization")


def challenge(realm: str) -> str:
    """The WWW-Authenticate value of a 401: the realm as a quoted-string, and charset="UTF-8".

    >>> challenge("WallyWorld")
    'Basic realm="WallyWorld", charset="UTF-8"'
    """
    # TODO: quote the realm (escape backslash and double quote) and announce UTF-8.
    raise NotImplementedError("challenge")


def check_credentials(users: Mapping[str, str], user_id: str, password: str) -> bool:
    """True if `users[user_id] == password`, decided in constant time.

    Compare with hmac.compare_digest on bytes (or another constant-time comparison), never
    with ==, and do the same comparison work for an unknown user as for a known one, so the
    response time reveals neither how much of the password was right nor whether the user
    exists. An unknown user is never accepted, whatever the comparison against a dummy says.
    """
    # TODO: look the user up; compare password bytes with hmac.compare_digest, also for a
    #       user that does not exist (compare against a dummy).
    raise NotImplementedError("check_credentials")


class BasicAuthApp:
    """A WSGI app that greets authenticated users and challenges everyone else.

    | request                                   | response                                      |
    |-------------------------------------------|-----------------------------------------------|
    | valid credentials for a user in `users`   | 200, text/plain; charset=utf-8, "hello, <id>" |
    | no, malformed or wrong credentials        | 401, WWW-Authenticate: challenge(realm)       |
    """

    def __init__(self, users: Mapping[str, str], realm: str) -> None:
        self.users = users
        self.realm = realm

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        # TODO: read environ.get("HTTP_AUTHORIZATION"), parse and check it, answer 200 or 401.
        raise NotImplementedError("BasicAuthApp.__call__")

