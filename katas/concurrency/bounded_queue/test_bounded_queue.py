"""Tests for the bounded blocking queue: order, blocking, timeouts, close, and many threads at once."""

from __future__ import annotations

import contextlib
import queue
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from dojo.testing import Background, is_blocked, wait_until

from .bounded_queue import BoundedQueue, Closed

T = TypeVar("T")


def at_once(op: Callable[..., T], *args: Any) -> T:
    """`op(*args, timeout=0)`, which must return or raise at once, whatever the queue holds.

    Run in a thread, so that an implementation that reads 0 as "no timeout" fails here with
    that cause, not with a hang in whichever test meets it first.
    """
    call = Background(op, *args, 0, name=f"{op.__name__}(timeout=0)")
    call.thread.join(5)
    assert not call.thread.is_alive(), (
        f"{op.__name__}(timeout=0) was still waiting after 5 s: 0 is a timeout that has already "
        "run out, not 'no timeout' (test `timeout is None`, not `not timeout`)"
    )
    return call.result()


@pytest.mark.stage(1, "order and capacity")
def test_items_come_out_in_the_order_they_went_in() -> None:
    q = BoundedQueue[int](3)
    for i in range(3):
        q.put(i)
    assert len(q) == 3
    assert [q.get() for _ in range(3)] == [0, 1, 2]
    assert len(q) == 0


@pytest.mark.stage(1, "order and capacity")
def test_capacity_is_at_least_one_and_one_holds_exactly_one_item() -> None:
    for capacity in (0, -1):
        with pytest.raises(ValueError):
            BoundedQueue[int](capacity)
    q = BoundedQueue[int](1)
    at_once(q.put, 7)
    with pytest.raises(TimeoutError):
        at_once(q.put, 8)
    assert (len(q), at_once(q.get)) == (1, 7)


@pytest.mark.stage(2, "timeouts")
@pytest.mark.parametrize("side", ["get on an empty queue", "put on a full queue"])
def test_timeout_zero_means_do_not_wait(side: str) -> None:
    """timeout=0 is "don't wait at all"; only None means "wait forever"."""
    q = BoundedQueue[int](1)
    if side == "put on a full queue":
        q.put(1)
    with pytest.raises(TimeoutError):
        at_once(q.put, 2) if side == "put on a full queue" else at_once(q.get)


@pytest.mark.stage(2, "timeouts")
def test_get_on_an_empty_queue_times_out() -> None:
    q = BoundedQueue[int](1)
    with pytest.raises(TimeoutError):
        q.get(timeout=0.05)


@pytest.mark.stage(2, "timeouts")
def test_put_on_a_full_queue_times_out_and_adds_nothing() -> None:
    q = BoundedQueue[str](1)
    q.put("a")
    with pytest.raises(TimeoutError):
        q.put("b", timeout=0.05)
    assert len(q) == 1, "a put that timed out must not have added its item"
    assert q.get() == "a"


@pytest.mark.stage(3, "blocking and waking")
def test_a_blocked_put_resumes_when_a_get_makes_room() -> None:
    q = BoundedQueue[int](1)
    q.put(1)
    producer = Background(q.put, 2, name="producer")
    assert is_blocked(producer.thread), "put() on a full queue must wait, not return or raise"
    assert q.get() == 1
    producer.result()
    assert q.get(timeout=1) == 2


@pytest.mark.stage(3, "blocking and waking")
def test_a_blocked_get_resumes_when_a_put_arrives() -> None:
    q = BoundedQueue[str](1)
    consumer = Background(q.get, name="consumer")
    assert is_blocked(consumer.thread), "get() on an empty queue must wait, not return or raise"
    q.put("hello")
    assert consumer.result() == "hello"


def _join_all(calls: list[Any], seconds: float) -> None:
    """Give the threads `seconds` in all (one deadline, not one per thread) to finish."""
    deadline = time.monotonic() + seconds
    for call in calls:
        call.thread.join(max(0.0, deadline - time.monotonic()))


@pytest.mark.stage(3, "blocking and waking")
def test_every_put_wakes_a_waiting_getter_not_only_the_first_into_an_empty_queue() -> None:
    """Several getters asleep, several puts in a row: each item must reach a getter."""
    for _ in range(20):
        q = BoundedQueue[int](8)
        getters = [Background(q.get, name=f"getter-{i}") for i in range(3)]
        for g in getters:  # give each time to fall asleep in get()
            assert is_blocked(g.thread, settle=0.01), "get() on an empty queue must wait"
        for item in range(3):
            q.put(item)
        _join_all(getters, seconds=3)
        asleep = sum(g.thread.is_alive() for g in getters)
        q.close()  # frees any getter left asleep, so the test ends either way
        assert asleep == 0, (
            f"{asleep} getter(s) still asleep with {len(q)} item(s) in the queue after 3 puts: every "
            "put must notify a waiting getter, not only the put that makes the queue non-empty "
            "(the others arrive before the first woken getter has run)"
        )
        assert sorted(g.result() for g in getters) == [0, 1, 2]


@pytest.mark.stage(3, "blocking and waking")
def test_every_get_wakes_a_waiting_putter_not_only_the_first_out_of_a_full_queue() -> None:
    for _ in range(20):
        q = BoundedQueue[int](3)
        for item in range(3):
            q.put(item)
        putters = [Background(q.put, 10 + i, name=f"putter-{i}") for i in range(3)]
        for p in putters:
            assert is_blocked(p.thread, settle=0.01), "put() on a full queue must wait"
        assert [q.get() for _ in range(3)] == [0, 1, 2]
        _join_all(putters, seconds=3)
        asleep = sum(p.thread.is_alive() for p in putters)
        q.close()
        assert asleep == 0, (
            f"{asleep} putter(s) still asleep with room in the queue after 3 gets: every get must "
            "notify a waiting putter, not only the get that makes the full queue non-full"
        )


@pytest.mark.stage(5, "races and many threads")
def test_through_a_queue_of_one_no_thread_sleeps_while_it_could_proceed() -> None:
    """Two producers and two consumers: getters and putters end up asleep at the same time."""
    q = BoundedQueue[int](1)
    per_thread = 2000

    def produce(base: int) -> None:
        for i in range(per_thread):
            q.put(base + i)

    def consume() -> list[int]:
        return [q.get() for _ in range(per_thread)]

    threads = [Background(consume, name="consumer-1"), Background(consume, name="consumer-2"),
               Background(produce, 0, name="producer-1"), Background(produce, per_thread, name="producer-2")]
    _join_all(threads, seconds=5)
    asleep = [t.thread.name for t in threads if t.thread.is_alive()]
    queued = len(q)
    q.close()  # frees whoever is stuck, so the test ends either way
    assert not asleep, (
        f"{', '.join(asleep)} still asleep with {queued} item(s) queued in a queue of capacity 1: a "
        "wake-up went to the wrong side. With one condition for both sides, notify() can wake a "
        "getter when only a putter can proceed (and the wake-up is lost): use notify_all there, or "
        "one condition per side"
    )
    got = sorted(x for t in threads[:2] for x in t.result())
    assert got == list(range(2 * per_thread)), "items lost or duplicated"


@pytest.mark.stage(5, "races and many threads")
def test_a_woken_getter_that_lost_the_race_waits_again() -> None:
    """A wake-up is only a hint: re-check the condition in a loop (`while`, not `if`)."""
    q = BoundedQueue[int](5)
    rounds = 100

    def consume_until_closed() -> list[int]:
        got = []
        with contextlib.suppress(Closed):
            while True:
                got.append(q.get(timeout=5))
        return got

    consumer = Background(consume_until_closed, name="consumer")
    for i in range(rounds):
        wait_until(lambda: len(q) == 0 or consumer.done, what="the consumer to take the item")
        if consumer.done:
            break  # it failed: result() below re-raises its error
        q.put(-1)  # wakes the waiting consumer...
        # ...but this thread barges in and takes the item first (unless the consumer won fairly,
        # in which case it takes one item more than this round's `i`: counted by value below)
        with contextlib.suppress(TimeoutError):
            q.get(timeout=0)
        time.sleep(0.005)  # let the woken consumer run and find the queue empty
        q.put(i)
    wait_until(lambda: len(q) == 0 or consumer.done, what="the consumer to take the last item")
    q.close()
    try:
        got = consumer.result()
    except Exception as exc:
        if not consumer.done:
            raise
        raise AssertionError(
            f"get() failed with {exc!r} after a wake-up whose item another thread had taken: "
            "a wake-up is only a hint, re-check the condition in a loop (`while`, not `if`)"
        ) from exc
    assert all(isinstance(x, int) for x in got), f"get() returned non-items: {got[:5]}"
    assert [x for x in got if x >= 0] == list(range(rounds)), "items lost or out of order"


@pytest.mark.stage(5, "races and many threads")
def test_timeout_is_one_deadline_not_a_fresh_wait_after_every_wake_up() -> None:
    """Wake-ups that find nothing must not restart the clock."""
    q = BoundedQueue[int](1)
    stop = threading.Event()

    def barge() -> None:  # keeps waking the getter, and keeps stealing what woke it
        while not stop.is_set():
            q.put(0)
            with contextlib.suppress(TimeoutError):
                q.get(timeout=0)
            time.sleep(0.001)

    getter = Background(q.get, 0.3, name="getter")
    noise = Background(barge, name="barger")
    try:
        getter.thread.join(5)
        assert not getter.thread.is_alive(), (
            "get(timeout=0.3) was still waiting after 5 s while other threads kept waking it: "
            "track a deadline (time.monotonic() + timeout) or use Condition.wait_for"
        )
    finally:
        stop.set()
        noise.result()
    with contextlib.suppress(TimeoutError):  # timing out is right; so is winning an item fairly
        getter.result()


@pytest.mark.stage(4, "closing")
def test_close_wakes_every_waiting_getter_with_closed() -> None:
    q = BoundedQueue[int](1)
    getters = [Background(q.get, name=f"getter-{i}") for i in range(3)]
    for g in getters:
        assert is_blocked(g.thread)
    q.close()
    for g in getters:
        with pytest.raises(Closed):
            g.result(timeout=2)


@pytest.mark.stage(4, "closing")
def test_close_wakes_every_waiting_putter_with_closed() -> None:
    q = BoundedQueue[int](1)
    q.put(1)
    putters = [Background(q.put, 2 + i, name=f"putter-{i}") for i in range(3)]
    for p in putters:
        assert is_blocked(p.thread), "put() on a full queue must wait, not return or raise"
    q.close()
    _join_all(putters, seconds=3)
    asleep = sum(p.thread.is_alive() for p in putters)
    assert asleep == 0, (
        f"{asleep} of 3 waiting putters still asleep after close(): close() changes what every "
        "waiter waits for, so it must wake them all (notify_all on the putters' side too)"
    )
    for p in putters:
        with pytest.raises(Closed):
            p.result()
    assert q.get() == 1, "a put refused by close() must not have added its item"


@pytest.mark.stage(4, "closing")
def test_items_put_before_close_are_still_delivered_then_get_raises_closed() -> None:
    q = BoundedQueue[int](3)
    q.put(1)
    q.put(2)
    q.close()
    q.close()  # closing twice is harmless
    with pytest.raises(Closed):
        q.put(3)
    try:
        drained = [q.get(timeout=1), q.get(timeout=1)]
    except Closed:
        pytest.fail("get() raised Closed while items were queued: items put before close() must still be delivered")
    assert drained == [1, 2]
    with pytest.raises(Closed):
        q.get(timeout=1)


@pytest.mark.stage(5, "races and many threads")
def test_many_producers_and_consumers_deliver_every_item_exactly_once() -> None:
    q = BoundedQueue[int](4)
    producers, per_producer = 4, 500
    high_water = 0

    def produce(base: int) -> None:
        for i in range(per_producer):
            q.put(base * per_producer + i, timeout=5)

    def consume() -> list[int]:
        nonlocal high_water
        got = []
        while True:
            try:
                got.append(q.get(timeout=5))
            except Closed:
                return got
            high_water = max(high_water, len(q))

    consumers = [Background(consume, name=f"consumer-{i}") for i in range(3)]
    workers = [Background(produce, p, name=f"producer-{p}") for p in range(producers)]
    for w in workers:
        w.result(timeout=10)
    q.close()
    delivered = sorted(x for c in consumers for x in c.result(timeout=10))
    assert delivered == list(range(producers * per_producer)), "items lost or duplicated"
    assert high_water <= q.capacity, f"queue held {high_water} items, capacity is {q.capacity}"


class QueueAgainstTheStdlib(RuleBasedStateMachine):
    """Single-threaded, never blocking (timeout=0): the same answers as queue.Queue, plus close()."""

    @initialize(capacity=st.integers(1, 4))
    def start(self, capacity: int) -> None:
        self.q = BoundedQueue[int](capacity)
        self.oracle: queue.Queue[int] = queue.Queue(maxsize=capacity)
        self.closed = False
        self.next_item = 0

    @rule()
    def put(self) -> None:
        item, self.next_item = self.next_item, self.next_item + 1
        if self.closed:
            with pytest.raises(Closed):
                at_once(self.q.put, item)
            return
        try:
            self.oracle.put_nowait(item)
        except queue.Full:
            with pytest.raises(TimeoutError):
                at_once(self.q.put, item)
        else:
            at_once(self.q.put, item)

    @rule()
    def get(self) -> None:
        try:
            expected = self.oracle.get_nowait()
        except queue.Empty:
            with pytest.raises(Closed if self.closed else TimeoutError):
                at_once(self.q.get)
        else:
            assert at_once(self.q.get) == expected, "items must come out in the order they went in"

    @precondition(lambda self: not self.closed)
    @rule()
    def close(self) -> None:
        self.q.close()
        self.closed = True

    @invariant()
    def same_length(self) -> None:
        if hasattr(self, "q"):
            assert len(self.q) == self.oracle.qsize()


@pytest.mark.stage(4, "closing")
def test_the_queue_answers_like_queue_Queue_in_any_sequence_of_calls() -> None:
    run_state_machine_as_test(
        QueueAgainstTheStdlib, settings=settings(max_examples=150, stateful_step_count=30, deadline=None)
    )
