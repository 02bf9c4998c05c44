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
        # TODO: the state (fulfilled yet? with what value?), the reactions waiting for the
        # value, and an "already resolved" flag (resolve works once, even while adopting).

    def then(self, on_fulfilled: Callable[[Any], Any] | None = None) -> Promise:
        """Return a new promise resolved with `on_fulfilled(value)`, run as a microtask.

        If `on_fulfilled` returns a Promise, the new promise adopts it (two microtask ticks later
        than a plain value would, as in JS). Without `on_fulfilled` the value passes through.
        """
        # TODO: create the derived promise; a reaction resolves it with on_fulfilled(value).
        # Queue the reaction as a microtask now if this promise is fulfilled, else keep it.
        raise NotImplementedError("Promise.then")

    def _resolve(self, value: Any) -> None:
        """The promise's resolve function: fulfil with `value`, or adopt it if it is a Promise."""
        # TODO: only the first call counts. A Promise value is adopted via a microtask that calls
        # value.then(...) (the spec's NewPromiseResolveThenableJob); anything else fulfils.
        raise NotImplementedError("Promise._resolve")

    def _fulfill(self, value: Any) -> None:
        # TODO: record the value and queue every waiting reaction, in order, as a microtask.
        raise NotImplementedError("Promise._fulfill")


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
        # TODO: the timers (a heapq of _Timer works well), the immediates, the nextTick queue
        # and the microtask queue (deques).

    def set_timeout(self, callback: Callback, delay_ms: int = 0) -> None:
        """Run `callback` as a task once `delay_ms` have passed (node: below 1 ms means 1 ms)."""
        # TODO: due = now + delay (at least 1 ms, as in node).
        raise NotImplementedError("EventLoop.set_timeout")

    def set_immediate(self, callback: Callback) -> None:
        """Run `callback` in the check phase, after the timers of the current loop iteration."""
        # TODO
        raise NotImplementedError("EventLoop.set_immediate")

    def queue_microtask(self, callback: Callback) -> None:
        """Queue `callback` on the microtask queue (the same queue as promise reactions)."""
        # TODO
        raise NotImplementedError("EventLoop.queue_microtask")

    def process_next_tick(self, callback: Callback) -> None:
        """Queue `callback` on node's nextTick queue, drained before the microtask queue."""
        # TODO
        raise NotImplementedError("EventLoop.process_next_tick")

    def promise_resolve(self, value: Any = None) -> Promise:
        """`Promise.resolve(value)`: `value` itself if it is a Promise, else a fulfilled one."""
        # TODO
        raise NotImplementedError("EventLoop.promise_resolve")

    def new_promise(self, executor: Callable[[Callable[[Any], None]], object]) -> Promise:
        """`new Promise(resolve => ...)`: call `executor(resolve)` now, synchronously."""
        # TODO
        raise NotImplementedError("EventLoop.new_promise")

    def run(self, script: Callback) -> None:
        """Run the script, then the loop until no timer or immediate is left."""
        # TODO: the script, a drain, then rounds of: (sleep until the next timer if there is no
        # immediate) -> every due timer -> the immediates queued before this round; drain after
        # every single callback.
        raise NotImplementedError("EventLoop.run")

    def _run_microtasks(self) -> None:
        """Drain both queues completely: nextTicks first, then microtasks, until both are empty."""
        # TODO
        raise NotImplementedError("EventLoop._run_microtasks")
