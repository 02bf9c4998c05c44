"""Tests for the iterator protocol, lazy generators and context managers.

Oracles: CPython itself, the same job done with the builtin or stdlib construct: range for the
countdown, a plain generator and itertools.islice for Fibonacci (a Hypothesis state machine),
slicing for chunked, contextlib.suppress for Suppress and contextlib.ExitStack for enter_all,
with Hypothesis choosing which manager fails where, which one suppresses, and what the body raises.
"""

from __future__ import annotations

import itertools
import types
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager, suppress
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, rule, run_state_machine_as_test

from .iterators_contexts import Countdown, Fibonacci, Suppress, chunked, enter_all, temporary_attr

PROPERTY = settings(max_examples=100, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
READ_LIMIT = 10_000


def outcome(action: Callable[[], object]) -> tuple[str, object]:
    """What `action()` did: ("returned", value) or ("raised", the exception's type)."""
    try:
        return ("returned", action())
    except BaseException as exc:  # KeyboardInterrupt and StopIteration are data here
        return ("raised", type(exc))


# --- Countdown: an iterable ------------------------------------------------------------------


@pytest.mark.stage(1, "iterables and iterators")
def test_a_countdown_can_be_looped_over_again_and_in_parallel() -> None:
    c = Countdown(3)
    first = list(c)
    assert first == [3, 2, 1], f"list(Countdown(3)) is {first}: start, start - 1, ..., 1"
    again = list(c)
    assert again == [3, 2, 1], (
        f"the second loop over the same Countdown gave {again}: an iterable must be re-iterable, "
        "so __iter__ returns a new iterator each time (a generator), not self, and keeps its "
        "position in that iterator, not in self"
    )
    together = list(zip(c, c))  # noqa: B905 - unequal lengths are the bug being looked for
    assert together == [(3, 3), (2, 2), (1, 1)], (
        f"two loops over one Countdown at once gave {together}: they share one position. A "
        "re-iterable object returns a new iterator from each __iter__ call, not self, and the "
        "position lives in that iterator, not on self"
    )
    assert iter(c) is not c, "iter(countdown) returned the countdown itself: not re-iterable"


@pytest.mark.stage(1, "iterables and iterators")
@PROPERTY
@given(start=st.integers(-3, 40), stop_after=st.integers(0, 5))
def test_countdowns_agree_with_range(start: int, stop_after: int) -> None:
    c = Countdown(start)
    want = list(range(start, 0, -1))
    partial = iter(c)
    taken = list(itertools.islice(partial, stop_after))  # a pass left half-way
    assert taken == want[:stop_after], f"the first {stop_after} of Countdown({start}): {taken}"
    for attempt in ("a new loop after a half-finished one", "one more loop"):
        got = list(c)
        assert got == want, (
            f"{attempt} over Countdown({start}) gave {got}, want {want} (0 and below: nothing). "
            "Each iter() is a fresh pass: a new iterator, its position its own"
        )
    nested = [(a, b) for a in c for b in c]
    assert nested == list(itertools.product(want, want)), (
        f"a loop nested in a loop over the same Countdown({start}) gave {nested}: the inner loop "
        "shares the outer one's position; __iter__ must return a new iterator each time"
    )
    assert list(partial) == want[stop_after:], (
        "the half-finished pass must resume where it stopped, untouched by the passes since"
    )


# --- Fibonacci: an iterator ------------------------------------------------------------------


def fibonacci_numbers() -> Iterator[int]:
    a, b = 0, 1
    while True:
        yield a
        a, b = b, a + b


@pytest.mark.stage(1, "iterables and iterators")
def test_fibonacci_is_a_one_pass_iterator() -> None:
    fib = Fibonacci()
    assert iter(fib) is fib, (
        "iter() of an iterator must return the iterator itself (the iterator protocol: "
        "__iter__ returns self, __next__ gives the next item or raises StopIteration)"
    )
    first = [next(fib) for _ in range(10)]
    assert first == [0, 1, 1, 2, 3, 5, 8, 13, 21, 34], f"Fibonacci() starts {first}"
    assert next(fib) == 55, "a second use continues where the first stopped"
    for value in fib:  # a for loop over an iterator continues it too
        assert value == 89, f"a for loop after 11 next() calls started at {value}, not 89"
        break
    big = next(itertools.islice(Fibonacci(), 200, None))
    assert big == next(itertools.islice(fibonacci_numbers(), 200, None)), (
        "the 200th Fibonacci number is wrong: ints are exact, keep them ints (no floats, no formula)"
    )


@pytest.mark.stage(1, "iterables and iterators")
def test_an_exhausted_iterator_stays_exhausted() -> None:
    fib = Fibonacci(limit=4)
    got = list(fib)
    assert got == [0, 1, 1, 2], f"list(Fibonacci(limit=4)) is {got}: the first 4 numbers"
    again = list(fib)
    assert again == [], (
        f"a second loop over an exhausted iterator gave {again}: it yields nothing (one pass; "
        "never restart or reset at StopIteration)"
    )
    for _ in range(3):
        with pytest.raises(StopIteration):
            next(fib)  # once exhausted, keep raising StopIteration: never restart or resume
    for limit, want in ((0, []), (1, [0]), (2, [0, 1])):
        got = list(Fibonacci(limit=limit))
        assert got == want, f"Fibonacci(limit={limit}) gave {got}: exactly the first {limit}"


class FibonacciAgainstAGenerator(RuleBasedStateMachine):
    """Two Fibonacci iterators driven at random, each next to islice(plain generator, limit),
    which is an iterator with exactly the promised behaviour (sticky StopIteration included)."""

    @initialize(limits=st.lists(st.none() | st.integers(0, 12), min_size=2, max_size=2))
    def make(self, limits: list[int | None]) -> None:
        self.limits = limits
        self.fibs = [Fibonacci(limit) for limit in limits]
        self.models = [itertools.islice(fibonacci_numbers(), limit) for limit in limits]
        self.calls: list[str] = []

    def compare(self, which: int, what: str, got: object, want: object) -> None:
        self.calls.append(f"{what} on #{which}")
        assert got == want, (
            f"Fibonacci(limit={self.limits[which]}) after {self.calls}: {what} gave {got}, "
            f"a generator gives {want}. An iterator has one position (its own, not shared with "
            "other instances); at the limit it raises StopIteration, and keeps raising it"
        )

    @rule(which=st.integers(0, 1))
    def call_next(self, which: int) -> None:
        self.compare(
            which, "next()", outcome(lambda: next(self.fibs[which])), outcome(lambda: next(self.models[which]))
        )

    @rule(which=st.integers(0, 1), k=st.integers(0, 6))
    def take_with_a_loop(self, which: int, k: int) -> None:
        got = list(itertools.islice(self.fibs[which], k))
        want = list(itertools.islice(self.models[which], k))
        self.compare(which, f"a loop taking {k}", got, want)

    @rule(which=st.integers(0, 1))
    def iter_is_self(self, which: int) -> None:
        self.compare(which, "iter(f) is f", iter(self.fibs[which]) is self.fibs[which], True)

    @rule(which=st.integers(0, 1))
    def drain(self, which: int) -> None:
        if self.limits[which] is not None:
            self.compare(which, "list()", list(self.fibs[which]), list(self.models[which]))


@pytest.mark.stage(1, "iterables and iterators")
def test_fibonacci_agrees_with_a_generator() -> None:
    run_state_machine_as_test(
        FibonacciAgainstAGenerator, settings=settings(PROPERTY, max_examples=80, stateful_step_count=20)
    )


# --- chunked: a lazy generator ---------------------------------------------------------------


def endless(log: list[int]) -> Iterator[int]:
    """0, 1, 2, ... recording what was read; refuses to go past READ_LIMIT (instead of eating RAM)."""
    for i in itertools.count():
        if i >= READ_LIMIT:
            raise AssertionError(
                f"chunked() read {READ_LIMIT} items of an endless iterator: it must be lazy (no "
                "list(iterable)); read item by item and yield each chunk"
            )
        log.append(i)
        yield i


@pytest.mark.stage(2, "lazy chunks")
@pytest.mark.parametrize("size", [1, 3])
def test_chunks_are_read_lazily_from_an_endless_iterator(size: int) -> None:
    log: list[int] = []
    chunks = chunked(endless(log), size)
    assert log == [], "nothing may be read before the first next(): the work is in the generator"
    for k in range(1, 5):
        got = next(chunks)
        want = list(range((k - 1) * size, k * size))
        assert got == want, f"chunk {k} of size {size} is {got}, want {want}"
        assert len(log) == k * size, (
            f"after {k} chunks of {size} chunked() had read {len(log)} items, want {k * size}: "
            "lazy means it reads only as far as the chunks asked for (no list(iterable), no "
            "read-ahead)"
        )


@pytest.mark.stage(2, "lazy chunks")
def test_the_rest_of_the_source_is_left_for_the_caller() -> None:
    source = iter(range(10))
    chunks = chunked(source, 4)
    assert next(chunks) == [0, 1, 2, 3]
    rest = list(source)
    assert rest == [4, 5, 6, 7, 8, 9], (
        f"after one chunk of 4 the source still holds {rest}: chunked must read only the items "
        "of the chunks asked for, leaving the rest to whoever else reads the iterator"
    )


@pytest.mark.stage(2, "lazy chunks")
@pytest.mark.parametrize("size", [0, -1, -10])
def test_a_bad_size_fails_at_the_call_not_at_the_first_next(size: int) -> None:
    log: list[int] = []
    try:
        gen = chunked(endless(log), size)
    except ValueError:
        assert log == [], "a bad size must be refused before anything is read"
        return
    except Exception as exc:  # any other exception is the wrong answer
        pytest.fail(f"chunked(..., {size}) raised {exc!r}: a size below 1 is a ValueError")
    with suppress(Exception):
        next(gen)
    pytest.fail(
        f"chunked(..., {size}) returned without raising ValueError: the body of a generator "
        "function runs at the first next(), so validate at call time in a plain function that "
        "then returns the inner generator"
    )


@pytest.mark.stage(2, "lazy chunks")
def test_the_last_chunk_may_be_short() -> None:
    got = list(chunked("abcdefg", 3))
    assert got == [["a", "b", "c"], ["d", "e", "f"], ["g"]], (
        f"got {got}: the items left at the end form a last, shorter chunk"
    )
    assert list(chunked([], 2)) == [], "nothing in, no chunks out (not one empty chunk)"
    assert list(chunked("abc", 3)) == [["a", "b", "c"]], "exactly one full chunk: no empty chunk after it"
    assert list(chunked("ab", 5)) == [["a", "b"]], "fewer items than size: one short chunk"
    got = list(chunked([None, 0, None, "", False], 2))
    assert got == [[None, 0], [None, ""], [False]], (
        f"chunked([None, 0, None, '', False], 2) gave {got}: None and other falsy items are items "
        "too; padding the last chunk with None (zip_longest) and filtering it out loses them, "
        "count the items instead"
    )


@pytest.mark.stage(2, "lazy chunks")
@PROPERTY
@given(
    items=st.lists(st.none() | st.booleans() | st.integers() | st.just(""), max_size=30),
    size=st.integers(1, 8),
    kind=st.sampled_from(["list", "iterator", "generator", "tuple"]),
)
def test_chunks_match_slicing(items: list[object], size: int, kind: str) -> None:
    source: Any = {
        "list": lambda: items,
        "iterator": lambda: iter(items),
        "generator": lambda: (x for x in items),
        "tuple": lambda: tuple(items),
    }[kind]()
    want = [items[i : i + size] for i in range(0, len(items), size)]
    got = list(chunked(source, size))  # every chunk kept: the earlier ones must not change
    assert got == want, (
        f"chunked({kind} of {items}, {size}) gave {got}, slicing gives {want}: each chunk is a "
        "new list (yield it, then start a fresh one; clearing a yielded list empties the "
        "caller's copy too), and None or falsy items are items, not padding"
    )
    assert all(type(chunk) is list for chunk in got), (
        f"chunks are {[type(c).__name__ for c in got]}: each chunk is a list"
    )


# --- temporary_attr --------------------------------------------------------------------------


class Settings:
    """A plain class with a class-level default, instances with their own attributes."""

    level = "info"


@pytest.mark.stage(3, "temporary attributes")
def test_temporary_attr_restores_the_old_value() -> None:
    ns = types.SimpleNamespace(level="info")
    manager = temporary_attr(ns, "level", "debug")
    assert ns.level == "info", "temporary_attr(...) set the attribute before the with block began"
    with manager:
        assert ns.level == "debug", f"inside the block level is {ns.level!r}, want 'debug'"
    assert ns.level == "info", f"after the block level is {ns.level!r}: restore the old value"
    marker = object()
    obj = Settings()
    obj.level = "warn"  # type: ignore[assignment]
    with temporary_attr(obj, "level", marker):
        assert obj.level is marker, "inside the block the attribute is the very object given"
    assert obj.level == "warn", f"after the block obj.level is {obj.level!r}, want 'warn'"


@pytest.mark.stage(3, "temporary attributes")
def test_the_old_value_is_the_one_when_the_block_starts() -> None:
    ns = types.SimpleNamespace(level="info")
    manager = temporary_attr(ns, "level", "debug")
    ns.level = "warn"  # changed between the call and the with
    with manager:
        pass
    assert ns.level == "warn", (
        f"after the block level is {ns.level!r}, but it was 'warn' when the block began: read "
        "the old value on entering (in the generator before yield, or in __enter__), not at the call"
    )


@pytest.mark.stage(3, "temporary attributes")
def test_a_none_value_is_restored_not_deleted() -> None:
    ns = types.SimpleNamespace(proxy=None)
    with temporary_attr(ns, "proxy", "http://proxy:3128"):
        pass
    assert hasattr(ns, "proxy") and ns.proxy is None, (
        f"ns.proxy was None before the block, and after it is {getattr(ns, 'proxy', '<missing>')}: "
        "None is a real value; mark 'did not exist' with a sentinel object, not None"
    )


@pytest.mark.stage(3, "temporary attributes")
def test_temporary_attr_removes_an_attribute_that_did_not_exist() -> None:
    ns = types.SimpleNamespace()
    with temporary_attr(ns, "debug", True):
        assert ns.debug is True
    assert not hasattr(ns, "debug"), (
        f"ns.debug is {getattr(ns, 'debug', None)!r} after the block, but it did not exist "
        "before: remember that with a sentinel (None may be a real value) and delattr it"
    )


@pytest.mark.stage(3, "temporary attributes")
def test_nested_patches_of_one_attribute_unwind_in_order() -> None:
    ns = types.SimpleNamespace(level="info")
    with temporary_attr(ns, "level", "debug"):
        with temporary_attr(ns, "level", "trace"):
            assert ns.level == "trace"
        assert ns.level == "debug", (
            f"after the inner block level is {ns.level!r}: each patch restores what it found, the outer patch's value"
        )
    assert ns.level == "info", f"after both blocks level is {ns.level!r}, want 'info'"


@pytest.mark.stage(3, "temporary attributes")
@pytest.mark.parametrize("error", [ZeroDivisionError("division by zero"), KeyboardInterrupt(), SystemExit(3)], ids=repr)
def test_temporary_attr_restores_even_when_the_block_raises(error: BaseException) -> None:
    for ns in (types.SimpleNamespace(level="info"), types.SimpleNamespace()):
        had = vars(ns).copy()
        try:
            with temporary_attr(ns, "level", "debug"):
                raise error
        except BaseException as exc:  # KeyboardInterrupt is the point
            assert exc is error, f"the block raised {error!r} but {exc!r} came out: let it go on unchanged"
        else:
            pytest.fail(f"the block raised {error!r} and temporary_attr swallowed it: let it go on")
        assert vars(ns) == had, (
            f"after the block raised {error!r} the namespace is {vars(ns)}, was {had}: in a "
            "@contextmanager generator the block's exception is raised at the yield, so restore "
            "in a try/finally around it (finally also runs for KeyboardInterrupt and SystemExit, "
            "which `except Exception` misses)"
        )


@pytest.mark.stage(3, "temporary attributes")
def test_a_generator_closed_early_still_restores() -> None:
    ns = types.SimpleNamespace(level="info")

    def levels() -> Iterator[str]:
        with temporary_attr(ns, "level", "debug"):
            yield ns.level
            yield ns.level

    gen = levels()
    assert next(gen) == "debug"
    gen.close()  # raises GeneratorExit at the yield inside the with block
    assert ns.level == "info", (
        f"after close() of a generator paused inside the block, level is {ns.level!r}: close() "
        "raises GeneratorExit (a BaseException) in the block; only try/finally restores for it"
    )
    gen = levels()
    assert next(gen) == "debug"
    del gen  # garbage: CPython closes it on the spot
    assert ns.level == "info", (
        f"after a generator paused inside the block was dropped, level is {ns.level!r}: a "
        "collected generator is closed with GeneratorExit; restore in finally"
    )


# --- Suppress --------------------------------------------------------------------------------

EXCEPTION_TYPES = [
    BaseException,
    Exception,
    KeyboardInterrupt,
    SystemExit,
    GeneratorExit,
    ArithmeticError,
    ZeroDivisionError,
    LookupError,
    KeyError,
    IndexError,
    OSError,
    FileNotFoundError,
    PermissionError,
    ValueError,
    UnicodeDecodeError,
    RuntimeError,
    NotImplementedError,
]


def raise_one(kind: type[BaseException]) -> BaseException:
    if kind is UnicodeDecodeError:
        return UnicodeDecodeError("utf-8", b"\xff", 0, 1, "invalid start byte")
    return kind("raised in the block")


@pytest.mark.stage(4, "suppressing exceptions")
@PROPERTY
@given(
    listed=st.lists(st.sampled_from(EXCEPTION_TYPES), max_size=3),
    raised=st.none() | st.sampled_from(EXCEPTION_TYPES),
)
def test_suppress_agrees_with_contextlib_suppress(
    listed: list[type[BaseException]], raised: type[BaseException] | None
) -> None:
    def run(manager: Any) -> tuple[BaseException | None, bool]:
        error = None if raised is None else raise_one(raised)
        try:
            with manager:
                if error is not None:
                    raise error
        except BaseException as exc:  # KeyboardInterrupt and friends are data here
            assert error is not None, (
                f"nothing was raised in the block, yet {exc!r} came out of it: on a clean exit "
                "__exit__ gets (None, None, None); check exc_type is None before issubclass"
            )
            assert exc is error, f"{exc!r} came out of the block instead of {error!r}: let it go on unchanged"
            return error, False
        return error, True

    names = ", ".join(t.__name__ for t in listed)
    error, swallowed = run(s := Suppress(*listed))
    _, want = run(suppress(*listed))
    what = "nothing" if raised is None else raised.__name__
    assert swallowed == want, (
        f"Suppress({names}) {'swallowed' if swallowed else 'let through'} {what}, "
        f"contextlib.suppress {'swallows' if want else 'lets it through'}: swallow exactly the "
        "listed types and their subclasses (issubclass), nothing else, not even KeyboardInterrupt"
    )
    expected = error if (swallowed and error is not None) else None
    assert s.exception is expected, (
        f"after {what} in Suppress({names}) .exception is {s.exception!r}, want {expected!r}: it "
        "holds the exception that was swallowed, and stays None when none was (nothing raised, "
        "or one that went on)"
    )


@pytest.mark.stage(4, "suppressing exceptions")
def test_suppress_swallows_listed_types_and_their_subclasses() -> None:
    with Suppress(KeyError) as s:
        {}["missing"]
    assert isinstance(s, Suppress), f"`with Suppress(...) as s` gave {s!r}: __enter__ returns self"
    assert isinstance(s.exception, KeyError), f"s.exception is {s.exception!r}, want the KeyError"
    try:
        with Suppress(OSError) as s:
            open("/nonexistent/kata/file")  # noqa: SIM115  # FileNotFoundError, an OSError subclass
    except FileNotFoundError:
        pytest.fail(
            "FileNotFoundError escaped Suppress(OSError): a subclass of a listed type must be "
            "swallowed too; match with issubclass(exc_type, self.exceptions), not `in`"
        )
    assert isinstance(s.exception, FileNotFoundError), f"s.exception is {s.exception!r}"
    try:
        with Suppress(KeyError) as s:
            pass
    except Exception as exc:
        pytest.fail(
            f"nothing was raised in the block, yet {exc!r} came out of Suppress: on a clean exit "
            "__exit__ gets (None, None, None); check exc_type is None before issubclass"
        )
    assert s.exception is None, f"nothing was raised, yet s.exception is {s.exception!r}"


@pytest.mark.stage(4, "suppressing exceptions")
def test_suppress_lets_everything_else_through() -> None:
    cases = [
        ((KeyError, IndexError), ValueError("not listed")),
        ((Exception,), KeyboardInterrupt()),
        ((Exception,), SystemExit(1)),
        ((), RuntimeError("Suppress() lists nothing")),
    ]
    for listed, raised in cases:
        try:
            with Suppress(*listed):
                raise raised
        except type(raised):
            continue
        pytest.fail(
            f"Suppress{tuple(e.__name__ for e in listed)} swallowed {type(raised).__name__}: "
            "swallow only the listed types (and their subclasses); __exit__ returns False for "
            "anything else"
        )


@pytest.mark.stage(4, "suppressing exceptions")
def test_suppress_inside_a_generator_swallows_what_is_thrown_in() -> None:
    def worker() -> Iterator[str]:
        with Suppress(KeyError):
            yield "waiting"
        yield "after"

    gen = worker()
    assert next(gen) == "waiting"
    try:
        resumed = gen.throw(KeyError("thrown in"))
    except KeyError:
        pytest.fail("a KeyError thrown into a generator paused in Suppress(KeyError) escaped it")
    assert resumed == "after", f"after the swallowed KeyError the generator went on to {resumed!r}"
    gen = worker()
    next(gen)
    gen.close()  # GeneratorExit at the yield: Suppress(KeyError) must let it through
    assert gen.gi_frame is None, "close() of a generator paused in Suppress(KeyError) did not finish it"


# --- enter_all -------------------------------------------------------------------------------


class Probe:
    """A context manager that records what happens to it; it can refuse to enter, and on exit
    it can let the exception go on, swallow it, or raise its own."""

    def __init__(self, name: str, log: list[tuple[Any, ...]], enter_fails: str, on_exit: str) -> None:
        self.name, self.log, self.enter_fails, self.on_exit = name, log, enter_fails, on_exit

    def __enter__(self) -> str | None:
        self.log.append(("enter", self.name))
        if self.enter_fails == "enter":
            raise ConnectionError(f"{self.name} refused")
        if self.enter_fails == "interrupt":
            raise KeyboardInterrupt(f"Ctrl-C while {self.name} connects")
        return None if self.name.endswith("0") else self.name.upper()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: object) -> bool:
        self.log.append(("exit", self.name, exc_type and exc_type.__name__, exc and str(exc)))
        if self.on_exit == "raise":
            raise RuntimeError(f"{self.name} failed to close")
        return self.on_exit == "suppress"


# (where it fails: "make", "enter", "interrupt" (KeyboardInterrupt in __enter__) or "no";
#  on exit: "pass", "suppress", "raise")
Spec = tuple[str, str]


def factories_for(specs: list[Spec], log: list[tuple[Any, ...]]) -> list[Callable[[], Probe]]:
    def factory(i: int, fails: str, on_exit: str) -> Callable[[], Probe]:
        def make() -> Probe:
            log.append(("make", f"r{i}"))
            if fails == "make":
                raise LookupError(f"r{i} not found")
            return Probe(f"r{i}", log, fails, on_exit)

        return make

    return [factory(i, fails, on_exit) for i, (fails, on_exit) in enumerate(specs)]


@contextmanager
def with_exit_stack(factories: list[Callable[[], Probe]]) -> Iterator[list[Any]]:
    """The oracle: contextlib's own bookkeeping, one factory at a time. A with statement cannot
    skip its body, so an error while making or entering goes on even if a manager swallows it."""
    with ExitStack() as stack:
        try:
            values = [stack.enter_context(make()) for make in factories]
        except BaseException as exc:
            stack.__exit__(type(exc), exc, exc.__traceback__)
            raise
        yield values


def run_with(
    enter: Callable[[list[Callable[[], Probe]]], Any], specs: list[Spec], body: type[BaseException] | None
) -> tuple[list[tuple[Any, ...]], tuple[str, str] | None]:
    log: list[tuple[Any, ...]] = []
    try:
        with enter(factories_for(specs, log)) as values:
            log.append(("body", tuple(values)))
            if body is not None:
                raise body("raised in the body")
    except BaseException as exc:  # KeyboardInterrupt is data here
        return log, (type(exc).__name__, str(exc))
    return log, None


SPECS = st.lists(
    st.tuples(
        st.sampled_from(["no", "no", "no", "make", "enter", "interrupt"]),
        st.sampled_from(["pass", "pass", "suppress", "raise"]),
    ),
    max_size=5,
)
BODIES = st.sampled_from([None, None, ValueError, KeyboardInterrupt])


@pytest.mark.stage(5, "entering them all")
@PROPERTY
@given(specs=SPECS, body=BODIES)
def test_enter_all_agrees_with_exit_stack(specs: list[Spec], body: type[BaseException] | None) -> None:
    got_log, got_error = run_with(enter_all, specs, body)
    want_log, want_error = run_with(with_exit_stack, specs, body)
    failing = next((i for i, (fails, _) in enumerate(specs) if fails != "no"), len(specs))
    if any(on_exit == "suppress" for _, on_exit in specs[:failing]):
        # A setup error that an entered manager swallows still goes on; what the managers
        # further out see in between is not part of the contract: compare the events only.
        got_log = [entry[:2] for entry in got_log]
        want_log = [entry[:2] for entry in want_log]
    assert got_log == want_log, (
        f"managers {specs} (fails at / on exit), body raises {body and body.__name__}:\n"
        f"  enter_all: {got_log}\n  ExitStack: {want_log}\n"
        "call each factory just before entering what it made, in order; exit the entered ones in "
        "reverse, each seeing the exception of the moment (the body's, or the one a later exit "
        "raised; none once one swallowed it), also when making or entering one fails"
    )
    assert got_error == want_error, (
        f"managers {specs}, body raises {body and body.__name__}: the with statement ended with "
        f"{got_error}, with an ExitStack it ends with {want_error}: whatever the last exit leaves "
        "goes on (or nothing, if a manager swallowed it); an error while making or entering goes on "
        "even if a manager swallowed it, since the body cannot be skipped"
    )


@contextmanager
def resource(name: str, log: list[str]) -> Iterator[str]:
    """A real @contextmanager resource that records when it is entered and exited."""
    log.append(f"enter {name}")
    try:
        yield name.upper()
    finally:
        log.append(f"exit {name}")


@pytest.mark.stage(5, "entering them all")
def test_enter_all_enters_in_order_and_exits_in_reverse() -> None:
    log: list[str] = []
    with enter_all([lambda: resource("db", log), lambda: resource("cache", log)]) as values:
        assert values == ["DB", "CACHE"], f"the with target is {values}: what each __enter__ returned, in order"
        log.append("body")
    assert log == ["enter db", "enter cache", "body", "exit cache", "exit db"], (
        f"log {log}: enter in order, run the body, exit in reverse (the last entered first)"
    )
    with enter_all([]) as values:
        assert list(values) == [], f"enter_all([]) gave {values}: no managers, no values"


@pytest.mark.stage(5, "entering them all")
def test_enter_all_takes_factories_from_a_generator() -> None:
    log: list[str] = []
    factories = ((lambda name=name: resource(name, log)) for name in ("a", "b", "c"))
    with enter_all(factories) as values:
        assert values == ["A", "B", "C"], f"factories from a generator gave {values}"
    assert log == ["enter a", "enter b", "enter c", "exit c", "exit b", "exit a"], f"log {log}"


@pytest.mark.stage(5, "entering them all")
def test_enter_all_cleans_up_what_it_entered_when_one_fails() -> None:
    log: list[str] = []
    error = ConnectionError("queue unreachable")

    def broken() -> Any:
        raise error

    try:
        with enter_all([lambda: resource("db", log), lambda: resource("cache", log), broken]):
            log.append("body")
    except ConnectionError as exc:
        assert exc is error, f"{exc!r} came out instead of the factory's own error"
    else:
        pytest.fail("the third factory raised ConnectionError and enter_all swallowed it")
    assert log == ["enter db", "enter cache", "exit cache", "exit db"], (
        f"log {log}: when the third one fails, the two already entered must be exited (in "
        "reverse) before the error goes on; contextlib.ExitStack does this bookkeeping"
    )


@pytest.mark.stage(5, "entering them all")
@pytest.mark.parametrize("error", [ConnectionError("refused"), KeyboardInterrupt()], ids=repr)
def test_a_setup_error_goes_on_even_if_an_entered_manager_swallows_it(error: BaseException) -> None:
    log: list[str] = []

    def broken() -> Any:
        raise error

    try:
        with enter_all([lambda: suppress(type(error)), lambda: resource("db", log), broken]):
            log.append("body")
    except BaseException as exc:  # KeyboardInterrupt is the point
        assert exc is error, (
            f"{exc!r} came out instead of {error!r}, which a factory raised while an entered "
            "suppress() would swallow it: a with statement cannot skip its body, so unwind what "
            "was entered and re-raise that error itself (a @contextmanager that never yields "
            "says RuntimeError: generator didn't yield)"
        )
    else:
        pytest.fail(f"a factory raised {error!r} and enter_all's with statement went on as if nothing happened")
    assert log == ["enter db", "exit db"], f"log {log}: the body must not run, and db must be exited"


@pytest.mark.stage(5, "entering them all")
@pytest.mark.parametrize("error", [RuntimeError("boom"), KeyboardInterrupt()], ids=repr)
def test_enter_all_exits_everything_when_the_body_raises(error: BaseException) -> None:
    log: list[str] = []
    try:
        with enter_all([lambda: resource("a", log), lambda: resource("b", log)]):
            raise error
    except BaseException as exc:  # KeyboardInterrupt is the point
        assert exc is error, f"the body raised {error!r} but {exc!r} came out: let it go on unchanged"
    else:
        pytest.fail(f"the body raised {error!r} and enter_all swallowed it")
    assert log == ["enter a", "enter b", "exit b", "exit a"], (
        f"log {log} after the body raised {error!r}: every entered manager is exited, in reverse, "
        "for any exception (a finally, or ExitStack; not `except Exception`)"
    )


@pytest.mark.stage(5, "entering them all")
def test_a_generator_closed_inside_enter_all_exits_everything() -> None:
    log: list[str] = []

    def worker() -> Iterator[list[str]]:
        with enter_all([lambda: resource("a", log), lambda: resource("b", log)]) as values:
            yield values
            yield values

    gen = worker()
    assert next(gen) == ["A", "B"]
    gen.close()
    assert log == ["enter a", "enter b", "exit b", "exit a"], (
        f"log {log} after close() of a generator paused inside enter_all: close() raises "
        "GeneratorExit in the body, and every entered manager must still be exited, in reverse"
    )
