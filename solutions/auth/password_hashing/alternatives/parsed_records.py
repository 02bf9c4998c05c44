"""Password storage: scrypt or PBKDF2 with a per-user salt, in a self-describing hash string."""

# Alternative design: methods parse (by regular expression) into frozen dataclasses that know
# how to derive and how long their output is; a stored record parses into a Record; the salt is
# secrets.token_urlsafe; hex checksums are compared as text with secrets.compare_digest.

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass

DEFAULT_METHOD = "scrypt:32768:8:1"
PBKDF2_HASHES = ("sha1", "sha256", "sha512")

_SCRYPT = re.compile(r"scrypt:(\d+):(\d+):(\d+)")
_PBKDF2 = re.compile(r"pbkdf2:(sha1|sha256|sha512):(\d+)")
_HEX = re.compile(r"[0-9a-fA-F]+")


class InvalidHash(ValueError):
    """A method or stored hash string this module does not understand, or that is incomplete."""


@dataclass(frozen=True)
class _Scrypt:
    n: int
    r: int
    p: int
    size: int = 64

    def run(self, password: bytes, salt: bytes, dklen: int | None) -> bytes:
        memory = 128 * self.r * (self.n + self.p + 2)
        return hashlib.scrypt(password, salt=salt, n=self.n, r=self.r, p=self.p,
                              maxmem=memory + 1024, dklen=dklen or self.size)


@dataclass(frozen=True)
class _Pbkdf2:
    hash_name: str
    iterations: int

    @property
    def size(self) -> int:
        return hashlib.new(self.hash_name).digest_size

    def run(self, password: bytes, salt: bytes, dklen: int | None) -> bytes:
        return hashlib.pbkdf2_hmac(self.hash_name, password, salt, self.iterations, dklen)


def _kdf(method: str) -> _Scrypt | _Pbkdf2:
    if match := _SCRYPT.fullmatch(method):
        n, r, p = map(int, match.groups())
        if n > 1 and bin(n).count("1") == 1 and r > 0 and p > 0:
            return _Scrypt(n, r, p)
    elif (match := _PBKDF2.fullmatch(method)) and int(match.group(2)) > 0:
        return _Pbkdf2(match.group(1), int(match.group(2)))
    raise InvalidHash(f"unknown or malformed method {method!r}")


@dataclass(frozen=True)
class _Record:
    method: str
    kdf: _Scrypt | _Pbkdf2
    salt: str
    checksum: str

    @classmethod
    def parse(cls, stored: str) -> _Record:
        method, _, rest = stored.partition("$")
        salt, _, checksum = rest.partition("$")
        if not salt or "$" in checksum:
            raise InvalidHash("expected <method>$<salt>$<checksum>")
        kdf = _kdf(method)
        if len(checksum) != 2 * kdf.size or not _HEX.fullmatch(checksum):
            raise InvalidHash("the checksum is not the method's full output in hex")
        return cls(method, kdf, salt, checksum.lower())


def derive(method: str, password: bytes, salt: bytes, dklen: int | None = None) -> bytes:
    return _kdf(method).run(password, salt, dklen)


def hash_password(password: str, method: str = DEFAULT_METHOD) -> str:
    salt = secrets.token_urlsafe(16)  # 22 characters, 128 bits, never a "$"
    return f"{method}${salt}${derive(method, password.encode(), salt.encode()).hex()}"


def verify_password(stored: str, password: str) -> bool:
    record = _Record.parse(stored)
    candidate = record.kdf.run(password.encode(), record.salt.encode(), None).hex()
    return secrets.compare_digest(candidate, record.checksum)


def needs_rehash(stored: str, method: str = DEFAULT_METHOD) -> bool:
    return _Record.parse(stored).kdf != _kdf(method)


def verify_and_update(
    stored: str, password: str, method: str = DEFAULT_METHOD
) -> tuple[bool, str | None]:
    if not verify_password(stored, password):
        return False, None
    return True, hash_password(password, method) if needs_rehash(stored, method) else None
