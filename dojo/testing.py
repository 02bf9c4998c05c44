"""Helpers for kata tests: run learner code in a thread and observe it without hanging the run."""

from __future__ import annotations

import hmac
import secrets
import threading
import time
from collections.abc import Callable
from types import ModuleType
from typing import Any, Generic, TypeVar

T = TypeVar("T")


class Background(Generic[T]):
    """Calls `fn(*args)` in a daemon thread; `.result()` returns its value or re-raises its error."""

    def __init__(self, fn: Callable[..., T], *args: Any, name: str | None = None) -> None:
        self._value: T | None = None
        self._error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, args=(fn, args), daemon=True, name=name)
        self.thread.start()

    def _run(self, fn: Callable[..., T], args: tuple[Any, ...]) -> None:
        try:
            self._value = fn(*args)
        except BaseException as exc:  # handed to the test through result()
            self._error = exc

    @property
    def done(self) -> bool:
        return not self.thread.is_alive()

    def result(self, timeout: float = 5.0) -> T:
        self.thread.join(timeout)
        if self.thread.is_alive():
            raise AssertionError(
                f"{self.thread.name} still running after {timeout} s: is it blocked forever?"
            )
        if self._error is not None:
            raise self._error
        return self._value  # type: ignore[return-value]


def wait_until(predicate: Callable[[], bool], timeout: float = 5.0, what: str = "") -> None:
    """Poll `predicate` until it holds; fail with `what` if it doesn't within `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up after {timeout} s waiting for {what or predicate}")
        time.sleep(0.005)


def is_blocked(thread: threading.Thread, settle: float = 0.1) -> bool:
    """True if `thread` is still running after `settle` seconds (it is waiting, as it should)."""
    thread.join(settle)
    return thread.is_alive()


class CompareSpy:
    """Wraps the real hmac.compare_digest and records what it was asked to compare."""

    def __init__(self, real: Callable[[Any, Any], bool]) -> None:
        self.real = real
        self.calls: list[tuple[Any, Any]] = []

    def __call__(self, a: Any, b: Any) -> bool:
        self.calls.append((a, b))
        return self.real(a, b)


def spy_on_compare_digest(monkeypatch: Any, module: ModuleType) -> CompareSpy:
    """Route hmac/secrets.compare_digest, and any alias `module` imported, through a CompareSpy.

    Constant-time comparison can't be seen from outside in a test; whether the secret went
    through compare_digest can.
    """
    real = hmac.compare_digest
    spy = CompareSpy(real)
    monkeypatch.setattr(hmac, "compare_digest", spy)
    monkeypatch.setattr(secrets, "compare_digest", spy)
    for name, value in list(vars(module).items()):  # `from hmac import compare_digest`
        if value is real:
            monkeypatch.setattr(module, name, spy)
    return spy
