"""Tests for Bearer tokens: RFC 6750 grammar, hashed storage in real Postgres, a real resource server."""

from __future__ import annotations

import base64
import binascii
import hashlib
import random
import re
import threading
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, make_server

import psycopg
import pytest
import requests
from hypothesis import given, settings
from hypothesis import strategies as st
from werkzeug.datastructures import WWWAuthenticate

from dojo.testing import CompareSpy, spy_on_compare_digest

from . import bearer_tokens
from .bearer_tokens import (
    InvalidToken,
    MalformedRequest,
    ResourceServer,
    TokenStore,
    challenge,
    parse_authorization,
)

REALM = "example"
START = 1_900_000_000.0  # 2030-03-17: far from the real now, so time.time() or SQL now() shows
ROUTES = {"/profile": "profile:read", "/messages": "messages:write"}
# The published grammar (RFC 6750 §2.1), as in the shared reference sheet: the oracle.
B64TOKEN = re.compile(r"[A-Za-z0-9\-._~+/]+=*")
CREDENTIALS = re.compile(r"^Bearer +([A-Za-z0-9\-._~+/]+=*)$", re.IGNORECASE)


class FakeClock:
    """The injected clock: Unix seconds that move only when the test says so."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def postgres_schema(kata_file: Callable[[str], Path]) -> Sequence[Path]:
    """Every test database is a fresh copy of schema.sql (the access_tokens table)."""
    return [kata_file("schema.sql")]


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(START)


@pytest.fixture
def store(postgres_conn: psycopg.Connection[Any], clock: FakeClock) -> TokenStore:
    return TokenStore(postgres_conn, clock=clock)


def split(token: str) -> tuple[str, str]:
    selector, dot, verifier = token.partition(".")
    assert dot and selector and verifier, (
        f"a token is '<selector>.<verifier>' (two token_urlsafe values joined by a dot), got {token!r}"
    )
    return selector, verifier


def row_of(conn: psycopg.Connection[Any], selector: str) -> dict[str, Any]:
    cur = conn.execute("SELECT * FROM access_tokens WHERE selector = %s", [selector])
    row = cur.fetchone()
    assert row is not None, (
        f"no row in access_tokens has selector {selector!r}: issue() must INSERT the token's "
        "first half as the selector (see schema.sql)"
    )
    assert cur.description is not None
    return {column.name: value for column, value in zip(cur.description, row, strict=True)}


def insert_token(
    conn: psycopg.Connection[Any], selector: str, verifier: str, subject: str, scope: str,
    expires_at: float,
) -> str:
    """Writes a row the way schema.sql documents it, as another service sharing the table would."""
    conn.execute(
        "INSERT INTO access_tokens (selector, verifier_hash, subject, scope, issued_at, expires_at)"
        " VALUES (%s, %s, %s, %s, %s, %s)",
        [selector, hashlib.sha256(verifier.encode("ascii")).digest(), subject, scope,
         datetime.fromtimestamp(START, tz=UTC), datetime.fromtimestamp(expires_at, tz=UTC)],
    )
    return f"{selector}.{verifier}"


# --- presenting the token: the Authorization header (RFC 6750 §2.1) --------------------------------


@pytest.mark.parametrize(
    ("header", "token"),
    [
        ("Bearer mF_9.B5f-4.1JqM", "mF_9.B5f-4.1JqM"),  # the RFC's own example
        ("Bearer  abc==", "abc=="),  # 1*SP, and "=" padding at the end
        ("bearer xyz", "xyz"),  # the scheme is case-insensitive (RFC 9110 §11.1)
        ("BEARER a+b/c~d", "a+b/c~d"),
    ],
)
def test_parse_accepts_the_b64token_grammar(header: str, token: str) -> None:
    got = parse_authorization(header)
    assert got == token, (
        f"parse_authorization({header!r}) -> {got!r}, expected {token!r} (RFC 6750 §2.1: "
        '"Bearer" 1*SP b64token, the scheme in any case)'
    )


MALFORMED = {
    "no token": "Bearer",
    "only a space": "Bearer ",
    "two tokens": "Bearer a b",
    "'=' inside the token": "Bearer abc=def",
    "a comma": "Bearer abc,def",
    "a trailing space": "Bearer abc ",
    "a non-ASCII letter": "Bearer tok\u00e9n",
    "a quoted token": 'Bearer "abc"',
}


@pytest.mark.parametrize("header", MALFORMED.values(), ids=MALFORMED.keys())
def test_parse_rejects_malformed_bearer_credentials(header: str) -> None:
    try:
        got = parse_authorization(header)
    except MalformedRequest:
        return
    pytest.fail(
        f"parse_authorization({header!r}) returned {got!r}; a Bearer header whose credentials are "
        "not one b64token must raise MalformedRequest (the server answers 400 invalid_request)"
    )


def test_parse_gives_none_without_bearer_credentials() -> None:
    assert parse_authorization(None) is None, "no Authorization header: None"
    got = parse_authorization("Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==")
    assert got is None, (
        f"another scheme is not a malformed Bearer header, it is no Bearer credentials: expected "
        f"None, got {got!r}"
    )


@settings(max_examples=200, deadline=None)
@given(token=st.text(alphabet="aZ09-._~+/= ,\"\u00e9\t", min_size=0, max_size=12))
def test_parse_agrees_with_the_published_grammar(token: str) -> None:
    """For any credentials, the token comes back exactly when the RFC's regex matches."""
    header = f"Bearer {token}"
    match = CREDENTIALS.match(header)
    expected = match.group(1) if match else None
    try:
        got: str | None = parse_authorization(header)
    except MalformedRequest:
        got = None
    assert got == expected, (
        f"{header!r}: the grammar ^Bearer +(b64token)$ gives {expected!r}, you gave {got!r}"
        f"{' (it is malformed: raise MalformedRequest)' if expected is None else ''}"
    )


# --- the challenge (RFC 6750 §3) -------------------------------------------------------------------

_PARAM = re.compile(r'([A-Za-z_]+)="([\x20\x21\x23-\x5b\x5d-\x7e]*)"')
_SEPARATOR = re.compile(r"[ \t]*,[ \t]*")


def parse_challenge(value: str) -> dict[str, str]:
    """Strictly parses `Bearer name="value", ...` per RFC 6750 §3 and checks werkzeug agrees.

    RFC 6750 §3: the scheme is "Bearer", followed by one or more auth-params, each attribute at
    most once, and the values of error and error_description use %x20-21 / %x23-5B / %x5D-7E.
    """
    assert value.startswith("Bearer "), (
        f"WWW-Authenticate must start with the scheme 'Bearer ' (RFC 6750 §3), got {value!r}"
    )
    rest, position, params = value[len("Bearer "):].lstrip(" "), 0, {}
    while True:
        match = _PARAM.match(rest, position)
        assert match, (
            f"WWW-Authenticate {value!r} breaks the RFC 6750 §3 syntax at {rest[position:]!r}: "
            'expected name="value" auth-params separated by ", " (values without " or \\)'
        )
        name, param = match.groups()
        assert name not in params, f"attribute {name!r} appears twice in {value!r} (RFC 6750 §3)"
        params[name] = param
        position = match.end()
        if position == len(rest):
            break
        separator = _SEPARATOR.match(rest, position)
        assert separator, f"expected ', ' between the attributes of {value!r} at {rest[position:]!r}"
        position = separator.end()
    peer = WWWAuthenticate.from_header(value)  # a real HTTP library reads the same attributes
    assert peer is not None and peer.type == "bearer" and dict(peer.parameters) == params, (
        f"werkzeug parses {value!r} as {peer and dict(peer.parameters)!r}, the RFC grammar as {params!r}"
    )
    return params


def test_the_challenge_without_an_error_is_just_the_realm() -> None:
    got = challenge(REALM)
    assert got == 'Bearer realm="example"', (
        f"RFC 6750 §3: a request without credentials gets WWW-Authenticate: Bearer "
        f'realm="example" and SHOULD NOT include an error code; got {got!r}'
    )


def test_the_challenge_carries_the_error_attributes_as_quoted_strings() -> None:
    got = parse_challenge(challenge(REALM, "invalid_token", "The access token expired"))
    assert got == {
        "realm": REALM, "error": "invalid_token", "error_description": "The access token expired"
    }, f"the RFC 6750 §3 example, parsed: {got!r}"
    got = parse_challenge(challenge(REALM, "insufficient_scope", scope="profile:read"))
    assert got == {"realm": REALM, "error": "insufficient_scope", "scope": "profile:read"}, (
        f"insufficient_scope names the scope the resource needs (RFC 6750 §3): {got!r}"
    )


# --- issuing: opaque, unpredictable, only a hash stored --------------------------------------------


def test_issue_returns_an_opaque_b64token_of_two_token_urlsafe_halves(store: TokenStore) -> None:
    tokens = [store.issue("alice", ["profile:read"]) for _ in range(20)]
    for token in tokens:
        assert B64TOKEN.fullmatch(token), f"{token!r} cannot travel as a Bearer b64token"
        selector, verifier = split(token)
        assert len(selector) >= 16 and len(verifier) >= 43, (
            f"selector {selector!r} / verifier {verifier!r}: use secrets.token_urlsafe(12) and "
            "secrets.token_urlsafe(32); a 256-bit verifier cannot be guessed"
        )
    assert len(set(tokens)) == len(tokens), f"issued the same token twice: {tokens}"


def test_tokens_are_not_predictable_from_the_random_module(store: TokenStore) -> None:
    """Seeding `random` must not replay a token: `random` is a Mersenne Twister, not a CSPRNG."""
    advice = (
        "the random module is seedable and its state can be recovered from 624 outputs. Draw "
        "tokens from `secrets` (the OS's CSPRNG)"
    )
    random.seed(6750)
    first = split(store.issue("alice", ["profile:read"]))
    random.seed(6750)
    try:
        second = split(store.issue("alice", ["profile:read"]))
    except psycopg.errors.UniqueViolation:
        pytest.fail(
            f"predictable tokens: after random.seed(6750) again, issue() drew the selector "
            f"{first[0]!r} a second time (the primary key refused it): {advice}"
        )
    assert first[0] != second[0] and first[1] != second[1], (
        f"predictable tokens: after random.seed(6750) twice, issue() drew {first} and {second}; "
        + advice
    )


def _forms(secret: str) -> dict[str, str]:
    """Ways a secret shows up in a row dumped as text: itself, its bytes as hex, decoded base64."""
    forms = {"as text": secret, "as hex of its bytes": secret.encode().hex()}
    try:
        padded = secret + "=" * (-len(secret) % 4)
        forms["as hex of its base64-decoded bytes"] = base64.urlsafe_b64decode(padded).hex()
    except (binascii.Error, ValueError):
        pass
    return forms


def test_only_a_hash_of_the_verifier_is_stored(
    store: TokenStore, postgres_conn: psycopg.Connection[Any]
) -> None:
    token = store.issue("alice", ["profile:read", "messages:write"])
    selector, verifier = split(token)
    row = row_of(postgres_conn, selector)
    dump = postgres_conn.execute(
        "SELECT string_agg(t::text, ' ') FROM access_tokens t"
    ).fetchone()[0]  # type: ignore[index]
    for what, form in _forms(verifier).items():
        assert form not in dump, (
            f"the database holds the verifier {what}: {dump!r}. Store only a hash, so a leaked "
            "table, backup or replica hands out no working tokens"
        )
    stored = bytes(row["verifier_hash"])
    expected = hashlib.sha256(verifier.encode("ascii")).digest()
    assert stored == expected, (
        f"verifier_hash must be sha256(verifier).digest() ({expected.hex()}), got {stored.hex()} "
        "(see schema.sql: hash the verifier, the part after the dot, as ASCII)"
    )


def test_issue_records_subject_scopes_and_times_from_the_clock(
    store: TokenStore, postgres_conn: psycopg.Connection[Any]
) -> None:
    token = store.issue("alice", ["profile:read", "messages:write"], ttl=600)
    row = row_of(postgres_conn, split(token)[0])
    got = (row["subject"], set(row["scope"].split(" ")), row["issued_at"].timestamp(),
           row["expires_at"].timestamp(), row["revoked_at"])
    expected = ("alice", {"profile:read", "messages:write"}, START, START + 600, None)
    assert got == expected, (
        f"(subject, scopes, issued_at, expires_at, revoked_at) should be {expected}, got {got}: "
        "the times come from the injected clock (clock() and clock() + ttl), not time.time() or now()"
    )


def test_issue_refuses_a_scope_that_is_not_a_scope_token(store: TokenStore) -> None:
    for scope in ["", "two words", 'say"hi"', "back\\slash", "caf\u00e9"]:
        try:
            token = store.issue("alice", ["profile:read", scope])
        except ValueError:
            continue
        pytest.fail(
            f"issue() accepted the scope {scope!r} and gave {token!r}: a scope-token is 1*( %x21 / "
            "%x23-5B / %x5D-7E ) (RFC 6749 §3.3); raise ValueError. A space would split it in "
            'two, a " or \\ would break the scope="..." attribute of a 403'
        )


# --- verifying: constant time, expiry, revocation --------------------------------------------------


def test_verify_returns_what_the_token_grants(store: TokenStore) -> None:
    token = store.issue("alice", ["profile:read", "messages:write"], ttl=600)
    got = store.verify(token)
    assert (got.subject, got.scopes, got.expires_at) == (
        "alice", frozenset({"profile:read", "messages:write"}), START + 600
    ), f"verify gave {got!r}"


def test_a_row_written_by_another_service_verifies(
    store: TokenStore, postgres_conn: psycopg.Connection[Any]
) -> None:
    """The storage format is a contract: another service issuing into this table must interoperate."""
    token = insert_token(postgres_conn, "sel-123", "v" * 43, "bob", "profile:read", START + 60)
    try:
        got = store.verify(token)
    except InvalidToken as exc:
        pytest.fail(
            f"a row with verifier_hash = sha256('{'v' * 43}') was refused ({exc}): look the row "
            "up by the selector (before the dot) and hash the verifier (after the dot) as ASCII"
        )
    assert got.subject == "bob" and got.scopes == frozenset({"profile:read"}), f"got {got!r}"


def test_verify_refuses_wrong_unknown_and_malformed_tokens(store: TokenStore) -> None:
    token = store.issue("alice", ["profile:read"])
    other = store.issue("bob", ["profile:read"])
    selector, verifier = split(token)
    flipped = verifier[:-1] + ("A" if verifier[-1] != "A" else "B")
    cases = {
        "a wrong last character": f"{selector}.{flipped}",
        "another token's verifier": f"{selector}.{split(other)[1]}",
        "an unknown selector": f"{selector}x.{verifier}",
        "no dot": selector + verifier,
        "only the selector": f"{selector}.",
        "only the verifier": f".{verifier}",
        "the empty string": "",
    }
    for what, candidate in cases.items():
        try:
            got = store.verify(candidate)
        except InvalidToken:
            continue
        pytest.fail(f"{what}: verify({candidate!r}) returned {got!r}; it must raise InvalidToken")


@pytest.fixture
def compare_spy(monkeypatch: pytest.MonkeyPatch) -> CompareSpy:
    spy = spy_on_compare_digest(monkeypatch, bearer_tokens)
    return spy


def _as_bytes(value: Any) -> bytes | None:
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value)
    if isinstance(value, str):
        try:
            return bytes.fromhex(value)
        except ValueError:
            return None
    return None


def test_the_stored_hash_is_compared_with_compare_digest(
    store: TokenStore, postgres_conn: psycopg.Connection[Any], compare_spy: CompareSpy
) -> None:
    token = store.issue("alice", ["profile:read"])
    selector, verifier = split(token)
    stored = bytes(row_of(postgres_conn, selector)["verifier_hash"])
    compare_spy.calls.clear()
    with pytest.raises(InvalidToken):
        store.verify(f"{selector}.{'A' * len(verifier)}")
    seen = [c for c in compare_spy.calls if stored in (_as_bytes(c[0]), _as_bytes(c[1]))]
    assert seen, (
        "timing attack: the stored verifier_hash never went through hmac.compare_digest (calls: "
        f"{compare_spy.calls!r}). == (in Python or in SQL's WHERE) stops at the first differing "
        "byte; fetch the row by selector and compare the hashes with hmac.compare_digest"
    )


def test_a_token_expires_at_expires_at_on_the_injected_clock(
    store: TokenStore, clock: FakeClock
) -> None:
    token = store.issue("alice", ["profile:read"], ttl=600)
    clock.now = START + 599
    store.verify(token)  # one second left: still valid
    for now in (START + 600, START + 601, START + 86_400):
        clock.now = now
        try:
            got = store.verify(token)
        except InvalidToken:
            continue
        pytest.fail(
            f"accepted an expired token: issued at {START:.0f} with ttl 600, verified at clock() = "
            f"{now:.0f} and got {got!r}. Expired means clock() >= expires_at; compare with the "
            "injected clock (not time.time() or SQL now(), which are years earlier here)"
        )


def test_a_revoked_token_is_refused_and_revoking_twice_says_so(
    store: TokenStore, postgres_conn: psycopg.Connection[Any]
) -> None:
    token = store.issue("alice", ["profile:read"])
    kept = store.issue("alice", ["profile:read"])
    assert store.revoke(token) is True, "revoke(token) of a live token must return True"
    with pytest.raises(InvalidToken):
        store.verify(token)
    assert store.revoke(token) is False, "a second revoke of the same token must return False"
    got = store.verify(kept)
    assert got.subject == "alice", "revoking one token must leave the user's other tokens alone"


def test_the_wrong_verifier_cannot_revoke_a_token(store: TokenStore) -> None:
    token = store.issue("alice", ["profile:read"])
    selector, verifier = split(token)
    forged = f"{selector}.{'A' * len(verifier)}"
    advice = "the selector is not the secret; check the verifier's hash before revoking"
    assert store.revoke(forged) is False, (
        f"revoke({forged!r}) with a wrong verifier returned True: {advice}"
    )
    try:
        store.verify(token)
    except InvalidToken:
        pytest.fail(
            f"a revoke with the right selector but a wrong verifier revoked the token: {advice}"
        )


# --- the resource server, served on 127.0.0.1 and called with requests ------------------------------


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def base_url(store: TokenStore) -> Iterator[str]:
    """The learner's ResourceServer served by wsgiref on 127.0.0.1, stopped after the test."""
    app = ResourceServer(store, REALM, ROUTES)
    server = make_server("127.0.0.1", 0, app, handler_class=_QuietHandler)
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True, name="wsgi"
    )
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


@pytest.fixture
def http() -> Iterator[requests.Session]:
    with requests.Session() as session:
        session.trust_env = False  # no proxy from the environment between us and 127.0.0.1
        yield session


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def expect_error(response: requests.Response, status: int, error: str | None, why: str) -> dict[str, str]:
    """The status, and a WWW-Authenticate that follows RFC 6750 §3 with this realm and error."""
    assert response.status_code == status, (
        f"{why}: expected {status} (RFC 6750 §3.1), got {response.status_code} "
        f"{response.text[:200]!r}"
    )
    value = response.headers.get("WWW-Authenticate")
    assert value is not None, (
        f"{why}: a {status} must carry WWW-Authenticate: Bearer realm=\"{REALM}\""
        f"{f', error={error!r}' if error else ''} (RFC 6750 §3); without it the client cannot "
        "tell which scheme and realm to use, or what went wrong"
    )
    params = parse_challenge(value)
    assert params.get("realm") == REALM, f"{why}: realm should be {REALM!r} in {value!r}"
    if error is None:
        assert set(params) == {"realm"}, (
            f"{why}: a request without credentials gets just Bearer realm=\"{REALM}\"; RFC 6750 "
            f"§3.1: the server SHOULD NOT include an error code or other error information, "
            f"got {value!r}"
        )
    else:
        assert params.get("error") == error, f"{why}: expected error=\"{error}\" in {value!r}"
    return params


def test_a_valid_token_with_the_scope_gets_the_resource(
    base_url: str, http: requests.Session, store: TokenStore
) -> None:
    token = store.issue("alice", ["profile:read"])
    response = http.get(f"{base_url}/profile", headers=bearer(token), timeout=5)
    assert response.status_code == 200, f"got {response.status_code} {response.text[:200]!r}"
    assert response.json() == {"subject": "alice", "scopes": ["profile:read"]}
    response = http.get(f"{base_url}/profile", headers={"Authorization": f"bEaReR   {token}"},
                        timeout=5)
    assert response.status_code == 200, (
        f"'bEaReR   <token>' got {response.status_code}: the scheme is case-insensitive and may "
        "be followed by several spaces"
    )


def test_no_credentials_get_the_bare_challenge(base_url: str, http: requests.Session) -> None:
    expect_error(http.get(f"{base_url}/profile", timeout=5), 401, None, "no Authorization header")
    basic = {"Authorization": "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ=="}
    response = http.get(f"{base_url}/profile", headers=basic, timeout=5)
    assert response.status_code == 401, (
        f"Basic credentials at a Bearer resource: expected the 401 Bearer challenge, got "
        f"{response.status_code}"
    )
    parse_challenge(response.headers.get("WWW-Authenticate", "(none)"))


def test_a_malformed_bearer_header_is_a_400_invalid_request(
    base_url: str, http: requests.Session
) -> None:
    for header in ["Bearer", "Bearer a b", "Bearer abc=def", "Bearer tok,en"]:
        response = http.get(f"{base_url}/profile", headers={"Authorization": header}, timeout=5)
        expect_error(response, 400, "invalid_request", f"Authorization: {header}")


def test_an_invalid_token_is_a_401_invalid_token(
    base_url: str, http: requests.Session, store: TokenStore, clock: FakeClock
) -> None:
    selector, verifier = split(store.issue("alice", ["profile:read"], ttl=600))
    revoked = store.issue("alice", ["profile:read"], ttl=600)
    assert store.revoke(revoked) is True
    expiring = store.issue("alice", ["profile:read"], ttl=600)
    cases = {
        "unknown": "mF_9.B5f-4.1JqM",
        "signed with a wrong verifier": f"{selector}.{'A' * len(verifier)}",
        "revoked": revoked,
    }
    for case, token in cases.items():
        response = http.get(f"{base_url}/profile", headers=bearer(token), timeout=5)
        expect_error(response, 401, "invalid_token", f"a token that is {case}")
    clock.now = START + 600
    response = http.get(f"{base_url}/profile", headers=bearer(expiring), timeout=5)
    expect_error(response, 401, "invalid_token", "a token that expired (clock() == expires_at)")


def test_a_token_without_the_scope_is_a_403_insufficient_scope(
    base_url: str, http: requests.Session, store: TokenStore
) -> None:
    token = store.issue("alice", ["profile:read", "messages:write-drafts"])
    response = http.get(f"{base_url}/messages", headers=bearer(token), timeout=5)
    params = expect_error(
        response, 403, "insufficient_scope",
        "a token with scopes 'profile:read messages:write-drafts' at /messages (needs "
        "messages:write; a scope is a whole space-separated token, not a substring)",
    )
    assert params.get("scope") == "messages:write", (
        f"insufficient_scope should name the scope the resource needs: scope=\"messages:write\", "
        f"got {params!r}"
    )


def test_a_token_in_the_query_string_is_refused(
    base_url: str, http: requests.Session, store: TokenStore
) -> None:
    token = store.issue("alice", ["profile:read"])
    response = http.get(f"{base_url}/profile", params={"access_token": token}, timeout=5)
    expect_error(
        response, 400, "invalid_request",
        "a valid token in the query string (?access_token=): this server never accepts tokens in "
        "URIs, which end up in access logs, browser history and Referer headers",
    )
    response = http.get(f"{base_url}/profile", params={"access_token": token},
                        headers=bearer(token), timeout=5)
    expect_error(response, 400, "invalid_request",
                 "a token in the query string and the header (more than one method)")
