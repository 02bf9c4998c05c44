"""Scope drills: closures with nonlocal, the late-binding trap, global rebinding, class-body scope."""

from __future__ import annotations

import itertools
import sys
from collections.abc import Callable
from typing import ClassVar

# --- module globals for record() and reset() --------------------------------------------------
EVENTS: list[str] = []
COUNT = 0


def make_counter(start: int = 0, step: int = 1) -> Callable[[], int]:
    """A function returning start, start + step, start + 2*step, ... on successive calls.
    Each counter has its own state, kept in a closure (no globals, no class).

    >>> tick = make_counter(10, 5)
    >>> tick(), tick(), tick()
    (10, 15, 20)
    """
    numbers = itertools.count(start, step)  # the state is the iterator the closure holds

    def tick() -> int:
        return next(numbers)

    return tick


def make_averager() -> Callable[[float], float]:
    """A function that takes a number and returns the mean of all numbers it was given so far,
    keeping only a count and a total (O(1) memory), in a closure.

    >>> avg = make_averager()
    >>> avg(10), avg(11), avg(12)
    (10.0, 10.5, 11.0)
    """
    count = 0
    mean = 0.0

    def averager(value: float) -> float:
        # The incremental mean: a count and the mean so far, never the values.
        nonlocal count, mean
        count += 1
        mean += (value - mean) / count
        return mean

    return averager


def make_multipliers(n: int) -> list[Callable[[int], int]]:
    """n functions; the i-th multiplies its argument by i.

    >>> [f(10) for f in make_multipliers(3)]
    [0, 10, 20]
    """
    # A default argument is evaluated when the lambda is made: each keeps that iteration's i.
    return [lambda x, i=i: i * x for i in range(n)]


def record(event: str) -> int:
    """Append `event` to the module's EVENTS list, add 1 to the module's COUNT, return COUNT."""
    module = sys.modules[__name__]  # attribute assignment on the module object rebinds its global
    module.EVENTS.append(event)
    module.COUNT += 1
    return module.COUNT


def reset() -> None:
    """Start over: EVENTS becomes a new empty list (callers holding the old one keep it as it
    was) and COUNT becomes 0."""
    global EVENTS, COUNT
    EVENTS, COUNT = [], 0


class Board:
    """A SIZE x SIZE grid. CELLS lists every (row, col), row by row, computed once in the class
    body from SIZE. A subclass may change SIZE; neighbours() must follow the subclass's SIZE.

    >>> Board.CELLS[:4]
    [(0, 0), (0, 1), (0, 2), (1, 0)]
    >>> Board().neighbours(0, 0)
    [(0, 1), (1, 0)]
    """

    SIZE = 3
    # A plain loop in the class body runs *in* the class body, so it sees SIZE (unlike a nested
    # comprehension); the loop variables are cleaned up so they don't become class attributes.
    CELLS: ClassVar[list[tuple[int, int]]] = []
    for _r in range(SIZE):
        for _c in range(SIZE):
            CELLS.append((_r, _c))
    del _r, _c

    def neighbours(self, row: int, col: int) -> list[tuple[int, int]]:
        """The up to 4 orthogonal neighbours of (row, col) that lie on the board, sorted."""
        last = self.SIZE - 1
        found = []
        if row > 0:
            found.append((row - 1, col))
        if col > 0:
            found.append((row, col - 1))
        if col < last:
            found.append((row, col + 1))
        if row < last:
            found.append((row + 1, col))
        return found  # built in sorted order
