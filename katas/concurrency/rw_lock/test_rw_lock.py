"""Tests for the readers-writer lock: sharing, exclusion, writer preference, and clean releases."""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from dojo.testing import Background, is_blocked, wait_until

from .rw_lock import RWLock

RECHECK = (
    "A woken thread must re-check its own condition and wait again if it does not hold (a "
    "`while` loop around wait(), or wait_for): notify_all() wakes everyone, and being woken "
    "says only that something changed"
)

LOST_WAKEUP = (
    "they wait for a wake-up that never came, or for each other. Every change that may let "
    "someone in (the last reader out, a writer out, a writer giving up) must wake every waiter, "
    "notify_all(): with one condition for both kinds, notify() may wake a reader that has to "
    "wait again behind a waiting writer, and the writer that could go in is never told. And a "
    "thread still waiting must not count as inside: a reader counted in `readers` before it "
    "gets in keeps a writer out, while the writer keeps it out"
)


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


@pytest.mark.stage(1, "readers and writers")
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


@pytest.mark.stage(1, "readers and writers")
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
    assert not inside.violations, f"seen inside the lock at once: {inside.violations}. {RECHECK}"


@pytest.mark.stage(1, "readers and writers")
def test_readers_and_writers_wait_while_a_writer_holds_it(gate: threading.Event) -> None:
    lock, inside = RWLock(), Inside()
    assert lock.acquire_write()
    r = Background(reader(lock, inside, gate), name="reader")
    w = Background(writer(lock, inside, gate), name="writer-2")
    assert is_blocked(r.thread) and inside.readers == 0, "a reader got in beside a writer"
    assert is_blocked(w.thread) and inside.writers == 0, "a second writer got in beside a writer"
    gate.set()
    lock.release_write()
    for t in (r, w):
        t.thread.join(3)
    stuck = [t.thread.name for t in (r, w) if t.thread.is_alive()]
    assert not stuck, (
        f"{stuck} still waiting 3 s after the writer released a lock no one else held: "
        f"{LOST_WAKEUP}"
    )
    r.result()
    w.result()
    assert not inside.violations, f"seen inside the lock at once: {inside.violations}. {RECHECK}"


@pytest.mark.stage(3, "writers go first")
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
    assert inside.readers == 0, (
        f"the late reader went in beside or ahead of the writer it queued behind "
        f"({inside.violations or 'before the writer'}) when the last reader left. {RECHECK}"
    )
    gate.set()
    w.result()
    late.result()
    assert not inside.violations, f"seen inside the lock at once: {inside.violations}. {RECHECK}"


@pytest.mark.stage(3, "writers go first")
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


@pytest.mark.stage(3, "writers go first")
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


@pytest.mark.stage(4, "giving up and waking")
def test_a_writer_that_gives_up_lets_every_reader_it_held_back_in() -> None:
    lock = RWLock()
    assert lock.acquire_read()
    w = Background(lambda: lock.acquire_write(timeout=0.3), name="impatient-writer")
    wait_until(lambda: lock.writers_waiting == 1, timeout=3, what="the writer to start waiting")
    late = [Background(lambda: lock.acquire_read(timeout=5), name=f"late-reader-{i}") for i in range(3)]
    for r in late:
        assert is_blocked(r.thread, settle=0.05), "a new reader got in while a writer was waiting"
    assert w.result() is False, "acquire_write(timeout=0.3) must return False while a reader holds"
    assert lock.writers_waiting == 0, (
        f"writers_waiting is {lock.writers_waiting} after the only writer gave up: stop counting "
        "a writer on every path out of acquire_write (try/finally)"
    )
    until = time.monotonic() + 2  # one deadline for all three: each waits with timeout=5
    for r in late:
        r.thread.join(max(0.0, until - time.monotonic()))
    stuck = [r.thread.name for r in late if r.thread.is_alive()]
    assert not stuck, (
        f"{stuck} stayed blocked after the waiting writer gave up: the writer that gave up "
        "must wake every reader it was holding back (notify_all() on timeout, not notify(): "
        "all of them may enter together)"
    )
    assert [r.result() for r in late] == [True] * 3
    for _ in range(4):
        lock.release_read()
    assert lock.readers == 0


@pytest.mark.stage(2, "timeouts and misuse")
def test_acquire_times_out_with_false_and_holds_nothing() -> None:
    lock = RWLock()
    assert lock.acquire_write()
    assert Background(lambda: lock.acquire_read(timeout=0.05)).result() is False
    assert Background(lambda: lock.acquire_write(timeout=0.05)).result() is False
    assert lock.readers == 0 and lock.writers_waiting == 0
    lock.release_write()
    assert lock.acquire_write(timeout=0) is True, "a free lock must be acquired even with timeout=0"
    lock.release_write()


@pytest.mark.stage(2, "timeouts and misuse")
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


@pytest.mark.stage(2, "timeouts and misuse")
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
    with pytest.raises(RuntimeError):
        lock.release_read()
        pytest.fail("release_read() while only a writer holds the lock must raise RuntimeError")
    lock.release_write()
    with pytest.raises(RuntimeError):
        lock.release_write()
        pytest.fail("a second release_write() must raise RuntimeError: the writer already let go")
    assert lock.acquire_read(timeout=1), "the lock must be usable after those failed releases"
    lock.release_read()
    assert lock.readers == 0


@pytest.mark.stage(5, "heavy contention")
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
        until = time.monotonic() + 6
        for t in threads:
            t.thread.join(max(0.0, until - time.monotonic()))
    finally:
        sys.setswitchinterval(interval)
    stuck = [t.thread.name for t in threads if t.thread.is_alive()]
    assert not stuck, f"{stuck} still not done after 6 s: {LOST_WAKEUP}"
    errors = []
    for t in threads:
        try:
            t.result()
        except Exception as exc:  # reported below, with what the other threads saw
            errors.append(f"{t.thread.name}: {exc!r}")
    assert not inside.violations, (
        f"seen inside the lock at once: {inside.violations[:3]}. A writer enters only when no "
        "one holds the lock, a reader only when no writer holds or waits; and each checks that "
        f"under the lock every time it wakes, not once. {RECHECK}"
    )
    assert not errors, (
        f"lock calls failed under contention: {errors[:3]}. Only the lock is used here, correctly, "
        "so its bookkeeping went wrong: a release_write() that says its thread does not hold the "
        "lock means a second writer went in and took it over, because a writer went in after a "
        f"wake-up without checking again that no one holds the lock. {RECHECK}"
    )
    assert not torn, (
        f"readers saw half-written data (first, second): {torn[:3]}: a reader was inside while "
        "a writer was mid-update, so a reader does not wait for the writer to leave"
    )
    assert data == [writes_each * writers] * 2, (
        f"lost updates: {data}, expected {[writes_each * writers] * 2}: two writers were inside "
        "at once, so a writer does not wait for the one inside to leave"
    )


# -- who is woken, and what a woken thread must do ---------------------------------------------



def a_writer_behind_queued_readers_after_the_last_reader_left() -> None:
    """One reader in; a writer with a short timeout waits; 4 readers queue behind it; a second
    writer (no timeout) waits; the first writer gives up; the reader leaves."""
    lock = RWLock()
    assert lock.acquire_read()
    impatient = Background(lambda: lock.acquire_write(timeout=0.15), name="impatient-writer")
    wait_until(lambda: lock.writers_waiting == 1, timeout=3, what="the first writer to start waiting")
    queued = [Background(lambda: lock.acquire_read(timeout=5), name=f"queued-reader-{i}") for i in range(4)]
    entered = threading.Event()

    def patient() -> None:
        assert lock.acquire_write()
        entered.set()
        lock.release_write()

    writer_2 = Background(patient, name="patient-writer")
    wait_until(lambda: lock.writers_waiting == 2, timeout=3, what="both writers to be waiting")
    assert impatient.result() is False, "acquire_write(timeout=0.15) must return False while a reader holds"
    assert lock.writers_waiting == 1
    assert is_blocked(queued[-1].thread, settle=0.05) and not any(r.done for r in queued), (
        "a reader got in after the first writer gave up, though the second writer was still "
        f"waiting. {RECHECK}"
    )
    lock.release_read()  # the last reader leaves: the patient writer may go
    if not entered.wait(2):
        pytest.fail(
            "the last reader left, and the writer that was waiting (with 4 readers queued "
            "behind it) never got in: release_read() woke one thread with notify(), a reader "
            "that went back to sleep behind the writer, and the writer was never woken. "
            "With one condition for both kinds of waiter, the last reader out must notify_all()"
        )
    writer_2.result()
    assert [r.result() for r in queued] == [True] * 4, "the readers go in once the writer has left"


@pytest.mark.stage(4, "giving up and waking")
def test_the_last_reader_out_wakes_every_waiter_so_the_writer_behind_queued_readers_gets_in() -> None:
    """With one condition for readers and writers, notify() may wake a reader that must go back
    to sleep, and the writer that could go in is never told. Which waiter notify() picks depends
    on the order they went back to sleep in, so the scene is played three times."""
    for _ in range(3):
        a_writer_behind_queued_readers_after_the_last_reader_left()


@pytest.mark.stage(4, "giving up and waking")
def test_a_writer_that_gives_up_keeps_readers_out_while_another_writer_waits(
    gate: threading.Event,
) -> None:
    lock, inside = RWLock(), Inside()
    assert lock.acquire_read()
    impatient = Background(lambda: lock.acquire_write(timeout=0.2), name="impatient-writer")
    wait_until(lambda: lock.writers_waiting == 1, timeout=3, what="the first writer to start waiting")
    patient = Background(writer(lock, inside, gate), name="patient-writer")
    wait_until(lambda: lock.writers_waiting == 2, timeout=3, what="both writers to be waiting")
    late = Background(reader(lock, inside, gate), name="late-reader")
    assert impatient.result() is False
    assert is_blocked(late.thread) and inside.readers == 0, (
        "a new reader got in after one of two waiting writers gave up: the other still waits, "
        "so new readers still wait behind it (count the waiting writers; don't reset a flag)"
    )
    lock.release_read()
    wait_while_running(lambda: inside.writers == 1, "the waiting writer to get in", patient)
    gate.set()
    patient.result()
    late.result()
    assert not inside.violations, f"seen inside the lock at once: {inside.violations}. {RECHECK}"


@pytest.mark.stage(3, "writers go first")
def test_when_a_writer_leaves_a_waiting_writer_goes_before_waiting_readers(
    gate: threading.Event,
) -> None:
    lock, inside = RWLock(), Inside()
    assert lock.acquire_write()
    next_writer = Background(writer(lock, inside, gate), name="waiting-writer")
    wait_until(lambda: lock.writers_waiting == 1, timeout=3, what="the second writer to start waiting")
    waiting_reader = Background(reader(lock, inside, gate), name="waiting-reader")
    assert is_blocked(waiting_reader.thread)
    lock.release_write()
    wait_while_running(lambda: inside.writers == 1, "the waiting writer to get in", next_writer)
    assert is_blocked(waiting_reader.thread) and inside.readers == 0, (
        f"a reader went in when the writer left, beside or ahead of a waiting writer "
        f"({inside.violations or 'the writer had not entered yet'}): a waiting writer keeps "
        f"readers out at every moment, release_write() included. {RECHECK}"
    )
    gate.set()
    next_writer.result()
    waiting_reader.result()
    assert not inside.violations, f"seen inside the lock at once: {inside.violations}. {RECHECK}"


@pytest.mark.stage(4, "giving up and waking")
@pytest.mark.parametrize("side", ["reader", "writer"])
def test_a_waiter_woken_for_nothing_waits_for_the_rest_of_its_timeout(side: str) -> None:
    """A writer that gives up wakes everyone; a waiter whose way is still blocked waits on."""
    lock = RWLock()
    def acquire_and_release(kind: str) -> bool:
        got = getattr(lock, f"acquire_{kind}")(timeout=5)
        if got:
            getattr(lock, f"release_{kind}")()
        return got

    if side == "reader":
        assert lock.acquire_write()
        waiter = Background(acquire_and_release, "read", name="reader(timeout=5)")
    else:
        assert lock.acquire_read()
        waiter = Background(acquire_and_release, "write", name="writer(timeout=5)")
        wait_until(lambda: lock.writers_waiting == 1, timeout=3, what="the writer to start waiting")
    assert is_blocked(waiter.thread, settle=0.05)
    assert Background(lambda: lock.acquire_write(timeout=0.05), name="gives-up").result() is False
    assert is_blocked(waiter.thread), (
        f"acquire_{'read' if side == 'reader' else 'write'}(timeout=5) returned "
        f"{waiter.result()!r} when a writer that gave up woke it, although the lock was still "
        f"held. {RECHECK}, for what is left of its timeout"
    )
    if side == "reader":
        lock.release_write()
    else:
        lock.release_read()
    assert waiter.result() is True, "the waiter gets in once the lock is free"
    assert (lock.readers, lock.writers_waiting) == (0, 0)


@pytest.mark.stage(4, "giving up and waking")
@pytest.mark.parametrize("side", ["reader", "writer"])
def test_one_deadline_for_the_whole_wait_however_often_the_waiter_is_woken(side: str) -> None:
    lock = RWLock()
    if side == "reader":
        assert lock.acquire_write()
        waiter = Background(lambda: lock.acquire_read(timeout=0.3), name="reader(timeout=0.3)")
    else:
        assert lock.acquire_read()
        waiter = Background(lambda: lock.acquire_write(timeout=0.3), name="writer(timeout=0.3)")
    until = time.monotonic() + 3
    while not waiter.done and time.monotonic() < until:  # writers that give up wake it, often
        Background(lambda: lock.acquire_write(timeout=0.02), name="gives-up").result()
    assert waiter.done, (
        f"acquire_{'read' if side == 'reader' else 'write'}(timeout=0.3) was still waiting 3 s "
        "later, while writers that gave up kept waking it: every wake-up started the timeout "
        "again. Keep one deadline for the whole wait (wait_for does; or wait(deadline - now))"
    )
    assert waiter.result() is False
    assert lock.writers_waiting == 0 and lock.readers == (0 if side == "reader" else 1)


@pytest.mark.stage(2, "timeouts and misuse")
@pytest.mark.parametrize("timeout", [0, -1], ids=["timeout=0", "negative timeout"])
def test_a_timeout_that_has_already_run_out_does_not_wait(timeout: float) -> None:
    lock = RWLock()

    def attempt(kind: str) -> bool:
        call = Background(getattr(lock, f"acquire_{kind}"), timeout, name=f"acquire_{kind}({timeout})")
        call.thread.join(3)
        assert not call.thread.is_alive(), (
            f"acquire_{kind}(timeout={timeout}) was still waiting after 3 s: a timeout of 0 or "
            "less has already run out; only None means wait forever (`timeout is None`, not "
            "`not timeout`)"
        )
        return call.result()

    assert lock.acquire_read(timeout=timeout) is True, "a free lock is acquired even with no time to wait"
    assert attempt("write") is False, "a writer got in beside a reader"
    assert (lock.readers, lock.writers_waiting) == (1, 0), "a writer that gave up stops counting"
    assert attempt("read") is True, "a second reader shares the lock, with or without time to wait"
    lock.release_read()
    lock.release_read()
    assert lock.acquire_write(timeout=timeout) is True, "a free lock is acquired even with no time to wait"
    assert attempt("read") is False and attempt("write") is False
    assert (lock.readers, lock.writers_waiting) == (0, 0)
    lock.release_write()
