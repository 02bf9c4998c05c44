"""Password storage: scrypt or PBKDF2 with a per-user salt, in a self-describing hash string."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import string

# New hashes are made with this method: scrypt with N=2**15, r=8, p=1 (Werkzeug's default; the
# OWASP cheat sheet asks for N=2**17 where memory allows).
DEFAULT_METHOD = "scrypt:32768:8:1"

# The only hash functions PBKDF2 may use here (sha1 for legacy hashes and the RFC 6070 vectors).
PBKDF2_HASHES = ("sha1", "sha256", "sha512")

SALT_CHARS = string.ascii_letters + string.digits
SALT_LENGTH = 16  # Werkzeug's: 16 characters from 62, about 95 bits, so no two users share one
SCRYPT_LENGTH = 64  # bytes of scrypt output, as in RFC 7914's vectors and Werkzeug
HEX_DIGITS = "0123456789abcdef"


class InvalidHash(ValueError):
    """A method or stored hash string this module does not understand, or that is incomplete."""


def _parse_method(method: str) -> tuple[str, tuple[int | str, ...]]:
    """("scrypt", (N, r, p)) or ("pbkdf2", (hash_name, iterations)); InvalidHash otherwise."""
    name, *args = method.split(":")
    try:
        if name == "scrypt" and len(args) == 3:
            n, r, p = (int(a) for a in args)
            # hashlib enforces these too, but with errors that don't say which hash is broken.
            if n < 2 or n & (n - 1) or r < 1 or p < 1:
                raise ValueError(method)
            return name, (n, r, p)
        if name == "pbkdf2" and len(args) == 2:
            hash_name, iterations = args[0], int(args[1])
            # An allow-list, not "whatever hashlib knows": md5 is in hashlib, and a tampered
            # record must not pick a weaker function than we chose.
            if hash_name not in PBKDF2_HASHES or iterations < 1:
                raise ValueError(method)
            return name, (hash_name, iterations)
    except ValueError:
        pass
    raise InvalidHash(f"unknown or malformed method {method!r}")


def derive(method: str, password: bytes, salt: bytes, dklen: int | None = None) -> bytes:
    """Run the key derivation function that `method` names, with its parameters.

    | method                    | computes                                                     |
    |---------------------------|--------------------------------------------------------------|
    | "scrypt:N:r:p"            | hashlib.scrypt(password, salt=salt, n=N, r=r, p=p), 64 bytes |
    | "pbkdf2:HASH:ITERATIONS"  | hashlib.pbkdf2_hmac(HASH, password, salt, ITERATIONS), the   |
    |                           | digest size of HASH (HASH one of PBKDF2_HASHES)              |

    `dklen` overrides the output length. Any other method (unknown name, missing, extra or
    non-numeric parameters, a hash not in PBKDF2_HASHES, N not a power of two above 1, r, p
    or the iterations below 1) raises InvalidHash. scrypt needs 128 * r * (N + p + 2) bytes
    of memory: pass a large enough `maxmem`.

    >>> derive("scrypt:16:1:1", b"", b"").hex()[:16]
    '77d6576238657b20'
    """
    name, params = _parse_method(method)
    if name == "scrypt":
        n, r, p = (int(x) for x in params)
        # OpenSSL refuses more than 32 MiB by default; N=2**15, r=8 already needs 32 MiB + a bit.
        # Exactly what it allocates: B is 128*r*p bytes, V is 128*r*(N+2).
        maxmem = 128 * r * (n + p + 2)
        length = dklen or SCRYPT_LENGTH
        return hashlib.scrypt(password, salt=salt, n=n, r=r, p=p, maxmem=maxmem, dklen=length)
    hash_name, iterations = str(params[0]), int(params[1])
    return hashlib.pbkdf2_hmac(hash_name, password, salt, iterations, dklen)


def hash_password(password: str, method: str = DEFAULT_METHOD) -> str:
    """A new stored hash for `password`: "<method>$<salt>$<hex of derive(...)>".

    The salt is fresh random text for every call (at least 16 characters, no "$"), used as its
    UTF-8 bytes; the password is hashed as UTF-8. The format is Werkzeug's, so
    werkzeug.security.check_password_hash accepts these hashes and the other way round.

    >>> hash_password("hunter2", "pbkdf2:sha256:600000")[:22]
    'pbkdf2:sha256:600000$'
    """
    # A per-user random salt: equal passwords get different hashes, and a precomputed table
    # (or one brute-force run) cannot serve every user at once. `secrets`, not `random`.
    salt = "".join(secrets.choice(SALT_CHARS) for _ in range(SALT_LENGTH))
    # The method string carries every parameter, so the hash can be checked (and found
    # outdated) years later, after the defaults have moved on.
    checksum = derive(method, password.encode(), salt.encode()).hex()
    return f"{method}${salt}${checksum}"


def _split(stored: str) -> tuple[str, str, str]:
    """(method, salt, checksum) of a complete stored hash; InvalidHash for anything less."""
    parts = stored.split("$")
    if len(parts) != 3 or not all(parts):
        raise InvalidHash(f"expected <method>$<salt>$<checksum>, got {len(parts)} part(s)")
    method, salt, checksum = parts
    name, params = _parse_method(method)
    # The full output length, in lowercase hex: a truncated checksum is a broken record, and
    # comparing a prefix would let a short (or empty) one match any password.
    size = SCRYPT_LENGTH if name == "scrypt" else hashlib.new(str(params[0])).digest_size
    expected_length = 2 * size
    if len(checksum) != expected_length or set(checksum.lower()) - set(HEX_DIGITS):
        raise InvalidHash(f"checksum must be {expected_length} hex digits, got {len(checksum)}")
    return method, salt, checksum


def verify_password(stored: str, password: str) -> bool:
    """True if `password` is the one `stored` was made from; False for any other password.

    Raises InvalidHash if `stored` is not a complete hash in a method this module knows: a
    missing part, an unknown method, or a checksum that is not hex of the method's full output
    length (a truncated hash must never match). Compare in constant time (hmac.compare_digest
    of the bytes, the hex or the whole rebuilt record).
    """
    method, salt, checksum = _split(stored)
    derived = derive(method, password.encode(), salt.encode())
    # compare_digest: the time must not depend on how many leading bytes matched.
    return hmac.compare_digest(derived, bytes.fromhex(checksum))


def needs_rehash(stored: str, method: str = DEFAULT_METHOD) -> bool:
    """True if `stored` was made with another method or other parameters than `method`.

    Call it after a successful login: that is the only time you have the plain password to
    make a new hash with today's parameters.
    """
    stored_method, _, _ = _split(stored)
    # Compare the parsed parameters, not the text: "scrypt:032768:8:1" is not outdated.
    return _parse_method(stored_method) != _parse_method(method)


def verify_and_update(
    stored: str, password: str, method: str = DEFAULT_METHOD
) -> tuple[bool, str | None]:
    """Check a login: (True, new hash) if the password is right and the hash is outdated,
    (True, None) if it is right and current, (False, None) if it is wrong.
    """
    # Verify first: rehashing a wrong password would store the attacker's guess as the
    # account's new password.
    if not verify_password(stored, password):
        return False, None
    if needs_rehash(stored, method):
        return True, hash_password(password, method)
    return True, None
