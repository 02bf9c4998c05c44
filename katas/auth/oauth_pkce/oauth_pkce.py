"""The client side of the OAuth 2.0 authorization code flow with PKCE (RFC 6749, RFC 7636)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

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
    # TODO: 32 random bytes from `secrets`, base64url without padding (43 characters).
    raise NotImplementedError("make_verifier")


def code_challenge(verifier: str) -> str:
    """The S256 code_challenge: BASE64URL(SHA256(ASCII(verifier))), no padding (RFC 7636 §4.2).

    >>> code_challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk")
    'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM'
    """
    # TODO: hashlib.sha256, base64.urlsafe_b64encode, strip "=".
    raise NotImplementedError("code_challenge")


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
        # TODO: remember the pending flows: state -> code_verifier.

    def authorization_url(self, scope: str) -> str:
        """authorize_url?response_type=code&client_id&redirect_uri&scope&state
        &code_challenge&code_challenge_method=S256"""
        # TODO: a state from `secrets`, a verifier, remember both, urlencode the parameters.
        raise NotImplementedError("OAuthClient.authorization_url")

    def handle_callback(self, callback_url: str) -> Tokens:
        """Finish the flow the callback belongs to; store and return the tokens."""
        # TODO: parse the query, pop the flow by its state, check for error, exchange the code.
        raise NotImplementedError("OAuthClient.handle_callback")

    def access_token(self) -> str:
        """The current access token, refreshed first if it expires within REFRESH_MARGIN s."""
        # TODO: compare self.clock() with expires_at - REFRESH_MARGIN; refresh when needed.
        raise NotImplementedError("OAuthClient.access_token")
