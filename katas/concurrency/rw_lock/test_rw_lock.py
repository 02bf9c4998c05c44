"""Tests for the readers-writer lock: sharing, exclusion, writer preference, and clean releases."""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from dojo.testing import Background, is_blocked, wait_until

from .rw_lock import RWLock


@pytest.fixture
def gate() -> Iterator[threading.Event]:
    """What threads inside the lock wait on; always opened at the end so none stays stuck."""
    event = threading.Event()
    yield event
    event.set()


def wait_while_running(
    predicate: Callable[[], bool], what: str, *threads: Background[object], timeout: float = 3
) -> None:
    """wait_until, but a watched thread that died re-raises its error here at once."""

    def check() -> bool:
        for thread in threads:
            if thread.done:
                thread.result()  # re-raises what the thread raised (NotImplementedError, ...)
        return predicate()

    wait_until(check, timeout=timeout, what=what)


class Inside:
    """Counts who is inside the lock right now, and the most readers seen inside at once."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.readers = self.writers = self.peak_readers = 0
        self.violations: list[str] = []

    def enter(self, kind: str) -> None:
        with self._lock:
            if kind == "read":
                self.readers += 1
                self.peak_readers = max(self.peak_readers, self.readers)
            else:
                self.writers += 1
            if self.writers > 1 or (self.writers and self.readers):
                self.violations.append(f"{self.writers} writer(s) and {self.readers} reader(s)")

    def leave(self, kind: str) -> None:
        with self._lock:
            if kind == "read":
                self.readers -= 1
            else:
                self.writers -= 1


def reader(lock: RWLock, inside: Inside, gate: threading.Event) -> Callable[[], None]:
    """A reader that enters, waits for the gate, and leaves."""

    def run() -> None:
        with lock.read_locked():
            inside.enter("read")
            gate.wait(5)
            inside.leave("read")

    return run


def writer(lock: RWLock, inside: Inside, gate: threading.Event) -> Callable[[], None]:
    def run() -> None:
        with lock.write_locked():
            inside.enter("write")
            gate.wait(5)
            inside.leave("write")

    return run


def test_many_readers_hold_the_lock_at_once(gate: threading.Event) -> None:
    lock, inside = RWLock(), Inside()
    threads = [Background(reader(lock, inside, gate), name=f"reader-{i}") for i in range(3)]
    wait_while_running(
        lambda: inside.readers == 3,
        "3 readers inside at once: readers share the lock (only a writer excludes them)",
        *threads,
    )
    assert lock.readers == 3
    gate.set()
    for t in threads:
        t.result()
    assert lock.readers == 0


def test_a_writer_waits_until_the_last_reader_leaves() -> None:
    lock, inside = RWLock(), Inside()
    assert lock.acquire_read() and lock.acquire_read()  # two read holds (as two readers would)
    done = threading.Event()
    w = Background(writer(lock, inside, done), name="writer")
    done.set()  # the writer leaves as soon as it gets in
    assert is_blocked(w.thread), "a writer got in while readers held the lock"
    lock.release_read()
    assert is_blocked(w.thread), "a writer got in while one reader still held the lock"
    lock.release_read()
    w.result()
    assert not inside.violations


def test_readers_and_writers_wait_while_a_writer_holds_it(gate: threading.Event) -> None:
    lock, inside = RWLock(), Inside()
    assert lock.acquire_write()
    r = Background(reader(lock, inside, gate), name="reader")
    w = Background(writer(lock, inside, gate), name="writer-2")
    assert is_blocked(r.thread) and inside.readers == 0, "a reader got in beside a writer"
    assert is_blocked(w.thread) and inside.writers == 0, "a second writer got in beside a writer"
    gate.set()
    lock.release_write()
    r.result()
    w.result()
    assert not inside.violations, inside.violations


def test_a_waiting_writer_keeps_new_readers_out(gate: threading.Event) -> None:
    """Writer preference: the one rule that stops readers from starving writers."""
    lock, inside = RWLock(), Inside()
    assert lock.acquire_read()
    w = Background(writer(lock, inside, gate), name="writer")
    wait_until(lambda: lock.writers_waiting == 1, timeout=3, what="the writer to start waiting")
    late = Background(reader(lock, inside, gate), name="late-reader")
    assert is_blocked(late.thread) and inside.readers == 0, (
        "a new reader got in while a writer was waiting: with readers arriving all the time "
        "the writer would wait forever (writer starvation). Once a writer waits, new readers "
        "must wait behind it"
    )
    lock.release_read()
    wait_until(lambda: inside.writers == 1, timeout=3, what="the writer to get in first")
    assert inside.readers == 0
    gate.set()
    w.result()
    late.result()
    assert not inside.violations, inside.violations


def test_a_writer_gets_in_while_readers_keep_overlapping() -> None:
    """Two readers hand over to each other so that one of them always holds the lock: the
    writer must still get in."""
    lock = RWLock()
    stop = threading.Event()
    handovers = 0
    meta = threading.Condition()

    def overlapping_reader() -> None:
        nonlocal handovers
        while not stop.is_set():
            if not lock.acquire_read(timeout=0.5):
                continue
            with meta:
                handovers += 1
                mine = handovers
                meta.notify_all()
                # hold on until the other reader is in (or give up after a moment); the lambda
                # reads `handovers` live on purpose
                meta.wait_for(
                    lambda mine=mine: handovers > mine or stop.is_set(),  # noqa: B023
                    timeout=0.05,
                )
            lock.release_read()

    def write_once() -> bool:
        if not lock.acquire_write(timeout=3):
            return False
        lock.release_write()
        return True

    readers = [Background(overlapping_reader, name=f"reader-{i}") for i in range(2)]
    try:
        wait_while_running(lambda: handovers >= 10, "the readers to start handing over", *readers)
        got_in = Background(write_once, name="writer").result(timeout=5)
        assert got_in, (
            f"the writer gave up after 3 s while two readers kept overlapping ({handovers} "
            "hand-overs): writer starvation. A waiting writer must stop new readers from "
            "entering, so the readers drain and the writer gets its turn"
        )
    finally:
        stop.set()
        with meta:
            meta.notify_all()
        for r in readers:
            r.result()


def test_readers_queued_behind_a_writer_all_enter_when_it_releases(
    gate: threading.Event,
) -> None:
    lock, inside = RWLock(), Inside()
    assert lock.acquire_write()
    waiting = [Background(reader(lock, inside, gate), name=f"reader-{i}") for i in range(3)]
    for r in waiting:
        assert is_blocked(r.thread)
    lock.release_write()
    try:
        wait_until(lambda: inside.readers == 3, timeout=2, what="all 3 waiting readers to enter")
    except AssertionError:
        pytest.fail(
            f"after the writer released, only {inside.readers} of 3 waiting readers got in: "
            "release_write() must wake every waiter (notify_all(), not notify()); the readers "
            "may all enter together"
        )
    gate.set()
    for r in waiting:
        r.result()


def test_a_writer_that_gives_up_lets_the_readers_it_held_back_in() -> None:
    lock = RWLock()
    assert lock.acquire_read()
    w = Background(lambda: lock.acquire_write(timeout=0.3), name="impatient-writer")
    wait_until(lambda: lock.writers_waiting == 1, timeout=3, what="the writer to start waiting")
    late = Background(lambda: lock.acquire_read(timeout=5), name="late-reader")
    assert w.result() is False, "acquire_write(timeout=0.3) must return False while a reader holds"
    assert lock.writers_waiting == 0, (
        f"writers_waiting is {lock.writers_waiting} after the only writer gave up: stop counting "
        "a writer on every path out of acquire_write (try/finally)"
    )
    try:
        acquired = late.result(timeout=2)
    except AssertionError:
        pytest.fail(
            "a reader stayed blocked after the waiting writer gave up: the writer that gave up "
            "must wake the readers it was holding back (notify_all() on timeout)"
        )
    assert acquired is True
    lock.release_read()
    lock.release_read()


def test_acquire_times_out_with_false_and_holds_nothing() -> None:
    lock = RWLock()
    assert lock.acquire_write()
    assert Background(lambda: lock.acquire_read(timeout=0.05)).result() is False
    assert Background(lambda: lock.acquire_write(timeout=0.05)).result() is False
    assert lock.readers == 0 and lock.writers_waiting == 0
    lock.release_write()
    assert lock.acquire_write(timeout=0) is True, "a free lock must be acquired even with timeout=0"
    lock.release_write()


def test_a_with_block_releases_the_lock_even_when_it_raises() -> None:
    lock = RWLock()
    with pytest.raises(ValueError), lock.read_locked():
        raise ValueError("boom in a reader")
    assert lock.readers == 0, (
        "the read lock is still held after the with-block raised: release it in a `finally` "
        "(a lock released on only one path is held forever after the first exception)"
    )
    with pytest.raises(ValueError), lock.write_locked():
        raise ValueError("boom in a writer")
    reader_got_in = Background(lambda: lock.acquire_read(timeout=1)).result()
    assert reader_got_in, (
        "the write lock is still held after the with-block raised: release it in a `finally`"
    )


def test_releasing_what_you_do_not_hold_raises_runtime_error() -> None:
    lock = RWLock()
    with pytest.raises(RuntimeError):
        lock.release_read()
        pytest.fail("release_read() with no reader holding the lock must raise RuntimeError")
    with pytest.raises(RuntimeError):
        lock.release_write()
        pytest.fail("release_write() with no writer holding the lock must raise RuntimeError")
    assert lock.acquire_write()
    other = Background(lock.release_write, name="not-the-owner")
    with pytest.raises(RuntimeError):
        other.result()
        pytest.fail("release_write() from a thread that does not hold it must raise RuntimeError")
    lock.release_write()
    assert lock.acquire_read(timeout=1), "the lock must be usable after those failed releases"
    lock.release_read()


def test_readers_never_see_a_half_done_write_under_contention() -> None:
    """Many threads with frequent thread switches: exclusion holds and no update is lost."""
    lock, inside = RWLock(), Inside()
    data = [0, 0]
    torn: list[tuple[int, int]] = []
    writes_each, writers, readers = 150, 3, 3

    def write_many() -> None:
        for _ in range(writes_each):
            with lock.write_locked():
                inside.enter("write")
                value = data[0]
                time.sleep(0)  # invite a switch mid-update
                data[0] = data[1] = value + 1
                inside.leave("write")

    def read_many() -> None:
        for _ in range(writes_each):
            with lock.read_locked():
                inside.enter("read")
                first = data[0]
                time.sleep(0)
                if data[1] != first:
                    torn.append((first, data[1]))
                inside.leave("read")

    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)  # switch threads far more often than the default 5 ms
    try:
        threads = [Background(write_many, name=f"w{i}") for i in range(writers)]
        threads += [Background(read_many, name=f"r{i}") for i in range(readers)]
        for t in threads:
            t.result(timeout=8)
    finally:
        sys.setswitchinterval(interval)
    assert not inside.violations, (
        f"exclusion broken: seen inside at once: {inside.violations[:3]}"
    )
    assert not torn, f"readers saw half-written data (first, second): {torn[:3]}"
    assert data == [writes_each * writers] * 2, f"lost updates: {data}"
