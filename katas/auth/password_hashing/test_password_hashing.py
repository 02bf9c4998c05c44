"""Tests for password hashing: RFC 7914 / RFC 6070 vectors, the format, Werkzeug interop, rehash."""

from __future__ import annotations

import hashlib
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from werkzeug.security import check_password_hash, generate_password_hash

from dojo.constant_time import ConstantTimeOracle

from . import password_hashing
from .password_hashing import (
    DEFAULT_METHOD,
    InvalidHash,
    derive,
    hash_password,
    needs_rehash,
    verify_and_update,
    verify_password,
)

# Cheap parameters keep the tests fast; the code path is the same as for the real ones.
FAST_SCRYPT = "scrypt:1024:8:1"
FAST_PBKDF2 = "pbkdf2:sha256:1000"


def h(text: str) -> bytes:
    """Bytes from the RFCs' spaced hex."""
    return bytes.fromhex(text.replace(" ", ""))


# --- the published vectors -----------------------------------------------------------------

RFC7914_SCRYPT = [
    ("scrypt:16:1:1", b"", b"",
     "77 d6 57 62 38 65 7b 20 3b 19 ca 42 c1 8a 04 97 f1 6b 48 44 e3 07 4a e8 df df fa 3f ed e2 "
     "14 42 fc d0 06 9d ed 09 48 f8 32 6a 75 3a 0f c8 1f 17 e8 d3 e0 fb 2e 0d 36 28 cf 35 e2 0c "
     "38 d1 89 06"),
    ("scrypt:1024:8:16", b"password", b"NaCl",
     "fd ba be 1c 9d 34 72 00 78 56 e7 19 0d 01 e9 fe 7c 6a d7 cb c8 23 78 30 e7 73 76 63 4b 37 "
     "31 62 2e af 30 d9 2e 22 a3 88 6f f1 09 27 9d 98 30 da c7 27 af b9 4a 83 ee 6d 83 60 cb df "
     "a2 cc 06 40"),
    ("scrypt:16384:8:1", b"pleaseletmein", b"SodiumChloride",
     "70 23 bd cb 3a fd 73 48 46 1c 06 cd 81 fd 38 eb fd a8 fb ba 90 4f 8e 3e a9 b5 43 f6 54 5d "
     "a1 f2 d5 43 29 55 61 3f 0f cf 62 d4 97 05 24 2a 9a f9 e6 1e 85 dc 0d 65 1e 40 df cf 01 7b "
     "45 57 58 87"),
]


@pytest.mark.stage(1, "deriving keys")
@pytest.mark.parametrize(("method", "password", "salt", "expected"), RFC7914_SCRYPT,
                         ids=["N=16", "N=1024 p=16", "N=16384"])
def test_scrypt_reproduces_the_rfc_7914_vectors(
    method: str, password: bytes, salt: bytes, expected: str
) -> None:
    try:
        got = derive(method, password, salt)
    except ValueError as exc:
        pytest.fail(f"{method}: hashlib.scrypt refused with {exc!r}. scrypt allocates "
                    "128 * r * (N + p + 2) bytes (B and V): pass at least that as maxmem")
    assert got == h(expected), (
        f"RFC 7914 §12, {method} P={password!r} S={salt!r}: expected {h(expected).hex()[:32]}..., "
        f"got {got.hex()[:32]}... ({len(got)} bytes; scrypt's output here is 64 bytes). "
        "Check the order of N, r and p"
    )


RFC_PBKDF2 = [  # RFC 7914 §11 (SHA-256, dkLen 64) and RFC 6070 (SHA-1)
    ("pbkdf2:sha256:1", b"passwd", b"salt", 64,
     "55 ac 04 6e 56 e3 08 9f ec 16 91 c2 25 44 b6 05 f9 41 85 21 6d de 04 65 e6 8b 9d 57 c2 0d "
     "ac bc 49 ca 9c cc f1 79 b6 45 99 16 64 b3 9d 77 ef 31 7c 71 b8 45 b1 e3 0b d5 09 11 20 41 "
     "d3 a1 97 83"),
    ("pbkdf2:sha256:80000", b"Password", b"NaCl", 64,
     "4d dc d8 f6 0b 98 be 21 83 0c ee 5e f2 27 01 f9 64 1a 44 18 d0 4c 04 14 ae ff 08 87 6b 34 "
     "ab 56 a1 d4 25 a1 22 58 33 54 9a db 84 1b 51 c9 b3 17 6a 27 2b de bb a1 d0 78 47 8f 62 b3 "
     "97 f3 3c 8d"),
    ("pbkdf2:sha1:1", b"password", b"salt", None,
     "0c 60 c8 0f 96 1f 0e 71 f3 a9 b5 24 af 60 12 06 2f e0 37 a6"),
    ("pbkdf2:sha1:2", b"password", b"salt", None,
     "ea 6c 01 4d c7 2d 6f 8c cd 1e d9 2a ce 1d 41 f0 d8 de 89 57"),
    ("pbkdf2:sha1:4096", b"password", b"salt", None,
     "4b 00 79 01 b7 65 48 9a be ad 49 d9 26 f7 21 d0 65 a4 29 c1"),
    ("pbkdf2:sha1:4096", b"passwordPASSWORDpassword", b"saltSALTsaltSALTsaltSALTsaltSALTsalt", 25,
     "3d 2e ec 4f e4 1c 84 9b 80 c8 d8 36 62 c0 e4 4a 8b 29 1a 96 4c f2 f0 70 38"),
    ("pbkdf2:sha1:4096", b"pass\0word", b"sa\0lt", 16,
     "56 fa 6a a7 55 48 09 9d cc 37 d7 f0 34 25 e0 c3"),
]


@pytest.mark.stage(1, "deriving keys")
@pytest.mark.parametrize(("method", "password", "salt", "dklen", "expected"), RFC_PBKDF2,
                         ids=["7914 c=1", "7914 c=80000", "6070 c=1", "6070 c=2", "6070 c=4096",
                              "6070 long", "6070 nul"])
def test_pbkdf2_reproduces_the_rfc_vectors(
    method: str, password: bytes, salt: bytes, dklen: int | None, expected: str
) -> None:
    got = derive(method, password, salt, dklen)
    assert got == h(expected), (
        f"{method} P={password!r} S={salt!r} dkLen={dklen}: expected {h(expected).hex()}, "
        f"got {got.hex()} (without dklen the output is the hash's digest size)"
    )


BAD_METHODS = ["md5", "bcrypt:12", "argon2id:19456:2:1", "pbkdf2:md5:1000", "pbkdf2:sha256",
               "pbkdf2:sha256:many", "scrypt:16384:8", "scrypt:x:8:1", "plain", "",
               "md5:1024:8:1", "pbkdf2:1024:8:1", "scrypt:16:8:1:1", "pbkdf2:sha256:1000:1",
               "scrypt", "pbkdf2", "SCRYPT:16:1:1", "pbkdf2:SHA256:1000"]
BAD_PARAMETERS = ["scrypt:0:8:1", "scrypt:1:8:1", "scrypt:3:8:1", "scrypt:1000:8:1",
                  "scrypt:-16:8:1", "scrypt:16:0:1", "scrypt:16:8:0", "scrypt:16:-8:1",
                  "pbkdf2:sha256:0", "pbkdf2:sha256:-5"]


@pytest.mark.stage(3, "broken records")
@pytest.mark.parametrize("method", BAD_METHODS + BAD_PARAMETERS)
def test_derive_rejects_unknown_or_malformed_methods(method: str) -> None:
    try:
        got = derive(method, b"password", b"salt")
    except InvalidHash:
        return
    except Exception as exc:
        pytest.fail(
            f"derive({method!r}) raised {type(exc).__name__}: {exc}; it must raise InvalidHash. "
            "Check the parameters yourself (scrypt: N a power of two greater than 1, r and p at "
            "least 1; pbkdf2: at least 1 iteration): hashlib's own errors do not say which "
            "stored hash is broken, and a caller catching InvalidHash misses them"
        )
    pytest.fail(
        f"derive({method!r}) returned {got.hex()[:16]}...; it must raise InvalidHash. Keep an "
        "allow-list (scrypt, pbkdf2 with sha1/sha256/sha512, spelled exactly so): a stored hash "
        "must never pick its own weaker algorithm, and a missing or extra parameter must not "
        "fall back to a default"
    )


@pytest.mark.stage(1, "deriving keys")
@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_derive_is_hashlib_with_the_parameters_the_method_names(data: st.DataObject) -> None:
    """Every well-formed method, down to the smallest parameters, against hashlib itself."""
    password, salt = data.draw(st.binary(max_size=12)), data.draw(st.binary(max_size=12))
    dklen = data.draw(st.none() | st.integers(1, 80))
    if data.draw(st.booleans()):
        n, r, p = 2 ** data.draw(st.integers(1, 7)), data.draw(st.integers(1, 4)), data.draw(st.integers(1, 3))
        method = f"scrypt:{n}:{r}:{p}"
        expected = hashlib.scrypt(password, salt=salt, n=n, r=r, p=p, maxmem=2**26,
                                  dklen=dklen or 64)
    else:
        name, iterations = data.draw(st.sampled_from(["sha1", "sha256", "sha512"])), data.draw(
            st.integers(1, 30))
        method = f"pbkdf2:{name}:{iterations}"
        expected = hashlib.pbkdf2_hmac(name, password, salt, iterations, dklen)
    try:
        got = derive(method, password, salt, dklen)
    except ValueError as exc:
        pytest.fail(f"derive({method!r}, dklen={dklen}) raised {exc!r}; hashlib computes it (scrypt "
                    "allocates 128 * r * (N + p + 2) bytes: pass at least that as maxmem)")
    assert got == expected, (
        f"derive({method!r}, {password!r}, {salt!r}, dklen={dklen}): expected {expected.hex()[:24]}"
        f"... ({len(expected)} bytes), got {got.hex()[:24]}... ({len(got)} bytes)")


# --- the stored hash string ------------------------------------------------------------------


@pytest.mark.stage(2, "hashing and verifying")
def test_a_hash_names_its_method_and_carries_a_salt_and_the_full_checksum() -> None:
    stored = hash_password("correct horse", FAST_SCRYPT)
    parts = stored.split("$")
    assert len(parts) == 3, f"expected '<method>$<salt>$<hex>', got {stored!r}"
    method, salt, checksum = parts
    assert method == FAST_SCRYPT, "the method with all its parameters comes first"
    assert len(salt) >= 16, f"a salt of {len(salt)} characters is too short (16 or more)"
    with pytest.raises(InvalidHash):
        hash_password("correct horse", "md5")
    assert checksum == derive(FAST_SCRYPT, b"correct horse", salt.encode()).hex(), (
        "the checksum is the hex of derive(method, password as UTF-8, salt as UTF-8)"
    )


@pytest.mark.stage(2, "hashing and verifying")
def test_every_hash_gets_its_own_salt() -> None:
    hashes = [hash_password("same password", "pbkdf2:sha256:1") for _ in range(40)]
    for stored in hashes:
        assert stored.count("$") == 2 and len(stored.split("$")[1]) >= 16, (
            f"{stored!r}: the salt must be 16 or more characters and never hold a '$', which "
            "separates the parts of the record"
        )
    salts = {stored.split("$")[1] for stored in hashes}
    assert len(salts) == len(hashes), (
        f"{len(hashes)} hashes of one password used only {len(salts)} distinct salt(s): without a "
        "per-user salt, users with the same password share a hash, and one precomputed table "
        "cracks them all"
    )


@pytest.mark.stage(2, "hashing and verifying")
def test_the_salt_comes_from_secrets_not_from_random() -> None:
    salts = []
    for _ in range(2):
        random.seed(1234)  # an attacker who learns the seed (or the outputs) predicts `random`
        salts.append(hash_password("pw", "pbkdf2:sha256:1").split("$")[1])
    assert salts[0] != salts[1], (
        f"re-seeding the `random` module reproduced the salt {salts[0]!r}: `random` is a "
        "predictable generator (Mersenne Twister); use `secrets` for salts"
    )


@pytest.mark.stage(2, "hashing and verifying")
def test_the_right_password_verifies_and_others_do_not() -> None:
    stored = hash_password("p\u00e4ssw\u00f6rd \U0001f511", FAST_SCRYPT)
    assert verify_password(stored, "p\u00e4ssw\u00f6rd \U0001f511") is True
    for wrong in ["p\u00e4ssw\u00f6rd", "p\u00e4ssw\u00f6rd \U0001f511 ", "", "P\u00e4ssw\u00f6rd \U0001f511"]:
        assert verify_password(stored, wrong) is False, f"{wrong!r} must not verify"


@pytest.mark.stage(2, "hashing and verifying")
def test_the_default_method_works_within_openssl_memory_limits() -> None:
    try:
        stored = hash_password("hunter2")
    except ValueError as exc:
        pytest.fail(
            f"hash_password with {DEFAULT_METHOD} failed: {exc}. scrypt with N=32768, r=8 needs "
            "just over 32 MiB, OpenSSL's default limit: pass maxmem, at least "
            "128 * r * (N + p + 2) bytes"
        )
    assert stored.startswith(DEFAULT_METHOD + "$")
    assert verify_password(stored, "hunter2")


# --- a real peer: Werkzeug's generate_password_hash / check_password_hash -------------------


@pytest.mark.stage(2, "hashing and verifying")
@pytest.mark.parametrize("method", [FAST_SCRYPT, FAST_PBKDF2, "pbkdf2:sha512:1000"])
def test_werkzeug_accepts_our_hashes_and_we_accept_werkzeugs(method: str) -> None:
    ours = hash_password("open sesame", method)
    assert check_password_hash(ours, "open sesame"), (
        f"werkzeug.security.check_password_hash rejected {ours!r}: same format, "
        "<method>$<salt>$<hex>, salt and password as UTF-8"
    )
    assert not check_password_hash(ours, "open sesamE")
    theirs = generate_password_hash("open sesame", method)
    assert verify_password(theirs, "open sesame"), f"a Werkzeug hash {theirs!r} did not verify"
    assert not verify_password(theirs, "open sesamE")


@pytest.mark.stage(2, "hashing and verifying")
@settings(max_examples=40, deadline=None)
@given(password=st.text(max_size=40))
def test_any_password_round_trips_through_werkzeug(password: str) -> None:
    ours = hash_password(password, "pbkdf2:sha256:1")
    assert check_password_hash(ours, password)
    assert verify_password(generate_password_hash(password, "pbkdf2:sha256:1"), password)


# --- broken records and the constant-time compare --------------------------------------------


def _broken_hashes() -> dict[str, str]:
    method, salt, checksum = generate_password_hash("pw", FAST_PBKDF2).split("$")
    return {
        "empty checksum": f"{method}${salt}$",
        "checksum cut to 8 hex digits": f"{method}${salt}${checksum[:8]}",
        "checksum missing its last byte": f"{method}${salt}${checksum[:-2]}",
        "checksum with a byte too many": f"{method}${salt}${checksum}00",
        "checksum not hex": f"{method}${salt}${'zz' * 32}",
        "no checksum part": f"{method}${salt}",
        "method only": method,
        "empty string": "",
        "unknown algorithm md5": f"md5${salt}${checksum[:32]}",
        "plain salted sha256 (old Werkzeug)": f"sha256${salt}${checksum}",
        "pbkdf2 with md5": f"pbkdf2:md5:1000${salt}${checksum[:32]}",
        "plaintext": "plain$$pw",
        "scrypt without p": f"scrypt:1024:8${salt}${'00' * 64}",
    }


BROKEN = _broken_hashes()


@pytest.mark.stage(3, "broken records")
@pytest.mark.parametrize("stored", BROKEN.values(), ids=BROKEN.keys())
def test_a_broken_or_unknown_hash_raises_invalid_hash(stored: str) -> None:
    for guess in ["pw", "", "anything"]:
        try:
            got = verify_password(stored, guess)
        except InvalidHash:
            continue
        assert got is not True, (
            f"verify_password({stored!r}, {guess!r}) returned True: a truncated or unknown hash "
            "matched. Compare the full checksum (check its length), and refuse unknown methods"
        )
        pytest.fail(f"verify_password({stored!r}, {guess!r}) returned {got!r}; raise InvalidHash")




@pytest.mark.stage(3, "broken records")
def test_the_checksum_verdict_is_a_constant_time_comparison(monkeypatch: pytest.MonkeyPatch) -> None:
    stored = generate_password_hash("pw", FAST_PBKDF2)
    oracle = ConstantTimeOracle(monkeypatch, password_hashing)
    oracle.answer = True  # "equal", for a wrong password
    verdict = verify_password(stored, "nope")
    assert oracle.calls, (
        "timing attack: the checksum never went through a constant-time comparison "
        "(hmac.compare_digest, secrets.compare_digest or cryptography's HMAC.verify); == returns "
        "at the first differing byte"
    )
    assert verdict is True, (
        f"the constant-time comparison answered 'equal' (the test forced it), yet verify_password "
        f"returned {verdict!r}: something else decides too (an == beside it?). Compare the "
        "checksums (raw, hex, or the whole rebuilt record: your choice) in constant time, and "
        "let that comparison alone decide"
    )
    oracle.answer = False  # "different", for the right password
    verdict = verify_password(stored, "pw")
    assert verdict is False, (
        f"the constant-time comparison answered 'different' (the test forced it) for the right "
        f"password, yet verify_password returned {verdict!r}: the verdict comes from elsewhere"
    )


# --- raising the parameters later --------------------------------------------------------------


@pytest.mark.stage(4, "rehashing")
@pytest.mark.parametrize(
    ("made_with", "policy", "expected"),
    [
        ("scrypt:1024:8:1", "scrypt:1024:8:1", False),
        ("scrypt:1024:8:1", "scrypt:2048:8:1", True),
        ("scrypt:1024:8:1", "scrypt:1024:16:1", True),
        ("scrypt:1024:8:1", "scrypt:1024:8:2", True),
        ("pbkdf2:sha256:1000", "pbkdf2:sha256:1000", False),
        ("pbkdf2:sha256:1000", "pbkdf2:sha256:2000", True),
        ("pbkdf2:sha1:1000", "pbkdf2:sha256:1000", True),
        ("pbkdf2:sha256:1000", "scrypt:1024:8:1", True),
        ("scrypt:1024:8:1", "pbkdf2:sha256:1000", True),
        ("pbkdf2:sha512:1000", "pbkdf2:sha512:999", True),
    ],
)
def test_needs_rehash_when_the_method_or_a_parameter_changed(
    made_with: str, policy: str, expected: bool
) -> None:
    stored = generate_password_hash("pw", made_with)
    got = needs_rehash(stored, policy)
    assert got is expected, (
        f"needs_rehash(hash made with {made_with}, policy {policy}) -> {got}, expected "
        f"{expected}: when the parameters are raised, every old hash must be upgraded at the "
        "next login, so compare every parameter, not only the algorithm"
    )


@pytest.mark.stage(4, "rehashing")
def test_needs_rehash_compares_parameters_not_their_spelling() -> None:
    stored = hash_password("pw", "scrypt:01024:8:1")
    assert needs_rehash(stored, "scrypt:1024:8:1") is False, (
        "a hash made with scrypt:01024:8:1 has N=1024 like the policy scrypt:1024:8:1: compare "
        "the parsed parameters, not the text")
    assert needs_rehash(stored, "scrypt:1024:8:01") is False


@pytest.mark.stage(4, "rehashing")
def test_a_login_upgrades_an_outdated_hash() -> None:
    old = generate_password_hash("open sesame", "pbkdf2:sha256:1000")
    ok, new = verify_and_update(old, "open sesame", FAST_SCRYPT)
    assert ok is True, "the right password must verify"
    assert new is not None and new.startswith(FAST_SCRYPT + "$"), (
        f"the hash was made with pbkdf2:sha256:1000 and the policy is {FAST_SCRYPT}: expected a "
        f"new hash made with it, got {new!r}"
    )
    assert check_password_hash(new, "open sesame"), "the new hash must verify the same password"
    assert verify_and_update(new, "open sesame", FAST_SCRYPT) == (True, None), (
        "a current hash needs no update: return (True, None)"
    )


@pytest.mark.stage(4, "rehashing")
def test_a_wrong_password_is_never_rehashed() -> None:
    old = generate_password_hash("open sesame", "pbkdf2:sha256:1000")
    got = verify_and_update(old, "let me in", FAST_SCRYPT)
    assert got == (False, None), (
        f"verify_and_update with a wrong password returned {got!r}: hashing the attacker's guess "
        "as the new stored hash is an account takeover. Verify first, rehash only after"
    )
