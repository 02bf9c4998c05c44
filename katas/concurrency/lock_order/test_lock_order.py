"""Tests for the lock-order checker: cycles refused before they block, no false alarms, philosophers fed."""

from __future__ import annotations

import itertools
import queue
import sys
import threading
import time
from collections.abc import Callable

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, rule, run_state_machine_as_test

from dojo.testing import Background, is_blocked, wait_until

from .lock_order import LockOrderChecker, LockOrderViolation, OrderedLock, dine

PATIENCE = 4.0  # seconds a call that must return at once gets, however loaded the machine


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


@pytest.mark.stage(1, "recording the order")
def test_nesting_records_the_order_and_the_held_locks() -> None:
    checker = LockOrderChecker()
    a, b = checker.lock("A"), checker.lock("B")
    assert checker.held() == []
    with a as entered:
        assert entered is a, "`with lock as x:` gives the OrderedLock itself"
        assert checker.held() == ["A"]
        with b:
            assert checker.held() == ["A", "B"], "held() lists the caller's locks, oldest first"
            assert a.locked() and b.locked()
    assert checker.held() == [] and not a.locked() and not b.locked()
    assert checker.edges() == {("A", "B")}, (
        f"taking B while holding A records the order ('A', 'B'); got {checker.edges()}"
    )


@pytest.mark.stage(2, "cycles are refused")
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
            assert isinstance(info.value, RuntimeError) and all(n in str(info.value) for n in ("A", "B")), (
                f"the report must name the locks of the cycle; it says {str(info.value)!r}"
            )
            assert not a.locked(), (
                "a refused acquire left the lock held: check the order BEFORE you block on (or take) the real lock"
            )
            assert checker.held() == ["B"]

    in_thread(reverse, "thread-2")
    assert ("B", "A") not in checker.edges(), (
        "the refused order B->A was recorded anyway: record only orders you allow, or every "
        "later innocent acquire is blamed"
    )
    in_thread(nest(a, b), "thread-3")  # the allowed order still works


@pytest.mark.stage(2, "cycles are refused")
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


@pytest.mark.stage(2, "cycles are refused")
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


@pytest.mark.stage(1, "recording the order")
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
        pytest.fail(f"false alarm {exc}: no thread ever held A while taking B (per-thread held locks: threading.local)")


@pytest.mark.stage(1, "recording the order")
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
    assert checker.edges() == {("B", "A")}, f"only B->A was ever nested; got {checker.edges()}: forget locks on release"


@pytest.mark.stage(2, "cycles are refused")
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


@pytest.mark.stage(3, "timeouts and misuse")
def test_a_timed_out_acquire_returns_false_and_holds_nothing() -> None:
    """timeout=0 is a deadline already passed; a small timeout runs out; None waits for good."""
    checker = LockOrderChecker()
    a = checker.lock("A")
    parked, release = threading.Event(), threading.Event()

    def hold_a() -> None:
        with a:
            parked.set()
            release.wait(60)  # until the test is done: an acquire that waits never gets A

    holder = Background(hold_a, name="holds-A")
    try:
        wait_until(lambda: parked.is_set() or holder.done, timeout=5, what="A to be held")
        for timeout in (0, 0.01):

            def attempt(timeout: float = timeout) -> tuple[object, list[str]]:
                return a.acquire(timeout=timeout), checker.held()

            trying = Background(attempt, name=f"acquire(timeout={timeout})")
            trying.thread.join(PATIENCE)  # a generous deadline for a call that must not wait
            assert not trying.thread.is_alive(), (
                f"acquire(timeout={timeout}) is still waiting {PATIENCE:g} s later on a lock another "
                "thread holds: a timeout is a deadline, and 0 means don't wait (only None waits "
                "forever; `timeout or -1` turns 0 into forever)"
            )
            got, held = trying.result()  # type: ignore[misc]
            assert got is False, (
                f"acquire(timeout={timeout}) on a lock another thread holds returned {got!r}: "
                "when the real lock's acquire gives up, return False (0 means don't wait; only "
                "None waits forever)"
            )
            assert held == [], (
                f"after a timed-out acquire held() says {held}: tell the checker `acquired` only "
                "once the real lock is yours"
            )
        waiter = Background(
            lambda: (a.acquire(timeout=None), checker.held(), a.release())[:2], name="acquire(timeout=None)"
        )
        assert is_blocked(waiter.thread), "acquire(timeout=None) must wait while another holds it"
    finally:
        release.set()
        holder.result()
    assert waiter.result() == (True, ["A"]), "acquire(timeout=None) waits as long as it takes, then holds the lock"


@pytest.mark.stage(3, "timeouts and misuse")
def test_releasing_a_lock_nobody_holds_raises_runtime_error() -> None:
    checker = LockOrderChecker()
    a, b = checker.lock("A"), checker.lock("B")

    def release_unheld() -> list[str]:
        with a:
            try:
                b.release()
                outcome = "returned"
            except RuntimeError:
                return checker.held()
            except Exception as exc:
                outcome = f"raised {exc!r}"
            pytest.fail(
                f"release() of B, which nobody holds, {outcome}: raise RuntimeError, as "
                "threading.Lock does (check the caller holds it before you forget it)"
            )

    assert in_thread(release_unheld, "release-unheld") == ["A"], (
        "a refused release must leave the caller's held locks as they were"
    )
    assert not a.locked() and not b.locked()


class CountedName(str):
    """A lock name that counts how often it is hashed: every dict or set look-up is one."""

    hashes = 0
    __slots__ = ()

    def __hash__(self) -> int:
        CountedName.hashes += 1
        return str.__hash__(self)

    def __eq__(self, other: object) -> bool:
        return str.__eq__(self, other)


def work_to_search_a_ladder(rungs: int) -> int:
    """Look-ups one acquire costs when the graph is a ladder of `rungs` diamonds it must search.

    L0 -> {X0, Y0} -> L1 -> {X1, Y1} -> L2 ...: 3 * rungs locks, but 2 ** rungs paths.
    """
    checker = LockOrderChecker()
    names = {n: CountedName(n) for r in range(rungs + 1) for n in (f"L{r}", f"X{r}", f"Y{r}")}
    lock = {n: checker.lock(name) for n, name in names.items()}
    z = checker.lock(CountedName("Z"))

    def build() -> int:
        for r in range(rungs):
            for side in ("X", "Y"):
                with lock[f"L{r}"], lock[f"{side}{r}"]:
                    pass
                with lock[f"{side}{r}"], lock[f"L{r + 1}"]:
                    pass
        with z:
            before = CountedName.hashes
            with lock["L0"]:  # Z -> L0 is new: search L0 -> ... -> Z through the whole ladder
                return CountedName.hashes - before

    result = in_thread(build, f"ladder-{rungs}")
    assert isinstance(result, int)
    return result


@pytest.mark.stage(2, "cycles are refused")
def test_the_cycle_search_visits_each_lock_once() -> None:
    small, big = work_to_search_a_ladder(4), work_to_search_a_ladder(12)
    assert big <= 6 * max(small, 1), (
        f"searching a graph 3x as big cost {big} look-ups against {small}: the search walks "
        "every path instead of every lock. Keep a `seen` set: a graph of n locks can have 2**n "
        "paths, and acquire() runs it on every call"
    )


@pytest.mark.stage(4, "threads at once")
def test_two_threads_taking_opposite_orders_at_the_same_moment_one_is_refused() -> None:
    """Check-then-record must be atomic: two threads that both check before either records
    each see no cycle, record A->B and B->A, and then deadlock for real."""
    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        for attempt in range(15):
            checker = LockOrderChecker()
            a, b = checker.lock("A"), checker.lock("B")
            # a wide graph behind A and B makes each search long enough to overlap
            width = [checker.lock(f"{side}{i}") for side in "ab" for i in range(150)]

            def fan_out(a: OrderedLock = a, b: OrderedLock = b, width: list[OrderedLock] = width) -> None:
                for other in width:
                    with a if other.name[0] == "a" else b, other:
                        pass

            in_thread(fan_out, "fan-out")
            both_hold = threading.Barrier(2, timeout=5)

            def take(first: OrderedLock, second: OrderedLock, both_hold: threading.Barrier = both_hold) -> str:
                with first:
                    both_hold.wait()
                    try:
                        got = second.acquire(timeout=2)
                    except LockOrderViolation:
                        return "refused"
                    except RuntimeError as exc:  # the graph changed under a search
                        return f"crashed with {exc!r}"
                    if got:
                        second.release()
                    return "acquired" if got else "timed out"

            one = Background(take, a, b, name="A-then-B")
            two = Background(take, b, a, name="B-then-A")
            outcomes = sorted([one.result(timeout=8), two.result(timeout=8)])
            assert outcomes == ["acquired", "refused"], (
                f"round {attempt}: two threads asked for opposite orders at once and got "
                f"{outcomes}; exactly one must be refused. Search the graph and record the new "
                "edges under ONE hold of the checker's lock, or both checks pass before either "
                "records and the two threads deadlock"
            )
            assert not {("A", "B"), ("B", "A")} <= checker.edges(), checker.edges()
    finally:
        sys.setswitchinterval(old)


@pytest.mark.stage(4, "threads at once")
def test_edges_can_be_read_while_other_threads_record() -> None:
    checker = LockOrderChecker()
    root = checker.lock("root")
    leaves = [checker.lock(f"leaf{i}") for i in range(3000)]
    stop = threading.Event()

    def record() -> None:
        for i, leaf in enumerate(leaves):
            with leaf if i % 2 else root, leaves[i - 1] if i % 2 else leaf:
                pass
        stop.set()

    def read() -> int:
        reads = 0
        while not stop.is_set():
            checker.edges()
            reads += 1
        return reads

    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        writer, reader = Background(record, name="recorder"), Background(read, name="reader")
        writer.result(timeout=20)
        try:
            reader.result(timeout=5)
        except RuntimeError as exc:
            pytest.fail(
                f"edges() failed while another thread recorded orders ({exc}): read the graph "
                "under the same lock that guards every change to it"
            )
    finally:
        sys.setswitchinterval(old)
    assert len(checker.edges()) == 3000


class Worker:
    """One long-lived daemon thread (so its held locks persist) that runs calls one at a time."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.jobs: queue.Queue[Callable[[], None] | None] = queue.Queue()
        self.thread = threading.Thread(target=self._loop, name=name, daemon=True)
        self.thread.start()

    def _loop(self) -> None:
        while (job := self.jobs.get()) is not None:
            job()

    def call(self, fn: Callable[[], object]) -> object:
        done = threading.Event()
        box: list[object] = []
        errors: list[BaseException] = []

        def job() -> None:
            try:
                box.append(fn())
            except BaseException as exc:  # handed back to the test
                errors.append(exc)
            done.set()

        self.jobs.put(job)
        assert done.wait(5), (
            f"a call in thread {self.name} was still blocked after 5 s: acquire(timeout=0) "
            "must not wait (0 is a deadline already passed; only None waits forever), and no "
            "other call here may block"
        )
        if errors:
            raise errors[0]
        return box[0]

    def stop(self) -> None:
        self.jobs.put(None)


THREADS = ("t0", "t1", "t2")
NAMES = ("A", "B", "C", "D")


class CheckerAgainstAModel(RuleBasedStateMachine):
    """Three threads acquire (timeout 0) and release four locks in any order; a brute-force
    model of the contract says what every call must answer."""

    def __init__(self) -> None:
        super().__init__()
        self.checker = LockOrderChecker()
        self.locks = {n: self.checker.lock(n) for n in NAMES}
        self.workers = {t: Worker(t) for t in THREADS}
        self.held: dict[str, list[str]] = {t: [] for t in THREADS}
        self.graph: set[tuple[str, str]] = set()

    def run(self, t: str, fn: Callable[[], object]) -> object:
        return self.workers[t].call(fn)

    def reachable(self, start: str, goal: str) -> bool:
        seen, todo = {start}, [start]
        while todo:
            node = todo.pop()
            if node == goal:
                return True
            for x, y in self.graph:
                if x == node and y not in seen:
                    seen.add(y)
                    todo.append(y)
        return False

    @rule(t=st.sampled_from(THREADS), name=st.sampled_from(NAMES))
    def acquire(self, t: str, name: str) -> None:
        lock = self.locks[name]

        def call() -> object:
            try:
                return lock.acquire(timeout=0)
            except LockOrderViolation as exc:
                return exc

        before = set(self.graph)
        got = self.run(t, call)
        cyclic = [h for h in self.held[t] if self.reachable(name, h)]
        if cyclic:
            assert isinstance(got, LockOrderViolation), (
                f"thread {t} holds {self.held[t]} and asks for {name}, but the orders seen so "
                f"far {sorted(before)} lead from {name} back to {cyclic}: that is a cycle and "
                f"must raise LockOrderViolation; got {got!r}"
            )
            cycle = got.cycle
            assert (
                cycle[0] in cyclic
                and cycle[-1] == cycle[0]
                and cycle[1] == name
                and all(edge in before for edge in itertools.pairwise(cycle[1:]))
            ), (
                f"LockOrderViolation.cycle must be [held, {name}, ..., held] along recorded "
                f"orders {sorted(before)}; got {cycle}"
            )
        else:
            assert not isinstance(got, LockOrderViolation), (
                f"false alarm: thread {t} holds {self.held[t]}, asks for {name}, and no "
                f"recorded order {sorted(before)} leads from {name} back to a held lock; got "
                f"{got}. Only locks the SAME thread holds order the new one"
            )
            self.graph |= {(h, name) for h in self.held[t]}
            free = not any(name in h for h in self.held.values())
            assert got is free, (
                f"acquire(timeout=0) of {name} by {t} returned {got!r}; it is "
                f"{'free' if free else 'held by another thread'}, so True if free, else False "
                "at once (timeout 0 means don't wait)"
            )
            if free:
                self.held[t].append(name)
        assert self.checker.edges() == self.graph, (
            f"edges() is {sorted(self.checker.edges())}, the contract's orders are "
            f"{sorted(self.graph)}: record held -> new for EVERY lock the thread holds, and "
            "nothing when the acquire is refused"
        )
        assert self.run(t, self.checker.held) == self.held[t], (
            f"held() in {t} is {self.run(t, self.checker.held)}, want {self.held[t]} (oldest "
            "first; a refused or timed-out acquire holds nothing)"
        )

    @rule(t=st.sampled_from(THREADS), data=st.data())
    def release(self, t: str, data: st.DataObject) -> None:
        if not self.held[t]:
            return
        name = data.draw(st.sampled_from(self.held[t]))
        self.run(t, self.locks[name].release)
        self.held[t].remove(name)
        for u in THREADS:
            assert self.run(u, self.checker.held) == self.held[u], (
                f"after {t} released {name}, held() in {u} is {self.run(u, self.checker.held)}, "
                f"want {self.held[u]}: forget exactly the released lock, in its own thread"
            )
        assert not self.locks[name].locked()

    def teardown(self) -> None:
        for t in THREADS:
            for name in reversed(self.held[t]):
                self.run(t, self.locks[name].release)
            self.workers[t].stop()


@pytest.mark.stage(4, "threads at once")
def test_every_sequence_of_acquires_and_releases_agrees_with_the_model() -> None:
    run_state_machine_as_test(
        CheckerAgainstAModel,
        settings=settings(
            max_examples=60,
            stateful_step_count=25,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow],
        ),
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


@pytest.mark.stage(5, "dining philosophers")
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


@pytest.mark.stage(5, "dining philosophers")
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


@pytest.mark.stage(5, "dining philosophers")
def test_dine_with_no_meals_returns_without_eating() -> None:
    checker = LockOrderChecker()
    forks = [checker.lock(f"fork{i}") for i in range(3)]
    eaten: list[int] = []
    Background(dine, forks, 0, eaten.append, name="dinner").result(timeout=8)
    assert eaten == [], f"meals=0 means nobody eats; eat() was called for {eaten}"


class Interrupted(BaseException):
    """Like KeyboardInterrupt or SystemExit: not an Exception."""


@pytest.mark.stage(5, "dining philosophers")
def test_dine_re_raises_a_base_exception_too() -> None:
    checker = LockOrderChecker()
    forks = [checker.lock(f"fork{i}") for i in range(3)]

    def eat(i: int) -> None:
        if i == 2:
            raise Interrupted("philosopher 2 interrupted")

    with pytest.raises(Interrupted):
        Background(dine, forks, 2, eat, name="dinner").result(timeout=8)
        pytest.fail(
            "a philosopher raised a BaseException (think KeyboardInterrupt, SystemExit) and "
            "dine() returned as if dinner went well: catch BaseException in the philosopher, "
            "not Exception, and re-raise it from dine()"
        )
    assert not any(f.locked() for f in forks)


@pytest.mark.stage(5, "dining philosophers")
def test_dine_re_raises_the_first_error() -> None:
    """Philosopher 0 fails first; philosopher 2 fails once philosopher 0 has finished."""
    checker = LockOrderChecker()
    forks = [checker.lock(f"fork{i}") for i in range(4)]  # 0 and 2 share no fork
    first_thread: list[threading.Thread] = []

    def eat(i: int) -> None:
        if i == 0:
            first_thread.append(threading.current_thread())
            raise ValueError("first")
        if i == 2:
            wait_until(lambda: bool(first_thread), timeout=5, what="philosopher 0 to fail")
            first_thread[0].join(2)  # its error is on record once its thread has ended
            raise KeyError("second")

    with pytest.raises((ValueError, KeyError)) as info:
        Background(dine, forks, 1, eat, name="dinner").result(timeout=15)
    assert isinstance(info.value, ValueError), (
        f"dine() re-raised {info.value!r}, a later error; it must re-raise the first one a "
        "philosopher hit (errors[0], not the last)"
    )
