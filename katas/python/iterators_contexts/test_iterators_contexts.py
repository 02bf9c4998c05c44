"""Tests for the iterator protocol, lazy generators and context managers (contextlib)."""

from __future__ import annotations

import itertools
import types
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from .iterators_contexts import Countdown, Fibonacci, Suppress, chunked, enter_all, temporary_attr

PROPERTY = settings(
    max_examples=150, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow]
)
READ_LIMIT = 10_000


def endless(log: list[int]) -> Iterator[int]:
    """0, 1, 2, ... recording what was read; refuses to go past READ_LIMIT (instead of eating RAM)."""
    for i in itertools.count():
        if i >= READ_LIMIT:
            raise AssertionError(
                f"chunked() read {READ_LIMIT} items of an endless iterator to produce two chunks: "
                "it must be lazy (no list(iterable)); read item by item and yield each chunk"
            )
        log.append(i)
        yield i


# --- iterables and iterators ----------------------------------------------------------------------


def test_a_countdown_can_be_looped_over_again_and_in_parallel() -> None:
    c = Countdown(3)
    assert list(c) == [3, 2, 1]
    again = list(c)
    assert again == [3, 2, 1], (
        f"the second loop over the same Countdown gave {again}: an iterable must be re-iterable, "
        "so __iter__ returns a new iterator each time (a generator), not self"
    )
    together = list(zip(c, c))  # noqa: B905 - unequal lengths are the bug being looked for
    assert together == [(3, 3), (2, 2), (1, 1)], (
        f"two loops over one Countdown at once gave {together}: they share one position. A "
        "re-iterable object returns a new iterator from each __iter__ call, not self"
    )
    assert iter(c) is not c, "iter(countdown) returned the countdown itself: not re-iterable"
    assert list(Countdown(0)) == []


def test_fibonacci_is_a_one_pass_iterator() -> None:
    fib = Fibonacci()
    assert iter(fib) is fib, (
        "iter() of an iterator must return the iterator itself (the iterator protocol: "
        "__iter__ returns self, __next__ gives the next item or raises StopIteration)"
    )
    assert [next(fib) for _ in range(10)] == [0, 1, 1, 2, 3, 5, 8, 13, 21, 34]
    assert next(fib) == 55, "a second use continues where the first stopped"


def test_an_exhausted_iterator_stays_exhausted() -> None:
    fib = Fibonacci(limit=4)
    assert list(fib) == [0, 1, 1, 2]
    assert list(fib) == [], "a second loop over an exhausted iterator yields nothing"
    for _ in range(3):
        with pytest.raises(StopIteration):
            next(fib)  # once exhausted, keep raising StopIteration: never restart or resume
    assert list(Fibonacci(limit=0)) == []


# --- lazy generators ----------------------------------------------------------------------------


def test_chunks_are_read_lazily_from_an_endless_iterator() -> None:
    log: list[int] = []
    chunks = chunked(endless(log), 3)
    assert log == [], "nothing may be read before the first next()"
    assert next(chunks) == [0, 1, 2]
    assert next(chunks) == [3, 4, 5]
    assert log == [0, 1, 2, 3, 4, 5], f"read {len(log)} items for two chunks of 3"


def test_a_bad_size_fails_at_the_call_not_at_the_first_next() -> None:
    try:
        gen = chunked([1, 2, 3], 0)
    except ValueError:
        pass
    else:
        with pytest.raises(ValueError):
            next(gen)
        pytest.fail(
            "chunked(..., 0) returned a generator and raised ValueError only at next(): the body "
            "of a generator function runs at the first next(), so validate at call time in a "
            "plain function that then returns the inner generator"
        )


def test_the_last_chunk_may_be_short() -> None:
    got = list(chunked("abcdefg", 3))
    assert got == [["a", "b", "c"], ["d", "e", "f"], ["g"]], (
        f"got {got}: the items left at the end form a last, shorter chunk"
    )
    assert list(chunked([], 2)) == []


@PROPERTY
@given(st.lists(st.integers(), max_size=30), st.integers(1, 7))
def test_chunks_match_slicing(items: list[int], size: int) -> None:
    want = [items[i : i + size] for i in range(0, len(items), size)]
    assert list(chunked(iter(items), size)) == want, f"chunked({items}, {size}): expected {want}"


# --- context managers ----------------------------------------------------------------------------


def test_temporary_attr_restores_the_old_value() -> None:
    ns = types.SimpleNamespace(level="info")
    with temporary_attr(ns, "level", "debug"):
        assert ns.level == "debug"
    assert ns.level == "info"


def test_temporary_attr_restores_even_when_the_block_raises() -> None:
    ns = types.SimpleNamespace(level="info")
    with pytest.raises(ZeroDivisionError), temporary_attr(ns, "level", "debug"):
        1 / 0  # noqa: B018
    assert ns.level == "info", (
        f"after an exception in the block, level is {ns.level!r}: in a @contextmanager generator "
        "the block's exception is raised at the yield, so restore in a try/finally around it"
    )


def test_temporary_attr_removes_an_attribute_that_did_not_exist() -> None:
    ns = types.SimpleNamespace()
    with temporary_attr(ns, "debug", True):
        assert ns.debug is True
    assert not hasattr(ns, "debug"), (
        f"ns.debug is {getattr(ns, 'debug', None)!r} after the block, but it did not exist "
        "before: remember that with a sentinel (None may be a real value) and delattr it"
    )


def test_suppress_swallows_listed_types_and_their_subclasses() -> None:
    with Suppress(KeyError) as s:
        {}["missing"]
    assert isinstance(s.exception, KeyError)
    try:
        with Suppress(OSError) as s:
            open("/nonexistent/kata/file")  # noqa: SIM115  # FileNotFoundError, an OSError subclass
    except FileNotFoundError:
        pytest.fail(
            "FileNotFoundError escaped Suppress(OSError): a subclass of a listed type must be "
            "swallowed too; match with issubclass(exc_type, self.exceptions), not `in`"
        )
    assert isinstance(s.exception, FileNotFoundError)
    with Suppress(KeyError) as s:
        pass
    assert s.exception is None


def test_suppress_lets_everything_else_through() -> None:
    for listed, raised in [((KeyError, IndexError), ValueError("not listed")),
                           ((Exception,), KeyboardInterrupt())]:
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


@contextmanager
def resource(name: str, log: list[str]) -> Iterator[str]:
    """A real context manager that records when it is entered and exited."""
    log.append(f"enter {name}")
    try:
        yield name.upper()
    finally:
        log.append(f"exit {name}")


def test_enter_all_enters_in_order_and_exits_in_reverse() -> None:
    log: list[str] = []
    with enter_all([lambda: resource("db", log), lambda: resource("cache", log)]) as values:
        assert values == ["DB", "CACHE"]
        log.append("body")
    assert log == ["enter db", "enter cache", "body", "exit cache", "exit db"]


def test_enter_all_cleans_up_what_it_entered_when_one_fails() -> None:
    log: list[str] = []

    def broken() -> resource:  # type: ignore[valid-type]
        raise ConnectionError("queue unreachable")

    with pytest.raises(ConnectionError), enter_all(
        [lambda: resource("db", log), lambda: resource("cache", log), broken]
    ):
        log.append("body")
    assert log == ["enter db", "enter cache", "exit cache", "exit db"], (
        f"log {log}: when the third one fails, the two already entered must be exited (in "
        "reverse) before the error goes on; contextlib.ExitStack does this bookkeeping"
    )


def test_enter_all_exits_everything_when_the_body_raises() -> None:
    log: list[str] = []
    with pytest.raises(RuntimeError), enter_all(
        [lambda: resource("a", log), lambda: resource("b", log)]
    ):
        raise RuntimeError("boom")
    assert log == ["enter a", "enter b", "exit b", "exit a"]
