"""Tests for JWT by hand: RFC 7515 A.1, PyJWT both ways, the attack battery, time under freezegun."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from datetime import UTC, datetime
from functools import cache
from typing import Any

import jwt as pyjwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from freezegun import freeze_time
from hypothesis import given, settings
from hypothesis import strategies as st

from dojo.constant_time import ConstantTimeOracle

from . import jwt_by_hand
from .jwt_by_hand import (
    BadAlgorithm,
    BadAudience,
    BadIssuer,
    BadSignature,
    Expired,
    InvalidToken,
    Key,
    MalformedToken,
    NotYetValid,
    UnknownKey,
    b64url_decode,
    b64url_encode,
    decode,
    encode,
    sign,
)

# RFC 7515 Appendix A.1 (the same token is RFC 7519 §3.1's example JWT).
A1_KEY = base64.urlsafe_b64decode(
    "AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr_T-1qS0gZH75aKtMN3Yj0iPS4hcgUuTwjAzZr1Z9CAow=="
)
A1_HEADER = b'{"typ":"JWT",\r\n "alg":"HS256"}'
A1_PAYLOAD = b'{"iss":"joe",\r\n "exp":1300819380,\r\n "http://example.com/is_root":true}'
A1_HEADER_B64 = "eyJ0eXAiOiJKV1QiLA0KICJhbGciOiJIUzI1NiJ9"
A1_PAYLOAD_B64 = (
    "eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ"
)
A1_SIGNATURE = bytes([116, 24, 223, 180, 151, 153, 224, 37, 79, 250, 96, 125, 216, 173, 187, 186,
                      22, 212, 37, 77, 105, 214, 191, 240, 91, 88, 5, 88, 83, 132, 141, 121])
A1_TOKEN = f"{A1_HEADER_B64}.{A1_PAYLOAD_B64}.dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
A1_CLAIMS = {"iss": "joe", "exp": 1300819380, "http://example.com/is_root": True}

SECRET = b"a 32-byte or longer shared secret for HS256 only"
NOW = 1_700_000_000  # the frozen "now" of most tests


def at(timestamp: float) -> Any:
    """freezegun at a Unix time: time.time() returns exactly `timestamp` inside."""
    return freeze_time(datetime.fromtimestamp(timestamp, tz=UTC))


@cache
def rsa_pems(name: str) -> tuple[bytes, bytes]:
    """(private PEM, public PEM) of a 2048-bit RSA key, one per name, made once per run."""
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private_pem = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    public_pem = private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return private_pem, public_pem


def forge(header: dict[str, Any], claims: dict[str, Any], hmac_key: bytes | None) -> str:
    """What an attacker sends: any header, any claims, an HMAC with any key (or no signature)."""
    def part(obj: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()

    signing_input = f"{part(header)}.{part(claims)}"
    if hmac_key is None:
        return signing_input + "."
    mac = hmac.new(hmac_key, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{base64.urlsafe_b64encode(mac).rstrip(b'=').decode()}"


def rejects(token: str, keys: Key | list[Key], error: type[InvalidToken], why: str,
            **options: Any) -> None:
    """decode must raise `error` (an InvalidToken); `why` says which attack it was."""
    try:
        got = decode(token, keys, **options)
    except error:
        return
    except InvalidToken as exc:
        pytest.fail(f"{why}: rejected, but with {type(exc).__name__} ({exc}); expected "
                    f"{error.__name__}")
    except NotImplementedError:
        raise
    except Exception as exc:
        pytest.fail(f"{why}: decode crashed with {type(exc).__name__}: {exc}; a bad token must "
                    f"raise {error.__name__} (an InvalidToken), never an unrelated error")
    pytest.fail(f"{why}: the token was ACCEPTED with claims {got!r}; expected {error.__name__}")


# --- base64url and the RFC 7515 A.1 vector ---------------------------------------------------


@pytest.mark.stage(1, "the rfc 7515 vector")
def test_b64url_encode_reproduces_the_rfc_7515_segments() -> None:
    assert b64url_encode(A1_HEADER) == A1_HEADER_B64, "RFC 7515 A.1 header: no padding, -_ alphabet"
    assert b64url_encode(A1_PAYLOAD) == A1_PAYLOAD_B64
    assert b64url_encode(b'{"alg":"none"}') == "eyJhbGciOiJub25lIn0"  # RFC 7519 §6.1


@pytest.mark.stage(1, "the rfc 7515 vector")
@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=64))
def test_b64url_round_trips_any_bytes(data: bytes) -> None:
    expected = base64.urlsafe_b64encode(data).rstrip(b"=").decode()
    assert b64url_encode(data) == expected
    assert b64url_decode(expected) == data


@pytest.mark.stage(3, "forged tokens")
@pytest.mark.parametrize("text", ["eyJhbGciOiJub25lIn0=", "ab+/", "ab cd", "a", "abc$", "YQ=="])
def test_b64url_decode_rejects_padding_and_foreign_characters(text: str) -> None:
    with pytest.raises(MalformedToken):
        b64url_decode(text)


@pytest.mark.stage(1, "the rfc 7515 vector")
def test_sign_reproduces_the_rfc_7515_a1_hmac() -> None:
    got = sign(Key("HS256", A1_KEY), f"{A1_HEADER_B64}.{A1_PAYLOAD_B64}".encode())
    assert got == A1_SIGNATURE, (
        f"HMAC-SHA256 over the ASCII signing input '<header>.<payload>' with the A.1 key: "
        f"expected {list(A1_SIGNATURE)[:6]}..., got {list(got)[:6]}..."
    )


@pytest.mark.stage(1, "the rfc 7515 vector")
def test_decode_accepts_the_rfc_7515_a1_token_before_it_expires() -> None:
    with at(1300819380 - 60):
        try:
            got = decode(A1_TOKEN, Key("HS256", A1_KEY))
        except BadSignature:
            pytest.fail(
                "the RFC 7515 A.1 token failed its signature check: verify the signature over "
                "the exact base64url segments you received; the header holds CR LF, so "
                "re-serialising the decoded JSON gives other bytes"
            )
    assert got == A1_CLAIMS


@pytest.mark.stage(1, "the rfc 7515 vector")
def test_decode_refuses_the_rfc_7515_a1_token_once_it_expired() -> None:
    with at(1300819380 + 1):
        rejects(A1_TOKEN, Key("HS256", A1_KEY), Expired, "RFC 7515 A.1 token, exp in 2011")


# --- a real peer: PyJWT ------------------------------------------------------------------------


@pytest.mark.stage(2, "interop with pyjwt")
def test_pyjwt_accepts_our_hs256_tokens() -> None:
    claims = {"sub": "ada", "aud": "api", "iss": "https://issuer.test", "exp": NOW + 60,
              "roles": ["admin"], "n\u00e4me": "\u00c5da \U0001f511"}
    with at(NOW):
        token = encode(claims, Key("HS256", SECRET))
        got = pyjwt.decode(token, SECRET, algorithms=["HS256"], audience="api",
                           issuer="https://issuer.test")
    assert got == claims
    assert pyjwt.get_unverified_header(token) == {"alg": "HS256", "typ": "JWT"}


@pytest.mark.stage(2, "interop with pyjwt")
def test_we_accept_pyjwt_hs256_tokens() -> None:
    claims = {"sub": "ada", "aud": ["api", "web"], "iss": "me", "exp": NOW + 60, "nbf": NOW - 1}
    with at(NOW):
        token = pyjwt.encode(claims, SECRET, algorithm="HS256")
        assert decode(token, Key("HS256", SECRET), audience="web", issuer="me") == claims


@pytest.mark.stage(2, "interop with pyjwt")
def test_rs256_interoperates_with_pyjwt_both_ways() -> None:
    private_pem, public_pem = rsa_pems("main")
    claims = {"sub": "ada", "exp": NOW + 60}
    with at(NOW):
        ours = encode(claims, Key("RS256", private_pem))
        try:
            got = pyjwt.decode(ours, public_pem, algorithms=["RS256"])
        except pyjwt.InvalidSignatureError:
            pytest.fail("PyJWT could not verify our RS256 signature: RS256 is RSASSA-PKCS1-v1_5 "
                        "with SHA-256 (padding.PKCS1v15()), not PSS (that is PS256)")
        assert got == claims
        theirs = pyjwt.encode(claims, private_pem, algorithm="RS256")
        assert decode(theirs, Key("RS256", public_pem)) == claims
        assert decode(theirs, Key("RS256", private_pem)) == claims, (
            "an RS256 Key may hold the private PEM on the verifying side too: verify with its "
            "public half (private_key.public_key())"
        )


@pytest.mark.stage(2, "interop with pyjwt")
def test_the_kid_picks_the_key_pyjwt_named() -> None:
    private_pem, public_pem = rsa_pems("main")
    keys = [Key("HS256", SECRET, kid="hmac-1"), Key("RS256", public_pem, kid="rsa-1")]
    with at(NOW):
        rs = pyjwt.encode({"sub": "rs"}, private_pem, algorithm="RS256", headers={"kid": "rsa-1"})
        hs = pyjwt.encode({"sub": "hs"}, SECRET, algorithm="HS256", headers={"kid": "hmac-1"})
        assert decode(rs, keys) == {"sub": "rs"}
        assert decode(hs, keys) == {"sub": "hs"}
        token = encode({"sub": "ours"}, Key("HS256", SECRET, kid="hmac-1"))
    assert pyjwt.get_unverified_header(token).get("kid") == "hmac-1", "put the key's kid in the header"


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text(max_size=10),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner,
                                                                max_size=3),
    max_leaves=8,
)
CLAIMS = st.dictionaries(
    st.text(max_size=8).filter(lambda k: k not in {"exp", "nbf", "iat", "aud", "iss"}),
    JSON_VALUES, max_size=5,
)


@pytest.mark.stage(2, "interop with pyjwt")
@settings(max_examples=40, deadline=None)
@given(claims=CLAIMS)
def test_any_claims_round_trip_through_pyjwt(claims: dict[str, Any]) -> None:
    assert pyjwt.decode(encode(claims, Key("HS256", SECRET)), SECRET, algorithms=["HS256"]) == claims
    assert decode(pyjwt.encode(claims, SECRET, algorithm="HS256"), Key("HS256", SECRET)) == claims


# --- the attack battery --------------------------------------------------------------------------


@pytest.mark.stage(3, "forged tokens")
@pytest.mark.parametrize("alg", ["none", "None", "NONE", "nOnE"])
def test_alg_none_is_refused(alg: str) -> None:
    claims = {"sub": "admin", "exp": NOW + 60}
    with at(NOW):
        rejects(forge({"alg": alg, "typ": "JWT"}, claims, None), Key("HS256", SECRET),
                BadAlgorithm, f"alg {alg!r} with an empty signature (an unsecured JWT)")
        rejects(forge({"alg": alg}, claims, SECRET), Key("HS256", SECRET), BadAlgorithm,
                f"alg {alg!r} with an HMAC attached")


WRONG_ALGS = {"no alg": None, "alg null": "null", "lower case": "hs256", "HS512": "HS512",
              "RS256 for an HMAC key": "RS256", "trailing space": "HS256 ", "alg a list": ["HS256"]}


@pytest.mark.stage(3, "forged tokens")
@pytest.mark.parametrize("alg", WRONG_ALGS.values(), ids=WRONG_ALGS.keys())
def test_an_alg_other_than_the_keys_exactly_is_refused(alg: Any) -> None:
    header = {"typ": "JWT"} if alg is None else {"alg": None if alg == "null" else alg}
    with at(NOW):
        rejects(forge(header, {"sub": "admin"}, SECRET), Key("HS256", SECRET), BadAlgorithm,
                f"header {header}, key HS256: the header's alg must equal the key's alg exactly "
                "(a missing or different alg is not 'the default'), even when the HMAC checks "
                "out")


@pytest.mark.stage(3, "forged tokens")
def test_the_rfc_7519_unsecured_example_is_refused() -> None:
    token = f"eyJhbGciOiJub25lIn0.{A1_PAYLOAD_B64}."
    with at(1300819380 - 60):
        rejects(token, Key("HS256", A1_KEY), BadAlgorithm,
                "RFC 7519 §6.1 unsecured JWT (alg none): the token chose not to be signed")


@pytest.mark.stage(3, "forged tokens")
def test_rs256_to_hs256_key_confusion_is_refused() -> None:
    """The attacker HMACs a token with the RSA *public* key, which everybody can read."""
    _, public_pem = rsa_pems("main")
    forged = forge({"alg": "HS256", "typ": "JWT"}, {"sub": "admin", "exp": NOW + 60}, public_pem)
    with at(NOW):
        rejects(forged, Key("RS256", public_pem), BadAlgorithm,
                "key confusion (RS256 key, token says HS256, HMAC keyed with the public PEM): "
                "the key decides the algorithm, never the token's alg header")


@pytest.mark.stage(3, "forged tokens")
def test_key_confusion_through_the_kid_is_refused() -> None:
    _, public_pem = rsa_pems("main")
    keys = [Key("HS256", SECRET, kid="hmac-1"), Key("RS256", public_pem, kid="rsa-1")]
    forged = forge({"alg": "HS256", "kid": "rsa-1"}, {"sub": "admin"}, public_pem)
    with at(NOW):
        rejects(forged, keys, BadAlgorithm,
                "key confusion via kid (kid names the RSA key, alg says HS256)")


@pytest.mark.stage(3, "forged tokens")
def test_a_tampered_payload_is_refused() -> None:
    with at(NOW):
        token = encode({"sub": "ada", "admin": False, "exp": NOW + 60}, Key("HS256", SECRET))
        header, _, signature = token.split(".")
        evil = b64url_encode(json.dumps({"sub": "ada", "admin": True, "exp": NOW + 60}).encode())
        rejects(f"{header}.{evil}.{signature}", Key("HS256", SECRET), BadSignature,
                "payload changed (admin: true), signature kept")


@pytest.mark.stage(3, "forged tokens")
@pytest.mark.parametrize("change", ["flip a signature character", "strip the signature",
                                    "another secret", "another RSA key"])
def test_a_bad_signature_is_refused(change: str) -> None:
    _, public_pem = rsa_pems("main")
    other_private, _ = rsa_pems("other")
    with at(NOW):
        key = Key("HS256", SECRET)
        token = encode({"sub": "ada"}, key)
        if change == "flip a signature character":
            head, payload, sig = token.split(".")
            middle = len(sig) // 2
            token = f"{head}.{payload}.{sig[:middle]}{'A' if sig[middle] != 'A' else 'B'}{sig[middle + 1:]}"
        elif change == "strip the signature":
            token = token.rsplit(".", 1)[0] + "."
        elif change == "another secret":
            token = encode({"sub": "ada"}, Key("HS256", secrets.token_bytes(32)))
        else:
            token = encode({"sub": "ada"}, Key("RS256", other_private))
            key = Key("RS256", public_pem)
        rejects(token, key, BadSignature, change)


HS256_HEADER = "eyJhbGciOiJIUzI1NiJ9"  # {"alg":"HS256"}
MALFORMED = {
    "two segments": "abc.def",
    "four segments": "a.b.c.d",
    "five segments (a JWE)": "a.b.c.d.e",
    "header not base64url": "eyJ+.e30.",
    "padded header": f"{HS256_HEADER}=.e30.",
    "header not JSON": "YWxnPUhTMjU2.e30.",  # alg=HS256
    "header a JSON array": "WyJIUzI1NiJd.e30.",  # ["HS256"]
    "payload a JSON string": f"{HS256_HEADER}.ImhpIg.",  # "hi"
    "payload not base64url": f"{HS256_HEADER}.e30*.",
    "padded signature": f"{HS256_HEADER}.e30.YWJj=",
    "signature in the +/ alphabet": f"{HS256_HEADER}.e30.ab+/",
    "empty token": "",
    "three empty segments": "..",
}


@pytest.mark.stage(3, "forged tokens")
@pytest.mark.parametrize("token", MALFORMED.values(), ids=MALFORMED.keys())
def test_malformed_tokens_are_refused(token: str) -> None:
    with at(NOW):
        rejects(token, Key("HS256", SECRET), MalformedToken, f"malformed token {token!r}")


KID_TRICKS = {
    "unknown kid": "nope",
    "path traversal": "../../../../../../dev/null",
    "SQL in the kid": "x' UNION SELECT 'attacker-key' --",
    "kid a number": 1,
    "kid a list": ["hmac-1"],
}


@pytest.mark.stage(3, "forged tokens")
@pytest.mark.parametrize("kid", KID_TRICKS.values(), ids=KID_TRICKS.keys())
def test_kid_tricks_are_refused(kid: Any) -> None:
    """The kid is a name to look up among our keys, never a path, a query or a URL."""
    keys = [Key("HS256", SECRET, kid="hmac-1"), Key("HS256", secrets.token_bytes(32), kid="hmac-2")]
    forged = forge({"alg": "HS256", "kid": kid}, {"sub": "admin"}, b"")
    with at(NOW):
        rejects(forged, keys, InvalidToken, f"kid {kid!r}, HMAC keyed with an empty key")


@pytest.mark.stage(3, "forged tokens")
def test_a_kid_is_looked_up_even_when_there_is_one_key() -> None:
    with at(NOW):
        named = encode({"sub": "ada"}, Key("HS256", SECRET, kid="hmac-2"))
        rejects(named, Key("HS256", SECRET, kid="hmac-1"), UnknownKey,
                "kid 'hmac-2' while the only key is 'hmac-1': a kid names a key we must hold; "
                "do not fall back to the only key when the kid does not match")
        rejects(named, Key("HS256", SECRET), UnknownKey,
                "kid 'hmac-2' while the only key has no kid")
        unnamed = pyjwt.encode({"sub": "ada"}, SECRET, algorithm="HS256")
        assert decode(unnamed, Key("HS256", SECRET, kid="hmac-1")) == {"sub": "ada"}, (
            "a token without a kid is verified with the only key there is, named or not"
        )


@pytest.mark.stage(3, "forged tokens")
def test_several_keys_and_no_kid_is_refused() -> None:
    keys = [Key("HS256", SECRET, kid="hmac-1"), Key("HS256", secrets.token_bytes(32), kid="hmac-2")]
    with at(NOW):
        token = forge({"alg": "HS256"}, {"sub": "ada"}, SECRET)
        rejects(token, keys, UnknownKey, "no kid while the verifier holds two keys")


@pytest.mark.stage(3, "forged tokens")
def test_short_hmac_keys_and_unknown_algorithms_are_refused_when_signing() -> None:
    with pytest.raises(ValueError):
        encode({"sub": "ada"}, Key("HS256", b"secret"))  # RFC 7518 §3.2: >= 32 bytes for HS256
    with pytest.raises(ValueError):
        sign(Key("HS256", bytes(31)), b"e30.e30")
    assert sign(Key("HS256", bytes(32)), b"e30.e30") == hmac.digest(bytes(32), b"e30.e30", "sha256"), (
        "a 32-byte HMAC key is long enough (RFC 7518 §3.2: at least the hash's 256 bits)"
    )
    with pytest.raises(ValueError):
        encode({"sub": "ada"}, Key("none", b""))
    with pytest.raises(ValueError):
        encode({"sub": "ada"}, Key("HS512", SECRET))




@pytest.mark.stage(3, "forged tokens")
def test_the_hmac_verdict_is_a_constant_time_comparison(monkeypatch: pytest.MonkeyPatch) -> None:
    key = Key("HS256", SECRET)
    with at(NOW):
        genuine = pyjwt.encode({"sub": "ada"}, SECRET, algorithm="HS256")
    forged = genuine[: genuine.rindex(".") + 1] + b64url_encode(bytes(32))
    oracle = ConstantTimeOracle(monkeypatch, jwt_by_hand)
    oracle.answer = True  # "equal", for an all-zero signature
    with at(NOW):
        try:
            verdict: Any = decode(forged, key)
        except InvalidToken as exc:
            verdict = exc
    if oracle.calls == 0:
        pytest.fail(
            "timing attack: the received HMAC never went through a constant-time comparison "
            "(hmac.compare_digest, secrets.compare_digest or cryptography's HMAC.verify); with "
            "==, the time to reject tells an attacker how many leading bytes of a forged "
            "signature were right"
        )
    assert isinstance(verdict, dict), (
        f"the constant-time comparison answered 'equal' (the test forced it), yet decode "
        f"refused with {type(verdict).__name__}: {verdict}. Something else decides too (an == "
        "beside compare_digest?): with == in the loop, timing leaks again; let the "
        "constant-time comparison alone decide"
    )
    oracle.answer = False  # "different", for the genuine signature
    with at(NOW):
        rejects(genuine, key, InvalidToken,
                "the constant-time comparison answered 'different' (the test forced it) for the "
                "genuine signature, but decode accepted: the verdict comes from somewhere else "
                "(an ==?), not from the constant-time comparison")


# --- time claims (freezegun), audience and issuer --------------------------------------------

BOUNDARIES = [  # token {"exp": 1000, "nbf": 900}; PyJWT 2.15.1 behaves the same (docs/vectors.md 1.4)
    (899, 0, NotYetValid), (899, 5, None), (900, 0, None), (999, 0, None),
    (1000, 0, Expired), (1000, 5, None), (1004, 5, None), (1005, 5, Expired),
]


@pytest.mark.stage(4, "time, audience, issuer")
@pytest.mark.parametrize(("now", "leeway", "error"), BOUNDARIES,
                         ids=[f"now={n} leeway={lw}" for n, lw, _ in BOUNDARIES])
def test_exp_and_nbf_boundaries_with_leeway(now: int, leeway: int,
                                            error: type[InvalidToken] | None) -> None:
    token = pyjwt.encode({"exp": 1000, "nbf": 900}, SECRET, algorithm="HS256")
    options = {"leeway": leeway} if leeway else {}  # no leeway given: the default is 0
    with at(now):
        if error is not None:
            rejects(token, Key("HS256", SECRET), error,
                    f"exp=1000, nbf=900 at now={now} with leeway {leeway} (RFC 7519 §4.1.4: the "
                    "token MUST NOT be accepted on or after exp, so exp == now is expired; "
                    "nbf == now is valid; without a leeway argument the leeway is 0)", **options)
        else:
            try:
                decode(token, Key("HS256", SECRET), **options)
            except InvalidToken as exc:
                pytest.fail(f"exp=1000, nbf=900 at now={now}, leeway {leeway}: valid, but got "
                            f"{type(exc).__name__}: {exc}. Leeway widens both ends")


@pytest.mark.stage(4, "time, audience, issuer")
def test_iat_in_the_future_is_refused() -> None:
    with at(NOW):
        token = pyjwt.encode({"iat": NOW + 30}, SECRET, algorithm="HS256")
        rejects(token, Key("HS256", SECRET), NotYetValid, "iat 30 s in the future")
        assert decode(token, Key("HS256", SECRET), leeway=30) == {"iat": NOW + 30}


NOT_NUMBERS = {  # what json.loads gives for each; none of them is a NumericDate (RFC 7519 §2)
    "a string": ("2030-01-01", "a string"),
    "true": (True, "JSON true, and bool is an int in Python (isinstance(True, int)): refuse "
                   "bool explicitly"),
    "false": (False, "JSON false, and bool is an int in Python (isinstance(False, int)): refuse "
                     "bool explicitly"),
    "null": (None, "JSON null: a claim that is present but null is not an absent claim "
                   "(test `name in claims`, not `claims.get(name) is None`)"),
    "a list": ([NOW], "a list"),
    "an object": ({"t": NOW}, "an object"),
    "NaN": (float("nan"), "NaN, which json.loads reads though it is not JSON (RFC 8259 §6); every "
                          "comparison with NaN is false, so `now >= exp` never expires it"),
    "Infinity": (float("inf"), "Infinity, which json.loads reads though it is not JSON "
                               "(RFC 8259 §6): a token that never expires"),
}


@pytest.mark.stage(4, "time, audience, issuer")
@pytest.mark.parametrize("claim", ["exp", "nbf", "iat"])
@pytest.mark.parametrize("value", NOT_NUMBERS.values(), ids=NOT_NUMBERS.keys())
def test_a_time_claim_that_is_not_a_number_is_malformed(claim: str, value: tuple[Any, str]) -> None:
    bad, what = value
    token = forge({"alg": "HS256"}, {"sub": "ada", claim: bad}, SECRET)  # properly signed
    with at(NOW):
        rejects(token, Key("HS256", SECRET), MalformedToken,
                f"{claim} = {json.dumps(bad)}: {what}; a time claim must be a number")


@pytest.mark.stage(4, "time, audience, issuer")
def test_time_claims_beyond_any_float_are_still_numbers() -> None:
    """JSON integers have no size limit, and Python compares an int with a float exactly."""
    huge = 10**400  # float(huge) raises OverflowError
    with at(NOW):
        for claims, expected in (({"exp": huge}, None), ({"exp": -huge}, Expired),
                                 ({"nbf": huge}, NotYetValid), ({"iat": -huge}, None)):
            token = forge({"alg": "HS256"}, claims, SECRET)
            name, = claims
            what = f"{name} = {'-' if claims[name] < 0 else ''}10**400"
            if expected is not None:
                rejects(token, Key("HS256", SECRET), expected, what)
                continue
            try:
                assert decode(token, Key("HS256", SECRET)) == claims
            except (InvalidToken, OverflowError) as exc:
                pytest.fail(f"{what}: a valid token, but got {type(exc).__name__}: {exc}. Compare "
                            "the claim as it is: float(exp) overflows")


FORGED_CLAIMS = {  # each would be refused for its claims too: the signature must speak first
    "expired": ({"exp": NOW - 60}, {}),
    "not yet valid": ({"nbf": NOW + 60}, {}),
    "issued in the future": ({"iat": NOW + 60}, {}),
    "for another audience": ({"aud": "billing"}, {"audience": "api"}),
    "with an aud nobody expected": ({"aud": "billing"}, {}),
    "without the expected aud": ({}, {"audience": "api"}),
    "from another issuer": ({"iss": "https://evil.test"}, {"issuer": "https://issuer.test"}),
    "with a string exp": ({"exp": "tomorrow"}, {}),
    "with exp true": ({"exp": True}, {}),
}


@pytest.mark.stage(4, "time, audience, issuer")
@pytest.mark.parametrize(("claims", "options"), FORGED_CLAIMS.values(), ids=FORGED_CLAIMS.keys())
@pytest.mark.parametrize("alg", ["HS256", "RS256"])
def test_a_forged_token_is_refused_for_its_signature_before_its_claims_are_read(
        claims: dict[str, Any], options: dict[str, Any], alg: str) -> None:
    public_pem = rsa_pems("main")[1]
    with at(NOW):
        if alg == "HS256":
            key = Key("HS256", SECRET)
            forged = pyjwt.encode({"sub": "admin", **claims}, secrets.token_bytes(32), "HS256")
        else:
            key = Key("RS256", public_pem)
            forged = pyjwt.encode({"sub": "admin", **claims}, rsa_pems("other")[0], "RS256")
        rejects(forged, key, BadSignature,
                f"an {alg} token signed with the attacker's key, claims {claims}, options "
                f"{options}: the claims were judged before the signature (steps 3 then 4). "
                "Until the signature verifies, the claims are the attacker's words: reading "
                "them first tells him which of his forgeries got past which check", **options)


FRACTIONAL = [  # (claims, now, leeway, error): a NumericDate may have a fraction (RFC 7519 §2)
    ({"exp": 1000.5}, 1000.25, 0, None), ({"exp": 1000.5}, 1000.5, 0, Expired),
    ({"exp": 1000.5}, 1000.75, 0, Expired), ({"exp": 1000}, 1001.25, 1.5, None),
    ({"exp": 1000}, 1001.5, 1.5, Expired), ({"exp": 1000}, 1001.75, 1.5, Expired),
    ({"nbf": 900.5}, 900.25, 0, NotYetValid), ({"nbf": 900.5}, 900.5, 0, None),
    ({"nbf": 900}, 898.25, 1.5, NotYetValid), ({"nbf": 900}, 898.5, 1.5, None),
    ({"iat": 900.5}, 900.25, 0, NotYetValid), ({"iat": 900.5}, 900.75, 0, None),
]


@pytest.mark.stage(4, "time, audience, issuer")
@pytest.mark.parametrize(("claims", "now", "leeway", "error"), FRACTIONAL,
                         ids=[f"{c} now={n} leeway={lw}" for c, n, lw, _ in FRACTIONAL])
def test_time_is_compared_to_the_fraction_of_a_second(
        claims: dict[str, float], now: float, leeway: float, error: type[InvalidToken] | None
) -> None:
    token = forge({"alg": "HS256"}, claims, SECRET)
    what = (f"{claims} at now={now} with leeway {leeway}: compare time.time() as it is, with "
            "the claim as it is (int(time.time()) or int(exp) moves the boundary by up to a "
            "second)")
    with at(now):
        if error is not None:
            rejects(token, Key("HS256", SECRET), error, what, leeway=leeway)
            return
        try:
            decode(token, Key("HS256", SECRET), leeway=leeway)
        except InvalidToken as exc:
            pytest.fail(f"{what}; valid, but got {type(exc).__name__}: {exc}")


TIMES = st.integers(NOW - 12, NOW + 12)
AUDIENCES = st.sampled_from(["api", "web", "ap", "api-admin", "API"])


@pytest.mark.stage(4, "time, audience, issuer")
@settings(max_examples=120, deadline=None)
@given(exp=st.none() | TIMES, nbf=st.none() | TIMES, iat=st.none() | TIMES,
       aud=st.none() | AUDIENCES | st.lists(AUDIENCES, min_size=1, max_size=3),
       iss=st.none() | st.sampled_from(["https://issuer.test", "https://evil.test"]),
       audience=st.none() | st.sampled_from(["api", "web"]),
       issuer=st.none() | st.just("https://issuer.test"),
       leeway=st.sampled_from([0, 1, 2.5, 6]), now=TIMES,
       fraction=st.sampled_from([0.0, 0.25, 0.5, 0.75]))
def test_claims_are_judged_as_pyjwt_judges_them(
        exp: int | None, nbf: int | None, iat: int | None, aud: str | list[str] | None,
        iss: str | None, audience: str | None, issuer: str | None, leeway: float, now: int,
        fraction: float) -> None:
    """PyJWT is the oracle for accept or refuse; the README's table says which errors may be
    raised when several checks fail (it fixes no order among the claims of step 4)."""
    claims = {name: value for name, value in (("exp", exp), ("nbf", nbf), ("iat", iat),
                                              ("aud", aud), ("iss", iss)) if value is not None}
    token = pyjwt.encode({"sub": "ada", **claims}, SECRET, algorithm="HS256")
    t = now + fraction
    allowed: set[type[InvalidToken]] = set()
    if exp is not None and t >= exp + leeway:
        allowed.add(Expired)
    if (nbf is not None and nbf > t + leeway) or (iat is not None and iat > t + leeway):
        allowed.add(NotYetValid)
    named = [aud] if isinstance(aud, str) else aud or []
    if (aud is None) != (audience is None) or (audience is not None and audience not in named):
        allowed.add(BadAudience)
    if issuer is not None and iss != issuer:
        allowed.add(BadIssuer)
    with at(t):
        try:
            pyjwt.decode(token, SECRET, algorithms=["HS256"], audience=audience, issuer=issuer,
                         leeway=leeway)
            pyjwt_accepts = True
        except pyjwt.InvalidTokenError:
            pyjwt_accepts = False
        assert pyjwt_accepts == (not allowed), "the oracle disagrees with the README's table"
        try:
            got = decode(token, Key("HS256", SECRET), audience=audience, issuer=issuer,
                         leeway=leeway)
        except InvalidToken as exc:
            got = exc
    where = (f"claims {claims} at now={t} with leeway {leeway}, audience {audience!r}, issuer "
             f"{issuer!r}")
    if not allowed:
        assert isinstance(got, dict), (
            f"{where}: PyJWT accepts, you refused with {type(got).__name__}: {got}")
    else:
        assert not isinstance(got, dict), (
            f"{where}: PyJWT refuses ({' or '.join(sorted(e.__name__ for e in allowed))}), you "
            "accepted")
        assert type(got) in allowed, (
            f"{where}: refused with {type(got).__name__}, but the failing checks are "
            f"{sorted(e.__name__ for e in allowed)}")


@pytest.mark.stage(4, "time, audience, issuer")
@pytest.mark.parametrize("aud", ["api", ["web", "api"]])
def test_the_expected_audience_is_accepted_as_string_or_in_a_list(aud: str | list[str]) -> None:
    token = pyjwt.encode({"aud": aud}, SECRET, algorithm="HS256")
    assert decode(token, Key("HS256", SECRET), audience="api") == {"aud": aud}, (
        "aud may be one string or an array of strings (RFC 7519 §4.1.3)"
    )


AUDIENCE_ATTACKS = {
    "another service": ({"aud": "billing"}, "api"),
    "a substring of the aud": ({"aud": "api-admin"}, "api"),
    "aud contains the expected one as a substring": ({"aud": "ap"}, "api"),
    "the same letters in capitals": ({"aud": "API"}, "api"),
    "a list without it": ({"aud": ["web", "billing"]}, "api"),
    "no aud at all": ({}, "api"),
    "aud, but nobody expected one": ({"aud": "billing"}, None),
}


@pytest.mark.stage(4, "time, audience, issuer")
@pytest.mark.parametrize(("claims", "audience"), AUDIENCE_ATTACKS.values(),
                         ids=AUDIENCE_ATTACKS.keys())
def test_a_token_for_another_audience_is_refused(claims: dict[str, Any], audience: str | None) -> None:
    token = pyjwt.encode(claims, SECRET, algorithm="HS256")
    rejects(token, Key("HS256", SECRET), BadAudience,
            f"aud {claims.get('aud')!r}, expected audience {audience!r} (compare whole strings, "
            "never a substring, case and all; RFC 7519 §4.1.3: a recipient not named in aud "
            "MUST reject, even when it expected no audience)", audience=audience)


@pytest.mark.stage(4, "time, audience, issuer")
def test_the_issuer_must_match_when_one_is_expected() -> None:
    good = pyjwt.encode({"iss": "https://issuer.test"}, SECRET, algorithm="HS256")
    assert decode(good, Key("HS256", SECRET), issuer="https://issuer.test")
    for claims in ({"iss": "https://evil.test"}, {"iss": "https://issuer.test.evil"}, {},
                   {"iss": "HTTPS://ISSUER.TEST"}, {"iss": None}, {"iss": ["https://issuer.test"]}):
        token = forge({"alg": "HS256"}, claims, SECRET)  # PyJWT would not sign a list as iss
        rejects(token, Key("HS256", SECRET), BadIssuer,
                f"iss {claims.get('iss', '(none)')!r} when https://issuer.test is expected: iss is a "
                "StringOrURI compared as it is, case and all (RFC 7519 §4.1.1), and a token "
                "without it is refused", issuer="https://issuer.test")
