"""Tests for Basic auth: RFC 7617 vectors, strict parsing, constant-time checks, a real app."""

from __future__ import annotations

import base64
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from hypothesis import given, settings
from hypothesis import strategies as st

from dojo.constant_time import ConstantTimeOracle
from dojo.testing import serve_wsgi

from . import basic_auth
from .basic_auth import (
    BasicAuthApp,
    MalformedCredentials,
    build_authorization,
    challenge,
    check_credentials,
    parse_authorization,
)

REALM = "WallyWorld"
# RFC 7617 §2 and §2.1, plus a user whose id and password are both non-ASCII.
USERS = {"Aladdin": "open sesame", "test": "123\u00a3", "zo\u00eb": "p\u00e4ss:w\u00f6rd",
         "marathon": "correct horse battery staple " * 3}  # 87 bytes: past any 64 or 72


def requests_header(user: bytes, password: bytes) -> str:
    """The Authorization header requests itself builds (a real client, not our own encoder)."""
    prepared = requests.Request("GET", "http://127.0.0.1/", auth=(user, password)).prepare()
    return prepared.headers["Authorization"]


# --- building and parsing the header -------------------------------------------------------


@pytest.mark.stage(1, "build and parse")
def test_build_reproduces_the_rfc_7617_examples() -> None:
    got = build_authorization("Aladdin", "open sesame")
    assert got == "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==", f"RFC 7617 §2 example: got {got!r}"
    got = build_authorization("test", "123\u00a3")
    assert got == "Basic dGVzdDoxMjPCow==", (
        f"RFC 7617 §2.1: 'test' / '123£' encodes as UTF-8 (£ is c2 a3) to dGVzdDoxMjPCow==, "
        f"got {got!r}: encode the user-pass with UTF-8, not latin-1"
    )


@pytest.mark.stage(2, "malformed headers")
def test_build_refuses_a_colon_in_the_user_id() -> None:
    with pytest.raises(ValueError):
        build_authorization("ali:baba", "sesame")


@pytest.mark.stage(1, "build and parse")
def test_parse_reproduces_the_rfc_7617_examples() -> None:
    assert parse_authorization("Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==") == ("Aladdin", "open sesame")
    got = parse_authorization("Basic dGVzdDoxMjPCow==")
    assert got == ("test", "123\u00a3"), (
        f"RFC 7617 §2.1: dGVzdDoxMjPCow== is UTF-8 for test:123£, got {got!r}: "
        "decode the bytes as UTF-8 (latin-1 turns £ into 'Â£')"
    )


@pytest.mark.stage(1, "build and parse")
def test_parse_splits_on_the_first_colon() -> None:
    got = parse_authorization("Basic YWxhZGRpbjpvcGVuOnNlc2FtZQ==")
    assert got == ("aladdin", "open:sesame"), (
        f"'aladdin:open:sesame' must split on the first colon (a user-id has none, a password "
        f"may have many), got {got!r}"
    )
    got = parse_authorization("Basic " + _b64(b" aladdin : open sesame "))
    assert got == (" aladdin ", " open sesame "), (
        f"' aladdin : open sesame ' is user-id ' aladdin ' and password ' open sesame ': the "
        f"spaces are part of them, nothing is stripped; got {got!r}"
    )


@pytest.mark.stage(1, "build and parse")
@pytest.mark.parametrize("scheme", ["basic", "BASIC", "bAsIc"])
def test_parse_treats_the_scheme_case_insensitively(scheme: str) -> None:
    got = parse_authorization(f"{scheme}   QWxhZGRpbjpvcGVuIHNlc2FtZQ==")
    assert got == ("Aladdin", "open sesame"), (
        "the auth-scheme is case-insensitive (RFC 9110 §11.1) and may be followed by several "
        f"spaces (1*SP); got {got!r}"
    )


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


MALFORMED = {
    "another scheme": "Bearer mF_9.B5f-4.1JqM",
    "no credentials": "Basic",
    "only spaces": "Basic   ",
    "no space after the scheme": "BasicQWxhZGRpbjpvcGVuIHNlc2FtZQ==",
    "junk after the padding": "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==!!",
    "a character outside base64": "Basic QWxh*ZGRpbjpvcGVuIHNlc2FtZQ==",
    "no colon": "Basic " + _b64(b"Aladdin"),
    "not UTF-8": "Basic " + _b64(b"Aladdin:\xff\xfe"),
    "another scheme, valid credentials": "Digest QWxhZGRpbjpvcGVuIHNlc2FtZQ==",
    "a scheme that only starts with Basic": "Basically QWxhZGRpbjpvcGVuIHNlc2FtZQ==",
    "missing padding": "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ",
    "the base64url alphabet": "Basic " + _b64(b"user:\xfb\xff?").replace("+", "-").replace("/", "_"),
    "a newline inside": "Basic QWxhZGRpbjpv\ncGVuIHNlc2FtZQ==",
    "a space inside": "Basic QWxhZGRpbjpv cGVuIHNlc2FtZQ==",
    "a non-ASCII character": "Basic QWxhZGRpbjpv\u00e9cGVuIHNlc2FtZQ==",
}


@pytest.mark.stage(2, "malformed headers")
@pytest.mark.parametrize("header", MALFORMED.values(), ids=MALFORMED.keys())
def test_parse_rejects_malformed_headers(header: str) -> None:
    try:
        got = parse_authorization(header)
    except MalformedCredentials:
        return
    pytest.fail(
        f"parse_authorization({header!r}) returned {got!r}; it must raise MalformedCredentials. "
        "(base64.b64decode drops junk characters and trailing data unless validate=True)"
    )


@pytest.mark.stage(2, "malformed headers")
@settings(max_examples=200, deadline=None)
@given(st.text() | st.builds("{}{}".format, st.sampled_from(["Basic ", "basic  ", "Basic"]),
                             st.text(alphabet="ABCab012+/=: \t\n\u00e9")))
def test_parse_answers_anything_with_a_pair_or_malformed_credentials(header: str) -> None:
    """A header is whatever a client sent: parse must never fail another way (the app would 500)."""
    try:
        got = parse_authorization(header)
    except MalformedCredentials:
        return
    except Exception as exc:
        pytest.fail(f"parse_authorization({header!r}) raised {type(exc).__name__}: {exc}; every "
                    "bad header must be MalformedCredentials (b64decode raises ValueError, not "
                    "only binascii.Error, for a non-ASCII character)")
    assert isinstance(got, tuple) and len(got) == 2 and all(isinstance(x, str) for x in got)


@pytest.mark.stage(2, "malformed headers")
@settings(max_examples=200, deadline=None)
@given(raw=st.binary(max_size=24) | st.text(max_size=12).map(str.encode))
def test_parse_decodes_any_credentials_as_strict_utf8_split_on_the_first_colon(raw: bytes) -> None:
    """The model: UTF-8 or malformed, then the first colon or malformed."""
    header = "Basic " + _b64(raw)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        text = None
    try:
        got: Any = parse_authorization(header)
    except MalformedCredentials:
        got = MalformedCredentials
    if text is None or ":" not in text:
        assert got is MalformedCredentials, (
            f"{raw!r} ({header!r}) is {'not UTF-8' if text is None else 'without a colon'}: "
            f"MalformedCredentials expected, got {got!r}")
    else:
        user, _, password = text.partition(":")
        assert got == (user, password), f"{raw!r} ({header!r}): expected {(user, password)!r}, got {got!r}"


@pytest.mark.stage(2, "malformed headers")
@settings(max_examples=150, deadline=None)
@given(user=st.text().filter(lambda s: ":" not in s), password=st.text())
def test_build_and_parse_agree_with_requests_for_any_text(user: str, password: str) -> None:
    """requests, given UTF-8 bytes, builds the same header; parsing it gives the pair back."""
    expected = requests_header(user.encode(), password.encode())
    assert build_authorization(user, password) == expected
    assert parse_authorization(expected) == (user, password)


@pytest.mark.stage(1, "build and parse")
def test_challenge_quotes_the_realm_and_announces_utf8() -> None:
    assert challenge("WallyWorld") == 'Basic realm="WallyWorld", charset="UTF-8"'
    got = challenge('the "back\\office"')
    assert got == 'Basic realm="the \\"back\\\\office\\"", charset="UTF-8"', (
        f"the realm is a quoted-string (RFC 9110 §5.6.4): escape \\ and \" with a backslash; "
        f"got {got!r}"
    )


# --- checking credentials in constant time --------------------------------------------------


class WatchedPassword(str):
    """A stored password that notes every == or != against it: each one is a timing leak."""

    def __init__(self, value: str) -> None:
        self.equality_checks: list[object] = []

    def __eq__(self, other: object) -> bool:
        if isinstance(other, str | bytes):
            self.equality_checks.append(other)
        return str.__eq__(self, other)

    def __ne__(self, other: object) -> bool:
        return not self.__eq__(other)

    __hash__ = str.__hash__




@pytest.fixture
def oracle(monkeypatch: pytest.MonkeyPatch) -> ConstantTimeOracle:
    return ConstantTimeOracle(monkeypatch, basic_auth)


@pytest.mark.stage(3, "checking the password")
@pytest.mark.parametrize(
    ("user", "password", "expected"),
    [
        ("Aladdin", "open sesame", True),
        ("Aladdin", "open sesamE", False),
        ("Aladdin", "open sesam", False),
        ("Aladdin", "open sesame ", False),
        ("Aladdin", "open sesame\x00", False),
        ("marathon", "correct horse battery staple " * 3, True),
        ("marathon", "correct horse battery staple " * 2 + "correct horse battery stapler", False),
        ("marathon", "correct horse battery staple " * 3 + "!", False),
        ("Aladdin", "", False),
        ("aladdin", "open sesame", False),
        ("Nobody", "open sesame", False),
        ("Nobody", "", False),
        ("", "", False),
        ("test", "123\u00a3", True),
        ("zo\u00eb", "p\u00e4ss:w\u00f6rd", True),
        ("zo\u00eb", "p\u00e4ss:w\u00f6rD", False),
    ],
)
def test_check_credentials_accepts_exactly_the_right_password(
    user: str, password: str, expected: bool
) -> None:
    try:
        got = check_credentials(USERS, user, password)
    except TypeError as exc:
        pytest.fail(
            f"check_credentials raised {exc!r} for {user!r}/{password!r}: hmac.compare_digest "
            "refuses non-ASCII str, compare the UTF-8 bytes"
        )
    assert got is expected, (
        f"check_credentials(USERS, {user!r}, {password!r}) -> {got!r}: only the whole, exact "
        "password passes (no truncation, no padding with NUL, no case folding)")


@pytest.mark.stage(3, "checking the password")
def test_an_empty_password_is_a_password() -> None:
    users = {"guest": "", "Aladdin": "open sesame"}
    assert check_credentials(users, "guest", "") is True, (
        "the guest's stored password is empty, and the empty password is the right one")
    assert check_credentials(users, "guest", "x") is False
    assert check_credentials(users, "Aladdin", "") is False


def near_misses(password: str) -> st.SearchStrategy[str]:
    """The password, or one that differs only at its end: longer, shorter, NUL-padded."""
    return st.sampled_from([password, password + "\x00", password + " ", password + "x",
                            password[:-1], password[:-1] + "\x00", "\x00" + password])


PASSWORDS = st.text(max_size=6) | st.text(min_size=70, max_size=80)  # short, and past 64 bytes


@pytest.mark.stage(3, "checking the password")
@settings(max_examples=100, deadline=None)
@given(users=st.dictionaries(st.text(max_size=4), PASSWORDS, max_size=4), guess=st.data())
def test_check_credentials_agrees_with_the_plain_definition(users: dict[str, str],
                                                            guess: st.DataObject) -> None:
    """True exactly when the user exists and the password is hers, all of it: for any users and
    guesses, most of them a near miss of a real password."""
    known = sorted(users)
    user = guess.draw(st.sampled_from(known) | st.text(max_size=4) if known else st.text(max_size=4))
    password = guess.draw(
        st.sampled_from(sorted(users.values())).flatmap(near_misses) | PASSWORDS
        if users else PASSWORDS)
    expected = user in users and users[user] == password
    assert check_credentials(users, user, password) is expected, (
        f"users {users!r}, {user!r} / {password!r}: expected {expected}. Compare every byte of "
        "both passwords: padding both to one length (with NUL) or truncating them lets a "
        "different password through")


@pytest.mark.stage(5, "constant time")
def test_the_password_verdict_is_a_constant_time_comparison(oracle: ConstantTimeOracle) -> None:
    oracle.answer = True  # "equal", for a wrong password
    verdict = check_credentials(USERS, "Aladdin", "wrong guess")
    assert oracle.calls, (
        "timing attack: the password never went through a constant-time comparison "
        "(hmac.compare_digest, secrets.compare_digest or cryptography's HMAC.verify). `==` "
        "stops at the first differing byte, so an attacker who times many guesses learns the "
        "password byte by byte"
    )
    assert verdict is True, (
        f"the constant-time comparison answered 'equal' (the test forced it), yet "
        f"check_credentials returned {verdict!r}: something else decides too (an == beside it?); "
        "let the constant-time comparison alone decide"
    )
    oracle.answer = False  # "different", for the right password
    verdict = check_credentials(USERS, "Aladdin", "open sesame")
    assert verdict is False, (
        f"the constant-time comparison answered 'different' (the test forced it) for the right "
        f"password, yet check_credentials returned {verdict!r}: the verdict comes from "
        "somewhere else (an ==?), not from the constant-time comparison"
    )


@pytest.mark.stage(5, "constant time")
def test_an_unknown_user_never_gets_in_even_when_the_dummy_matches(
    oracle: ConstantTimeOracle,
) -> None:
    oracle.answer = True  # as if the password sent were exactly the dummy compared against
    for user in ("Mallory", "", "aladdin"):
        assert check_credentials(USERS, user, "whatever the dummy is") is False, (
            f"the unknown user {user!r} got in because the comparison against the dummy said "
            "'equal' (the test forced it): whoever sends the dummy password logs in as anyone. "
            "Compare against the dummy for the timing, but the verdict is 'the user exists AND "
            "the comparison matched'"
        )


@pytest.mark.stage(5, "constant time")
def test_the_stored_password_is_never_compared_with_eq() -> None:
    stored = WatchedPassword("open sesame")
    users = {"Aladdin": stored}
    check_credentials(users, "Aladdin", "open sesame")
    check_credentials(users, "Aladdin", "wrong guess")
    assert not stored.equality_checks, (
        f"timing attack: the stored password was compared with == against "
        f"{stored.equality_checks!r}; == returns as soon as a character differs, which leaks how "
        "much of a guess was right. Use hmac.compare_digest on bytes"
    )


@pytest.mark.stage(5, "constant time")
def test_an_unknown_user_costs_the_same_comparisons_as_a_known_one(
    oracle: ConstantTimeOracle,
) -> None:
    counts = {}
    for label, user, password in [
        ("right password", "Aladdin", "open sesame"),
        ("wrong password", "Aladdin", "open sesamE"),
        ("unknown user", "Mallory", "open sesame"),
        ("unknown user, empty password", "Mallory", ""),
    ]:
        oracle.calls = 0
        check_credentials(USERS, user, password)
        counts[label] = oracle.calls
    assert counts["right password"] > 0, "the password must go through a constant-time comparison"
    assert len(set(counts.values())) == 1, (
        f"user enumeration: constant-time comparisons per check were {counts}. Returning early "
        "for an unknown user answers faster, and the time tells an attacker which user-ids "
        "exist; compare against a dummy password when the user is unknown"
    )


# --- the app, served for real and called by real clients ------------------------------------

@pytest.fixture
def base_url() -> Iterator[str]:
    """The learner's BasicAuthApp served on 127.0.0.1 by wsgiref, stopped after the test."""
    with serve_wsgi(BasicAuthApp(USERS, REALM)) as port:
        yield f"http://127.0.0.1:{port}/private"


def _expect_challenge(response: requests.Response, why: str) -> None:
    assert response.status_code == 401, (
        f"{why}: expected 401 Unauthorized, got {response.status_code} {response.text[:200]!r}"
    )
    got = response.headers.get("WWW-Authenticate")
    assert got == challenge(REALM) == 'Basic realm="WallyWorld", charset="UTF-8"', (
        f"{why}: a 401 must carry the challenge WWW-Authenticate: "
        f"Basic realm=\"WallyWorld\", charset=\"UTF-8\" (RFC 7617 §2), got {got!r}; without it "
        "a client does not know how to authenticate"
    )


@pytest.mark.stage(4, "the wsgi app")
def test_the_app_challenges_a_request_without_credentials(
    base_url: str, http: requests.Session
) -> None:
    _expect_challenge(http.get(base_url, timeout=5), "no Authorization header")


@pytest.mark.stage(4, "the wsgi app")
def test_the_app_greets_a_user_with_the_right_password(
    base_url: str, http: requests.Session
) -> None:
    response = http.get(base_url, auth=("Aladdin", "open sesame"), timeout=5)
    assert response.status_code == 200, f"got {response.status_code} {response.text[:200]!r}"
    assert response.content == b"hello, Aladdin", f"the body must be 'hello, Aladdin', got {response.content!r}"
    content_type = response.headers.get("Content-Type", "")
    assert content_type.replace(" ", "").lower() == "text/plain;charset=utf-8", (
        f"Content-Type: text/plain; charset=utf-8 expected, got {content_type!r}")


@pytest.mark.stage(4, "the wsgi app")
def test_the_app_accepts_utf8_credentials(base_url: str, http: requests.Session) -> None:
    # requests encodes str credentials as latin-1; bytes go out as they are.
    # (types-requests only admits str pairs; bytes work and skip the latin-1 encoding)
    utf8 = ("zo\u00eb".encode(), "p\u00e4ss:w\u00f6rd".encode())
    response = http.get(base_url, auth=utf8, timeout=5)  # type: ignore[arg-type]
    assert response.status_code == 200, (
        f"UTF-8 credentials (user zoë, password with ä, ö and a colon) got "
        f"{response.status_code}: decode UTF-8 and split on the first colon"
    )
    expected = "hello, zo\u00eb".encode()
    if response.content != expected and expected.startswith(response.content):
        pytest.fail(
            f"the body was cut to {response.content!r}: Content-Length says "
            f"{response.headers.get('Content-Length')}, but 'hello, zoë' is "
            f"{len('hello, zoë')} characters and {len(expected)} bytes in UTF-8. Content-Length "
            "counts bytes: encode the body first, then measure it"
        )
    assert response.content == expected, (
        f"the body must be 'hello, zoë' in UTF-8 ({expected!r}), got {response.content!r}")


@pytest.mark.stage(4, "the wsgi app")
@pytest.mark.parametrize(
    "header",
    [
        "Basic " + _b64(b"Aladdin:open sesamE"),
        "Basic " + _b64(b"Mallory:open sesame"),
        "Bearer mF_9.B5f-4.1JqM",
        "Basic !!!not-base64!!!",
        "Basic " + _b64(b"no colon here"),
        "Basic " + _b64(b"Aladdin:\xff"),
    ],
    ids=["wrong password", "unknown user", "bearer", "bad base64", "no colon", "not utf-8"],
)
def test_the_app_answers_bad_credentials_with_a_401_challenge(
    base_url: str, http: requests.Session, header: str
) -> None:
    response = http.get(base_url, headers={"Authorization": header}, timeout=5)
    _expect_challenge(response, f"Authorization: {header}")


@pytest.mark.stage(4, "the wsgi app")
def test_urllib_answers_the_challenge_and_gets_in(base_url: str) -> None:
    """urllib's HTTPBasicAuthHandler sends credentials only after a matching challenge."""
    passwords = urllib.request.HTTPPasswordMgr()
    passwords.add_password(REALM, base_url, "test", "123\u00a3")
    opener = urllib.request.build_opener(
        urllib.request.ProxyHandler({}), urllib.request.HTTPBasicAuthHandler(passwords)
    )
    try:
        with opener.open(base_url, timeout=5) as response:
            body = response.read().decode("utf-8")
    except urllib.error.HTTPError as exc:
        pytest.fail(
            f"urllib got {exc.code} {exc.reason}: it retries with credentials only if the 401 "
            f"carries WWW-Authenticate with realm=\"{REALM}\", and it sends UTF-8 "
            f"(got WWW-Authenticate: {exc.headers.get('WWW-Authenticate')!r})"
        )
    assert body == "hello, test"
