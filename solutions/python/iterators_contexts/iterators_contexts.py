"""Iterator protocol, generators and context managers: iterables vs iterators, lazy chunks, contextlib."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager, ExitStack, contextmanager
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
        # A generator function returns a new generator on every call: each loop gets its own
        # position. Returning self (with a __next__ on the class) would make a one-shot iterator.
        n = self.start
        while n > 0:
            yield n
            n -= 1


class Fibonacci:
    """An *iterator*: 0, 1, 1, 2, 3, 5, ... (exact ints; the first `limit` numbers, or endless if
    None). One pass only: iter() returns the iterator itself, and once exhausted, next() keeps
    raising StopIteration. Each instance has its own position.

    >>> list(Fibonacci(limit=6))
    [0, 1, 1, 2, 3, 5]
    """

    def __init__(self, limit: int | None = None) -> None:
        self.limit = limit
        self._a, self._b = 0, 1
        self._produced = 0

    def __iter__(self) -> Fibonacci:
        # The iterator protocol: an iterator's __iter__ returns itself, so `for` works on it and a
        # second loop continues (here: finds it exhausted) instead of restarting.
        return self

    def __next__(self) -> int:
        # Exhaustion is sticky: the counter stays at the limit, so every later call raises again.
        if self.limit is not None and self._produced >= self.limit:
            raise StopIteration
        value = self._a
        self._a, self._b = self._b, self._a + self._b
        self._produced += 1
        return value


def chunked(iterable: Iterable[T], size: int) -> Iterator[list[T]]:
    """A new list of `size` consecutive items per next(), the last one possibly shorter (never an
    empty one). Lazy: reads exactly the items of the chunks asked for (no read-ahead), so it works
    on endless iterators. A size below 1 is a ValueError raised by the call itself, before
    anything is read.

    >>> list(chunked("abcdefg", 3))
    [['a', 'b', 'c'], ['d', 'e', 'f'], ['g']]
    """
    # The body of a generator function runs only at the first next(), so a check inside it would
    # raise late, far from the bad call. Validate here, then hand back an inner generator.
    if size < 1:
        raise ValueError(f"chunk size must be at least 1, got {size}")

    def chunks() -> Iterator[list[T]]:
        chunk: list[T] = []
        for item in iterable:  # one item at a time: never list(iterable), it may be endless
            chunk.append(item)
            if len(chunk) == size:
                yield chunk
                chunk = []
        if chunk:
            yield chunk  # the short last chunk

    return chunks()


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
        old = getattr(obj, name, _MISSING)
        setattr(obj, name, value)
        try:
            yield  # an exception in the with block is raised right here, at the yield...
        finally:  # ...so without try/finally the restore would be skipped
            if old is _MISSING:
                delattr(obj, name)
            else:
                setattr(obj, name, old)

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
        # True swallows the exception, False lets it propagate. issubclass, not `in`: suppressing
        # OSError must also cover FileNotFoundError. Nothing listed, nothing swallowed (not even
        # KeyboardInterrupt, which a blanket `return True` would eat).
        if exc_type is not None and issubclass(exc_type, self.exceptions):
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
    def entered() -> Iterator[list[T]]:
        # ExitStack remembers every context manager entered so far and exits them in reverse,
        # on success, on an error in the with block, and on an error while entering the next one.
        with ExitStack() as stack:
            try:
                values = [stack.enter_context(make()) for make in factories]
            except BaseException as exc:
                # A with statement cannot skip its body: even if a manager entered so far
                # swallows this error, it must go on (else @contextmanager says "generator
                # didn't yield"). Unwind now, each seeing the error, then re-raise it.
                stack.__exit__(type(exc), exc, exc.__traceback__)
                raise
            yield values

    return entered()
