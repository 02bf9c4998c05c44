"""HTTP Basic authentication (RFC 7617): the header, the challenge, the check, a WSGI app."""

from __future__ import annotations

import base64
import hmac
from collections.abc import Callable, Iterable, Mapping
from typing import Any

StartResponse = Callable[..., Any]

# Compared against when the user does not exist, so an unknown user costs the same work as a
# known one with a wrong password (no user enumeration by timing). Whoever sends exactly these
# bytes still does not get in: the verdict also needs the user to exist.
_DUMMY_PASSWORD = b"compared against when the user-id is unknown"


class MalformedCredentials(ValueError):
    """The Authorization header is not valid Basic credentials (wrong scheme, bad base64, ...)."""


def build_authorization(user_id: str, password: str) -> str:
    """The Authorization header value for `user_id` and `password`, encoded as UTF-8.

    Raises ValueError if `user_id` contains a colon (RFC 7617 §2 forbids it).

    >>> build_authorization("Aladdin", "open sesame")
    'Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ=='
    """
    # A colon in the user-id would make the receiver split in the wrong place.
    if ":" in user_id:
        raise ValueError(f"a user-id must not contain a colon: {user_id!r}")
    # UTF-8, as the server's charset="UTF-8" challenge asks (RFC 7617 §2.1).
    raw = f"{user_id}:{password}".encode()
    return "Basic " + base64.b64encode(raw).decode("ascii")


def parse_authorization(header: str) -> tuple[str, str]:
    """(user_id, password) from an Authorization header value.

    The scheme is case-insensitive and may be followed by several spaces; the credentials are
    strict base64 of UTF-8 "user-id:password", split on the first colon (passwords may hold
    colons). Anything else raises MalformedCredentials.

    >>> parse_authorization("Basic YWxhZGRpbjpvcGVuOnNlc2FtZQ==")
    ('aladdin', 'open:sesame')
    """
    # credentials = auth-scheme 1*SP token68; the scheme is case-insensitive (RFC 9110 §11.1).
    scheme, _, token = header.partition(" ")
    token = token.lstrip(" ")
    if scheme.lower() != "basic" or not token:
        raise MalformedCredentials(f"not Basic credentials: {header!r}")
    # validate=True: without it b64decode silently drops junk characters and trailing data.
    try:
        raw = base64.b64decode(token, validate=True)
    except ValueError as exc:  # binascii.Error, or a non-ASCII character in the token
        raise MalformedCredentials(f"credentials are not valid base64: {exc}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise MalformedCredentials("credentials are not UTF-8") from None
    # The first colon: a user-id has none, a password may have several.
    user_id, colon, password = text.partition(":")
    if not colon:
        raise MalformedCredentials("credentials have no colon between user-id and password")
    return user_id, password


def challenge(realm: str) -> str:
    """The WWW-Authenticate value of a 401: the realm as a quoted-string, and charset="UTF-8".

    >>> challenge("WallyWorld")
    'Basic realm="WallyWorld", charset="UTF-8"'
    """
    # quoted-string (RFC 9110 §5.6.4): backslash-escape backslash and double quote.
    quoted = realm.replace("\\", "\\\\").replace('"', '\\"')
    return f'Basic realm="{quoted}", charset="UTF-8"'


def check_credentials(users: Mapping[str, str], user_id: str, password: str) -> bool:
    """True if `users[user_id] == password`, decided in constant time.

    Compare with hmac.compare_digest on bytes (or another constant-time comparison), never
    with ==, and do the same comparison work for an unknown user as for a known one, so the
    response time reveals neither how much of the password was right nor whether the user
    exists. An unknown user is never accepted, whatever the comparison against a dummy says.
    """
    expected = users.get(user_id)
    # compare_digest takes time independent of where the inputs differ; == stops at the first
    # differing byte. Bytes, because compare_digest refuses non-ASCII str.
    stored = expected.encode() if expected is not None else _DUMMY_PASSWORD
    matches = hmac.compare_digest(password.encode(), stored)
    # The unknown-user branch did the same comparison; only now is the answer allowed to differ.
    return matches and expected is not None


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
        # One 401 for missing, malformed and wrong credentials: the client learns nothing about
        # which part failed, and the challenge tells it how to try again.
        header = environ.get("HTTP_AUTHORIZATION")
        user_id = None
        if header:
            try:
                candidate, password = parse_authorization(header)
            except MalformedCredentials:
                pass
            else:
                if check_credentials(self.users, candidate, password):
                    user_id = candidate
        if user_id is None:
            body = b"unauthorized\n"
            start_response("401 Unauthorized", [
                ("WWW-Authenticate", challenge(self.realm)),
                ("Content-Type", "text/plain; charset=utf-8"),
                ("Content-Length", str(len(body))),
            ])
            return [body]
        body = f"hello, {user_id}".encode()
        start_response("200 OK", [
            ("Content-Type", "text/plain; charset=utf-8"),
            ("Content-Length", str(len(body))),
        ])
        return [body]
