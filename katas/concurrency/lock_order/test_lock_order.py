"""Tests for the lock-order checker: cycles refused before they block, no false alarms, philosophers fed."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pytest

from dojo.testing import Background, wait_until

from .lock_order import LockOrderChecker, LockOrderViolation, OrderedLock, dine


def in_thread(fn: Callable[[], object], name: str) -> object:
    """Run fn in its own thread to the end (each thread has its own held locks)."""
    return Background(fn, name=name).result(timeout=5)


def nest(*locks: OrderedLock) -> Callable[[], None]:
    """A thread body that takes `locks` in the given order, then releases them all."""

    def run() -> None:
        taken: list[OrderedLock] = []
        try:
            for lock in locks:
                assert lock.acquire(timeout=2), f"could not get {lock.name}"
                taken.append(lock)
        finally:
            for lock in reversed(taken):
                lock.release()

    return run


def test_nesting_records_the_order_and_the_held_locks() -> None:
    checker = LockOrderChecker()
    a, b = checker.lock("A"), checker.lock("B")
    assert checker.held() == []
    with a:
        assert checker.held() == ["A"]
        with b:
            assert checker.held() == ["A", "B"], "held() lists the caller's locks, oldest first"
            assert a.locked() and b.locked()
    assert checker.held() == [] and not a.locked() and not b.locked()
    assert checker.edges() == {("A", "B")}, (
        f"taking B while holding A records the order ('A', 'B'); got {checker.edges()}"
    )


def test_the_reverse_order_in_another_thread_raises_even_without_a_deadlock() -> None:
    """Thread 1 did A then B and finished. Nothing can deadlock now, but B then A is the bug."""
    checker = LockOrderChecker()
    a, b = checker.lock("A"), checker.lock("B")
    in_thread(nest(a, b), "thread-1")

    def reverse() -> None:
        with b:
            with pytest.raises(LockOrderViolation) as info:
                a.acquire()
                a.release()
                pytest.fail(
                    "took A while holding B, after another thread took B while holding A: that "
                    "is a lock-order cycle and must raise LockOrderViolation, even though this "
                    "time nobody else held A (lockdep reports the pattern, not the hang)"
                )
            cycle = info.value.cycle
            assert cycle[0] == cycle[-1] and {"A", "B"} <= set(cycle), (
                f"LockOrderViolation.cycle should go round, e.g. ['B', 'A', 'B']; got {cycle}"
            )
            assert not a.locked(), (
                "a refused acquire left the lock held: check the order BEFORE you block on (or "
                "take) the real lock"
            )
            assert checker.held() == ["B"]

    in_thread(reverse, "thread-2")
    assert ("B", "A") not in checker.edges(), (
        "the refused order B->A was recorded anyway: record only orders you allow, or every "
        "later innocent acquire is blamed"
    )
    in_thread(nest(a, b), "thread-3")  # the allowed order still works


def test_a_cycle_raises_before_blocking_instead_of_deadlocking() -> None:
    """The real deadlock: T1 holds A and waits for B; T2 holds B and now asks for A."""
    checker = LockOrderChecker()
    a, b = checker.lock("A"), checker.lock("B")
    t2_has_b, t1_waiting = threading.Event(), threading.Event()

    def t1() -> bool:
        with a:
            t1_waiting.set()
            got = b.acquire(timeout=5)  # records A->B, then blocks: T2 holds B
            if got:
                b.release()
            return got

    def t2() -> str:
        with b:
            t2_has_b.set()
            t1_waiting.wait(5)
            # Give T1 time to ask for B (a correct lock records A->B before it blocks; one that
            # checks after blocking never will, so don't insist on it here).
            deadline = time.monotonic() + 3
            while ("A", "B") not in checker.edges() and time.monotonic() < deadline:
                time.sleep(0.01)
            time.sleep(0.05)
            try:
                if a.acquire(timeout=2):
                    a.release()
                    return "acquired"
                return "timed out"
            except LockOrderViolation:
                return "raised"

    second = Background(t2, name="T2")
    wait_until(lambda: t2_has_b.is_set() or second.done, timeout=5, what="T2 to take B")
    if second.done:
        second.result()  # re-raises what T2 hit
    first = Background(t1, name="T1")
    outcome = second.result(timeout=6)
    assert outcome == "raised", (
        f"T2 held B and asked for A while T1 held A and waited for B; the acquire {outcome} "
        "instead of raising LockOrderViolation. Check the order in acquire() BEFORE you block "
        "on the real lock: once both threads wait, nobody is left to raise"
    )
    assert first.result(timeout=6) is True, "T1 should get B once T2 gave up and released it"


def test_a_three_lock_cycle_across_three_threads_raises() -> None:
    checker = LockOrderChecker()
    a, b, c = checker.lock("A"), checker.lock("B"), checker.lock("C")
    in_thread(nest(a, b), "T1")
    in_thread(nest(b, c), "T2")

    def third() -> None:
        with c:
            with pytest.raises(LockOrderViolation) as info:
                a.acquire()
                a.release()
                pytest.fail(
                    "A->B (T1) and B->C (T2) are recorded; taking A while holding C closes the "
                    "cycle A->B->C->A and must raise. Look for a path through the graph, not "
                    "just the direct reverse edge"
                )
            assert {"A", "B", "C"} <= set(info.value.cycle), info.value.cycle

    in_thread(third, "T3")


def test_locks_held_by_different_threads_do_not_order_each_other() -> None:
    """No false alarms: only locks held by the *same* thread form an order."""
    checker = LockOrderChecker()
    a, b = checker.lock("A"), checker.lock("B")
    parked, release = threading.Event(), threading.Event()

    def hold_a() -> None:
        with a:
            parked.set()
            release.wait(5)

    holder = Background(hold_a, name="holds-A")
    try:
        wait_until(lambda: parked.is_set() or holder.done, timeout=5, what="A to be held")
        if holder.done:
            holder.result()
        in_thread(nest(b), "takes-B-alone")  # A is held, but by someone else
        assert ("A", "B") not in checker.edges(), (
            "recorded A->B although A and B were held by different threads: track held locks "
            "per thread (threading.local), not in one shared list"
        )
    finally:
        release.set()
        holder.result()
    try:
        in_thread(nest(b, a), "takes-B-then-A")
    except LockOrderViolation as exc:
        pytest.fail(f"false alarm {exc}: no thread ever held A while taking B (per-thread held "
                    "locks: threading.local)")


def test_released_locks_are_forgotten() -> None:
    checker = LockOrderChecker()
    a, b = checker.lock("A"), checker.lock("B")

    def sequential() -> None:
        with a:
            pass
        with b:  # A was released: this is not "B while holding A"
            pass
        with b, a:
            pass
        with b:
            pass
        # locks may be released out of order: release() forgets that lock, not the newest
        assert b.acquire() and a.acquire()
        b.release()
        assert checker.held() == ["A"], f"after releasing B, held() is {checker.held()}"
        a.release()

    try:
        in_thread(sequential, "sequential")
    except LockOrderViolation as exc:
        pytest.fail(f"false alarm {exc}: a released lock must be dropped from the held list")
    assert checker.edges() == {("B", "A")}, (
        f"only B->A was ever nested; got {checker.edges()}: forget locks on release"
    )


def test_taking_a_lock_you_already_hold_raises() -> None:
    checker = LockOrderChecker()
    a = checker.lock("A")

    def twice() -> str:
        with a:
            try:
                got = a.acquire(timeout=1)
            except LockOrderViolation:
                return "raised"
            if got:
                a.release()
            return "acquired" if got else "blocked until the timeout"

    outcome = in_thread(twice, "twice")
    assert outcome == "raised", (
        f"re-acquiring a held non-reentrant lock {outcome}: without a timeout the thread would "
        "wait for itself forever; raise LockOrderViolation (the one-lock cycle) instead"
    )


class Table:
    """What the test sees of the dinner: meals per philosopher and forks in use at once."""

    def __init__(self, forks: list[OrderedLock]) -> None:
        self.forks = forks
        self.n = len(forks)
        self.meals = [0] * self.n
        self.in_use = [0] * self.n
        self.problems: list[str] = []
        self._lock = threading.Lock()

    def eat(self, i: int) -> None:
        mine = (i, (i + 1) % self.n)
        if not all(self.forks[f].locked() for f in mine):
            self.problems.append(f"philosopher {i} ate without holding forks {mine}")
        with self._lock:
            for f in mine:
                self.in_use[f] += 1
                if self.in_use[f] > 1:
                    self.problems.append(f"fork {f} used by two philosophers at once")
        time.sleep(0)  # invite a switch while eating
        with self._lock:
            for f in mine:
                self.in_use[f] -= 1
            self.meals[i] += 1


@pytest.mark.parametrize("n", [2, 5])
def test_dining_philosophers_all_eat_without_a_cycle(n: int) -> None:
    checker = LockOrderChecker()
    forks = [checker.lock(f"fork{i}") for i in range(n)]
    table = Table(forks)
    meals = 30
    try:
        Background(dine, forks, meals, table.eat, name="dinner").result(timeout=8)
    except LockOrderViolation as exc:
        pytest.fail(
            f"the forks reported {exc}: philosophers pick up forks in a cyclic order (everyone "
            "left then right is a circle of waits, the classic deadlock). Give the forks a "
            "global order and take the lower-numbered one first"
        )
    assert not table.problems, table.problems[:3]
    assert table.meals == [meals] * n, f"meals eaten per philosopher: {table.meals}, want {meals}"
    assert not any(f.locked() for f in forks), "a fork is still held after dinner"
    assert checker.held() == []


def test_dine_reports_a_philosophers_error() -> None:
    checker = LockOrderChecker()
    forks = [checker.lock(f"fork{i}") for i in range(3)]

    def eat(i: int) -> None:
        if i == 1:
            raise ValueError("philosopher 1 choked")

    with pytest.raises(ValueError, match="choked"):
        Background(dine, forks, 2, eat, name="dinner").result(timeout=8)
        pytest.fail("dine() must re-raise the error a philosopher hit")
    assert not any(f.locked() for f in forks), (
        "a fork stayed held after a philosopher raised: release with `with`/finally"
    )
