"""Iterator protocol, generators and context managers: iterables vs iterators, lazy chunks, contextlib."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager
from types import TracebackType
from typing import Any, TypeVar

T = TypeVar("T")


class Countdown:
    """An *iterable*: start, start - 1, ..., 1 (nothing if start <= 0). Every iter() starts a
    fresh, independent pass, so it can be looped over twice, nested, or by two loops at once.

    >>> list(Countdown(3)), list(zip(Countdown(2), Countdown(2)))
    ([3, 2, 1], [(2, 2), (1, 1)])
    """

    def __init__(self, start: int) -> None:
        self.start = start

    def __iter__(self) -> Iterator[int]:
        # TODO: a new iterator each time (a generator function is the shortest way).
        raise NotImplementedError("Countdown.__iter__")


class Fibonacci:
    """An *iterator*: 0, 1, 1, 2, 3, 5, ... (exact ints; the first `limit` numbers, or endless if
    None). One pass only: iter() returns the iterator itself, and once exhausted, next() keeps
    raising StopIteration. Each instance has its own position.

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
    """A new list of `size` consecutive items per next(), the last one possibly shorter (never an
    empty one). Lazy: reads exactly the items of the chunks asked for (no read-ahead), so it works
    on endless iterators. A size below 1 is a ValueError raised by the call itself, before
    anything is read.

    >>> list(chunked("abcdefg", 3))
    [['a', 'b', 'c'], ['d', 'e', 'f'], ['g']]
    """
    # TODO: mind when the body of a generator function starts running.
    raise NotImplementedError("chunked")


def temporary_attr(obj: object, name: str, value: Any) -> AbstractContextManager[None]:
    """A context manager: obj.<name> is `value` inside the with block (nothing happens at the
    call; the old value is the one when the block begins); afterwards the old value is back, or
    the attribute is gone if it did not exist (None is a value). Also when the block raises,
    KeyboardInterrupt and a closed generator's GeneratorExit included (the exception goes on).

    >>> import types; ns = types.SimpleNamespace(level="info")
    >>> with temporary_attr(ns, "level", "debug"): ns.level
    'debug'
    >>> ns.level
    'info'
    """
    # TODO: contextlib.contextmanager makes this a generator with one yield.
    raise NotImplementedError("temporary_attr")


class Suppress:
    """Like contextlib.suppress: swallows exceptions of the given types (subclasses included,
    BaseException ones too; nothing for Suppress()) and keeps the swallowed one in `.exception`
    (None while nothing was swallowed); anything else goes on. `with Suppress(...) as s` gives
    the Suppress itself.

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
    """A context manager that calls each factory in order and enters what it made (make 1,
    enter 1, make 2, ...), and gives the list of what each __enter__ returned; on exit they are
    exited in reverse order, each seeing the exception of the moment, as contextlib.ExitStack
    does. If making or entering one fails, those already entered are exited and that error goes
    on, even if one of them swallows it (a with statement cannot skip its body).

    >>> from contextlib import nullcontext
    >>> with enter_all([lambda: nullcontext(1), lambda: nullcontext(2)]) as values: values
    [1, 2]
    """
    # TODO: contextlib.ExitStack does the bookkeeping.
    raise NotImplementedError("enter_all")
