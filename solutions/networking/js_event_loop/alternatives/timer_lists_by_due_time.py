"""A model of node's event loop with timers kept as one FIFO list per due time (node keeps a
list per duration), promises as a small state machine, and the resolve function as a closure."""

from __future__ import annotations

import bisect
from collections import deque
from collections.abc import Callable
from typing import Any

Callback = Callable[[], object]


class Promise:
    """Pending until fulfilled, once. Reactions wait in a list; `then` never runs them inline."""

    def __init__(self, loop: EventLoop) -> None:
        self._loop = loop
        self._state = "pending"
        self._value: Any = None
        self._waiting: list[Callable[[Any], None]] = []
        self.resolve = self._make_resolve()

    def _make_resolve(self) -> Callable[[Any], None]:
        done = False

        def resolve(value: Any) -> None:
            nonlocal done
            if done:
                return
            done = True
            if isinstance(value, Promise):
                # tick 1: the job that calls value.then; tick 2: that then's reaction
                self._loop.queue_microtask(lambda: value.then(self._settle))
            else:
                self._settle(value)

        return resolve

    def _settle(self, value: Any) -> None:
        self._state, self._value = "fulfilled", value
        for reaction in self._waiting:
            self._loop.queue_microtask(lambda r=reaction: r(value))
        self._waiting = []

    def then(self, on_fulfilled: Callable[[Any], Any] | None = None) -> Promise:
        child = Promise(self._loop)

        def react(value: Any) -> None:
            child.resolve(on_fulfilled(value) if on_fulfilled else value)

        if self._state == "fulfilled":
            value = self._value
            self._loop.queue_microtask(lambda: react(value))
        else:
            self._waiting.append(react)
        return child


class EventLoop:
    def __init__(self) -> None:
        self.now = 0
        self._due_times: list[int] = []  # sorted, each once
        self._timers: dict[int, deque[Callback]] = {}
        self._immediates: list[Callback] = []
        self._ticks: deque[Callback] = deque()
        self._jobs: deque[Callback] = deque()

    def set_timeout(self, callback: Callback, delay_ms: int = 0) -> None:
        due = self.now + (delay_ms if delay_ms >= 1 else 1)
        if due not in self._timers:
            bisect.insort(self._due_times, due)
            self._timers[due] = deque()
        self._timers[due].append(callback)

    def set_immediate(self, callback: Callback) -> None:
        self._immediates.append(callback)

    def queue_microtask(self, callback: Callback) -> None:
        self._jobs.append(callback)

    def process_next_tick(self, callback: Callback) -> None:
        self._ticks.append(callback)

    def promise_resolve(self, value: Any = None) -> Promise:
        if isinstance(value, Promise):
            return value
        promise = Promise(self)
        promise.resolve(value)
        return promise

    def new_promise(self, executor: Callable[[Callable[[Any], None]], object]) -> Promise:
        promise = Promise(self)
        executor(promise.resolve)
        return promise

    def _checkpoint(self) -> None:
        while self._ticks or self._jobs:
            while self._ticks:
                self._ticks.popleft()()
            while self._jobs:
                self._jobs.popleft()()

    def _run_due_timers(self) -> None:
        while self._due_times and self._due_times[0] <= self.now:
            due = self._due_times[0]
            queue = self._timers[due]
            callback = queue.popleft()
            if not queue:
                del self._timers[due]
                self._due_times.pop(0)
            callback()
            self._checkpoint()

    def run(self, script: Callback) -> None:
        script()
        self._checkpoint()
        while self._due_times or self._immediates:
            if not self._immediates and self._due_times[0] > self.now:
                self.now = self._due_times[0]
            self._run_due_timers()
            count = len(self._immediates)  # the ones queued now wait for the next round
            for i in range(count):
                self._immediates[i]()
                self._checkpoint()
            del self._immediates[:count]
