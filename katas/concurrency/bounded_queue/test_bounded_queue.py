"""Tests for the bounded blocking queue: order, blocking, timeouts, close, and many threads at once."""

from __future__ import annotations

import contextlib
import threading
import time

import pytest

from dojo.testing import Background, is_blocked, wait_until

from .bounded_queue import BoundedQueue, Closed


def test_items_come_out_in_the_order_they_went_in() -> None:
    q = BoundedQueue[int](3)
    for i in range(3):
        q.put(i)
    assert len(q) == 3
    assert [q.get() for _ in range(3)] == [0, 1, 2]
    assert len(q) == 0


def test_get_on_an_empty_queue_times_out() -> None:
    q = BoundedQueue[int](1)
    with pytest.raises(TimeoutError):
        q.get(timeout=0.05)


def test_put_on_a_full_queue_times_out_and_adds_nothing() -> None:
    q = BoundedQueue[str](1)
    q.put("a")
    with pytest.raises(TimeoutError):
        q.put("b", timeout=0.05)
    assert len(q) == 1, "a put that timed out must not have added its item"
    assert q.get() == "a"


def test_a_blocked_put_resumes_when_a_get_makes_room() -> None:
    q = BoundedQueue[int](1)
    q.put(1)
    producer = Background(q.put, 2, name="producer")
    assert is_blocked(producer.thread), "put() on a full queue must wait, not return or raise"
    assert q.get() == 1
    producer.result()
    assert q.get(timeout=1) == 2


def test_a_blocked_get_resumes_when_a_put_arrives() -> None:
    q = BoundedQueue[str](1)
    consumer = Background(q.get, name="consumer")
    assert is_blocked(consumer.thread), "get() on an empty queue must wait, not return or raise"
    q.put("hello")
    assert consumer.result() == "hello"


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


def test_close_wakes_every_waiting_getter_with_closed() -> None:
    q = BoundedQueue[int](1)
    getters = [Background(q.get, name=f"getter-{i}") for i in range(3)]
    for g in getters:
        assert is_blocked(g.thread)
    q.close()
    for g in getters:
        with pytest.raises(Closed):
            g.result(timeout=2)


def test_close_wakes_a_waiting_putter_with_closed() -> None:
    q = BoundedQueue[int](1)
    q.put(1)
    putter = Background(q.put, 2, name="putter")
    assert is_blocked(putter.thread)
    q.close()
    with pytest.raises(Closed):
        putter.result(timeout=2)


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
