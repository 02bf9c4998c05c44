"""The client side of the OAuth 2.0 authorization code flow with PKCE (RFC 6749, RFC 7636)."""

from __future__ import annotations

import base64
import hashlib
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import requests

REFRESH_MARGIN = 30.0  # refresh once this many seconds of validity, or fewer, remain


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
    """A fresh PKCE code_verifier: 43 to 128 characters of [A-Za-z0-9-._~] (RFC 7636 §4.1)."""
    # `secrets`, because an attacker who can predict the verifier can redeem a stolen code.
    return _random_token()


def _random_token() -> str:
    # 32 random bytes (256 bits) give exactly the verifier's 43-character minimum, and a state
    # well past the 128 bits RFC 6749 §10.10 asks for.
    return _b64url(secrets.token_bytes(32))


def code_challenge(verifier: str) -> str:
    """The S256 code_challenge: BASE64URL(SHA256(ASCII(verifier))), no padding (RFC 7636 §4.2).

    >>> code_challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk")
    'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM'
    """
    return _b64url(hashlib.sha256(verifier.encode("ascii")).digest())


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


class OAuthClient:
    """A public client (no secret) that logs a user in and keeps a valid access token.

    1. authorization_url(scope): the URL to send the user's browser to. Fresh random `state`
       and PKCE verifier for every call, remembered until their callback arrives.
    2. handle_callback(url): the URL the browser was redirected back to. Checks the state first,
       also for an error callback (StateMismatch for a missing, unknown or used state, and
       nothing is sent to the server); the state is used up either way. Then ?error=... is
       raised as OAuthError, a callback with neither code nor error as
       OAuthError("invalid_response"), and the code is exchanged at the token endpoint (POST
       form: grant_type=authorization_code, code, redirect_uri, client_id, code_verifier).
    3. access_token(): a token valid for at least REFRESH_MARGIN more seconds, refreshing it
       (grant_type=refresh_token, refresh_token, client_id) once that many or fewer remain
       (clock() >= expires_at - REFRESH_MARGIN). The server may
       return a new refresh token (rotation: keep it) or none (keep the one you had).
       OAuthError("login_required") with no tokens, or expired ones and no refresh token.
       A token without expires_in never looks stale.

    Token endpoint answers: 200 with an access_token is success; otherwise OAuthError with the
    JSON's "error" (and "error_description"), or OAuthError("invalid_response") when there is
    no such string (an HTML error page, a 200 without a token). Every request goes through
    `http` and gives up after `timeout` seconds (requests.Timeout propagates).
    """

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
        self.http = http or requests.Session()
        self.clock = clock
        self.timeout = timeout
        self.tokens: Tokens | None = None
        # One entry per flow in progress (a user may log in from two tabs); each state is
        # used once: popping it makes a replayed callback fail.
        self._pending: dict[str, str] = {}

    def authorization_url(self, scope: str) -> str:
        """authorize_url?response_type=code&client_id&redirect_uri&scope&state
        &code_challenge&code_challenge_method=S256"""
        # state ties the callback to this browser's flow (CSRF on the redirect endpoint);
        # the verifier stays here, only its hash travels through the browser.
        state = _random_token()
        verifier = make_verifier()
        self._pending[state] = verifier
        query = urlencode({
            "response_type": "code",
            "client_id": self.client_id,
            "redirect_uri": self.redirect_uri,
            "scope": scope,
            "state": state,
            "code_challenge": code_challenge(verifier),
            # S256, never plain: with plain, whoever sees the authorization request sees the
            # verifier too.
            "code_challenge_method": "S256",
        })
        return f"{self.authorize_url}?{query}"

    def handle_callback(self, callback_url: str) -> Tokens:
        """Finish the flow the callback belongs to; store and return the tokens."""
        params = {k: v[0] for k, v in parse_qs(urlsplit(callback_url).query).items()}
        # The state first: an unknown state means someone else's code (or an old one) is being
        # pushed into this client; do not even talk to the token endpoint.
        verifier = self._pending.pop(params.get("state", ""), None)
        if verifier is None:
            raise StateMismatch("the callback's state is missing, unknown or already used")
        if "error" in params:
            raise OAuthError(params["error"], params.get("error_description"))
        if "code" not in params:
            raise OAuthError("invalid_response", "the callback carries neither code nor error")
        self.tokens = self._token_request({
            "grant_type": "authorization_code",
            "code": params["code"],
            # RFC 6749 §4.1.3: required when it was in the authorization request.
            "redirect_uri": self.redirect_uri,
            "client_id": self.client_id,
            "code_verifier": verifier,
        })
        return self.tokens

    def access_token(self) -> str:
        """The current access token, refreshed first if it expires within REFRESH_MARGIN s."""
        if self.tokens is None:
            raise OAuthError("login_required", "no tokens: run the authorization flow first")
        expires_at = self.tokens.expires_at
        # Refresh a little early, so the token does not expire on its way to the API: once
        # REFRESH_MARGIN seconds or fewer remain.
        if expires_at is not None and self.clock() >= expires_at - REFRESH_MARGIN:
            if self.tokens.refresh_token is None:
                raise OAuthError("login_required", "the access token expired and cannot be refreshed")
            old_refresh = self.tokens.refresh_token
            fresh = self._token_request({
                "grant_type": "refresh_token",
                "refresh_token": old_refresh,
                "client_id": self.client_id,
            })
            # RFC 6749 §6: the server MAY issue a new refresh token; if it did, the old one is
            # dead (rotation), so keep the new one, else keep the old.
            fresh.refresh_token = fresh.refresh_token or old_refresh
            self.tokens = fresh
        return self.tokens.access_token

    def _token_request(self, form: dict[str, str]) -> Tokens:
        """POST `form` to the token endpoint; Tokens, or OAuthError with the server's error."""
        sent_at = self.clock()  # expires_in counts from the response; the request time is safe
        # A timeout: a token endpoint that accepts the connection and never answers must not
        # hang the application (requests.Timeout propagates).
        response = self.http.post(self.token_url, data=form, timeout=self.timeout,
                                  headers={"Accept": "application/json"})
        try:
            body: dict[str, Any] = response.json()
        except ValueError:
            body = {}
        if not isinstance(body, dict):
            body = {}
        # RFC 6749 §5.2: errors come as 400 (or 401) with {"error": ..., "error_description"}.
        if response.status_code != 200 or "access_token" not in body:
            error = body.get("error")
            if not isinstance(error, str):  # a proxy's HTML page, a 200 without a token...
                raise OAuthError("invalid_response", f"HTTP {response.status_code} without "
                                 "an access_token or an error code")
            raise OAuthError(error, body.get("error_description"))
        expires_in = body.get("expires_in")
        return Tokens(
            access_token=body["access_token"],
            refresh_token=body.get("refresh_token"),
            expires_at=sent_at + float(expires_in) if expires_in is not None else None,
            scope=body.get("scope"),
        )
