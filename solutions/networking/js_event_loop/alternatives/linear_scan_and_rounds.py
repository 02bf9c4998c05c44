"""node's event loop modelled as phases over plain lists: a linear scan for the earliest timer
(no heap), a generation counter for immediates, and promises that keep `then` callbacks as
(callback, child) pairs resolved by one shared method."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Callback = Callable[[], object]
_PENDING = object()


class Promise:
    def __init__(self, loop: EventLoop) -> None:
        self._loop = loop
        self._value: Any = _PENDING
        self._locked = False
        self._pairs: list[tuple[Callable[[Any], Any] | None, Promise]] = []

    def then(self, on_fulfilled: Callable[[Any], Any] | None = None) -> Promise:
        child = Promise(self._loop)
        if self._value is _PENDING:
            self._pairs.append((on_fulfilled, child))
        else:
            self._schedule(on_fulfilled, child)
        return child

    def _schedule(self, on_fulfilled: Callable[[Any], Any] | None, child: Promise) -> None:
        value = self._value

        def job() -> None:
            child._resolve(value if on_fulfilled is None else on_fulfilled(value))

        self._loop.queue_microtask(job)

    def _resolve(self, value: Any) -> None:
        if self._locked:
            return
        self._locked = True
        if isinstance(value, Promise):
            def adopt() -> None:
                value.then(self._fulfil)

            self._loop.queue_microtask(adopt)
        else:
            self._fulfil(value)

    def _fulfil(self, value: Any) -> None:
        self._value = value
        pairs, self._pairs = self._pairs, []
        for on_fulfilled, child in pairs:
            self._schedule(on_fulfilled, child)


class EventLoop:
    def __init__(self) -> None:
        self.now = 0
        self._count = 0
        self._timers: list[tuple[int, int, Callback]] = []  # (due, order, callback), unsorted
        self._immediates: list[tuple[int, Callback]] = []  # (round queued, callback)
        self._round = 0
        self._micro: list[Callback] = []
        self._ticks: list[Callback] = []

    def set_timeout(self, callback: Callback, delay_ms: int = 0) -> None:
        self._count += 1
        self._timers.append((self.now + max(delay_ms, 1), self._count, callback))

    def set_immediate(self, callback: Callback) -> None:
        self._immediates.append((self._round, callback))

    def queue_microtask(self, callback: Callback) -> None:
        self._micro.append(callback)

    def process_next_tick(self, callback: Callback) -> None:
        self._ticks.append(callback)

    def promise_resolve(self, value: Any = None) -> Promise:
        if isinstance(value, Promise):
            return value
        promise = Promise(self)
        promise._resolve(value)
        return promise

    def new_promise(self, executor: Callable[[Callable[[Any], None]], object]) -> Promise:
        promise = Promise(self)
        executor(promise._resolve)
        return promise

    def _drain(self) -> None:
        while self._ticks or self._micro:
            while self._ticks:
                self._ticks.pop(0)()
            while self._micro:
                self._micro.pop(0)()

    def _earliest(self) -> tuple[int, int, Callback] | None:
        return min(self._timers, default=None, key=lambda t: (t[0], t[1]))

    def run(self, script: Callback) -> None:
        script()
        self._drain()
        while self._timers or self._immediates:
            earliest = self._earliest()
            if not self._immediates and earliest is not None:
                self.now = max(self.now, earliest[0])
            while (earliest := self._earliest()) is not None and earliest[0] <= self.now:
                self._timers.remove(earliest)
                earliest[2]()
                self._drain()
            this_round = self._round
            self._round += 1
            while self._immediates and self._immediates[0][0] <= this_round:
                _, callback = self._immediates.pop(0)
                callback()
                self._drain()
