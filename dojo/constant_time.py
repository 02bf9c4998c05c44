"""A constant-time comparison whose answer the test decides: checks a verdict, never argument shapes."""

from __future__ import annotations

import hmac
import secrets
from typing import Any

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hmac as crypto_hmac


class ConstantTimeOracle:
    """A constant-time comparison whose answer the test decides.

    Stands in for hmac.compare_digest, secrets.compare_digest (and any alias the module under
    test imported) and cryptography's HMAC.verify. `answer` None: the real verdict; True or
    False: that verdict, whatever was compared. Code that decides with a constant-time
    comparison follows the forced answer; code that decides with == (too) does not. Which
    arguments it compares (raw digests, base64 text, HMACs of both) is its own business.
    """

    def __init__(self, monkeypatch: pytest.MonkeyPatch, module: Any) -> None:
        self.answer: bool | None = None
        self.calls = 0
        real_compare, real_hmac = hmac.compare_digest, crypto_hmac.HMAC
        oracle = self

        def compare_digest(a: Any, b: Any) -> bool:
            oracle.calls += 1
            verdict = real_compare(a, b)  # still refuses str against bytes, like the real one
            return verdict if oracle.answer is None else oracle.answer

        class HMAC:  # cryptography's HMAC (a Rust type: it cannot be patched, only replaced)
            def __init__(self, key: bytes, algorithm: Any, backend: Any = None, *,
                         ctx: Any = None) -> None:
                self._ctx = ctx if ctx is not None else real_hmac(key, algorithm)

            @property
            def algorithm(self) -> Any:
                return self._ctx.algorithm

            def update(self, data: bytes) -> None:
                self._ctx.update(data)

            def copy(self) -> HMAC:
                return HMAC(b"", None, ctx=self._ctx.copy())

            def finalize(self) -> bytes:
                return self._ctx.finalize()

            def verify(self, signature: bytes) -> None:
                oracle.calls += 1
                if oracle.answer is None:
                    self._ctx.verify(signature)
                    return
                self._ctx.finalize()
                if not oracle.answer:
                    raise InvalidSignature("the test's constant-time comparison said: different")

        monkeypatch.setattr(hmac, "compare_digest", compare_digest)
        monkeypatch.setattr(secrets, "compare_digest", compare_digest)
        monkeypatch.setattr(crypto_hmac, "HMAC", HMAC)
        for name, value in list(vars(module).items()):  # `from hmac import compare_digest`
            if value is real_compare:
                monkeypatch.setattr(module, name, compare_digest)
            elif value is real_hmac:
                monkeypatch.setattr(module, name, HMAC)
