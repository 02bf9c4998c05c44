"""Scope drills: closures with nonlocal, the late-binding trap, global rebinding, class-body scope."""

from __future__ import annotations

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
    # TODO: a nested function that updates a variable of make_counter's scope.
    raise NotImplementedError("make_counter")


def make_averager() -> Callable[[float], float]:
    """A function that takes a number and returns the mean of all numbers it was given so far
    (true division). Each averager is independent and keeps only a count and a total (O(1)
    memory, never the values), in a closure.

    >>> avg = make_averager()
    >>> avg(10), avg(11), avg(12)
    (10.0, 10.5, 11.0)
    """
    # TODO
    raise NotImplementedError("make_averager")


def make_multipliers(n: int) -> list[Callable[[int], int]]:
    """A list of n functions (n >= 0); the i-th multiplies its argument by i, whenever and in
    whatever order they are called.

    >>> [f(10) for f in make_multipliers(3)]
    [0, 10, 20]
    """
    # TODO: mind when a closure reads the loop variable.
    raise NotImplementedError("make_multipliers")


def record(event: str) -> int:
    """Append `event` to the module's current EVENTS list in place (a caller holding that list
    sees it), add 1 to the module's COUNT, return the new COUNT."""
    # TODO
    raise NotImplementedError("record")


def reset() -> None:
    """Start over: EVENTS becomes a new empty list (callers holding the old one keep it as it
    was) and COUNT becomes 0."""
    # TODO: rebinding a module name from inside a function.
    raise NotImplementedError("reset")


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
    # TODO: every (row, col) for row and col in range(SIZE), built here in the class body.
    CELLS: ClassVar[list[tuple[int, int]]] = []

    def neighbours(self, row: int, col: int) -> list[tuple[int, int]]:
        """The up to 4 orthogonal neighbours of (row, col), a cell on the board, that lie on the
        board, sorted."""
        # TODO: which SIZE does a method see?
        raise NotImplementedError("Board.neighbours")
