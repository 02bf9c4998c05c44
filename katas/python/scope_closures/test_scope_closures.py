"""Tests for the scope drills: closures, nonlocal, late binding, global rebinding, class-body scope.

Oracles: itertools.count for the counters, math.fsum over the prefix for the averager,
operator.mul for the multipliers, itertools.product for CELLS, a brute-force walk of the grid
for neighbours, and a plain list and int as the model of record()/reset(); Hypothesis varies
the inputs. Memory is observed with tracemalloc (bytes kept per call), never timed.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import itertools
import math
import re
import sys
import textwrap
import tracemalloc
import types
from collections.abc import Callable
from types import ModuleType
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

PROPERTY = settings(max_examples=60, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])

CLASS_BODY_HELP = (
    "a comprehension has its own scope, and a class body is not an enclosing scope for it (nor "
    "for methods): only the outermost iterable is evaluated in the class body. Write "
    "list(itertools.product(range(SIZE), repeat=2)), or feed everything through the outermost "
    "iterable"
)
UNBOUND_HELP = (
    "Assigning to a name anywhere in a function makes it local to that function for the whole "
    "body; to rebind a variable of the enclosing function declare it `nonlocal` (for a module "
    "variable: `global`)"
)


def kata() -> ModuleType:
    """The module under test, imported here rather than at the top of this file: a NameError in
    its class body then fails each test with an explanation instead of stopping collection."""
    try:
        return importlib.import_module(".scope_closures", __package__)
    except NameError as exc:
        pytest.fail(f"importing scope_closures.py raised NameError ({exc}): {CLASS_BODY_HELP}")


def fresh_kata(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    """A second, brand-new copy of the module under test (same file, new namespace), to see the
    state a module starts with on import."""
    path = kata().__file__
    assert path is not None
    spec = importlib.util.spec_from_file_location("scope_closures_fresh_copy", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    # registered as an import does (so the module can find itself), until the test ends
    monkeypatch.setitem(sys.modules, spec.name, module)
    try:
        spec.loader.exec_module(module)
    except NameError as exc:
        pytest.fail(f"importing scope_closures.py raised NameError ({exc}): {CLASS_BODY_HELP}")
    return module


def call(fn: Callable[..., Any], *args: Any) -> Any:
    """Call learner code, turning the classic scope errors into an explanation."""
    try:
        return fn(*args)
    except UnboundLocalError as exc:
        pytest.fail(f"UnboundLocalError: {exc}. {UNBOUND_HELP}")
    except NameError as exc:
        pytest.fail(
            f"NameError: {exc}. LEGB is local, enclosing *functions*, global, builtins: a class "
            "body is none of them, so methods and comprehensions can't see its names"
        )


def retained_bytes(action: Callable[[], object]) -> int:
    """Bytes still allocated after `action()` returns (tracemalloc): what it kept, not what it
    used on the way."""
    tracemalloc.start()
    try:
        before, _ = tracemalloc.get_traced_memory()
        action()
        after, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return after - before


# --- make_counter ---------------------------------------------------------------------------


@pytest.mark.stage(1, "closures keep state")
def test_a_counter_starts_at_start_and_adds_step_each_call() -> None:
    mod = kata()
    tick = mod.make_counter(10, 5)
    got = [call(tick) for _ in range(3)]
    assert got == [10, 15, 20], (
        f"make_counter(10, 5) gave {got}: the first call returns start itself, and each call "
        "after adds step; read the current value, then rebind it (nonlocal)"
    )
    twin = mod.make_counter(10, 5)
    got = [call(twin), call(tick), call(twin)]
    assert got == [10, 25, 15], (
        f"a second make_counter(10, 5), interleaved with the first, gave {got} (want [10, 25, 15]): "
        "every call of make_counter makes a new counter with its own state, even for the same "
        "arguments (no shared variable, no cached factory)"
    )
    plain = mod.make_counter()
    got = [call(plain) for _ in range(3)]
    assert got == [0, 1, 2], f"make_counter() gave {got}: the defaults are start=0, step=1"
    by_keyword = mod.make_counter(step=-2, start=1)
    got = [call(by_keyword) for _ in range(3)]
    assert got == [1, -1, -3], f"make_counter(step=-2, start=1) gave {got}"
    still = mod.make_counter(7, 0)
    got = [call(still) for _ in range(3)]
    assert got == [7, 7, 7], f"make_counter(7, 0) gave {got}: step 0 returns start every time"


@pytest.mark.stage(1, "closures keep state")
@PROPERTY
@given(
    specs=st.lists(st.tuples(st.integers(-1000, 1000), st.integers(-50, 50)), min_size=1, max_size=4),
    calls=st.lists(st.integers(0, 3), max_size=40),
)
def test_interleaved_counters_agree_with_itertools_count(specs: list[tuple[int, int]], calls: list[int]) -> None:
    mod = kata()
    counters = [mod.make_counter(start, step) for start, step in specs]
    oracles = [itertools.count(start, step) for start, step in specs]
    for which in calls:
        which %= len(specs)
        got, want = call(counters[which]), next(oracles[which])
        assert got == want, (
            f"counters made with {specs}, calls {calls}: counter {which} returned {got}, "
            f"itertools.count gives {want}. Each counter has its own state: a variable of its own "
            "make_counter call, not a global or a variable shared by every counter"
        )


@pytest.mark.stage(1, "closures keep state")
def test_a_counter_keeps_its_state_in_its_closure() -> None:
    mod = kata()
    tick = mod.make_counter(3, 4)
    assert isinstance(tick, types.FunctionType), (
        f"make_counter returned a {type(tick).__name__}: the task is a closure, a function "
        "defined inside make_counter (no class, no global)"
    )
    assert tick.__closure__, (
        "the counter has no closure cells: keep its state in a variable of make_counter that "
        "the inner function rebinds with nonlocal, not in a global"
    )
    attributes = dict(vars(tick))
    defaults = (tick.__defaults__, tick.__kwdefaults__)
    for _ in range(3):
        call(tick)
    assert vars(tick) == attributes, (
        f"calling the counter changed its attributes to {vars(tick)}: the state belongs in the "
        "closure (a variable of make_counter, rebound with nonlocal), not on the function object"
    )
    assert (tick.__defaults__, tick.__kwdefaults__) == defaults, (
        "calling the counter changed its default arguments: a mutable default is one object "
        "made once at def time; keep the state in the closure instead"
    )


# --- make_averager --------------------------------------------------------------------------


@pytest.mark.stage(1, "closures keep state")
def test_the_averager_returns_the_running_mean() -> None:
    mod = kata()
    avg = mod.make_averager()
    got = [call(avg, x) for x in (10, 11, 12)]
    assert got == [10.0, 10.5, 11.0], (
        f"avg(10), avg(11), avg(12) gave {got}: each call returns total / count of every value so far (true division)"
    )
    other = mod.make_averager()
    assert call(other, 4) == 4.0, (
        "a second averager must start from scratch: its count and total are variables of its "
        "own make_averager call, not globals"
    )
    assert call(avg, 13) == 11.5, "making a second averager changed the first one"


@pytest.mark.stage(1, "closures keep state")
@PROPERTY
@given(
    streams=st.lists(
        st.lists(
            st.one_of(st.integers(-(10**6), 10**6), st.floats(-1e6, 1e6, allow_nan=False)),
            min_size=1,
            max_size=20,
        ),
        min_size=1,
        max_size=3,
    )
)
def test_averagers_agree_with_the_mean_of_the_prefix(streams: list[list[float]]) -> None:
    mod = kata()
    averagers = [mod.make_averager() for _ in streams]
    seen: list[list[float]] = [[] for _ in streams]
    # round-robin: each averager sees its own stream, interleaved with the others
    for step in range(max(len(s) for s in streams)):
        for which, stream in enumerate(streams):
            if step < len(stream):
                seen[which].append(stream[step])
                got = call(averagers[which], stream[step])
                want = math.fsum(seen[which]) / len(seen[which])
                assert got == pytest.approx(want, rel=1e-9, abs=1e-6), (
                    f"averager {which} after {seen[which]} returned {got}, the mean is {want}: "
                    "each averager keeps its own count and total, updated on every call"
                )


@pytest.mark.stage(1, "closures keep state")
def test_the_averager_keeps_o1_memory() -> None:
    mod = kata()
    avg = mod.make_averager()
    call(avg, 0.5)

    def feed(count: int) -> Callable[[], None]:
        return lambda: [avg(k + 0.25) for k in range(count)] and None

    n = 1000
    small, big = retained_bytes(feed(n)), retained_bytes(feed(8 * n))
    assert big < 8 * n, (
        f"after {n} more calls the averager kept {small} more bytes, after {8 * n} calls {big}: "
        "it keeps every value it was given (O(n) memory, in a list, a default argument or an "
        "attribute); keep only a count and a total, rebound with nonlocal"
    )


# --- make_multipliers -----------------------------------------------------------------------


@pytest.mark.stage(2, "late binding")
def test_each_multiplier_keeps_its_own_factor() -> None:
    mod = kata()
    made = mod.make_multipliers(4)
    functions = list(made)  # every function exists before any is called
    got = [f(10) for f in functions]
    assert got == [0, 10, 20, 30], (
        f"got {got}: late binding. A closure looks its variables up when it is *called*, after "
        "the loop has finished, so `lambda x: i * x` in a loop sees the last i. Bind the value "
        "now: a factory function, functools.partial, or a default argument `i=i`"
    )
    assert isinstance(made, list), (
        f"make_multipliers returned a {type(made).__name__}, not a list: a lazy generator only "
        "hides late binding (each lambda is called before the loop moves on); build all n now"
    )


@pytest.mark.stage(2, "late binding")
@PROPERTY
@given(n=st.integers(0, 12), x=st.integers(-(10**9), 10**9))
def test_multipliers_agree_with_operator_mul(n: int, x: int) -> None:
    mod = kata()
    functions = mod.make_multipliers(n)
    assert len(functions) == n, f"make_multipliers({n}) made {len(functions)} functions"
    got = [f(x) for f in reversed(functions)][::-1]
    want = [i * x for i in range(n)]
    assert got == want, (
        f"make_multipliers({n}), each called with {x}: got {got}, want {want}. The i-th function "
        "multiplies by its own i, bound when it was made (late binding reads the last i)"
    )


@pytest.mark.stage(2, "late binding")
def test_zero_and_one_multiplier() -> None:
    mod = kata()
    assert list(mod.make_multipliers(0)) == [], "make_multipliers(0) makes no functions"
    (only,) = mod.make_multipliers(1)
    assert only(123) == 0, "make_multipliers(1) makes one function, the 0-th: x * 0"


# --- global ---------------------------------------------------------------------------------


@pytest.mark.stage(3, "module globals")
def test_a_fresh_module_starts_empty_and_counts_from_one(monkeypatch: pytest.MonkeyPatch) -> None:
    mod = fresh_kata(monkeypatch)
    assert (mod.EVENTS, mod.COUNT) == ([], 0), (
        f"on import the module has EVENTS={mod.EVENTS!r}, COUNT={mod.COUNT!r}: both start empty"
    )
    assert call(mod.record, "first") == 1, (
        "the first record() after import returns 1: COUNT starts at 0 and record adds 1 and returns the new value"
    )
    assert (mod.EVENTS, mod.COUNT) == (["first"], 1)


@pytest.mark.stage(3, "module globals")
def test_record_and_reset_rebind_the_module_globals() -> None:
    mod = kata()
    call(mod.reset)
    assert (mod.EVENTS, mod.COUNT) == ([], 0), (
        f"after reset() the module has EVENTS={mod.EVENTS!r}, COUNT={mod.COUNT!r}: `EVENTS = []` "
        "inside a function creates a local unless the function declares `global EVENTS, COUNT`"
    )
    assert call(mod.record, "boot") == 1
    assert call(mod.record, "login") == 2
    assert (mod.EVENTS, mod.COUNT) == (["boot", "login"], 2), (
        f"after reset(), record('boot'), record('login') the module has EVENTS={mod.EVENTS!r}, "
        f"COUNT={mod.COUNT!r}: record appends to the list the module's EVENTS names at call time "
        "(a default argument `events=EVENTS` keeps the first list) and adds 1 to COUNT (global)"
    )
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
    assert mod.EVENTS is not before, "reset() must bind a new list, not clear the old one in place"
    assert call(mod.record, "again") == 1 and mod.EVENTS == ["again"], (
        f"after reset(), record('again') left EVENTS={mod.EVENTS!r}: record must append to the "
        "list EVENTS names *now*: look the global up at call time (a default argument "
        "`events=EVENTS` keeps the first list)"
    )
    assert before == ["boot", "login"], (
        f"record() after reset() appended to the old list, now {before!r}: it must use the "
        "module's current EVENTS (a default argument `events=EVENTS` keeps the first list)"
    )
    call(mod.reset)


@pytest.mark.stage(3, "module globals")
def test_record_appends_to_the_list_callers_hold() -> None:
    mod = kata()
    call(mod.reset)
    held = mod.EVENTS
    call(mod.record, "")
    call(mod.record, "héllo ✓")
    assert held == ["", "héllo ✓"], (
        f"a caller holding EVENTS (taken after reset) sees {held!r}, the module has "
        f"{mod.EVENTS!r}: record() mutates the list in place (EVENTS.append, no global needed); "
        "`EVENTS = EVENTS + [event]` makes a new list each time and strands every caller; a "
        "default argument `events=EVENTS` keeps the first list"
    )
    call(mod.reset)


@pytest.mark.stage(3, "module globals")
@PROPERTY
@given(ops=st.lists(st.one_of(st.none(), st.text(max_size=3)), max_size=25))
def test_record_and_reset_agree_with_a_list_and_an_int(ops: list[str | None]) -> None:
    mod = kata()
    call(mod.reset)
    events: list[str] = []
    for op in ops:
        if op is None:
            call(mod.reset)
            events = []
        else:
            events.append(op)
            returned = call(mod.record, op)
            assert returned == len(events), f"record({op!r}) returned {returned} after {ops}: it returns the new COUNT"
        assert (events, len(events)) == (mod.EVENTS, mod.COUNT), (
            f"after {ops} (None = reset) the module has EVENTS={mod.EVENTS!r}, "
            f"COUNT={mod.COUNT!r}; want {events!r} and {len(events)}: record appends and adds 1, "
            "reset rebinds both (global)"
        )
    call(mod.reset)


# --- class-body scope -----------------------------------------------------------------------


@pytest.mark.stage(4, "class-body scope")
def test_cells_are_computed_in_the_class_body() -> None:
    mod = kata()
    want = list(itertools.product(range(3), repeat=2))
    assert list(mod.Board.CELLS) == want, (
        f"Board.CELLS is {mod.Board.CELLS!r}, expected every (row, col), row by row: {want}. Careful: {CLASS_BODY_HELP}"
    )


@pytest.mark.stage(4, "class-body scope")
def test_cells_follow_size_in_the_class_body() -> None:
    """The class statement run again with SIZE = 4 in place of 3: CELLS must come from SIZE."""
    mod = kata()
    source = textwrap.dedent(inspect.getsource(mod.Board))
    changed, found = re.subn(r"^(\s*SIZE\b[^=\n]*=\s*)3\b", r"\g<1>4", source, count=1, flags=re.M)
    assert found, "Board's body must keep the line `SIZE = 3` (the tests rebuild it with SIZE = 4)"
    namespace = dict(vars(mod))
    try:
        exec(compile(changed, "<Board with SIZE = 4>", "exec"), namespace)
    except NameError as exc:
        pytest.fail(f"the class body raised NameError ({exc}): {CLASS_BODY_HELP}")
    got = list(namespace["Board"].CELLS)
    want = list(itertools.product(range(4), repeat=2))
    assert got == want, (
        f"with SIZE = 4 the class body made CELLS = {got}: compute CELLS from SIZE (a "
        "hard-coded range(3) or literal list ignores it)"
    )


@pytest.mark.stage(4, "class-body scope")
def test_a_subclass_inherits_cells_computed_once() -> None:
    mod = kata()

    class Big(mod.Board):  # type: ignore[misc, name-defined]
        SIZE = 5

    assert list(Big.CELLS) == list(itertools.product(range(3), repeat=2)), (
        f"Big (SIZE = 5).CELLS is {list(Big.CELLS)}: CELLS is a list computed once, in Board's "
        "body, so a subclass that changes SIZE inherits Board's 9 cells"
    )


def oracle_neighbours(size: int, row: int, col: int) -> list[tuple[int, int]]:
    """Every cell of the grid at distance exactly 1 (brute force over the whole board)."""
    return sorted((r, c) for r in range(size) for c in range(size) if abs(r - row) + abs(c - col) == 1)


@pytest.mark.stage(4, "class-body scope")
def test_neighbours_stay_on_the_board() -> None:
    mod = kata()
    board = mod.Board()
    middle = call(board.neighbours, 1, 1)
    assert middle == [(0, 1), (1, 0), (1, 2), (2, 1)], f"neighbours(1, 1) is {middle}"
    for row, col in itertools.product(range(3), repeat=2):
        got = call(board.neighbours, row, col)
        want = oracle_neighbours(3, row, col)
        assert got == want, (
            f"Board().neighbours({row}, {col}) is {got}, want {want}: the up to 4 orthogonal "
            "cells with 0 <= row, col < SIZE, sorted"
        )


@pytest.mark.stage(4, "class-body scope")
@PROPERTY
@given(size=st.integers(1, 9), data=st.data())
def test_a_subclass_size_sets_the_neighbourhoods(size: int, data: st.DataObject) -> None:
    mod = kata()
    sub = type(f"Board{size}", (mod.Board,), {"SIZE": size})
    row = data.draw(st.integers(0, size - 1), label="row")
    col = data.draw(st.integers(0, size - 1), label="col")
    got = call(sub().neighbours, row, col)
    want = oracle_neighbours(size, row, col)
    assert got == want, (
        f"a subclass with SIZE = {size}: neighbours({row}, {col}) is {got}, want {want}. Methods "
        "see the class body only through self: self.SIZE finds the subclass's value (a "
        "hard-coded Board.SIZE, or a filter by the inherited CELLS, does not)"
    )


@pytest.mark.stage(4, "class-body scope")
def test_a_subclass_with_a_bigger_size_gets_bigger_neighbourhoods() -> None:
    mod = kata()

    class Big(mod.Board):  # type: ignore[misc, name-defined]
        SIZE = 5

    got = call(Big().neighbours, 3, 4)
    assert got == [(2, 4), (3, 3), (4, 4)], (
        f"Big (SIZE = 5).neighbours(3, 4) gave {got}: a hard-coded Board.SIZE ignores the "
        "subclass; self.SIZE (or type(self).SIZE) finds the subclass's value"
    )
    tiny = type("Tiny", (mod.Board,), {"SIZE": 1})
    assert call(tiny().neighbours, 0, 0) == [], "on a 1 x 1 board the only cell has no neighbours"
