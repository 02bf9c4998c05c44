"""Iterator protocol, generators and context managers: iterables vs iterators, lazy chunks, contextlib."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager, ExitStack, contextmanager
from itertools import count, islice
from types import TracebackType
from typing import Any, TypeVar

_MISSING = object()  # marks "there was no attribute" (None could be a real value)

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
        return iter(range(self.start, 0, -1))  # a new range iterator per call


class Fibonacci:
    """An *iterator*: 0, 1, 1, 2, 3, 5, ... (exact ints; the first `limit` numbers, or endless if
    None). One pass only: iter() returns the iterator itself, and once exhausted, next() keeps
    raising StopIteration. Each instance has its own position.

    >>> list(Fibonacci(limit=6))
    [0, 1, 1, 2, 3, 5]
    """

    def __init__(self, limit: int | None = None) -> None:
        # One generator per instance holds the position; a finished generator stays finished,
        # so exhaustion is sticky for free.
        self._numbers = islice(self._all(), limit)

    @staticmethod
    def _all() -> Iterator[int]:
        a, b = 0, 1
        for _ in count():
            yield a
            a, b = b, a + b

    def __iter__(self) -> Fibonacci:
        return self

    def __next__(self) -> int:
        return next(self._numbers)


def chunked(iterable: Iterable[T], size: int) -> Iterator[list[T]]:
    """A new list of `size` consecutive items per next(), the last one possibly shorter (never an
    empty one). Lazy: reads exactly the items of the chunks asked for (no read-ahead), so it works
    on endless iterators. A size below 1 is a ValueError raised by the call itself, before
    anything is read.

    >>> list(chunked("abcdefg", 3))
    [['a', 'b', 'c'], ['d', 'e', 'f'], ['g']]
    """
    if size < 1:
        raise ValueError(f"chunk size must be at least 1, got {size}")
    return _chunks(iter(iterable), size)


def _chunks(items: Iterator[T], size: int) -> Iterator[list[T]]:
    while chunk := list(islice(items, size)):
        yield chunk


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

    @contextmanager
    def swapped() -> Iterator[None]:
        # The undo is registered on an ExitStack before the change, and runs on any way out.
        with ExitStack() as undo:
            if name in vars(obj) or hasattr(obj, name):
                undo.callback(setattr, obj, name, getattr(obj, name))
            else:
                undo.callback(delattr, obj, name)
            setattr(obj, name, value)
            yield

    return swapped()


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
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool:
        if exc_type is None:
            return False
        # Walk the exception's MRO: is any listed type among its bases?
        if any(listed in exc_type.__mro__ for listed in self.exceptions):
            self.exception = exc
            return True
        return False


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

    @contextmanager
    def nested(
        remaining: Iterator[Callable[[], AbstractContextManager[T]]], values: list[T], errors: list[BaseException]
    ) -> Iterator[list[T]]:
        # One level of nesting per manager: `with make() as value:` around the rest, written out
        # by hand for the rest (PEP 343's expansion) so a setup error can be told from the body's.
        make = next(remaining, None)
        if make is None:
            yield values
            return
        body_ran = False
        with make() as value:
            rest = nested(remaining, [*values, value], errors)
            try:
                everything = rest.__enter__()
            except BaseException as exc:
                errors.append(exc)  # a later manager failed to be made or entered
                raise
            body_ran = True
            try:
                yield everything
            except BaseException as exc:
                if not rest.__exit__(type(exc), exc, exc.__traceback__):
                    raise
            else:
                rest.__exit__(None, None, None)
            return
        # Here this manager swallowed an exception. The body's: fine, the with statement goes on.
        # A setup error: the caller's with statement cannot skip its body, so the error goes on.
        if not body_ran:
            raise errors[0]  # the first one: the setup error itself

    return nested(iter(factories), [], [])
