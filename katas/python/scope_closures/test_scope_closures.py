"""Tests for the scope drills: closures, nonlocal, late binding, global rebinding, class-body scope."""

from __future__ import annotations

import importlib
import itertools
from types import ModuleType

import pytest

CLASS_BODY_HELP = (
    "a comprehension has its own scope, and a class body is not an enclosing scope for it (nor "
    "for methods): only the outermost iterable is evaluated in the class body. Write "
    "list(itertools.product(range(SIZE), repeat=2)), or feed everything through the outermost "
    "iterable"
)


def kata() -> ModuleType:
    """The module under test, imported here rather than at the top of this file: a NameError in
    its class body then fails each test with an explanation instead of stopping collection."""
    try:
        return importlib.import_module(".scope_closures", __package__)
    except NameError as exc:
        pytest.fail(f"importing scope_closures.py raised NameError ({exc}): {CLASS_BODY_HELP}")


def call(fn, *args):  # type: ignore[no-untyped-def]
    """Call learner code, turning the classic scope errors into an explanation."""
    try:
        return fn(*args)
    except UnboundLocalError as exc:
        pytest.fail(
            f"UnboundLocalError: {exc}. Assigning to a name anywhere in a function makes it local to "
            "that function for the whole body; to rebind a variable of the enclosing function "
            "declare it `nonlocal` (for a module variable: `global`)"
        )


# --- closures -----------------------------------------------------------------------------------


def test_counters_keep_their_own_state_in_a_closure() -> None:
    mod = kata()
    a, b = mod.make_counter(), mod.make_counter(100, -10)
    got = [call(a), call(a), call(b), call(a), call(b)]
    assert got == [0, 1, 100, 2, 90], f"got {got}: each counter counts on its own"
    assert a.__code__.co_freevars, (
        "the counter has no free variables: keep its state in a closure (a variable of "
        "make_counter that the inner function rebinds with nonlocal), not in a global"
    )


def test_the_averager_keeps_a_count_and_a_total() -> None:
    mod = kata()
    avg = mod.make_averager()
    got = [call(avg, x) for x in (10, 11, 12)]
    assert got == [10.0, 10.5, 11.0]
    for x in range(1000):
        call(avg, x)
    assert avg(0) == pytest.approx((10 + 11 + 12 + sum(range(1000))) / 1004)
    held = [c.cell_contents for c in avg.__closure__ or ()]
    assert not any(isinstance(v, (list, tuple, dict, set)) for v in held), (
        f"the closure holds {[type(v).__name__ for v in held]}: it keeps every value it was given "
        "(O(n) memory); keep only a count and a total, rebound with nonlocal"
    )
    other = mod.make_averager()
    assert call(other, 4) == 4.0, "a new averager starts from scratch"


def test_each_multiplier_keeps_its_own_factor() -> None:
    mod = kata()
    got = [f(10) for f in mod.make_multipliers(4)]
    assert got == [0, 10, 20, 30], (
        f"got {got}: late binding. A closure looks its variables up when it is *called*, after "
        "the loop has finished, so `lambda x: i * x` in a loop sees the last i. Bind the value "
        "now: a factory function, functools.partial, or a default argument `i=i`"
    )
    assert mod.make_multipliers(0) == []


# --- global ---------------------------------------------------------------------------------------


def test_record_and_reset_rebind_the_module_globals() -> None:
    mod = kata()
    call(mod.reset)
    assert (mod.EVENTS, mod.COUNT) == ([], 0), (
        f"after reset() the module has EVENTS={mod.EVENTS!r}, COUNT={mod.COUNT!r}: `EVENTS = []` "
        "inside a function creates a local unless the function declares `global EVENTS, COUNT`"
    )
    assert call(mod.record, "boot") == 1
    assert call(mod.record, "login") == 2
    assert mod.EVENTS == ["boot", "login"] and mod.COUNT == 2
    before = mod.EVENTS
    call(mod.reset)
    assert (mod.EVENTS, mod.COUNT) == ([], 0), (
        f"after reset() the module has EVENTS={mod.EVENTS!r}, COUNT={mod.COUNT!r}: rebinding a "
        "module name from a function needs `global`"
    )
    assert before == ["boot", "login"], (
        f"the list a caller took before reset() is now {before!r}: reset() must bind a new list "
        "(global EVENTS; EVENTS = []), not clear the old one in place"
    )
    assert call(mod.record, "again") == 1 and mod.EVENTS == ["again"]
    call(mod.reset)


# --- class-body scope -------------------------------------------------------------------------------


def test_cells_are_computed_in_the_class_body() -> None:
    mod = kata()
    want = list(itertools.product(range(3), repeat=2))
    assert list(mod.Board.CELLS) == want, (
        f"Board.CELLS is {mod.Board.CELLS!r}, expected every (row, col), row by row: {want}. "
        f"Careful: {CLASS_BODY_HELP}"
    )


def test_neighbours_stay_on_the_board() -> None:
    mod = kata()
    board = mod.Board()
    try:
        middle = board.neighbours(1, 1)
    except NameError as exc:
        pytest.fail(
            f"NameError: {exc}. Methods don't see names from the class body: LEGB is local, "
            "enclosing *functions*, global, builtins; the class body is none of them. Use self.SIZE"
        )
    assert middle == [(0, 1), (1, 0), (1, 2), (2, 1)]
    assert board.neighbours(0, 0) == [(0, 1), (1, 0)]
    assert board.neighbours(2, 1) == [(1, 1), (2, 0), (2, 2)]


def test_a_subclass_with_a_bigger_size_gets_bigger_neighbourhoods() -> None:
    mod = kata()

    class Big(mod.Board):  # type: ignore[misc, name-defined]
        SIZE = 5

    try:
        got = Big().neighbours(3, 4)
    except NameError as exc:
        pytest.fail(f"NameError: {exc}. Methods don't see class-body names; use self.SIZE")
    assert got == [(2, 4), (3, 3), (4, 4)], (
        f"Big (SIZE = 5).neighbours(3, 4) gave {got}: a hard-coded Board.SIZE ignores the "
        "subclass; self.SIZE (or type(self).SIZE) finds the subclass's value"
    )
