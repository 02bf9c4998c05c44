"""Iterator protocol, generators and context managers: iterables vs iterators, lazy chunks, contextlib."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager
from types import TracebackType
from typing import Any, TypeVar

T = TypeVar("T")


class Countdown:
    """An *iterable*: start, start - 1, ..., 1. Every iter() starts a fresh, independent pass, so
    it can be looped over twice, or by two loops at once.

    >>> list(Countdown(3)), list(zip(Countdown(2), Countdown(2)))
    ([3, 2, 1], [(2, 2), (1, 1)])
    """

    def __init__(self, start: int) -> None:
        self.start = start

    def __iter__(self) -> Iterator[int]:
        # TODO: a new iterator each time (a generator function is the shortest way).
        raise NotImplementedError("Countdown.__iter__")


class Fibonacci:
    """An *iterator*: 0, 1, 1, 2, 3, 5, ... (the first `limit` numbers, or endless if None).
    One pass only: iter() returns the iterator itself, and once exhausted, next() keeps raising
    StopIteration.

    >>> list(Fibonacci(limit=6))
    [0, 1, 1, 2, 3, 5]
    """

    def __init__(self, limit: int | None = None) -> None:
        self.limit = limit
        # TODO: the state of the sequence.

    def __iter__(self) -> Fibonacci:
        # TODO
        raise NotImplementedError("Fibonacci.__iter__")

    def __next__(self) -> int:
        # TODO
        raise NotImplementedError("Fibonacci.__next__")


def chunked(iterable: Iterable[T], size: int) -> Iterator[list[T]]:
    """Lists of `size` consecutive items, the last one possibly shorter. Lazy: reads only as far
    as the chunks asked for, so it works on endless iterators. A size below 1 is a ValueError
    raised by the call itself, before any next().

    >>> list(chunked("abcdefg", 3))
    [['a', 'b', 'c'], ['d', 'e', 'f'], ['g']]
    """
    # TODO: mind when the body of a generator function starts running.
    raise NotImplementedError("chunked")


def temporary_attr(obj: object, name: str, value: Any) -> AbstractContextManager[None]:
    """A context manager: obj.<name> is `value` inside the with block; afterwards the old value is
    back, or the attribute is gone if it did not exist. Also when the block raises (the exception
    goes on).

    >>> import types; ns = types.SimpleNamespace(level="info")
    >>> with temporary_attr(ns, "level", "debug"): ns.level
    'debug'
    >>> ns.level
    'info'
    """
    # TODO: contextlib.contextmanager makes this a generator with one yield.
    raise NotImplementedError("temporary_attr")


class Suppress:
    """Like contextlib.suppress: swallows exceptions of the given types (subclasses included) and
    keeps the swallowed one in `.exception` (None if nothing was raised); anything else goes on.

    >>> with Suppress(KeyError) as s: {}["missing"]
    >>> type(s.exception).__name__
    'KeyError'
    """

    def __init__(self, *exceptions: type[BaseException]) -> None:
        self.exceptions = exceptions
        self.exception: BaseException | None = None

    def __enter__(self) -> Suppress:
        # TODO
        raise NotImplementedError("Suppress.__enter__")

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool:
        # TODO: the return value decides whether the exception is swallowed.
        raise NotImplementedError("Suppress.__exit__")


def enter_all(
    factories: Iterable[Callable[[], AbstractContextManager[T]]],
) -> AbstractContextManager[list[T]]:
    """A context manager that enters the context managers made by `factories`, in order, and gives
    the list of what each __enter__ returned; on exit they are exited in reverse order. If making
    or entering one fails, those already entered are exited before the error goes on.

    >>> from contextlib import nullcontext
    >>> with enter_all([lambda: nullcontext(1), lambda: nullcontext(2)]) as values: values
    [1, 2]
    """
    # TODO: contextlib.ExitStack does the bookkeeping.
    raise NotImplementedError("enter_all")
