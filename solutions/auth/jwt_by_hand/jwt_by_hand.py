"""JSON Web Tokens by hand (RFC 7515, 7518, 7519): HS256 and RS256, claims, and no alg tricks."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import math
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

ALGORITHMS = ("HS256", "RS256")
MIN_HMAC_KEY_BYTES = 32  # RFC 7518 §3.2: a key at least as long as the hash output
_B64URL = re.compile(r"[A-Za-z0-9_-]*")


@dataclass(frozen=True)
class Key:
    """A key bound to the one algorithm it may be used with (RFC 8725 §3.1).

    HS256: `material` is the shared secret (bytes, at least 32 of them).
    RS256: `material` is a PEM: a private key to sign, a public (or private) key to verify.
    `kid` names the key in a token's header when a verifier holds several keys.
    """

    alg: str
    material: bytes
    kid: str | None = None


class InvalidToken(Exception):
    """The token must not be accepted; the subclass says why."""


class MalformedToken(InvalidToken):
    """Not three base64url segments of JSON objects, or a claim of the wrong type."""


class BadAlgorithm(InvalidToken):
    """The header's alg is missing, "none", or not the algorithm of the key that was selected."""


class UnknownKey(InvalidToken):
    """No key matches the header's kid (or there are several keys and no kid)."""


class BadSignature(InvalidToken):
    """The signature does not verify with the selected key."""


class Expired(InvalidToken):
    """now >= exp + leeway."""


class NotYetValid(InvalidToken):
    """nbf > now + leeway, or iat > now + leeway."""


class BadAudience(InvalidToken):
    """The aud claim does not name the expected audience (or names one nobody expected)."""


class BadIssuer(InvalidToken):
    """The iss claim is missing or is not the expected issuer."""


def b64url_encode(data: bytes) -> str:
    """Base64url without padding (RFC 7515 §2).

    >>> b64url_encode(b'{"alg":"none"}')
    'eyJhbGciOiJub25lIn0'
    """
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    """The bytes of unpadded base64url `text`; MalformedToken for padding or other characters."""
    # urlsafe_b64decode alone drops characters outside the alphabet and demands padding; a
    # token is unpadded base64url and nothing else (RFC 7515 §2).
    if not _B64URL.fullmatch(text) or len(text) % 4 == 1:
        raise MalformedToken(f"not unpadded base64url: {text[:20]!r}")
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError) as exc:
        raise MalformedToken(f"not base64url: {exc}") from None


def _hmac_secret(key: Key) -> bytes:
    if len(key.material) < MIN_HMAC_KEY_BYTES:
        raise ValueError(
            f"an HS256 key needs at least {MIN_HMAC_KEY_BYTES} bytes (RFC 7518 §3.2), "
            f"got {len(key.material)}"
        )
    return key.material


def _public_key(key: Key) -> rsa.RSAPublicKey:
    """The RSA public key of a PEM that holds a public or a private key."""
    if b"PRIVATE KEY" in key.material:
        private = serialization.load_pem_private_key(key.material, password=None)
        public: object = private.public_key()
    else:
        public = serialization.load_pem_public_key(key.material)
    if not isinstance(public, rsa.RSAPublicKey):
        raise ValueError("an RS256 key must be an RSA key")
    return public


def sign(key: Key, signing_input: bytes) -> bytes:
    """The signature of `signing_input` (ASCII "<header b64>.<payload b64>") with `key`.

    HS256: HMAC-SHA256 with the secret. RS256: RSASSA-PKCS1-v1_5 with SHA-256 and the private
    key in the PEM (use `cryptography`). ValueError for an unknown alg or an HMAC key shorter
    than MIN_HMAC_KEY_BYTES.
    """
    if key.alg == "HS256":
        return hmac.new(_hmac_secret(key), signing_input, hashlib.sha256).digest()
    if key.alg == "RS256":
        private = serialization.load_pem_private_key(key.material, password=None)
        if not isinstance(private, rsa.RSAPrivateKey):
            raise ValueError("an RS256 signing key must be an RSA private key")
        # RS256 is PKCS#1 v1.5 (RFC 7518 §3.3); PSS would be PS256, which verifiers reject.
        return private.sign(signing_input, padding.PKCS1v15(), hashes.SHA256())
    raise ValueError(f"unsupported alg {key.alg!r} (supported: {', '.join(ALGORITHMS)})")


def _verify_signature(key: Key, signing_input: bytes, signature: bytes) -> bool:
    if key.alg == "HS256":
        expected = hmac.new(_hmac_secret(key), signing_input, hashlib.sha256).digest()
        # compare_digest: == would leak, through timing, how many leading bytes were right.
        return hmac.compare_digest(expected, signature)
    if key.alg == "RS256":
        try:
            _public_key(key).verify(signature, signing_input, padding.PKCS1v15(), hashes.SHA256())
        except InvalidSignature:
            return False
        return True
    raise ValueError(f"unsupported alg {key.alg!r}")


def _json(data: Mapping[str, Any]) -> bytes:
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode()


def encode(claims: Mapping[str, Any], key: Key) -> str:
    """A compact JWS: base64url(header) "." base64url(claims) "." base64url(signature).

    The header is {"alg": key.alg, "typ": "JWT"}, plus "kid" when the key has one.
    """
    header: dict[str, Any] = {"alg": key.alg, "typ": "JWT"}
    if key.kid is not None:
        header["kid"] = key.kid
    signing_input = f"{b64url_encode(_json(header))}.{b64url_encode(_json(claims))}"
    return f"{signing_input}.{b64url_encode(sign(key, signing_input.encode('ascii')))}"


def _json_object(segment: str, what: str) -> dict[str, Any]:
    try:
        value = json.loads(b64url_decode(segment))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise MalformedToken(f"the {what} is not JSON: {exc}") from None
    if not isinstance(value, dict):
        raise MalformedToken(f"the {what} must be a JSON object, got {type(value).__name__}")
    return value


def _select_key(header: Mapping[str, Any], keys: Sequence[Key]) -> Key:
    if "kid" in header:
        kid = header["kid"]
        # Exact match in the keys we hold: a kid is a name, never a path, a query or a URL.
        for key in keys:
            if isinstance(kid, str) and key.kid == kid:
                return key
        raise UnknownKey(f"no key with kid {kid!r}")
    if len(keys) == 1:
        return keys[0]
    raise UnknownKey(f"the token names no kid, and there are {len(keys)} keys to choose from")


def _number(claims: Mapping[str, Any], name: str) -> float | None:
    if name not in claims:
        return None
    value = claims[name]
    # bool is an int in Python, but `true` is no NumericDate (RFC 7519 §2), and `null` is no
    # number either: an absent claim is absent, a null one is malformed. json.loads also reads
    # NaN and Infinity (not JSON, RFC 8259 §6): `now >= NaN` is always false, never expired.
    if isinstance(value, bool) or not isinstance(value, int | float) or (
        isinstance(value, float) and not math.isfinite(value)
    ):
        raise MalformedToken(f"the {name} claim must be a number, got {value!r}")
    # No float(): a JSON integer may be far larger than any float (10**400), and Python
    # compares ints with floats exactly.
    return value


def _check_claims(
    claims: Mapping[str, Any], audience: str | None, issuer: str | None, leeway: float
) -> None:
    now = time.time()
    exp, nbf, iat = (_number(claims, name) for name in ("exp", "nbf", "iat"))
    # RFC 7519 §4.1.4: "on or after which the JWT MUST NOT be accepted": exp == now is expired.
    # (now - leeway, not exp + leeway: an int exp too large for a float must not overflow.)
    if exp is not None and now - leeway >= exp:
        raise Expired(f"expired at {exp}, now is {now:.0f} (leeway {leeway} s)")
    if nbf is not None and nbf > now + leeway:
        raise NotYetValid(f"not valid before {nbf}, now is {now:.0f} (leeway {leeway} s)")
    if iat is not None and iat > now + leeway:
        raise NotYetValid(f"issued in the future ({iat}), now is {now:.0f}")
    if "aud" in claims:
        aud = claims["aud"]
        named = [aud] if isinstance(aud, str) else aud if isinstance(aud, list) else []
        # Membership in a list of strings, never `in` on a string ("svc" in "svc-admin").
        if audience is None or audience not in [a for a in named if isinstance(a, str)]:
            # RFC 7519 §4.1.3: a recipient that is not named MUST reject the token, also when
            # it did not think to ask.
            raise BadAudience(f"aud {aud!r} does not name {audience!r}")
    elif audience is not None:
        raise BadAudience(f"expected aud {audience!r}, the token has none")
    if issuer is not None and claims.get("iss") != issuer:
        raise BadIssuer(f"expected iss {issuer!r}, got {claims.get('iss')!r}")


def decode(
    token: str,
    keys: Key | Sequence[Key],
    *,
    audience: str | None = None,
    issuer: str | None = None,
    leeway: float = 0,
) -> dict[str, Any]:
    """The claims of `token` once everything checks out; an InvalidToken subclass otherwise.

    1. Three base64url segments; header and claims are JSON objects (MalformedToken).
    2. The key: the one whose kid equals the header's kid; without a kid in the header, the
       only key there is (UnknownKey otherwise).
    3. The header's alg must be exactly that key's alg: never let the token choose how it is
       verified (BadAlgorithm). Then the signature over the exact segments received
       (BadSignature), compared in constant time. A forged token stops here, whatever its
       claims say.
    4. The claims, with time.time() as now: exp, nbf, iat, when present, must be numbers (not
       bool, null, NaN or Infinity: MalformedToken);
       Expired if now >= exp + leeway; NotYetValid if nbf > now + leeway or iat > now + leeway;
       aud must name `audience` (a string equal to it, or a list holding it), and a token with
       an aud is refused when no audience is expected (BadAudience); iss must equal `issuer`
       when one is given (BadIssuer).
    """
    segments = token.split(".")
    if len(segments) != 3:
        raise MalformedToken(f"a JWS has 3 segments, this token has {len(segments)}")
    header_b64, payload_b64, signature_b64 = segments
    header = _json_object(header_b64, "header")
    claims = _json_object(payload_b64, "payload")
    signature = b64url_decode(signature_b64)

    key = _select_key(header, [keys] if isinstance(keys, Key) else list(keys))
    # The key decides the algorithm, not the token: this one comparison stops alg "none" and
    # the RS256-to-HS256 confusion (an HMAC keyed with the public key everybody has).
    if header.get("alg") != key.alg:
        raise BadAlgorithm(f"header alg {header.get('alg')!r}, but the key is for {key.alg}")
    # Verify the bytes as received: re-serialising the JSON would change them (RFC 7515 A.1
    # has CR LF inside its header) and would verify something other than what was signed.
    signing_input = f"{header_b64}.{payload_b64}".encode("ascii")
    if not _verify_signature(key, signing_input, signature):
        raise BadSignature("signature verification failed")
    # Only a verified token's claims mean anything.
    _check_claims(claims, audience, issuer, leeway)
    return claims
