"""A stack-machine interpreter for a subset of CPython bytecode, run on real functions' code objects."""

from __future__ import annotations

import dis
import operator
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

# BINARY_OP's argrepr -> the operation. The in-place forms use the in-place operators: `xs += ys`
# on a list extends that very list, it doesn't build a new one.
BINARY_OPS: dict[str, Callable[[Any, Any], Any]] = {
    "+": operator.add,
    "-": operator.sub,
    "*": operator.mul,
    "/": operator.truediv,
    "//": operator.floordiv,
    "%": operator.mod,
    "**": operator.pow,
    "<<": operator.lshift,
    ">>": operator.rshift,
    "&": operator.and_,
    "|": operator.or_,
    "^": operator.xor,
    "@": operator.matmul,
    "+=": operator.iadd,
    "-=": operator.isub,
    "*=": operator.imul,
    "/=": operator.itruediv,
    "//=": operator.ifloordiv,
    "%=": operator.imod,
    "**=": operator.ipow,
    "<<=": operator.ilshift,
    ">>=": operator.irshift,
    "&=": operator.iand,
    "|=": operator.ior,
    "^=": operator.ixor,
    "@=": operator.imatmul,
}
COMPARE_OPS: dict[str, Callable[[Any, Any], Any]] = {
    "<": operator.lt,
    "<=": operator.le,
    "==": operator.eq,
    "!=": operator.ne,
    ">": operator.gt,
    ">=": operator.ge,
}


_UNSET = object()  # an unassigned local (None is a value); CPython uses a NULL pointer

# The condition each conditional jump tests, by the suffix of its name (3.11 and 3.12 spellings).
_CONDITIONS: dict[str, Callable[[Any], bool]] = {
    "TRUE": bool,
    "FALSE": lambda v: not v,
    "NONE": lambda v: v is None,
    "NOT_NONE": lambda v: v is not None,
}
_JUMPS = {"JUMP_FORWARD", "JUMP_BACKWARD", "JUMP_BACKWARD_NO_INTERRUPT"}


class UnsupportedInstruction(Exception):
    """The function uses an instruction outside the subset; the message names it."""


@dataclass(frozen=True)
class Step:
    """One executed instruction: where it was, what it was, the stack depth right after it."""

    offset: int
    opname: str
    depth: int


def run(func: Callable[..., Any], *args: Any, trace: list[Step] | None = None) -> Any:
    """Execute `func`'s bytecode on a value stack, with `args` (its positional parameters, in
    order) as its first locals, and return what its RETURN_VALUE returns: exactly what
    `func(*args)` returns, the same object and type, or the same kind of exception.

    No calls, globals, attributes or exception handling: any other instruction raises
    UnsupportedInstruction naming it (when reached, or before running: your choice). Errors of
    the operations themselves (ZeroDivisionError, TypeError...) propagate untouched; reading a
    local that was never assigned raises UnboundLocalError (None is a value, not "unassigned").
    BINARY_OP covers all 13 operators, @ included, and their in-place forms; COMPARE_OP pushes
    what the comparison returns, as it is; POP_JUMP_*_IF_NONE tests `is None`.
    If `trace` is a list, append a Step(offset, opname, depth after it) for every instruction
    executed, in order, after what the list already holds. O(1) work per instruction.

    The subset (CPython 3.11 names; 3.12's equivalents in the README):
    RESUME, NOP, LOAD_CONST, LOAD_FAST, LOAD_FAST_CHECK, STORE_FAST, POP_TOP, COPY, SWAP,
    UNARY_NEGATIVE, UNARY_NOT, UNARY_INVERT, BINARY_OP, COMPARE_OP, JUMP_FORWARD, JUMP_BACKWARD,
    JUMP_BACKWARD_NO_INTERRUPT, POP_JUMP_{FORWARD,BACKWARD}_IF_{TRUE,FALSE,NONE,NOT_NONE},
    JUMP_IF_TRUE_OR_POP, JUMP_IF_FALSE_OR_POP, RETURN_VALUE.

    >>> def gcd(a, b):
    ...     while b:
    ...         a, b = b, a % b
    ...     return a
    >>> run(gcd, 84, 36)
    12
    """
    code = func.__code__
    instructions = list(dis.get_instructions(code))  # CACHE entries are left out
    # Jump targets are byte offsets (instr.argval); instructions are spaced unevenly because
    # inline CACHE entries sit between some of them, so map offsets to list positions.
    position = {instr.offset: i for i, instr in enumerate(instructions)}
    # The frame: "fast" locals by index (arguments first), and the value stack.
    fast: list[Any] = [*args, *[_UNSET] * (code.co_nlocals - len(args))]
    stack: list[Any] = []
    pc = 0
    while True:  # fetch, decode, execute: the loop at the heart of ceval.c
        instr = instructions[pc]
        pc += 1  # fall through to the next instruction unless a jump says otherwise
        name = instr.opname
        target: int | None = None
        if name in ("RESUME", "NOP"):
            pass  # RESUME marks where a frame starts or resumes (tracing, interrupts)
        elif name == "LOAD_CONST":
            stack.append(instr.argval)
        elif name in ("LOAD_FAST", "LOAD_FAST_CHECK"):
            value = fast[instr.arg]
            if value is _UNSET:
                raise UnboundLocalError(
                    f"cannot access local variable {instr.argval!r} where it is not associated with a value"
                )
            stack.append(value)
        elif name == "STORE_FAST":
            fast[instr.arg] = stack.pop()
        elif name == "POP_TOP":
            stack.pop()
        elif name == "COPY":  # push a copy of the n-th item from the top (1 = the top)
            stack.append(stack[-instr.arg])
        elif name == "SWAP":  # swap the top with the n-th item from the top
            stack[-1], stack[-instr.arg] = stack[-instr.arg], stack[-1]
        elif name == "UNARY_NEGATIVE":
            stack.append(-stack.pop())
        elif name == "UNARY_NOT":
            stack.append(not stack.pop())
        elif name == "UNARY_INVERT":
            stack.append(~stack.pop())
        elif name == "BINARY_OP":
            right = stack.pop()  # the right operand was pushed last
            left = stack.pop()
            stack.append(BINARY_OPS[instr.argrepr](left, right))
        elif name == "COMPARE_OP":
            right = stack.pop()
            left = stack.pop()
            stack.append(COMPARE_OPS[instr.argval](left, right))
        elif name in _JUMPS:
            target = instr.argval
        elif name.startswith("POP_JUMP_") and "_IF_" in name:
            # Pops the value whether or not it jumps.
            if _CONDITIONS[name.split("_IF_", 1)[1]](stack.pop()):
                target = instr.argval
        elif name in ("JUMP_IF_TRUE_OR_POP", "JUMP_IF_FALSE_OR_POP"):
            # `a or b` / `a and b`: jump keeping the value as the result, or pop it and go on.
            if bool(stack[-1]) == (name == "JUMP_IF_TRUE_OR_POP"):
                target = instr.argval
            else:
                stack.pop()
        elif name in ("RETURN_VALUE", "RETURN_CONST"):
            result = stack.pop() if name == "RETURN_VALUE" else instr.argval
            if trace is not None:
                trace.append(Step(instr.offset, name, len(stack)))
            return result
        else:
            raise UnsupportedInstruction(f"{name} (offset {instr.offset} of {code.co_name}) is outside the subset")
        if target is not None:
            pc = position[target]
        if trace is not None:
            trace.append(Step(instr.offset, name, len(stack)))
