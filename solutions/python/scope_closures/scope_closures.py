"""Scope drills: closures with nonlocal, the late-binding trap, global rebinding, class-body scope."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import ClassVar

# --- module globals for record() and reset() --------------------------------------------------
EVENTS: list[str] = []
COUNT = 0


def make_counter(start: int = 0, step: int = 1) -> Callable[[], int]:
    """A function returning start, start + step, start + 2*step, ... on successive calls
    (step may be 0 or negative). Each counter has its own state, kept in its closure (not a
    global, an attribute of the function, a default argument or a class).

    >>> tick = make_counter(10, 5)
    >>> tick(), tick(), tick()
    (10, 15, 20)
    """
    current = start

    def tick() -> int:
        # Assigning to `current` anywhere in tick would make it local to tick (decided at compile
        # time, for the whole function), and reading it first would be an UnboundLocalError.
        # nonlocal binds it to make_counter's variable, which lives on in a cell after return.
        nonlocal current
        value = current
        current += step
        return value

    return tick


def make_averager() -> Callable[[float], float]:
    """A function that takes a number and returns the mean of all numbers it was given so far
    (true division). Each averager is independent and keeps only a count and a total (O(1)
    memory, never the values), in a closure.

    >>> avg = make_averager()
    >>> avg(10), avg(11), avg(12)
    (10.0, 10.5, 11.0)
    """
    count = 0
    total = 0.0

    def averager(value: float) -> float:
        nonlocal count, total  # both are rebound (ints and floats are immutable)
        count += 1
        total += value
        return total / count

    return averager


def make_multipliers(n: int) -> list[Callable[[int], int]]:
    """A list of n functions (n >= 0); the i-th multiplies its argument by i, whenever and in
    whatever order they are called.

    >>> [f(10) for f in make_multipliers(3)]
    [0, 10, 20]
    """

    # A closure stores the *variable*, not its value: `lambda x: i * x` reads i when called, after
    # the loop ended, so every function would use n - 1. A factory call gives each function its
    # own variable (a default argument `i=i` or functools.partial work too, but show in the
    # signature).
    def times(i: int) -> Callable[[int], int]:
        return lambda x: i * x

    return [times(i) for i in range(n)]


def record(event: str) -> int:
    """Append `event` to the module's current EVENTS list in place (a caller holding that list
    sees it), add 1 to the module's COUNT, return the new COUNT."""
    global COUNT  # rebinding a module name needs `global`; EVENTS.append only mutates, it doesn't
    EVENTS.append(event)
    COUNT += 1
    return COUNT


def reset() -> None:
    """Start over: EVENTS becomes a new empty list (callers holding the old one keep it as it
    was) and COUNT becomes 0."""
    # Without `global`, `EVENTS = []` would create a local that vanishes on return.
    global EVENTS, COUNT
    EVENTS = []
    COUNT = 0


class Board:
    """A SIZE x SIZE grid. CELLS lists every (row, col), row by row, computed once in the class
    body from SIZE (a subclass that changes SIZE inherits the same CELLS). A subclass may change
    SIZE; neighbours() must follow the subclass's SIZE.

    >>> Board.CELLS[:4]
    [(0, 0), (0, 1), (0, 2), (1, 0)]
    >>> Board().neighbours(0, 0)
    [(0, 1), (1, 0)]
    """

    SIZE = 3
    # A comprehension is a function scope of its own, and the class body is not an enclosing scope
    # for it: `[(r, c) for r in range(SIZE) for c in range(SIZE)]` raises NameError for the second
    # SIZE. Only the outermost iterable is evaluated in the class body, so pass everything there.
    CELLS: ClassVar[list[tuple[int, int]]] = list(itertools.product(range(SIZE), repeat=2))

    def neighbours(self, row: int, col: int) -> list[tuple[int, int]]:
        """The up to 4 orthogonal neighbours of (row, col), a cell on the board, that lie on the
        board, sorted."""
        # Methods don't see class-body names either (LEGB has no C): go through the instance,
        # which also finds a subclass's SIZE, unlike a hard-coded Board.SIZE.
        size = self.SIZE
        steps = ((-1, 0), (0, -1), (0, 1), (1, 0))
        return sorted((row + dr, col + dc) for dr, dc in steps if 0 <= row + dr < size and 0 <= col + dc < size)
