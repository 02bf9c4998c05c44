"""Iterator protocol, generators and context managers: iterables vs iterators, lazy chunks, contextlib."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager
from itertools import islice
from types import TracebackType
from typing import Any, Generic, TypeVar

_MISSING = object()  # marks "there was no attribute" (None could be a real value)

T = TypeVar("T")


class _CountdownIterator:
    """One pass over a Countdown: the position lives here, one object per iter() call."""

    def __init__(self, start: int) -> None:
        self._next = start

    def __iter__(self) -> _CountdownIterator:
        return self

    def __next__(self) -> int:
        if self._next <= 0:
            raise StopIteration
        self._next -= 1
        return self._next + 1


class Countdown:
    """An *iterable*: start, start - 1, ..., 1 (nothing if start <= 0). Every iter() starts a
    fresh, independent pass, so it can be looped over twice, nested, or by two loops at once.

    >>> list(Countdown(3)), list(zip(Countdown(2), Countdown(2)))
    ([3, 2, 1], [(2, 2), (1, 1)])
    """

    def __init__(self, start: int) -> None:
        self.start = start

    def __iter__(self) -> Iterator[int]:
        return _CountdownIterator(self.start)  # the iterable hands out iterators


class Fibonacci:
    """An *iterator*: 0, 1, 1, 2, 3, 5, ... (exact ints; the first `limit` numbers, or endless if
    None). One pass only: iter() returns the iterator itself, and once exhausted, next() keeps
    raising StopIteration. Each instance has its own position.

    >>> list(Fibonacci(limit=6))
    [0, 1, 1, 2, 3, 5]
    """

    def __init__(self, limit: int | None = None) -> None:
        self._pair = (0, 1)
        self._left = limit  # numbers still to give; None: endless

    def __iter__(self) -> Fibonacci:
        return self

    def __next__(self) -> int:
        if self._left is not None:
            if self._left <= 0:
                raise StopIteration  # stays at 0: exhaustion is sticky
            self._left -= 1
        a, b = self._pair
        self._pair = (b, a + b)
        return a


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
    items = iter(iterable)
    # iter(callable, sentinel): call until it returns the sentinel, here the empty list.
    return iter(lambda: list(islice(items, size)), [])


class temporary_attr(Generic[T]):  # named like a function: the contract calls it one
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

    def __init__(self, obj: object, name: str, value: Any) -> None:
        self._obj, self._name, self._value = obj, name, value
        self._saved: list[Any] = []  # a stack, so nested use of one manager would unwind too

    def __enter__(self) -> None:
        self._saved.append(getattr(self._obj, self._name, _MISSING))
        setattr(self._obj, self._name, self._value)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        # __exit__ runs for every way out of the block, BaseException included.
        old = self._saved.pop()
        if old is _MISSING:
            delattr(self._obj, self._name)
        else:
            setattr(self._obj, self._name, old)
        # returning None (falsy): the exception, if any, goes on


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
        # isinstance on the exception object instead of issubclass on its type
        swallow = exc is not None and isinstance(exc, self.exceptions)
        if swallow:
            self.exception = exc
        return swallow


class _EnterAll(Generic[T]):
    """enter_all as a class: __enter__ enters one manager at a time and keeps a stack of their
    __exit__ methods; __exit__ unwinds it the way nested with statements would."""

    def __init__(self, factories: Iterable[Callable[[], AbstractContextManager[T]]]) -> None:
        self._factories = factories
        self._exits: list[Callable[..., Any]] = []

    def __enter__(self) -> list[T]:
        values = []
        try:
            for make in self._factories:
                manager = make()
                values.append(manager.__enter__())
                self._exits.append(type(manager).__exit__.__get__(manager))
        except BaseException as exc:
            # The ones entered so far see the error; it goes on even if one swallows it (the
            # with statement cannot skip its body), unless an __exit__ raised a new one.
            self._unwind(exc)
            raise
        return values

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool:
        return self._unwind(exc)

    def _unwind(self, exc: BaseException | None) -> bool:
        """Exit every entered manager, last first, each seeing the exception of the moment.
        True if the original exception was swallowed along the way."""
        original = exc
        while self._exits:
            exit_ = self._exits.pop()
            try:
                details = (type(exc), exc, exc.__traceback__) if exc is not None else (None, None, None)
                if exit_(*details):
                    exc = None  # swallowed: the ones further out see a clean exit
            except BaseException as new:
                if exc is not None and new is not exc and new.__context__ is None:
                    new.__context__ = exc
                exc = new
        if exc is None:
            return original is not None
        if exc is original:
            return False  # let the with statement re-raise the original
        raise exc


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
    return _EnterAll(factories)
