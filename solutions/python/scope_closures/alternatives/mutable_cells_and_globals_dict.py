"""Scope drills: closures with nonlocal, the late-binding trap, global rebinding, class-body scope."""

from __future__ import annotations

import functools
import operator
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
    # The Python 2 idiom, before nonlocal: the closure holds a one-element list, and the inner
    # function mutates it (no rebinding, so no declaration needed).
    box = [start]

    def tick() -> int:
        value = box[0]
        box[0] = value + step
        return value

    return tick


def make_averager() -> Callable[[float], float]:
    """A function that takes a number and returns the mean of all numbers it was given so far,
    keeping only a count and a total (O(1) memory), in a closure.

    >>> avg = make_averager()
    >>> avg(10), avg(11), avg(12)
    (10.0, 10.5, 11.0)
    """
    state = {"count": 0, "total": 0.0}  # two entries, whatever the number of calls

    def averager(value: float) -> float:
        state["count"] += 1
        state["total"] += value
        return state["total"] / state["count"]

    return averager


def make_multipliers(n: int) -> list[Callable[[int], int]]:
    """n functions; the i-th multiplies its argument by i.

    >>> [f(10) for f in make_multipliers(3)]
    [0, 10, 20]
    """
    # partial stores the value of i now, in the partial object: no closure, no late binding.
    return [functools.partial(operator.mul, i) for i in range(n)]


def record(event: str) -> int:
    """Append `event` to the module's EVENTS list, add 1 to the module's COUNT, return COUNT."""
    namespace = globals()  # the module's own dict: writing to it rebinds the module names
    namespace["EVENTS"].append(event)
    namespace["COUNT"] += 1
    return namespace["COUNT"]


def reset() -> None:
    """Start over: EVENTS becomes a new empty list (callers holding the old one keep it as it
    was) and COUNT becomes 0."""
    globals().update(EVENTS=[], COUNT=0)


class Board:
    """A SIZE x SIZE grid. CELLS lists every (row, col), row by row, computed once in the class
    body from SIZE. A subclass may change SIZE; neighbours() must follow the subclass's SIZE.

    >>> Board.CELLS[:4]
    [(0, 0), (0, 1), (0, 2), (1, 0)]
    >>> Board().neighbours(0, 0)
    [(0, 1), (1, 0)]
    """

    SIZE = 3
    # Only the outermost iterable, [SIZE], is evaluated in the class body; the rest of the
    # comprehension reads its own variable n.
    CELLS: ClassVar[list[tuple[int, int]]] = [(k // n, k % n) for n in [SIZE] for k in range(n * n)]

    def neighbours(self, row: int, col: int) -> list[tuple[int, int]]:
        """The up to 4 orthogonal neighbours of (row, col) that lie on the board, sorted."""
        on_board = range(type(self).SIZE)
        candidates = {(row - 1, col), (row + 1, col), (row, col - 1), (row, col + 1)}
        return sorted((r, c) for r, c in candidates if r in on_board and c in on_board)
