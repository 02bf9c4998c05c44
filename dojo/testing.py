"""Helpers for kata tests: run learner code in a thread and observe it without hanging the run,
a clock the test moves, a learner's WSGI app served for real on 127.0.0.1 and a client for it."""

from __future__ import annotations

import contextlib
import hmac
import secrets
import selectors
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from types import ModuleType
from typing import TYPE_CHECKING, Any, Generic, TypeVar
from wsgiref.simple_server import WSGIRequestHandler, make_server

if TYPE_CHECKING:
    import requests

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


class ManualClock:
    """A clock injected into the learner's code in place of time.time or time.monotonic: it
    reads `now`, which moves only when the test moves it, so expiry is checked to the tick."""

    def __init__(self, now: Any = 0.0) -> None:
        self.now = now

    def __call__(self) -> Any:
        return self.now


class AutojumpSelector(selectors.DefaultSelector):
    """A real selector that never blocks: when no socket is ready, it moves the ManualClock forward
    by the timeout it was given instead of waiting. Virtual time makes timer tests exact and fast,
    and shows how the learner's loop waits: forever with nothing to wake it is a deadlock, and
    many zero timeouts in a row with nothing ready is a busy wait. A kata subclasses it with what
    its loop is called and how its learner fixes either."""

    waiter = "the loop"
    deadlock_hint = ""
    busy_wait_hint = ""

    def __init__(self, clock: ManualClock, max_idle_polls: int | None = 1000) -> None:
        super().__init__()
        self.clock = clock
        self.max_idle_polls = max_idle_polls
        self.idle_polls = 0
        self.timeouts: list[float | None] = []

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        self.timeouts.append(timeout)
        events = super().select(0)
        if events:
            self.idle_polls = 0
            return events
        if timeout is None:
            raise AssertionError(
                f"deadlock: {self.waiter} called select(timeout=None) (wait forever), but no socket is "
                f"ready and nothing else can make one ready. Registered: {self._registered()}. "
                + self.deadlock_hint
            )
        if timeout > 0:
            self.clock.now += timeout
            self.idle_polls = 0
        else:
            self.idle_polls += 1
            if self.max_idle_polls is not None and self.idle_polls > self.max_idle_polls:
                raise AssertionError(
                    f"busy-wait: select(timeout=0) was called {self.idle_polls} times in a row and "
                    "nothing was ready. " + self.busy_wait_hint
                )
        return []

    def _registered(self) -> str:
        names = {selectors.EVENT_READ: "read", selectors.EVENT_WRITE: "write"}
        return ", ".join(
            f"fd {key.fd} for {'+'.join(n for e, n in names.items() if key.events & e)}"
            for key in self.get_map().values()
        ) or "nothing"


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass  # a request log on stderr would bury the test's own output


@contextlib.contextmanager
def serve_wsgi(app: Any, ssl_context: ssl.SSLContext | None = None) -> Iterator[int]:
    """`app` served by wsgiref on 127.0.0.1 in a thread (over TLS with `ssl_context`): yields
    the port, and stops the server, and its thread, when the block ends."""
    server = make_server("127.0.0.1", 0, app, handler_class=_QuietHandler)
    if ssl_context is not None:
        server.socket = ssl_context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True,
                              name="wsgi")
    thread.start()
    try:
        yield server.server_port
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def local_http() -> requests.Session:
    """A requests session for servers on this machine: nothing from the environment (a proxy,
    ~/.netrc credentials) comes between the test and 127.0.0.1."""
    import requests  # here: most katas never need it, and every kata imports this module

    session = requests.Session()
    session.trust_env = False
    return session
