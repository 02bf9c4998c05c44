"""Password storage: scrypt or PBKDF2 with a per-user salt, in a self-describing hash string."""

from __future__ import annotations

# New hashes are made with this method: scrypt with N=2**15, r=8, p=1 (Werkzeug's default; the
# OWASP cheat sheet asks for N=2**17 where memory allows).
DEFAULT_METHOD = "scrypt:32768:8:1"

# The only hash functions PBKDF2 may use here (sha1 for legacy hashes and the RFC 6070 vectors).
PBKDF2_HASHES = ("sha1", "sha256", "sha512")


class InvalidHash(ValueError):
    """A method or stored hash string this module does not understand, or that is incomplete."""


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
    # TODO: split the method on ":", check the name and parameters, call hashlib.
    raise NotImplementedError("derive")


def hash_password(password: str, method: str = DEFAULT_METHOD) -> str:
    """A new stored hash for `password`: "<method>$<salt>$<hex of derive(...)>".

    The salt is fresh random text for every call (at least 16 characters, no "$"), used as its
    UTF-8 bytes; the password is hashed as UTF-8. The format is Werkzeug's, so
    werkzeug.security.check_password_hash accepts these hashes and the other way round.

    >>> hash_password("hunter2", "pbkdf2:sha256:600000")[:22]
    'pbkdf2:sha256:600000$'
    """
    # TODO: a random salt from `secrets`, derive with the default output length, join with "$".
    raise NotImplementedError("hash_password")


def verify_password(stored: str, password: str) -> bool:
    """True if `password` is the one `stored` was made from; False for any other password.

    Raises InvalidHash if `stored` is not a complete hash in a method this module knows: a
    missing part, an unknown method, or a checksum that is not hex of the method's full output
    length (a truncated hash must never match). Compare in constant time (hmac.compare_digest
    of the bytes, the hex or the whole rebuilt record).
    """
    # TODO: split into method, salt, checksum; validate; derive again; hmac.compare_digest.
    raise NotImplementedError("verify_password")


def needs_rehash(stored: str, method: str = DEFAULT_METHOD) -> bool:
    """True if `stored` was made with another method or other parameters than `method`.

    Call it after a successful login: that is the only time you have the plain password to
    make a new hash with today's parameters.
    """
    # TODO: compare the stored hash's method and parameters with `method`.
    raise NotImplementedError("needs_rehash")


def verify_and_update(
    stored: str, password: str, method: str = DEFAULT_METHOD
) -> tuple[bool, str | None]:
    """Check a login: (True, new hash) if the password is right and the hash is outdated,
    (True, None) if it is right and current, (False, None) if it is wrong.
    """
    # TODO: verify first; only a verified password may be rehashed.
    raise NotImplementedError("verify_and_update")
