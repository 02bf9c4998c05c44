"""Tests for Bearer tokens: RFC 6750 grammar, hashed storage in real Postgres, a real resource server."""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import random
import re
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest
import requests
from hypothesis import given, settings
from hypothesis import strategies as st
from werkzeug.datastructures import WWWAuthenticate

from dojo.constant_time import ConstantTimeOracle
from dojo.testing import Background, ManualClock, serve_wsgi, wait_until

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
# The published grammar (RFC 6750 §2.1, b64token): the oracle.
B64TOKEN = re.compile(r"[A-Za-z0-9\-._~+/]+=*")
CREDENTIALS = re.compile(r"^Bearer +([A-Za-z0-9\-._~+/]+=*)$", re.IGNORECASE)


@pytest.fixture
def postgres_schema(kata_file: Callable[[str], Path]) -> Sequence[Path]:
    """Every test database is a fresh copy of schema.sql (the access_tokens table)."""
    return [kata_file("schema.sql")]


@pytest.fixture
def clock() -> ManualClock:
    """The injected clock: Unix seconds that move only when the test says so."""
    return ManualClock(START)


@pytest.fixture
def store(postgres_conn: psycopg.Connection[Any], clock: ManualClock) -> TokenStore:
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
    conn: psycopg.Connection[Any],
    selector: str,
    verifier: str,
    subject: str,
    scope: str,
    expires_at: float,
) -> str:
    """Writes a row the way schema.sql documents it, as another service sharing the table would."""
    conn.execute(
        "INSERT INTO access_tokens (selector, verifier_hash, subject, scope, issued_at, expires_at)"
        " VALUES (%s, %s, %s, %s, %s, %s)",
        [
            selector,
            hashlib.sha256(verifier.encode("ascii")).digest(),
            subject,
            scope,
            datetime.fromtimestamp(START, tz=UTC),
            datetime.fromtimestamp(expires_at, tz=UTC),
        ],
    )
    return f"{selector}.{verifier}"


# --- presenting the token: the Authorization header (RFC 6750 §2.1) --------------------------------


@pytest.mark.stage(1, "header and challenge")
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


@pytest.mark.stage(1, "header and challenge")
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


@pytest.mark.stage(1, "header and challenge")
def test_parse_gives_none_without_bearer_credentials() -> None:
    assert parse_authorization(None) is None, "no Authorization header: None"
    got = parse_authorization("Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==")
    assert got is None, (
        f"another scheme is not a malformed Bearer header, it is no Bearer credentials: expected None, got {got!r}"
    )


@pytest.mark.stage(1, "header and challenge")
@settings(max_examples=200, deadline=None)
@given(token=st.text(alphabet='aZ09-._~+/= ,"\u00e9\t', min_size=0, max_size=12))
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
    rest, position, params = value[len("Bearer ") :].lstrip(" "), 0, {}
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


@pytest.mark.stage(1, "header and challenge")
def test_the_challenge_without_an_error_is_just_the_realm() -> None:
    got = challenge(REALM)
    assert got == 'Bearer realm="example"', (
        f"RFC 6750 §3: a request without credentials gets WWW-Authenticate: Bearer "
        f'realm="example" and SHOULD NOT include an error code; got {got!r}'
    )


@pytest.mark.stage(1, "header and challenge")
def test_the_challenge_carries_the_error_attributes_as_quoted_strings() -> None:
    got = parse_challenge(challenge(REALM, "invalid_token", "The access token expired"))
    assert got == {"realm": REALM, "error": "invalid_token", "error_description": "The access token expired"}, (
        f"the RFC 6750 §3 example, parsed: {got!r}"
    )
    got = parse_challenge(challenge(REALM, "insufficient_scope", scope="profile:read"))
    assert got == {"realm": REALM, "error": "insufficient_scope", "scope": "profile:read"}, (
        f"insufficient_scope names the scope the resource needs (RFC 6750 §3): {got!r}"
    )


@pytest.mark.stage(1, "header and challenge")
def test_the_challenge_escapes_quotes_and_backslashes_of_the_realm() -> None:
    realm = 'the "staff" realm \\ west'
    value = challenge(realm, "invalid_token")
    peer = WWWAuthenticate.from_header(value)
    got = peer and dict(peer.parameters)
    assert got == {"realm": realm, "error": "invalid_token"}, (
        f"challenge({realm!r}, 'invalid_token') gave {value!r}, which werkzeug reads as {got!r}: "
        'the realm is a quoted-string (RFC 9110 §5.6.4): escape " and \\ with a backslash, or '
        "the header ends the realm early and a client reads attributes nobody sent"
    )


# --- issuing: opaque, unpredictable, only a hash stored --------------------------------------------


@pytest.mark.stage(2, "issuing and verifying")
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


@pytest.mark.stage(2, "issuing and verifying")
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
        f"predictable tokens: after random.seed(6750) twice, issue() drew {first} and {second}; " + advice
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


@pytest.mark.stage(2, "issuing and verifying")
def test_only_a_hash_of_the_verifier_is_stored(store: TokenStore, postgres_conn: psycopg.Connection[Any]) -> None:
    token = store.issue("alice", ["profile:read", "messages:write"])
    selector, verifier = split(token)
    row = row_of(postgres_conn, selector)
    dump = postgres_conn.execute("SELECT string_agg(t::text, ' ') FROM access_tokens t").fetchone()[0]  # type: ignore[index]
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


@pytest.mark.stage(2, "issuing and verifying")
def test_issue_records_subject_scopes_and_times_from_the_clock(
    store: TokenStore, postgres_conn: psycopg.Connection[Any]
) -> None:
    token = store.issue("alice", ["profile:read", "messages:write"], ttl=600)
    row = row_of(postgres_conn, split(token)[0])
    got = (
        row["subject"],
        set(row["scope"].split(" ")),
        row["issued_at"].timestamp(),
        row["expires_at"].timestamp(),
        row["revoked_at"],
    )
    expected = ("alice", {"profile:read", "messages:write"}, START, START + 600, None)
    assert got == expected, (
        f"(subject, scopes, issued_at, expires_at, revoked_at) should be {expected}, got {got}: "
        "the times come from the injected clock (clock() and clock() + ttl), not time.time() or now()"
    )


@pytest.fixture
def foreign_zones(postgres_conn: psycopg.Connection[Any]) -> Iterator[None]:
    """This machine in Newfoundland (UTC-3:30), the database session in Nepal (UTC+5:45)."""
    saved = os.environ.get("TZ")
    os.environ["TZ"] = "America/St_Johns"
    time.tzset()
    postgres_conn.execute("SET TIME ZONE 'Asia/Kathmandu'")
    try:
        assert time.timezone != 0, "TZ=America/St_Johns did not take effect"
        yield
    finally:
        if saved is None:
            del os.environ["TZ"]
        else:
            os.environ["TZ"] = saved
        time.tzset()


@pytest.mark.stage(2, "issuing and verifying")
@pytest.mark.usefixtures("foreign_zones")
def test_times_survive_non_utc_zones_on_both_sides(
    store: TokenStore, postgres_conn: psycopg.Connection[Any], clock: ManualClock
) -> None:
    advice = (
        "a naive datetime means local time: Python's (TZ) when you build it, the database "
        "session's (SET TIME ZONE) when Postgres reads it, and they differ here. Pass aware "
        "datetimes (datetime.fromtimestamp(t, tz=UTC)) and read expires_at.timestamp(), never "
        "time.mktime() of a timetuple"
    )
    token = store.issue("alice", ["profile:read"], ttl=600)
    row = row_of(postgres_conn, split(token)[0])
    got = (row["issued_at"].timestamp(), row["expires_at"].timestamp())
    assert got == (START, START + 600), (
        f"(issued_at, expires_at) stored as {got}, expected {(START, START + 600)}: {advice}"
    )
    other = insert_token(postgres_conn, "sel-zone", "w" * 43, "bob", "profile:read", START + 60)
    for candidate, expires_at in ((token, START + 600), (other, START + 60)):
        clock.now = expires_at - 1
        try:
            info = store.verify(candidate)
        except InvalidToken:
            pytest.fail(f"refused a token one second before its expires_at: {advice}")
        assert info.expires_at == expires_at, (
            f"TokenInfo.expires_at is {info.expires_at}, expected {expires_at}: {advice}"
        )
        clock.now = expires_at
        with pytest.raises(InvalidToken):
            store.verify(candidate)
    clock.now = START + 30
    assert store.revoke(other) is True
    revoked_at = row_of(postgres_conn, "sel-zone")["revoked_at"].timestamp()
    assert revoked_at == START + 30, f"revoked_at stored as {revoked_at}, not {START + 30}: {advice}"


@pytest.mark.stage(2, "issuing and verifying")
def test_issue_takes_any_iterable_of_scopes_even_none_and_any_subject(
    store: TokenStore, postgres_conn: psycopg.Connection[Any]
) -> None:
    token = store.issue("alice", (scope for scope in ["profile:read", "messages:write"]))
    got = store.verify(token).scopes
    assert got == {"profile:read", "messages:write"}, (
        f"issue() with a generator of scopes granted {set(got)}: `scopes` is any Iterable, and a "
        "generator can be read only once; make a list (or set) of it before checking and storing"
    )
    token = store.issue("alice", ["profile:read", "profile:read"])
    got = store.verify(token).scopes
    assert got == {"profile:read"}, f"a repeated scope granted {set(got)}"
    token = store.issue("alice", [])
    got = store.verify(token).scopes
    assert got == frozenset(), f"a token issued with no scopes grants {set(got)}, expected none"
    subject = '\u00d1and\u00fa \u65e5\u672c \U0001f600 O\'Brien "quoted"'
    got_subject = store.verify(store.issue(subject, ["profile:read"])).subject
    assert got_subject == subject, (
        f"the subject {subject!r} came back as {got_subject!r}: it is text, stored as given "
        "(a query parameter, never pasted into the SQL)"
    )


@pytest.mark.stage(2, "issuing and verifying")
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


@pytest.mark.stage(2, "issuing and verifying")
def test_verify_returns_what_the_token_grants(store: TokenStore) -> None:
    token = store.issue("alice", ["profile:read", "messages:write"], ttl=600)
    got = store.verify(token)
    assert (got.subject, got.scopes, got.expires_at) == (
        "alice",
        frozenset({"profile:read", "messages:write"}),
        START + 600,
    ), f"verify gave {got!r}"


@pytest.mark.stage(2, "issuing and verifying")
def test_a_row_written_by_another_service_verifies(store: TokenStore, postgres_conn: psycopg.Connection[Any]) -> None:
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


@pytest.mark.stage(3, "expiry and revocation")
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
        "a non-ASCII verifier": f"{selector}.{verifier[:-1]}\u00e9",
        "a NUL byte in the selector": f"{selector}\x00.{verifier}",
        "a second dot": f"{selector}.{verifier}.{verifier}",
    }
    for what, candidate in cases.items():
        try:
            got = store.verify(candidate)
        except InvalidToken:
            continue
        except Exception as exc:
            pytest.fail(
                f"{what}: verify({candidate!r}) raised {type(exc).__name__}: {exc}; a malformed "
                "token is InvalidToken (the server answers 401 invalid_token), not a crash: check "
                "its shape before it reaches the hash or the database"
            )
        pytest.fail(f"{what}: verify({candidate!r}) returned {got!r}; it must raise InvalidToken")
    for what, candidate in cases.items():
        try:
            revoked = store.revoke(candidate)
        except Exception as exc:
            pytest.fail(
                f"{what}: revoke({candidate!r}) raised {type(exc).__name__}: {exc}; "
                "an unknown, wrong or malformed token revokes nothing: return False"
            )
        assert revoked is False, f"{what}: revoke({candidate!r}) returned {revoked!r}, not False"
    assert store.verify(token).subject == "alice", "a refused revoke must leave the token alive"


@pytest.mark.stage(3, "expiry and revocation")
def test_rows_with_an_empty_half_open_with_no_token(store: TokenStore, postgres_conn: psycopg.Connection[Any]) -> None:
    """Rows with an empty verifier or selector (another service's bug) must not be skeleton keys."""
    insert_token(postgres_conn, "sel-empty", "", "mallory", "profile:read", START + 60)
    insert_token(postgres_conn, "", "v" * 43, "mallory", "profile:read", START + 60)
    for candidate in ("sel-empty", "sel-empty.", "." + "v" * 43):
        try:
            got = store.verify(candidate)
        except InvalidToken:
            continue
        pytest.fail(
            f"verify({candidate!r}) returned {got!r}: a token is '<selector>.<verifier>' with both "
            "halves non-empty; without a dot or without a verifier it is malformed (or the hash of "
            "an empty verifier becomes a password nobody has to know)"
        )


@pytest.fixture
def oracle(monkeypatch: pytest.MonkeyPatch) -> ConstantTimeOracle:
    """hmac/secrets.compare_digest and cryptography's HMAC.verify, answering what the test says."""
    return ConstantTimeOracle(monkeypatch, bearer_tokens)


@pytest.mark.stage(5, "timing and races")
def test_the_verifier_verdict_is_a_constant_time_comparison(store: TokenStore, oracle: ConstantTimeOracle) -> None:
    token = store.issue("alice", ["profile:read"])
    selector, verifier = split(token)
    oracle.answer = True  # "equal", for a wrong verifier
    try:
        got = store.verify(f"{selector}.{'A' * len(verifier)}")
    except InvalidToken:
        got = None
    assert oracle.calls, (
        "timing attack: the verifier's hash never went through a constant-time comparison "
        "(hmac.compare_digest, secrets.compare_digest or cryptography's HMAC.verify). == (in "
        "Python, or verifier_hash = %s in SQL's WHERE) stops at the first differing byte; fetch "
        "the row by selector and compare the hashes in constant time"
    )
    assert got is not None and got.subject == "alice", (
        f"the constant-time comparison answered 'equal' (the test forced it), yet verify gave "
        f"{got!r}: something else decides too (an == beside it, or the hash in the WHERE "
        "clause?); let the constant-time comparison of the hashes alone decide"
    )
    oracle.answer = False  # "different", for the genuine token
    try:
        got = store.verify(token)
    except InvalidToken:
        return
    pytest.fail(
        f"the constant-time comparison answered 'different' (the test forced it) for the genuine "
        f"token, yet verify returned {got!r}: the verdict comes from somewhere else (an ==?)"
    )


@pytest.mark.stage(5, "timing and races")
def test_revoke_follows_the_constant_time_verdict(store: TokenStore, oracle: ConstantTimeOracle) -> None:
    token = store.issue("alice", ["profile:read"])
    selector, verifier = split(token)
    oracle.answer = False  # "different", for the genuine token
    assert store.revoke(token) is False, (
        "the constant-time comparison answered 'different' (the test forced it), yet revoke "
        "revoked: revoke must check the verifier's hash like verify, with a constant-time compare"
    )
    oracle.answer = None
    store.verify(token)  # still alive
    oracle.answer = True  # "equal", for a wrong verifier
    assert store.revoke(f"{selector}.{'A' * len(verifier)}") is True, (
        "the constant-time comparison answered 'equal' (the test forced it), yet revoke said "
        "False: something other than the constant-time comparison decides (an ==?)"
    )


@pytest.mark.stage(5, "timing and races")
def test_an_unknown_selector_never_verifies_even_when_the_comparison_says_equal(
    store: TokenStore, oracle: ConstantTimeOracle
) -> None:
    store.issue("alice", ["profile:read"])
    oracle.answer = True  # as if the verifier matched whatever it was compared against
    for candidate in ("unknown.abc", "unknown.", "nodot", ""):
        try:
            got = store.verify(candidate)
        except InvalidToken:
            continue
        pytest.fail(
            f"verify({candidate!r}) returned {got!r} because a comparison said 'equal' (the test "
            "forced it): a token whose selector finds no row is invalid, whatever a dummy "
            "comparison (for equal timing) answers"
        )
    for candidate in ("unknown.abc", "nodot", ""):
        assert store.revoke(candidate) is False, (
            f"revoke({candidate!r}) returned True because a comparison said 'equal' (the test "
            "forced it): there is no row to revoke"
        )


@pytest.mark.stage(3, "expiry and revocation")
def test_a_token_expires_at_expires_at_on_the_injected_clock(store: TokenStore, clock: ManualClock) -> None:
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


@pytest.mark.stage(3, "expiry and revocation")
def test_every_verify_reads_the_row_as_it_is_now(
    store: TokenStore, postgres_conn: psycopg.Connection[Any], clock: ManualClock
) -> None:
    """Another service shares the table: its "log out everywhere" must take effect at once."""
    tokens = [store.issue("alice", ["profile:read"]) for _ in range(2)]
    bobs = store.issue("bob", ["profile:read"])
    for token in (*tokens, bobs):
        store.verify(token)
    postgres_conn.execute(
        "UPDATE access_tokens SET revoked_at = %s WHERE subject = 'alice'",
        [datetime.fromtimestamp(START, tz=UTC)],
    )
    for token in tokens:
        try:
            got = store.verify(token)
        except InvalidToken:
            continue
        pytest.fail(
            f"a token revoked in the table (UPDATE ... WHERE subject = 'alice', as schema.sql "
            f"foresees) still verified: {got!r}. Revocation lives in the row; read it on every "
            "verify, never from a cache of tokens already seen"
        )
    assert store.verify(bobs).subject == "bob", "revoking alice's tokens must leave bob's alone"


@pytest.mark.stage(3, "expiry and revocation")
def test_ttl_zero_is_dead_at_once_and_fractions_of_a_second_count(store: TokenStore, clock: ManualClock) -> None:
    dead = store.issue("alice", ["profile:read"], ttl=0)
    with pytest.raises(InvalidToken):
        store.verify(dead)  # clock() == expires_at: already expired
    half = store.issue("alice", ["profile:read"], ttl=0.5)
    clock.now = START + 0.25
    try:
        store.verify(half)
    except InvalidToken:
        pytest.fail(
            "a token with ttl=0.5 was refused 0.25 s after issue: compare the clock's float "
            "seconds with expires_at, without rounding either to whole seconds"
        )
    clock.now = START + 0.5
    with pytest.raises(InvalidToken):
        store.verify(half)


@pytest.mark.stage(3, "expiry and revocation")
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


@pytest.mark.stage(3, "expiry and revocation")
def test_the_wrong_verifier_cannot_revoke_a_token(store: TokenStore) -> None:
    token = store.issue("alice", ["profile:read"])
    selector, verifier = split(token)
    forged = f"{selector}.{'A' * len(verifier)}"
    advice = "the selector is not the secret; check the verifier's hash before revoking"
    assert store.revoke(forged) is False, f"revoke({forged!r}) with a wrong verifier returned True: {advice}"
    try:
        store.verify(token)
    except InvalidToken:
        pytest.fail(f"a revoke with the right selector but a wrong verifier revoked the token: {advice}")


@pytest.mark.stage(3, "expiry and revocation")
def test_revoking_an_expired_token_works_and_revoked_at_comes_from_the_clock(
    store: TokenStore, postgres_conn: psycopg.Connection[Any], clock: ManualClock
) -> None:
    token = store.issue("alice", ["profile:read"], ttl=60)
    clock.now = START + 3600
    assert store.revoke(token) is True, (
        "revoke() of an expired but unrevoked token must return True: it checks the token as "
        "verify does, expiry aside (revoking a dead token is harmless, and a logout must not fail)"
    )
    revoked_at = row_of(postgres_conn, split(token)[0])["revoked_at"]
    assert revoked_at is not None and revoked_at.timestamp() == START + 3600, (
        f"revoked_at is {revoked_at!r}: it must be the injected clock() at the revoke "
        f"({START + 3600:.0f}), not time.time() or SQL now()"
    )


@pytest.mark.stage(5, "timing and races")
def test_two_concurrent_revokes_of_one_token_say_true_once(
    store: TokenStore, postgres_conn: psycopg.Connection[Any], postgres_dsn: str, clock: ManualClock
) -> None:
    """Both revokes pass their checks while a third session holds the row; only one revokes it."""
    token = store.issue("alice", ["profile:read"])
    connections = [psycopg.connect(postgres_dsn, autocommit=True) for _ in range(2)]
    try:
        pids = [conn.info.backend_pid for conn in connections]
        with postgres_conn.transaction():
            postgres_conn.execute("SELECT 1 FROM access_tokens WHERE selector = %s FOR UPDATE", [split(token)[0]])
            runners = [
                Background(TokenStore(conn, clock).revoke, token, name=f"revoke {n}")
                for n, conn in enumerate(connections)
            ]

            def both_wait_for_the_row() -> bool:
                waiting = postgres_conn.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE pid = ANY(%s) AND wait_event_type = 'Lock'", [pids]
                ).fetchone()
                return (waiting is not None and waiting[0] == 2) or all(r.done for r in runners)

            wait_until(both_wait_for_the_row, timeout=10, what="both revokes to reach the row the test holds locked")
        results = [runner.result(10) for runner in runners]
    finally:
        for conn in connections:
            conn.close()
    assert sorted(results) == [False, True], (
        f"two concurrent revokes of one live token returned {results}: exactly one call revoked "
        "it. Check-then-update races; let the UPDATE decide (... AND revoked_at IS NULL, then "
        "rowcount) or lock the row (SELECT ... FOR UPDATE) before checking it"
    )


# --- the resource server, served on 127.0.0.1 and called with requests ------------------------------


@pytest.fixture
def base_url(store: TokenStore) -> Iterator[str]:
    """The learner's ResourceServer served by wsgiref on 127.0.0.1, stopped after the test."""
    with serve_wsgi(ResourceServer(store, REALM, ROUTES)) as port:
        yield f"http://127.0.0.1:{port}"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def expect_error(response: requests.Response, status: int, error: str | None, why: str) -> dict[str, str]:
    """The status, and a WWW-Authenticate that follows RFC 6750 §3 with this realm and error."""
    assert response.status_code == status, (
        f"{why}: expected {status} (RFC 6750 §3.1), got {response.status_code} {response.text[:200]!r}"
    )
    value = response.headers.get("WWW-Authenticate")
    assert value is not None, (
        f'{why}: a {status} must carry WWW-Authenticate: Bearer realm="{REALM}"'
        f"{f', error={error!r}' if error else ''} (RFC 6750 §3); without it the client cannot "
        "tell which scheme and realm to use, or what went wrong"
    )
    params = parse_challenge(value)
    assert params.get("realm") == REALM, f"{why}: realm should be {REALM!r} in {value!r}"
    if error is None:
        assert set(params) == {"realm"}, (
            f'{why}: a request without credentials gets just Bearer realm="{REALM}"; RFC 6750 '
            f"§3.1: the server SHOULD NOT include an error code or other error information, "
            f"got {value!r}"
        )
    else:
        assert params.get("error") == error, f'{why}: expected error="{error}" in {value!r}'
    return params


@pytest.mark.stage(4, "the resource server")
def test_a_valid_token_with_the_scope_gets_the_resource(
    base_url: str, http: requests.Session, store: TokenStore
) -> None:
    token = store.issue("alice", ["profile:read"])
    response = http.get(f"{base_url}/profile", headers=bearer(token), timeout=5)
    assert response.status_code == 200, f"got {response.status_code} {response.text[:200]!r}"
    assert response.json() == {"subject": "alice", "scopes": ["profile:read"]}
    response = http.get(f"{base_url}/profile", headers={"Authorization": f"bEaReR   {token}"}, timeout=5)
    assert response.status_code == 200, (
        f"'bEaReR   <token>' got {response.status_code}: the scheme is case-insensitive and may "
        "be followed by several spaces"
    )


@pytest.mark.stage(4, "the resource server")
def test_no_credentials_get_the_bare_challenge(base_url: str, http: requests.Session) -> None:
    expect_error(http.get(f"{base_url}/profile", timeout=5), 401, None, "no Authorization header")
    for header in ("Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==", "Token abc"):
        response = http.get(f"{base_url}/profile", headers={"Authorization": header}, timeout=5)
        expect_error(
            response,
            401,
            None,
            f"Authorization: {header} at a Bearer resource (another scheme is no Bearer "
            "credentials at all, not a bad token)",
        )


@pytest.mark.stage(4, "the resource server")
def test_a_malformed_bearer_header_is_a_400_invalid_request(base_url: str, http: requests.Session) -> None:
    for header in ["Bearer", "Bearer a b", "Bearer abc=def", "Bearer tok,en"]:
        response = http.get(f"{base_url}/profile", headers={"Authorization": header}, timeout=5)
        expect_error(response, 400, "invalid_request", f"Authorization: {header}")


@pytest.mark.stage(4, "the resource server")
def test_an_invalid_token_is_a_401_invalid_token(
    base_url: str, http: requests.Session, store: TokenStore, clock: ManualClock
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


@pytest.mark.stage(4, "the resource server")
def test_a_token_without_the_scope_is_a_403_insufficient_scope(
    base_url: str, http: requests.Session, store: TokenStore
) -> None:
    token = store.issue("alice", ["profile:read", "messages:write-drafts"])
    response = http.get(f"{base_url}/messages", headers=bearer(token), timeout=5)
    params = expect_error(
        response,
        403,
        "insufficient_scope",
        "a token with scopes 'profile:read messages:write-drafts' at /messages (needs "
        "messages:write; a scope is a whole space-separated token, not a substring)",
    )
    assert params.get("scope") == "messages:write", (
        f'insufficient_scope should name the scope the resource needs: scope="messages:write", got {params!r}'
    )


@pytest.mark.stage(4, "the resource server")
def test_a_token_in_the_query_string_is_refused(base_url: str, http: requests.Session, store: TokenStore) -> None:
    token = store.issue("alice", ["profile:read"])
    response = http.get(f"{base_url}/profile", params={"access_token": token}, timeout=5)
    expect_error(
        response,
        400,
        "invalid_request",
        "a valid token in the query string (?access_token=): this server never accepts tokens in "
        "URIs, which end up in access logs, browser history and Referer headers",
    )
    response = http.get(f"{base_url}/profile", params={"access_token": token}, headers=bearer(token), timeout=5)
    expect_error(response, 400, "invalid_request", "a token in the query string and the header (more than one method)")


@pytest.mark.stage(4, "the resource server")
def test_a_path_without_a_required_scope_is_a_404(base_url: str, http: requests.Session, store: TokenStore) -> None:
    token = store.issue("alice", ["profile:read", "messages:write"])
    for path in ("/nowhere", "/"):
        response = http.get(f"{base_url}{path}", headers=bearer(token), timeout=5)
        assert response.status_code == 404, (
            f"GET {path} with a valid token got {response.status_code}: required_scopes names "
            "every resource, any other path is 404 Not Found"
        )


@pytest.mark.stage(4, "the resource server")
def test_only_an_access_token_parameter_in_the_query_is_refused(
    base_url: str, http: requests.Session, store: TokenStore
) -> None:
    token = store.issue("alice", ["profile:read"])
    response = http.get(f"{base_url}/profile?note=access_token&my_access_token=1", headers=bearer(token), timeout=5)
    assert response.status_code == 200, (
        f"?note=access_token&my_access_token=1 with a valid header got {response.status_code}: "
        "only a parameter named exactly access_token is a token in the URI, not a substring of "
        "the query string"
    )
    for query in ("access_token=", "x=1&access_token=", "access%5Ftoken=abc"):
        response = http.get(f"{base_url}/profile?{query}", headers=bearer(token), timeout=5)
        expect_error(
            response,
            400,
            "invalid_request",
            f"?{query}: the query string has an access_token parameter (empty, or with its name "
            "percent-encoded, it is still one: parse the query, keep blank values)",
        )


@pytest.mark.stage(4, "the resource server")
def test_scopes_are_case_sensitive_whole_words_without_hierarchy(
    base_url: str, http: requests.Session, store: TokenStore
) -> None:
    for scopes in (["messages"], ["MESSAGES:WRITE"], ["messages:write:drafts"], ["messages:"]):
        token = store.issue("alice", scopes)
        response = http.get(f"{base_url}/messages", headers=bearer(token), timeout=5)
        expect_error(
            response,
            403,
            "insufficient_scope",
            f"a token with the scopes {scopes} at /messages, which needs messages:write (RFC 6749 "
            "§3.3: scopes are case-sensitive strings, compared whole; no prefix or hierarchy)",
        )


@pytest.mark.stage(5, "timing and races")
def test_a_wrong_verifier_learns_nothing_about_the_row(
    base_url: str, http: requests.Session, store: TokenStore, clock: ManualClock
) -> None:
    """Authenticity first: until the verifier matches, a live, expired or revoked row looks unknown."""
    live = store.issue("alice", ["profile:read"], ttl=600)
    expired = store.issue("alice", ["profile:read"], ttl=60)
    revoked = store.issue("alice", ["profile:read"], ttl=600)
    assert store.revoke(revoked) is True
    clock.now = START + 300

    def answer(token: str) -> tuple[int, str | None, str]:
        response = http.get(f"{base_url}/profile", headers=bearer(token), timeout=5)
        return response.status_code, response.headers.get("WWW-Authenticate"), response.text

    unknown = answer("unknownselector." + "A" * 43)
    assert unknown[0] == 401, f"an unknown token got {unknown}"
    for state, token in (("live", live), ("expired", expired), ("revoked", revoked)):
        selector, verifier = split(token)
        got = answer(f"{selector}.{'A' * len(verifier)}")
        assert got == unknown, (
            f"a wrong verifier for a {state} token got {got}, an unknown token {unknown}: whoever "
            f"guesses selectors learns which exist and which are {state}. Check the verifier "
            "first; only a token that proved itself may hear that it expired or was revoked"
        )
