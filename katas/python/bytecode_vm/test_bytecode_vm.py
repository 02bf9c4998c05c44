"""Tests for the bytecode interpreter: Python's own results as the oracle, dis.stack_effect for the stack."""

from __future__ import annotations

import copy
import dis
import itertools
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from .bytecode_vm import Step, UnsupportedInstruction, run

PROPERTY = settings(
    max_examples=100, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow]
)
ints = st.integers(-50, 50)

# --- the programs: ordinary Python functions; the VM runs their compiled bytecode -----------------
# (no type hints on purpose: annotations would add nothing to the bytecode, but keep them plain)

def gcd(a, b):
    while b:
        a, b = b, a % b
    return a


def collatz_steps(n):
    steps = 0
    while n != 1:
        if n % 2 == 0:
            n //= 2
        else:
            n = 3 * n + 1
        steps += 1
    return steps


def clamp(x, lo, hi):
    if x < lo:
        return lo
    if x > hi:
        return hi
    return x


def between(a, b, c):
    return a < b < c


def and_or(a, b):
    return a and b or -a  # noqa: RUF021 - the precedence is what the VM must get right


def bit_mix(a, b):
    return ((a << 3) ^ (b >> 1)) & ~a | (a % 7)


def power_mod(base, exp, mod):
    result = 1
    base %= mod
    while exp > 0:
        if exp & 1:
            result = result * base % mod
        exp >>= 1
        base = base * base % mod
    return result


def is_leap(year):
    return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)


def first_given(a, b):
    if a is not None:
        return a
    return b


def logical_not(a):
    return not a


def extend_alias(xs, ys):
    zs = xs
    zs += ys  # in place: xs is extended too
    return xs


def maybe_unassigned(flag):
    if flag:
        x = 1
    return x  # UnboundLocalError when flag is false, on purpose


def floor_divide(a, b):
    return a // b


def calls_a_builtin(xs):
    return len(xs)


MAX_STEPS = 100_000  # the longest program here runs about 1 200 instructions


class BoundedTrace(list[Step]):
    """A trace that stops a runaway VM (a wrong jump looping forever) before it eats memory."""

    def append(self, step: Step) -> None:
        if len(self) >= MAX_STEPS:
            raise AssertionError(
                f"more than {MAX_STEPS} instructions executed: an endless loop in the VM? "
                f"The last steps were {self[-4:]}"
            )
        super().append(step)


def check_flow(func: Callable[..., Any], steps: list[Step]) -> None:
    """Each step is an instruction of func, reached by falling through or by its jump."""
    by_offset = {i.offset: i for i in dis.get_instructions(func)}
    listing = list(by_offset)
    assert steps[0].offset == 0, "execution starts at offset 0"
    for step, following in itertools.pairwise(steps):
        instr = by_offset.get(step.offset)
        assert instr is not None and instr.opname == step.opname, (
            f"step {step} is not an instruction of {func.__name__} (see dis.dis)"
        )
        fall_through = listing[listing.index(step.offset) + 1]
        jumps = instr.opcode in dis.hasjrel or instr.opcode in dis.hasjabs
        allowed = {instr.argval, fall_through} if jumps else {fall_through}
        assert following.offset in allowed, (
            f"{func.__name__}: after {instr.opname} at offset {step.offset} the VM went to "
            f"{following.offset}; the bytecode allows {sorted(allowed)}. Jump targets are "
            "offsets (instr.argval), not list indexes, and CACHE entries make the gaps uneven"
        )


def traced(func: Callable[..., Any], *args: Any) -> tuple[Any, list[Step]]:
    steps = BoundedTrace()
    try:
        result = run(func, *args, trace=steps)
    except Exception as exc:
        if steps:
            check_flow(func, steps)  # a wrong jump explains most crashes: say so if it was one
        pytest.fail(
            f"run({func.__name__}, *{args}) raised {exc!r} after {len(steps)} steps (the last: "
            f"{steps[-3:]}); CPython returns {func(*args)!r}. Compare with dis.dis({func.__name__})"
        )
    return result, steps


def check_against_python(func: Callable[..., Any], *args: Any) -> None:
    """The VM must return exactly what CPython returns, same type (bool is not int here)."""
    try:
        want: Any = func(*args)
    except Exception as exc:  # the VM must raise the same kind of error
        with pytest.raises(type(exc)):
            run(func, *args)
        return
    try:
        got = run(func, *args)
    except Exception as exc:
        underflow = (
            " An IndexError from the stack list is a stack underflow: some instruction popped "
            "more than it should (compare with dis.stack_effect)." if isinstance(exc, IndexError)
            else ""
        )
        pytest.fail(f"{func.__name__}{args}: CPython returns {want!r}, your VM raised {exc!r}.{underflow}")
    assert got == want and type(got) is type(want), (
        f"{func.__name__}{args}: CPython returns {want!r}, your VM returned {got!r}. "
        f"Compare with dis.dis({func.__name__}) instruction by instruction"
    )


# --- results -----------------------------------------------------------------------------------


def test_the_docstring_example_runs() -> None:
    got = run(gcd, 84, 36)
    assert got == 12, (
        f"run(gcd, 84, 36) returned {got!r}, CPython says 12. Compare with dis.dis(gcd) "
        "instruction by instruction: BINARY_OP pops the right operand first (it was pushed last)"
    )


@PROPERTY
@given(ints, ints)
def test_loops_and_arithmetic_match_python(a: int, b: int) -> None:
    check_against_python(gcd, a, b)
    check_against_python(bit_mix, a, b)
    check_against_python(power_mod, a, abs(b), 1 + abs(a))
    check_against_python(collatz_steps, 1 + abs(a))


@PROPERTY
@given(ints, ints, ints)
def test_branches_and_comparisons_match_python(a: int, b: int, c: int) -> None:
    check_against_python(clamp, a, b, c)
    check_against_python(between, a, b, c)
    check_against_python(floor_divide, a, b)


@PROPERTY
@given(st.one_of(st.none(), ints, st.booleans()), st.one_of(st.none(), ints, st.booleans()))
def test_short_circuits_match_python(a: Any, b: Any) -> None:
    """`a and b or -a` keeps or drops values on the stack; `is not None` is its own jump."""
    if a is not None:
        check_against_python(and_or, a, b if b is not None else 0)
        check_against_python(logical_not, a)
    check_against_python(first_given, a, b)


def test_short_circuit_keeps_the_value_not_a_bool() -> None:
    got = run(and_or, 0, 5)
    assert got == 0 and type(got) is int, (
        f"and_or(0, 5) is {got!r} in your VM, 0 in CPython: `0 and 5` is 0 itself. "
        "JUMP_IF_FALSE_OR_POP jumps *keeping* the value on the stack, and pops it only when "
        "it does not jump"
    )
    assert run(is_leap, 1900) is False and run(is_leap, 2000) is True and run(is_leap, 2024) is True


def test_augmented_assignment_works_in_place() -> None:
    xs, ys = [1, 2], [3]
    got = run(extend_alias, xs, ys)
    assert got == [1, 2, 3] and xs == [1, 2, 3], (
        f"extend_alias returned {got!r} and left xs as {xs!r}: `zs += ys` on a list extends it in "
        "place (operator.iadd), so xs, the same list, changes too; BINARY_OP '+=' is not '+'"
    )


def test_errors_of_the_program_propagate_like_in_python() -> None:
    with pytest.raises(ZeroDivisionError):
        run(floor_divide, 1, 0)
    assert run(maybe_unassigned, True) == 1
    try:
        got = run(maybe_unassigned, False)
    except UnboundLocalError:
        return
    pytest.fail(
        f"run(maybe_unassigned, False) returned {got!r}; CPython raises UnboundLocalError. A local "
        "that was never assigned is unbound, not None: start the locals with a sentinel object"
    )


def test_instructions_outside_the_subset_are_refused_by_name() -> None:
    with pytest.raises(UnsupportedInstruction, match="LOAD_GLOBAL"):
        run(calls_a_builtin, [1, 2])


# --- the machine itself, checked against dis ------------------------------------------------------

PROGRAMS = [
    (gcd, (1071, 462)), (collatz_steps, (27,)), (clamp, (5, 0, 3)), (between, (1, 2, 0)),
    (and_or, (0, 7)), (power_mod, (7, 13, 11)), (is_leap, (1900,)), (first_given, (None, 2)),
    (bit_mix, (12, -5)), (extend_alias, ([1], [2])),
]


@pytest.mark.parametrize(("func", "args"), PROGRAMS, ids=[f.__name__ for f, _ in PROGRAMS])
def test_the_trace_follows_the_bytecode(func: Callable[..., Any], args: tuple[Any, ...]) -> None:
    _, steps = traced(func, *copy.deepcopy(args))  # extend_alias changes its list
    assert steps, (
        f"run({func.__name__}, ...) recorded no steps: append a Step(offset, opname, depth) "
        "to trace for every instruction executed (and don't just call the function)"
    )
    assert steps[-1].opname.startswith("RETURN"), "the last instruction executed returns"
    check_flow(func, steps)


@pytest.mark.parametrize(("func", "args"), PROGRAMS, ids=[f.__name__ for f, _ in PROGRAMS])
def test_every_instruction_moves_the_stack_as_dis_says(
    func: Callable[..., Any], args: tuple[Any, ...]
) -> None:
    _, steps = traced(func, *copy.deepcopy(args))
    by_offset = {i.offset: i for i in dis.get_instructions(func)}
    depth = 0
    for step, following in zip(steps, [*steps[1:], None], strict=True):
        instr = by_offset[step.offset]
        jumps = instr.opcode in dis.hasjrel or instr.opcode in dis.hasjabs
        taken = None if not jumps else (following is not None and following.offset == instr.argval)
        effect = dis.stack_effect(instr.opcode, instr.arg if instr.opcode >= dis.HAVE_ARGUMENT
                                  else None, jump=taken)
        assert step.depth - depth == effect, (
            f"{func.__name__}: {instr.opname} at offset {step.offset} changed the stack depth by "
            f"{step.depth - depth}, dis.stack_effect says {effect} (jump taken: {taken}). "
            "Check what it pops and pushes"
        )
        depth = step.depth
    peak = max(s.depth for s in steps)
    assert peak <= func.__code__.co_stacksize, (
        f"the stack reached {peak}, deeper than the compiler's co_stacksize "
        f"{func.__code__.co_stacksize}"
    )
