"""Tests for the OAuth 2.0 + PKCE client, against a real oauthlib authorization server."""

from __future__ import annotations

import json
import random
import re
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
import requests
from oauthlib.oauth2 import RequestValidator, WebApplicationServer
from oauthlib.oauth2.rfc6749 import errors

from dojo.testing import ManualClock, serve_wsgi

from .oauth_pkce import (
    REFRESH_MARGIN,
    OAuthClient,
    OAuthError,
    StateMismatch,
    code_challenge,
    make_verifier,
)

CLIENT_ID = "kata-client"
REDIRECT_URI = "http://127.0.0.1:1/callback"  # never served: the test hands the redirect over
USER = "alice"
EXPIRES_IN = 3600
VERIFIER_GRAMMAR = re.compile(r"[A-Za-z0-9\-._~]{43,128}")  # RFC 7636 §4.1


# --- the authorization server: oauthlib's, with an in-memory store ------------------------------


class Validator(RequestValidator):  # type: ignore[misc]
    """oauthlib's storage hooks for one public client, PKCE required, refresh tokens rotated."""

    def __init__(self) -> None:
        self.codes: dict[str, dict[str, Any]] = {}
        self.access: dict[str, dict[str, Any]] = {}
        self.refresh: dict[str, dict[str, Any]] = {}
        self.rotate = True

    def validate_client_id(self, client_id: str, request: Any, *args: Any, **kw: Any) -> bool:
        return client_id == CLIENT_ID

    def validate_redirect_uri(self, client_id: str, redirect_uri: str, request: Any,
                              *args: Any, **kw: Any) -> bool:
        return redirect_uri == REDIRECT_URI

    def get_default_redirect_uri(self, client_id: str, request: Any, *args: Any,
                                 **kw: Any) -> str:
        return REDIRECT_URI

    def validate_response_type(self, client_id: str, response_type: str, client: Any,
                               request: Any, *args: Any, **kw: Any) -> bool:
        return response_type == "code"

    def validate_scopes(self, client_id: str, scopes: list[str], client: Any, request: Any,
                        *args: Any, **kw: Any) -> bool:
        return set(scopes) <= {"profile", "email"}

    def get_default_scopes(self, client_id: str, request: Any, *args: Any, **kw: Any) -> list[str]:
        return ["profile"]

    def is_pkce_required(self, client_id: str, request: Any) -> bool:
        return True

    def save_authorization_code(self, client_id: str, code: dict[str, str], request: Any,
                                *args: Any, **kw: Any) -> None:
        self.codes[code["code"]] = {
            "client_id": client_id, "redirect_uri": request.redirect_uri, "user": USER,
            "scopes": request.scopes, "challenge": request.code_challenge,
            "method": request.code_challenge_method,
        }

    def client_authentication_required(self, request: Any, *args: Any, **kw: Any) -> bool:
        return False  # a public client: PKCE, not a secret, protects the code

    def authenticate_client_id(self, client_id: str, request: Any, *args: Any, **kw: Any) -> bool:
        if client_id != CLIENT_ID:
            return False
        request.client = type("Client", (), {"client_id": client_id})()
        return True

    def validate_code(self, client_id: str, code: str, client: Any, request: Any,
                      *args: Any, **kw: Any) -> bool:
        entry = self.codes.get(code)
        if entry is None or entry["client_id"] != client_id:
            return False
        request.user, request.scopes = entry["user"], entry["scopes"]
        return True

    def get_code_challenge(self, code: str, request: Any) -> str | None:
        return self.codes.get(code, {}).get("challenge")

    def get_code_challenge_method(self, code: str, request: Any) -> str | None:
        return self.codes.get(code, {}).get("method")

    def confirm_redirect_uri(self, client_id: str, code: str, redirect_uri: str, client: Any,
                             request: Any, *args: Any, **kw: Any) -> bool:
        return self.codes.get(code, {}).get("redirect_uri") == redirect_uri

    def validate_grant_type(self, client_id: str, grant_type: str, client: Any, request: Any,
                            *args: Any, **kw: Any) -> bool:
        return grant_type in ("authorization_code", "refresh_token")

    def invalidate_authorization_code(self, client_id: str, code: str, request: Any,
                                      *args: Any, **kw: Any) -> None:
        self.codes.pop(code, None)  # one use only

    def save_bearer_token(self, token: dict[str, Any], request: Any, *args: Any,
                          **kw: Any) -> None:
        if request.grant_type == "refresh_token" and self.rotate:
            self.refresh.pop(request.refresh_token, None)  # rotation: the old one is dead
        grant = {"user": request.user, "scopes": request.scopes}
        self.access[token["access_token"]] = grant
        if "refresh_token" in token:
            self.refresh[token["refresh_token"]] = grant

    def validate_refresh_token(self, refresh_token: str, client: Any, request: Any,
                               *args: Any, **kw: Any) -> bool:
        entry = self.refresh.get(refresh_token)
        if entry is None:
            return False
        request.user = entry["user"]
        return True

    def get_original_scopes(self, refresh_token: str, request: Any, *args: Any,
                            **kw: Any) -> list[str]:
        return list(self.refresh[refresh_token]["scopes"])

    def rotate_refresh_token(self, request: Any) -> bool:
        return self.rotate

    def validate_bearer_token(self, token: str, scopes: list[str], request: Any) -> bool:
        entry = self.access.get(token)
        if entry is None:
            return False
        request.user, request.scopes = entry["user"], entry["scopes"]
        return set(scopes) <= set(entry["scopes"])


@dataclass
class AuthServer:
    """What the test can see of the authorization server: its requests and its decisions."""

    base: str
    validator: Validator
    approve: bool = True  # the user's answer on the consent page
    # RFC 6749 §6: a server MAY issue a new refresh token with each refresh (and kill the old
    # one). Rotating: it does. Not rotating: the refresh response carries no refresh_token at
    # all, and the old one stays good.
    rotate: bool = True
    # A misbehaving token endpoint: given the form, the (status, headers, body) to answer
    # instead of oauthlib's, or None to let oauthlib answer.
    token_override: Callable[[dict[str, str]], tuple[int, dict[str, str], str] | None] | None = None
    authorize_requests: list[dict[str, str]] = field(default_factory=list)
    token_requests: list[dict[str, str]] = field(default_factory=list)
    token_request_headers: list[dict[str, str]] = field(default_factory=list)

    def grants(self, grant_type: str) -> list[dict[str, str]]:
        return [r for r in self.token_requests if r.get("grant_type") == grant_type]


def _wsgi_app(state: AuthServer, oauth: WebApplicationServer) -> Any:
    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        path, query = environ["PATH_INFO"], environ.get("QUERY_STRING", "")
        uri = f"{state.base}{path}" + (f"?{query}" if query else "")
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length).decode() if length else ""
        headers = {k[5:].replace("_", "-").title(): v for k, v in environ.items()
                   if k.startswith("HTTP_")}
        if environ.get("CONTENT_TYPE"):
            headers["Content-Type"] = environ["CONTENT_TYPE"]

        def reply(status: int, out_headers: dict[str, str], out_body: str | None) -> list[bytes]:
            data = (out_body or "").encode()
            start_response(f"{status} {'OK' if status == 200 else 'X'}",
                           [*out_headers.items(), ("Content-Length", str(len(data)))])
            return [data]

        if path == "/authorize":
            state.authorize_requests.append({k: v[0] for k, v in parse_qs(query).items()})
            try:
                scopes, credentials = oauth.validate_authorization_request(uri, "GET", body, headers)
            except errors.FatalClientError as exc:  # bad client or redirect: no redirect at all
                return reply(exc.status_code, {"Content-Type": "application/json"}, exc.json)
            except errors.OAuth2Error as exc:  # reported to the client through its redirect
                return reply(302, {"Location": exc.in_uri(exc.redirect_uri or REDIRECT_URI)}, "")
            if not state.approve:
                callback = {"error": "access_denied", "error_description": "the user said no"}
                if credentials.get("state"):
                    callback["state"] = credentials["state"]
                return reply(302, {"Location": f"{REDIRECT_URI}?{urlencode(callback)}"}, "")
            out_headers, out_body, status = oauth.create_authorization_response(
                uri, "GET", body, headers, scopes=scopes, credentials={"user": USER})
            return reply(status, out_headers, out_body)
        if path == "/token":
            form = {k: v[0] for k, v in parse_qs(body).items()}
            state.token_requests.append(form)
            state.token_request_headers.append(headers)
            answer = state.token_override(form) if state.token_override else None
            if answer is not None:
                return reply(*answer)
            state.validator.rotate = state.rotate
            oauth.refresh_grant.issue_new_refresh_tokens = state.rotate
            out_headers, out_body, status = oauth.create_token_response(uri, "POST", body, headers)
            return reply(status, out_headers, out_body)
        if path == "/me":
            valid, request = oauth.verify_request(uri, "GET", body, headers, scopes=["profile"])
            if not valid:
                return reply(401, {"WWW-Authenticate": 'Bearer error="invalid_token"'}, "")
            return reply(200, {"Content-Type": "application/json"}, json.dumps({"user": request.user}))
        return reply(404, {}, "")

    return app


@pytest.fixture
def auth_server(monkeypatch: pytest.MonkeyPatch) -> Iterator[AuthServer]:
    # oauthlib insists on https; the test server is plain HTTP on loopback only.
    monkeypatch.setenv("OAUTHLIB_INSECURE_TRANSPORT", "1")
    validator = Validator()
    oauth = WebApplicationServer(validator, token_expires_in=EXPIRES_IN)
    # Like most providers today: S256 only. "plain" shows the verifier to whoever sees the URL.
    methods = type(oauth.auth_grant)._code_challenge_methods
    oauth.auth_grant._code_challenge_methods = {"S256": methods["S256"]}
    state = AuthServer("", validator)
    with serve_wsgi(_wsgi_app(state, oauth)) as port:
        state.base = f"http://127.0.0.1:{port}"
        yield state


@pytest.fixture
def clock() -> ManualClock:
    """The client's clock; the test moves it."""
    return ManualClock(1000.0)


@pytest.fixture
def client(auth_server: AuthServer, http: requests.Session, clock: ManualClock) -> OAuthClient:
    return OAuthClient(client_id=CLIENT_ID, authorize_url=f"{auth_server.base}/authorize",
                       token_url=f"{auth_server.base}/token", redirect_uri=REDIRECT_URI,
                       http=http, clock=clock)


def browse(http: requests.Session, authorization_url: str) -> str:
    """The user's browser: open the authorization URL, return where the server redirects it."""
    response = http.get(authorization_url, allow_redirects=False, timeout=5)
    assert response.status_code == 302, (
        f"the authorization server answered {response.status_code} instead of redirecting back: "
        f"{response.text[:300]!r}. Check client_id, redirect_uri and response_type=code"
    )
    return response.headers["Location"]


def log_in(client: OAuthClient, http: requests.Session, scope: str = "profile") -> Any:
    callback = browse(http, client.authorization_url(scope))
    try:
        return client.handle_callback(callback)
    except OAuthError as exc:
        pytest.fail(f"the flow failed with {exc} (callback {callback!r}); the server requires "
                    "PKCE with code_challenge_method=S256, and the token request needs "
                    "grant_type, code, redirect_uri, client_id and code_verifier")


def expect_oauth_error(call: Any, error: str, why: str) -> None:
    """`call()` must raise OAuthError with `error` (the code the server or callback reported)."""
    try:
        call()
    except OAuthError as exc:
        assert exc.error == error, f"{why}: expected OAuthError {error!r}, got {exc.error!r}"
        assert str(exc).startswith(error), (
            f"{why}: the OAuthError's message {str(exc)!r} must start with {error!r}")
        return
    except NotImplementedError:
        raise
    except Exception as exc:
        pytest.fail(f"{why}: crashed with {type(exc).__name__}: {exc}. Check the status code "
                    f"and raise OAuthError({error!r}) from the server's JSON (RFC 6749 §5.2)")
    pytest.fail(f"{why}: no error was raised; expected OAuthError {error!r}")


# --- PKCE -----------------------------------------------------------------------------------------


@pytest.mark.stage(1, "pkce and login")
def test_code_challenge_reproduces_rfc_7636_appendix_b() -> None:
    got = code_challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk")
    assert got == "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM", (
        f"RFC 7636 Appendix B: BASE64URL(SHA256(ASCII(verifier))) without '=' padding, got {got!r}"
    )


@pytest.mark.stage(1, "pkce and login")
def test_verifiers_follow_the_grammar_and_never_repeat() -> None:
    verifiers = [make_verifier() for _ in range(50)]
    for verifier in verifiers:
        assert VERIFIER_GRAMMAR.fullmatch(verifier), (
            f"{verifier!r}: RFC 7636 §4.1 wants 43 to 128 characters of A-Z a-z 0-9 - . _ ~"
        )
    assert len(set(verifiers)) == len(verifiers), "verifiers repeated: use secrets.token_bytes"


# --- the flow, against the real authorization server ---------------------------------------------


@pytest.mark.stage(1, "pkce and login")
def test_the_authorization_url_carries_state_and_an_s256_challenge(
    client: OAuthClient,
) -> None:
    url = client.authorization_url("profile email")
    parts = urlsplit(url)
    params = {k: v[0] for k, v in parse_qs(parts.query).items()}
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == client.authorize_url
    expected = {"response_type": "code", "client_id": CLIENT_ID, "redirect_uri": REDIRECT_URI,
                "scope": "profile email", "code_challenge_method": "S256"}
    assert {k: params.get(k) for k in expected} == expected, f"authorization URL params: {params}"
    assert len(params.get("state", "")) >= 22, "state needs 128+ random bits (22+ base64url chars)"
    assert re.fullmatch(r"[A-Za-z0-9_-]{43}", params.get("code_challenge", "")), (
        f"code_challenge {params.get('code_challenge')!r} is not an unpadded base64url SHA-256"
    )


@pytest.mark.stage(1, "pkce and login")
def test_a_user_logs_in_and_the_token_works(
    client: OAuthClient, http: requests.Session, auth_server: AuthServer, clock: ManualClock
) -> None:
    tokens = log_in(client, http)
    assert tokens.access_token and tokens.refresh_token, f"expected both tokens, got {tokens!r}"
    assert tokens.expires_at == clock.now + EXPIRES_IN, (
        f"expires_at must be the client's clock plus expires_in ({clock.now} + {EXPIRES_IN}), "
        f"got {tokens.expires_at!r}"
    )
    assert client.access_token() == tokens.access_token
    response = http.get(f"{auth_server.base}/me", timeout=5,
                        headers={"Authorization": f"Bearer {client.access_token()}"})
    assert response.status_code == 200 and response.json() == {"user": USER}
    (exchange,) = auth_server.grants("authorization_code")
    challenge = auth_server.authorize_requests[-1]["code_challenge"]
    assert code_challenge(exchange["code_verifier"]) == challenge
    assert exchange.get("redirect_uri") == REDIRECT_URI, (
        "RFC 6749 §4.1.3: the token request repeats the redirect_uri of the authorization request"
    )


@pytest.mark.stage(1, "pkce and login")
def test_the_verifier_never_travels_through_the_browser(
    client: OAuthClient, http: requests.Session, auth_server: AuthServer
) -> None:
    log_in(client, http)
    verifier = auth_server.grants("authorization_code")[0]["code_verifier"]
    front_channel = json.dumps(auth_server.authorize_requests)
    assert verifier not in front_channel, (
        "the code_verifier appeared in the authorization request: anyone who sees the URL "
        "(history, logs, a malicious app on the redirect) can redeem the code. Send only "
        "its S256 challenge"
    )


@pytest.mark.stage(2, "forged callbacks")
def test_a_forged_callback_is_refused_before_any_token_request(
    client: OAuthClient, http: requests.Session, auth_server: AuthServer
) -> None:
    """Login CSRF: an attacker feeds the client their own code, with a state it never issued."""
    attacker = OAuthClient(client_id=CLIENT_ID, authorize_url=client.authorize_url,
                           token_url=client.token_url, redirect_uri=REDIRECT_URI, http=http)
    attackers_callback = browse(http, attacker.authorization_url("profile"))
    client.authorization_url("profile")  # the victim's own flow is in progress
    params = parse_qs(urlsplit(attackers_callback).query)
    forged = {
        "someone else's state": attackers_callback,
        "no state": f"{REDIRECT_URI}?{urlencode({'code': params['code'][0]})}",
    }
    for what, url in forged.items():
        outcome = "tokens"
        try:
            client.handle_callback(url)
        except StateMismatch as exc:
            outcome = "StateMismatch"
            assert exc.error == "state_mismatch" and str(exc).startswith("state_mismatch: ")
        except OAuthError as exc:
            outcome = f"OAuthError {exc.error!r}"
        assert not auth_server.token_requests, (
            f"{what}: the code was sent to the token endpoint: check the state first; a callback "
            "whose state this client did not issue is a CSRF attempt"
        )
        assert outcome == "StateMismatch", f"{what}: expected StateMismatch, got {outcome}"


@pytest.mark.stage(2, "forged callbacks")
def test_a_callback_is_good_only_once(
    client: OAuthClient, http: requests.Session
) -> None:
    callback = browse(http, client.authorization_url("profile"))
    client.handle_callback(callback)
    try:
        client.handle_callback(callback)
    except StateMismatch:
        return
    except OAuthError as exc:
        pytest.fail(f"a replayed callback reached the token endpoint ({exc}): forget a state "
                    "once its callback has been handled, and refuse it with StateMismatch")
    pytest.fail("a replayed callback was accepted: forget a state once its callback has been "
                "handled, and refuse it with StateMismatch")


@pytest.mark.stage(2, "forged callbacks")
def test_two_flows_in_progress_each_finish(
    client: OAuthClient, http: requests.Session
) -> None:
    first = browse(http, client.authorization_url("profile"))
    second = browse(http, client.authorization_url("email"))
    assert client.handle_callback(second).scope == "email"
    try:
        tokens = client.handle_callback(first)
    except OAuthError as exc:
        pytest.fail(f"the first of two flows failed ({exc}): keep one verifier per state, "
                    "not just the latest (a user may log in from two tabs)")
    assert tokens.scope == "profile"


@pytest.mark.stage(2, "forged callbacks")
def test_the_state_comes_from_secrets_not_random(client: OAuthClient) -> None:
    states = []
    for _ in range(2):
        random.seed(99)
        states.append(parse_qs(urlsplit(client.authorization_url("profile")).query)["state"][0])
    assert states[0] != states[1], (
        "re-seeding `random` reproduced the state: an attacker who can predict it can forge "
        "callbacks; use `secrets`"
    )


@pytest.mark.stage(3, "errors and bad servers")
def test_a_refusal_by_the_user_is_surfaced(
    client: OAuthClient, http: requests.Session, auth_server: AuthServer
) -> None:
    auth_server.approve = False
    callback = browse(http, client.authorization_url("profile"))
    expect_oauth_error(lambda: client.handle_callback(callback), "access_denied",
                       f"the callback {callback!r}")
    assert not auth_server.token_requests, "an error callback has no code to exchange"


@pytest.mark.stage(2, "forged callbacks")
def test_a_forged_error_callback_is_refused_by_its_state(
    client: OAuthClient, http: requests.Session, auth_server: AuthServer
) -> None:
    """An error callback is a callback: only the state says it belongs to a flow of ours."""
    attacker = OAuthClient(client_id=CLIENT_ID, authorize_url=client.authorize_url,
                           token_url=client.token_url, redirect_uri=REDIRECT_URI, http=http)
    someone_elses = parse_qs(urlsplit(attacker.authorization_url("profile")).query)["state"][0]
    victims_flow = client.authorization_url("profile")
    for what, query in {
        "no state": {"error": "access_denied"},
        "someone else's state": {"error": "access_denied", "state": someone_elses},
        "an empty state": {"error": "server_error", "state": ""},
    }.items():
        outcome = "nothing raised"
        try:
            client.handle_callback(f"{REDIRECT_URI}?{urlencode(query)}")
        except StateMismatch:
            outcome = "StateMismatch"
        except OAuthError as exc:
            outcome = f"OAuthError {exc.error!r}"
        assert outcome == "StateMismatch", (
            f"an error callback with {what}: expected StateMismatch, got {outcome}. Check the "
            "state before looking at ?error=: otherwise anyone can make this client believe the "
            "user refused (or the server failed)"
        )
    try:
        client.handle_callback(browse(http, victims_flow))
    except OAuthError as exc:
        pytest.fail(f"the forged callbacks broke the flow that was really in progress: {exc}")
    assert len(auth_server.grants("authorization_code")) == 1


@pytest.mark.stage(3, "errors and bad servers")
def test_a_flow_that_ended_in_an_error_is_over(
    client: OAuthClient, http: requests.Session, auth_server: AuthServer
) -> None:
    auth_server.approve = False
    callback = browse(http, client.authorization_url("profile"))
    expect_oauth_error(lambda: client.handle_callback(callback), "access_denied",
                       f"the callback {callback!r}")
    state = parse_qs(urlsplit(callback).query)["state"][0]
    late = f"{REDIRECT_URI}?{urlencode({'code': 'a-code-from-elsewhere', 'state': state})}"
    try:
        client.handle_callback(late)
    except StateMismatch:
        pass
    except OAuthError as exc:
        pytest.fail(f"a code callback with the state of a flow that already ended in an error "
                    f"reached the token endpoint ({exc}): an error callback uses up its state too")
    else:
        pytest.fail("a code callback with a used-up state was accepted")
    assert not auth_server.token_requests, "nothing of an ended flow may reach the token endpoint"


@pytest.mark.stage(3, "errors and bad servers")
def test_a_callback_with_neither_code_nor_error_is_an_invalid_response(
    client: OAuthClient, http: requests.Session, auth_server: AuthServer
) -> None:
    state = parse_qs(urlsplit(client.authorization_url("profile")).query)["state"][0]
    expect_oauth_error(lambda: client.handle_callback(f"{REDIRECT_URI}?state={state}"),
                       "invalid_response", "a callback with its state and nothing else")
    assert not auth_server.token_requests


@pytest.mark.stage(3, "errors and bad servers")
def test_a_rejected_code_surfaces_the_servers_error(
    client: OAuthClient, http: requests.Session
) -> None:
    callback = browse(http, client.authorization_url("profile"))
    tampered = re.sub(r"code=[^&]+", "code=not-a-real-code", callback)
    expect_oauth_error(lambda: client.handle_callback(tampered), "invalid_grant",
                       "the token endpoint answered 400 {'error': 'invalid_grant'} for a bad code")
    try:
        client.handle_callback(callback)
    except StateMismatch:
        return
    except OAuthError as exc:
        pytest.fail(f"after a failed exchange, the same state was tried again ({exc}): a state is "
                    "used up by its first callback, whatever came of it")
    pytest.fail("after a failed exchange, a second callback with the same state got tokens: a "
                "state is used up by its first callback, whatever came of it (pop it at once)")


@pytest.mark.stage(3, "errors and bad servers")
def test_no_access_token_before_login(client: OAuthClient) -> None:
    expect_oauth_error(client.access_token, "login_required", "access_token() before any login")


# --- refresh ----------------------------------------------------------------------------------------


@pytest.mark.stage(4, "refreshing tokens")
def test_the_token_is_refreshed_shortly_before_it_expires(
    client: OAuthClient, http: requests.Session, auth_server: AuthServer, clock: ManualClock
) -> None:
    first = log_in(client, http).access_token
    clock.now += EXPIRES_IN - REFRESH_MARGIN - 60
    assert client.access_token() == first, "still a minute of margin left: no refresh yet"
    assert not auth_server.grants("refresh_token"), "refreshed a token that was still fresh"
    clock.now += 59.5  # REFRESH_MARGIN + 0.5 s left: still fresh
    assert client.access_token() == first and not auth_server.grants("refresh_token"), (
        f"with {REFRESH_MARGIN + 0.5} s of validity left the token was refreshed: refresh once "
        "REFRESH_MARGIN seconds or fewer remain (clock() >= expires_at - REFRESH_MARGIN)"
    )
    clock.now += 0.5  # exactly REFRESH_MARGIN left: refresh now
    second = client.access_token()
    assert auth_server.grants("refresh_token"), (
        f"the token expires in {REFRESH_MARGIN} s and was not refreshed: refresh once "
        "clock() >= expires_at - REFRESH_MARGIN"
    )
    assert second != first
    response = http.get(f"{auth_server.base}/me", timeout=5,
                        headers={"Authorization": f"Bearer {second}"})
    assert response.status_code == 200, "the refreshed token must work at the resource"
    assert client.access_token() == second, "a fresh token needs no second refresh"
    assert len(auth_server.grants("refresh_token")) == 1


@pytest.mark.stage(4, "refreshing tokens")
@pytest.mark.parametrize("rotate", [True, False], ids=["rotating server", "non-rotating server"])
def test_refresh_after_refresh_keeps_a_working_refresh_token(
    client: OAuthClient, http: requests.Session, auth_server: AuthServer, clock: ManualClock,
    rotate: bool,
) -> None:
    auth_server.rotate = rotate
    first_refresh = log_in(client, http).refresh_token
    for round_ in range(3):
        clock.now += EXPIRES_IN
        try:
            token = client.access_token()
        except OAuthError as exc:
            pytest.fail(
                f"refresh #{round_ + 1} failed with {exc}: " + (
                    "the server rotates refresh tokens (each refresh returns a new one and kills "
                    "the old); store the new one" if rotate else
                    "this server does not rotate (RFC 6749 §6 makes it optional): its refresh "
                    "response has no refresh_token, so keep the one you had; replacing the "
                    "tokens with the response as is loses it"))
        response = http.get(f"{auth_server.base}/me", timeout=5,
                            headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 200, f"the token of refresh #{round_ + 1} does not work"
    used = [r["refresh_token"] for r in auth_server.grants("refresh_token")]
    assert len(used) == 3
    if rotate:
        assert len(set(used)) == 3, f"a rotating server's refresh tokens were reused: {used}"
    else:
        assert used == [first_refresh] * 3, (
            f"a non-rotating server's one refresh token should have been sent each time: {used}")


@pytest.mark.stage(4, "refreshing tokens")
@pytest.mark.parametrize("rotate", [True, False], ids=["rotating server", "non-rotating server"])
def test_a_revoked_refresh_token_surfaces_invalid_grant(
    client: OAuthClient, http: requests.Session, auth_server: AuthServer, clock: ManualClock,
    rotate: bool,
) -> None:
    auth_server.rotate = rotate
    log_in(client, http)
    clock.now += EXPIRES_IN
    client.access_token()
    auth_server.validator.refresh.clear()  # the user logged out everywhere
    clock.now += EXPIRES_IN
    expect_oauth_error(client.access_token, "invalid_grant",
                       "refreshing with a refresh token the server revoked")


# --- a token endpoint that misbehaves -------------------------------------------------------------

JSON = {"Content-Type": "application/json"}
BAD_ANSWERS = {
    "200 without an access_token": (200, JSON, "{}", "invalid_response"),
    "200 with a JSON list": (200, JSON, "[]", "invalid_response"),
    "200 that is not JSON": (200, {"Content-Type": "text/plain"}, "ok", "invalid_response"),
    "a proxy's 502 page": (502, {"Content-Type": "text/html"}, "<h1>Bad Gateway</h1>",
                           "invalid_response"),
    "500 with an empty body": (500, {}, "", "invalid_response"),
    "400 without a description": (400, JSON, '{"error": "invalid_request"}', "invalid_request"),
    "401 invalid_client": (401, JSON, '{"error": "invalid_client", "error_description": "who?"}',
                           "invalid_client"),
    "400 whose error is not a string": (400, JSON, '{"error": 42}', "invalid_response"),
}


@pytest.mark.stage(3, "errors and bad servers")
@pytest.mark.parametrize("answer", BAD_ANSWERS.values(), ids=BAD_ANSWERS.keys())
def test_a_token_endpoint_that_misbehaves_is_an_oauth_error(
    client: OAuthClient, http: requests.Session, auth_server: AuthServer,
    answer: tuple[int, dict[str, str], str, str],
) -> None:
    status, headers, body, error = answer
    callback = browse(http, client.authorization_url("profile"))
    auth_server.token_override = lambda form: (status, headers, body)
    expect_oauth_error(lambda: client.handle_callback(callback), error,
                       f"the token endpoint answered {status} {body!r}: an error code from its "
                       "JSON, else OAuthError('invalid_response')")
    expect_oauth_error(client.access_token, "login_required",
                       "access_token() after a code exchange that failed")


@pytest.mark.stage(4, "refreshing tokens")
def test_tokens_without_expiry_or_refresh_token(
    client: OAuthClient, http: requests.Session, auth_server: AuthServer, clock: ManualClock
) -> None:
    """expires_in and refresh_token are optional in a token response (RFC 6749 §5.1)."""
    callback = browse(http, client.authorization_url("profile"))
    auth_server.token_override = lambda form: (
        200, JSON, json.dumps({"access_token": "forever", "token_type": "Bearer"}))
    tokens = client.handle_callback(callback)
    assert (tokens.access_token, tokens.refresh_token, tokens.expires_at) == ("forever", None, None)
    clock.now += 10 * EXPIRES_IN
    assert client.access_token() == "forever", "an access token without expires_in never looks stale"
    assert not auth_server.grants("refresh_token")
    callback = browse(http, client.authorization_url("profile"))
    auth_server.token_override = lambda form: (200, JSON, json.dumps(
        {"access_token": "brief", "token_type": "Bearer", "expires_in": 60}))
    client.handle_callback(callback)
    clock.now += 60
    expect_oauth_error(client.access_token, "login_required",
                       "an expired access token and no refresh token to renew it")
    assert not auth_server.grants("refresh_token")


@pytest.mark.stage(3, "errors and bad servers")
def test_a_token_endpoint_that_never_answers_times_out(
    auth_server: AuthServer, http: requests.Session, clock: ManualClock
) -> None:
    released = threading.Event()
    client = OAuthClient(client_id=CLIENT_ID, authorize_url=f"{auth_server.base}/authorize",
                         token_url=f"{auth_server.base}/token", redirect_uri=REDIRECT_URI,
                         http=http, clock=clock, timeout=0.3)
    callback = browse(http, client.authorization_url("profile"))
    auth_server.token_override = lambda form: (released.wait(4), None)[1]  # hangs, then oauthlib
    try:
        client.handle_callback(callback)
    except (requests.Timeout, OAuthError):
        pass
    else:
        pytest.fail("the token endpoint held the request for seconds and the client waited: pass "
                    "timeout=self.timeout to every request, or one stuck server stalls the app")
    finally:
        released.set()
    assert client.tokens is None or not client.tokens.access_token


@pytest.mark.stage(1, "pkce and login")
def test_the_clients_http_session_carries_its_requests(
    client: OAuthClient, http: requests.Session, auth_server: AuthServer
) -> None:
    http.headers["X-Kata-Session"] = "the one given"
    log_in(client, http)
    assert auth_server.token_request_headers[-1].get("X-Kata-Session") == "the one given", (
        "the token request did not go through the requests.Session given as `http` (its "
        "headers, proxies and certificates are the caller's choice)"
    )
