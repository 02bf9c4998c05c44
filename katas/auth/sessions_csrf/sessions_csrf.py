"""Server-side sessions in signed cookies, rotated on login, with a synchronizer CSRF token."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

StartResponse = Callable[..., Any]
COOKIE_NAME = "session"
CSRF_HEADER = "X-CSRF-Token"  # WSGI: environ["HTTP_X_CSRF_TOKEN"]
CSRF_FIELD = "csrf_token"  # the form field, for HTML forms that cannot set headers
MAX_BODY = 64 * 1024  # bytes of a POST body, at most; more is 413


def sign_value(secret: bytes, value: str) -> str:
    """`value` + "." + base64url(HMAC-SHA256(secret, value)) without padding.

    The format of itsdangerous.Signer(secret, key_derivation="none", digest_method=sha256).
    """
    # TODO: hmac.new(secret, value.encode(), hashlib.sha256), base64url, strip "=".
    raise NotImplementedError("sign_value")


def unsign_value(secret: bytes, signed: str) -> str | None:
    """The value if `signed` carries a valid signature (split on the last "."), else None.

    Compare the signatures in constant time.
    """
    # TODO: rsplit once on ".", recompute the signature, hmac.compare_digest.
    raise NotImplementedError("unsign_value")


def session_cookie(value: str, *, max_age: int | None = None) -> str:
    """The Set-Cookie header value for the session cookie.

    "session=<value>; Path=/; HttpOnly; Secure; SameSite=Lax", plus "; Max-Age=<n>" when
    `max_age` is given (Max-Age=0 deletes the cookie).
    """
    # TODO: HttpOnly (no JavaScript access), Secure (HTTPS only), SameSite=Lax, Path=/.
    raise NotImplementedError("session_cookie")


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
        # TODO: the server-side store: session id -> {"user": str | None, "csrf": str}.

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        # TODO: load or create the session, route on method and path, answer JSON.
        raise NotImplementedError("SessionApp.__call__")
