"""JSON Web Tokens by hand (RFC 7515, 7518, 7519): HS256 and RS256, claims, and no alg tricks."""

# Alternative design: one object per algorithm (sign/verify), both HMAC directions through
# cryptography's HMAC (verify() compares in constant time, in Rust), kids in a dict, base64
# through binascii's strict mode, and the claims checked issuer and audience first.

from __future__ import annotations

import binascii
import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from numbers import Real
from typing import Any, Protocol

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, hmac, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

ALGORITHMS = ("HS256", "RS256")
MIN_HMAC_KEY_BYTES = 32
_ALPHABET = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


@dataclass(frozen=True)
class Key:
    """A key bound to the one algorithm it may be used with (RFC 8725 §3.1)."""

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
    return binascii.b2a_base64(data, newline=False).decode("ascii").rstrip("=").translate(
        str.maketrans("+/", "-_"))


def b64url_decode(text: str) -> bytes:
    if not set(text) <= _ALPHABET or len(text) % 4 == 1:
        raise MalformedToken("not unpadded base64url")
    standard = text.translate(str.maketrans("-_", "+/")) + "=" * (-len(text) % 4)
    try:
        return binascii.a2b_base64(standard, strict_mode=True)
    except binascii.Error as exc:
        raise MalformedToken(f"not base64url: {exc}") from None


class _Algorithm(Protocol):
    def sign(self, material: bytes, data: bytes) -> bytes: ...
    def verify(self, material: bytes, data: bytes, signature: bytes) -> bool: ...


class _HS256:
    @staticmethod
    def _mac(material: bytes) -> hmac.HMAC:
        if len(material) < MIN_HMAC_KEY_BYTES:
            raise ValueError(f"an HS256 key needs {MIN_HMAC_KEY_BYTES} bytes or more")
        return hmac.HMAC(material, hashes.SHA256())

    def sign(self, material: bytes, data: bytes) -> bytes:
        mac = self._mac(material)
        mac.update(data)
        return mac.finalize()

    def verify(self, material: bytes, data: bytes, signature: bytes) -> bool:
        mac = self._mac(material)
        mac.update(data)
        try:
            mac.verify(signature)  # constant time
        except InvalidSignature:
            return False
        return True


class _RS256:
    def sign(self, material: bytes, data: bytes) -> bytes:
        private = serialization.load_pem_private_key(material, password=None)
        if not isinstance(private, rsa.RSAPrivateKey):
            raise ValueError("not an RSA private key")
        return private.sign(data, padding.PKCS1v15(), hashes.SHA256())

    def verify(self, material: bytes, data: bytes, signature: bytes) -> bool:
        try:
            public = serialization.load_pem_public_key(material)
        except ValueError:
            public = serialization.load_pem_private_key(material, password=None).public_key()
        if not isinstance(public, rsa.RSAPublicKey):
            raise ValueError("not an RSA key")
        try:
            public.verify(signature, data, padding.PKCS1v15(), hashes.SHA256())
        except InvalidSignature:
            return False
        return True


_BY_NAME: dict[str, _Algorithm] = {"HS256": _HS256(), "RS256": _RS256()}


def _algorithm(name: str) -> _Algorithm:
    try:
        return _BY_NAME[name]
    except KeyError:
        raise ValueError(f"unsupported alg {name!r}") from None


def sign(key: Key, signing_input: bytes) -> bytes:
    return _algorithm(key.alg).sign(key.material, signing_input)


def encode(claims: Mapping[str, Any], key: Key) -> str:
    header = {"alg": key.alg, "typ": "JWT"} | ({"kid": key.kid} if key.kid is not None else {})
    parts = [b64url_encode(json.dumps(part).encode()) for part in (header, claims)]
    signing_input = ".".join(parts)
    return f"{signing_input}.{b64url_encode(sign(key, signing_input.encode()))}"


def _object(segment: str) -> dict[str, Any]:
    try:
        value = json.loads(b64url_decode(segment).decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        if isinstance(exc, MalformedToken):
            raise
        raise MalformedToken(str(exc)) from None
    if type(value) is not dict:
        raise MalformedToken("not a JSON object")
    return value


def _time(claims: Mapping[str, Any], name: str) -> Real | None:
    if name not in claims:
        return None
    value = claims[name]
    # int and float exactly (bool is a subclass of int, so `type`, not isinstance), and only
    # values equal to themselves and finite: NaN != NaN, and inf - inf is NaN.
    if type(value) not in (int, float) or value != value or value - value != 0:
        raise MalformedToken(f"{name} is not a number")
    return value


def decode(
    token: str,
    keys: Key | Sequence[Key],
    *,
    audience: str | None = None,
    issuer: str | None = None,
    leeway: float = 0,
) -> dict[str, Any]:
    try:
        header_b64, payload_b64, signature_b64 = token.split(".")
    except ValueError:
        raise MalformedToken("a JWS has three segments") from None
    header, claims = _object(header_b64), _object(payload_b64)
    signature = b64url_decode(signature_b64)

    held = [keys] if isinstance(keys, Key) else list(keys)
    if "kid" in header:
        by_kid = {k.kid: k for k in held if k.kid is not None}
        kid = header["kid"]
        if type(kid) is not str or kid not in by_kid:
            raise UnknownKey("no such kid")
        key = by_kid[kid]
    elif len(held) == 1:
        (key,) = held
    else:
        raise UnknownKey("several keys and no kid")

    if type(header.get("alg")) is not str or header["alg"] != key.alg:
        raise BadAlgorithm("the key decides the algorithm")
    data = f"{header_b64}.{payload_b64}".encode()
    if not _algorithm(key.alg).verify(key.material, data, signature):
        raise BadSignature("signature verification failed")

    if issuer is not None and claims.get("iss") != issuer:
        raise BadIssuer("wrong issuer")
    if "aud" in claims:
        aud = claims["aud"]
        named = {aud} if type(aud) is str else {a for a in aud if type(a) is str} if type(aud) is list else set()
        if audience not in named:
            raise BadAudience("not for us")
    elif audience is not None:
        raise BadAudience("no aud")
    exp, nbf, iat = _time(claims, "exp"), _time(claims, "nbf"), _time(claims, "iat")
    now = time.time()
    for name, moment in (("nbf", nbf), ("iat", iat)):
        if moment is not None and moment > now + leeway:
            raise NotYetValid(f"{name} in the future")
    if exp is not None and exp <= now - leeway:
        raise Expired("expired")
    return claims
