"""The client side of the OAuth 2.0 authorization code flow with PKCE (RFC 6749, RFC 7636)."""

# Alternative design: each flow in progress is a small object kept by its state; the token
# response is parsed into a separate _Grant and merged into the current Tokens with
# dataclasses.replace (a missing refresh_token keeps the old one); the refresh decision reads
# "remaining <= REFRESH_MARGIN"; the verifier is 128 characters drawn one by one from the whole
# unreserved alphabet, and the state is hex.

from __future__ import annotations

import base64
import dataclasses
import hashlib
import secrets
import string
import time
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlencode, urlsplit

import requests

REFRESH_MARGIN = 30.0
_UNRESERVED = string.ascii_letters + string.digits + "-._~"


@dataclass
class Tokens:
    """What the token endpoint granted; `expires_at` is on the client's clock (None: unknown)."""

    access_token: str
    refresh_token: str | None
    expires_at: float | None
    scope: str | None


class OAuthError(Exception):
    """The authorization server (or the callback) reported an error, e.g. "invalid_grant"."""

    def __init__(self, error: str, description: str | None = None) -> None:
        super().__init__(error, description)
        self.error = error
        self.description = description

    def __str__(self) -> str:
        return f"{self.error}: {self.description}" if self.description else self.error


class StateMismatch(OAuthError):
    """The callback's state is missing, unknown or already used: a forged or replayed callback."""

    def __init__(self, description: str) -> None:
        super().__init__("state_mismatch", description)


def make_verifier() -> str:
    return "".join(secrets.choice(_UNRESERVED) for _ in range(128))


def code_challenge(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).decode("ascii").rstrip("=")


@dataclass(frozen=True)
class _Flow:
    verifier: str
    scope: str


@dataclass(frozen=True)
class _Grant:
    access_token: str
    refresh_token: str | None
    expires_in: float | None
    scope: str | None


class OAuthClient:
    """A public client (no secret) that logs a user in and keeps a valid access token."""

    def __init__(
        self,
        *,
        client_id: str,
        authorize_url: str,
        token_url: str,
        redirect_uri: str,
        http: requests.Session | None = None,
        clock: Callable[[], float] = time.monotonic,
        timeout: float = 10.0,
    ) -> None:
        self.client_id = client_id
        self.authorize_url = authorize_url
        self.token_url = token_url
        self.redirect_uri = redirect_uri
        self.http = http if http is not None else requests.Session()
        self.clock = clock
        self.timeout = timeout
        self.tokens: Tokens | None = None
        self._flows: dict[str, _Flow] = {}

    def authorization_url(self, scope: str) -> str:
        state, flow = secrets.token_hex(20), _Flow(make_verifier(), scope)
        self._flows[state] = flow
        return self.authorize_url + "?" + urlencode([
            ("response_type", "code"), ("client_id", self.client_id),
            ("redirect_uri", self.redirect_uri), ("scope", scope), ("state", state),
            ("code_challenge", code_challenge(flow.verifier)),
            ("code_challenge_method", "S256"),
        ])

    def handle_callback(self, callback_url: str) -> Tokens:
        params = dict(parse_qsl(urlsplit(callback_url).query, keep_blank_values=True))
        flow = self._flows.pop(params.get("state") or "\0", None)
        if flow is None:
            raise StateMismatch("no flow of ours has this state")
        if "error" in params:
            raise OAuthError(params["error"], params.get("error_description") or None)
        code = params.get("code")
        if not code:
            raise OAuthError("invalid_response", "a callback without code or error")
        started = self.clock()
        grant = self._post({"grant_type": "authorization_code", "code": code,
                            "redirect_uri": self.redirect_uri, "client_id": self.client_id,
                            "code_verifier": flow.verifier})
        self.tokens = Tokens(grant.access_token, grant.refresh_token,
                             None if grant.expires_in is None else started + grant.expires_in,
                             grant.scope)
        return self.tokens

    def access_token(self) -> str:
        tokens = self.tokens
        if tokens is None:
            raise OAuthError("login_required", "log in first")
        if tokens.expires_at is None or tokens.expires_at - self.clock() > REFRESH_MARGIN:
            return tokens.access_token
        if not tokens.refresh_token:
            raise OAuthError("login_required", "expired, and nothing to refresh it with")
        started = self.clock()
        grant = self._post({"grant_type": "refresh_token", "refresh_token": tokens.refresh_token,
                            "client_id": self.client_id})
        self.tokens = dataclasses.replace(
            tokens,
            access_token=grant.access_token,
            refresh_token=grant.refresh_token or tokens.refresh_token,  # rotation is optional
            expires_at=None if grant.expires_in is None else started + grant.expires_in,
            scope=grant.scope or tokens.scope,
        )
        return self.tokens.access_token

    def _post(self, form: dict[str, str]) -> _Grant:
        response = self.http.post(self.token_url, data=form, timeout=self.timeout,
                                  headers={"Accept": "application/json"})
        try:
            body = response.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            raise OAuthError("invalid_response", f"HTTP {response.status_code}, not a JSON object")
        if response.ok and isinstance(body.get("access_token"), str):
            expires_in = body.get("expires_in")
            return _Grant(body["access_token"], body.get("refresh_token"),
                          None if expires_in is None else float(expires_in), body.get("scope"))
        error = body.get("error")
        if isinstance(error, str):
            raise OAuthError(error, body.get("error_description"))
        raise OAuthError("invalid_response", f"HTTP {response.status_code} without a token")
