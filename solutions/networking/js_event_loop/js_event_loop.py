"""A model of the JavaScript (node) event loop: timers, immediates, nextTick, microtasks, promises."""

from __future__ import annotations

import heapq
import itertools
from collections import deque
from collections.abc import Callable
from functools import partial
from typing import Any, NamedTuple

Callback = Callable[[], object]


class _Timer(NamedTuple):
    """A pending setTimeout. Tuples compare field by field: due time first, then `seq`."""

    due: int  # virtual ms
    seq: int  # insertion number: equal due times run in the order they were set
    callback: Callback


class Promise:
    """A promise that can only be fulfilled (this model has no rejections).

    States: pending, then fulfilled with a value, once. `then` never runs its callback right
    away: it queues a microtask (a PromiseReactionJob) once the promise is fulfilled.

    >>> loop = EventLoop(); log = []
    >>> loop.run(lambda: loop.promise_resolve(1).then(lambda v: v + 1).then(log.append))
    >>> log
    [2]
    """

    def __init__(self, loop: EventLoop) -> None:
        self._loop = loop
        self._fulfilled = False
        self._value: Any = None
        self._reactions: list[Callable[[Any], None]] = []  # waiting for the value
        self._already_resolved = False  # resolve() works once, even while adopting a promise

    def then(self, on_fulfilled: Callable[[Any], Any] | None = None) -> Promise:
        """Return a new promise resolved with `on_fulfilled(value)`, run as a microtask.

        If `on_fulfilled` returns a Promise, the new promise adopts it (two microtask ticks later
        than a plain value would, as in JS). Without `on_fulfilled` the value passes through.
        """
        derived = Promise(self._loop)

        def reaction(value: Any) -> None:  # the spec's PromiseReactionJob
            derived._resolve(value if on_fulfilled is None else on_fulfilled(value))

        # Already fulfilled or not, the callback waits for a microtask: `then` is never
        # synchronous, so code after `.then(...)` always runs first.
        if self._fulfilled:
            self._loop.queue_microtask(partial(reaction, self._value))
        else:
            self._reactions.append(reaction)
        return derived

    def _resolve(self, value: Any) -> None:
        """The promise's resolve function: fulfil with `value`, or adopt it if it is a Promise."""
        if self._already_resolved:
            return
        self._already_resolved = True
        if isinstance(value, Promise):
            if value is self:
                raise TypeError("a promise cannot be resolved with itself (chaining cycle)")
            # NewPromiseResolveThenableJob: one microtask to call value.then(...), and that then's
            # reaction is a second one. Adopting right here would skip both ticks.
            self._loop.queue_microtask(lambda: value.then(self._fulfill))
        else:
            self._fulfill(value)

    def _fulfill(self, value: Any) -> None:
        self._fulfilled = True
        self._value = value
        reactions, self._reactions = self._reactions, []
        # Reactions are queued in the order the `then`s were called.
        for reaction in reactions:
            self._loop.queue_microtask(partial(reaction, value))


class EventLoop:
    """node's event loop on a virtual clock (milliseconds; nothing really sleeps).

    `run(script)` runs `script` (the synchronous part of the program), then loops: timers that
    are due, in order of due time then insertion; then the immediates queued so far. After the
    script and after every single callback, the nextTick queue and the microtask queue are
    drained completely, including whatever those callbacks queue.

    >>> loop = EventLoop(); log = []
    >>> def script():
    ...     loop.set_timeout(lambda: log.append("timeout"))
    ...     loop.promise_resolve().then(lambda _: log.append("then"))
    ...     log.append("sync")
    >>> loop.run(script); log
    ['sync', 'then', 'timeout']
    """

    def __init__(self) -> None:
        self.now = 0  # virtual milliseconds since the script started
        self._seq = itertools.count()  # insertion order, the tie-breaker for equal due times
        self._timers: list[_Timer] = []  # a heap: the earliest due (then first set) on top
        self._immediates: deque[Callback] = deque()
        self._next_ticks: deque[Callback] = deque()
        self._microtasks: deque[Callback] = deque()

    def set_timeout(self, callback: Callback, delay_ms: int = 0) -> None:
        """Run `callback` as a task once `delay_ms` have passed (node: below 1 ms means 1 ms)."""
        # node's setTimeout turns any delay below 1 into 1, so 0 and 1 are the same timer list.
        delay = max(1, delay_ms)
        timer = _Timer(due=self.now + delay, seq=next(self._seq), callback=callback)
        heapq.heappush(self._timers, timer)

    def set_immediate(self, callback: Callback) -> None:
        """Run `callback` in the check phase, after the timers of the current loop iteration."""
        self._immediates.append(callback)

    def queue_microtask(self, callback: Callback) -> None:
        """Queue `callback` on the microtask queue (the same queue as promise reactions)."""
        self._microtasks.append(callback)

    def process_next_tick(self, callback: Callback) -> None:
        """Queue `callback` on node's nextTick queue, drained before the microtask queue."""
        self._next_ticks.append(callback)

    def promise_resolve(self, value: Any = None) -> Promise:
        """`Promise.resolve(value)`: `value` itself if it is a Promise, else a fulfilled one."""
        if isinstance(value, Promise):
            return value
        promise = Promise(self)
        promise._resolve(value)
        return promise

    def new_promise(self, executor: Callable[[Callable[[Any], None]], object]) -> Promise:
        """`new Promise(resolve => ...)`: call `executor(resolve)` now, synchronously."""
        promise = Promise(self)
        executor(promise._resolve)
        return promise

    def run(self, script: Callback) -> None:
        """Run the script, then the loop until no timer or immediate is left."""
        script()
        self._run_microtasks()  # the script is a task too: its microtasks run before any timer
        while self._timers or self._immediates:
            # Poll phase: with nothing else to do, the loop sleeps until the next timer is due.
            if not self._immediates:
                self.now = max(self.now, self._timers[0].due)
            # Timers phase: every timer due by now; a timer they set is due later (delay >= 1).
            while self._timers and self._timers[0].due <= self.now:
                heapq.heappop(self._timers).callback()
                self._run_microtasks()
            # Check phase: the immediates queued so far; ones they queue wait for the next round.
            batch, self._immediates = self._immediates, deque()
            for callback in batch:
                callback()
                self._run_microtasks()

    def _run_microtasks(self) -> None:
        """Drain both queues completely: nextTicks first, then microtasks, until both are empty."""
        # A microtask may queue more microtasks (they run in this same drain, before any other
        # task) or a nextTick (which waits until the microtask queue is empty, as in node).
        while self._next_ticks or self._microtasks:
            while self._next_ticks:
                self._next_ticks.popleft()()
            while self._microtasks:
                self._microtasks.popleft()()
