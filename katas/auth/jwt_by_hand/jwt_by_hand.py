"""JSON Web Tokens by hand (RFC 7515, 7518, 7519): HS256 and RS256, claims, and no alg tricks."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

ALGORITHMS = ("HS256", "RS256")
MIN_HMAC_KEY_BYTES = 32  # RFC 7518 §3.2: a key at least as long as the hash output


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
    # TODO: urlsafe alphabet, strip the "=" padding.
    raise NotImplementedError("b64url_encode")


def b64url_decode(text: str) -> bytes:
    """The bytes of unpadded base64url `text`; MalformedToken for padding or other characters."""
    # TODO: refuse anything outside A-Z a-z 0-9 - _, re-pad, decode.
    raise NotImplementedError("b64url_decode")


def sign(key: Key, signing_input: bytes) -> bytes:
    """The signature of `signing_input` (ASCII "<header b64>.<payload b64>") with `key`.

    HS256: HMAC-SHA256 with the secret. RS256: RSASSA-PKCS1-v1_5 with SHA-256 and the private
    key in the PEM (use `cryptography`). ValueError for an unknown alg or an HMAC key shorter
    than MIN_HMAC_KEY_BYTES.
    """
    # TODO: hmac.new(...).digest() for HS256; load_pem_private_key(...).sign(...) for RS256.
    raise NotImplementedError("sign")


def encode(claims: Mapping[str, Any], key: Key) -> str:
    """A compact JWS: base64url(header) "." base64url(claims) "." base64url(signature).

    The header is {"alg": key.alg, "typ": "JWT"}, plus "kid" when the key has one.
    """
    # TODO: JSON-encode header and claims, base64url them, sign "<header>.<payload>".
    raise NotImplementedError("encode")


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
    # TODO: follow the four steps above, in that order.
    raise NotImplementedError("decode")
