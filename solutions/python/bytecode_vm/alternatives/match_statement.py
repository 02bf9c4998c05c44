"""A stack-machine interpreter for a subset of CPython bytecode, run on real functions' code objects."""

from __future__ import annotations

import dis
import operator
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

COMPARE_OPS: dict[str, Callable[[Any, Any], Any]] = {
    "<": operator.lt,
    "<=": operator.le,
    "==": operator.eq,
    "!=": operator.ne,
    ">": operator.gt,
    ">=": operator.ge,
}


class UnsupportedInstruction(Exception):
    """The function uses an instruction outside the subset; the message names it."""


@dataclass(frozen=True)
class Step:
    """One executed instruction: where it was, what it was, the stack depth right after it."""

    offset: int
    opname: str
    depth: int


class _Unbound:
    """The value of a local nothing has assigned yet (None is a value)."""


UNBOUND = _Unbound()


def binary(symbol: str, left: Any, right: Any) -> Any:
    """BINARY_OP by its symbol; `x op= y` mutates x in place where x supports it."""
    if symbol.endswith("=") and len(symbol) > 1:
        match symbol[:-1]:
            case "+":
                return operator.iadd(left, right)
            case "-":
                return operator.isub(left, right)
            case "*":
                return operator.imul(left, right)
            case "/":
                return operator.itruediv(left, right)
            case "//":
                return operator.ifloordiv(left, right)
            case "%":
                return operator.imod(left, right)
            case "**":
                return operator.ipow(left, right)
            case "<<":
                return operator.ilshift(left, right)
            case ">>":
                return operator.irshift(left, right)
            case "&":
                return operator.iand(left, right)
            case "|":
                return operator.ior(left, right)
            case "^":
                return operator.ixor(left, right)
            case "@":
                return operator.imatmul(left, right)
    match symbol:
        case "+":
            return left + right
        case "-":
            return left - right
        case "*":
            return left * right
        case "/":
            return left / right
        case "//":
            return left // right
        case "%":
            return left % right
        case "**":
            return left**right
        case "<<":
            return left << right
        case ">>":
            return left >> right
        case "&":
            return left & right
        case "|":
            return left | right
        case "^":
            return left ^ right
        case "@":
            return left @ right
    raise UnsupportedInstruction(f"BINARY_OP {symbol}")


def run(func: Callable[..., Any], *args: Any, trace: list[Step] | None = None) -> Any:
    """Execute `func`'s bytecode on a value stack, with `args` as its first locals, and return
    what its RETURN_VALUE returns. No calls, globals, attributes or exceptions handling: any
    other instruction raises UnsupportedInstruction. Errors of the operations themselves
    (ZeroDivisionError, reading an unassigned local: UnboundLocalError) propagate like in Python.
    If `trace` is given, append a Step for every instruction executed.

    >>> def gcd(a, b):
    ...     while b:
    ...         a, b = b, a % b
    ...     return a
    >>> run(gcd, 84, 36)
    12
    """
    code = func.__code__
    program = list(dis.get_instructions(code))
    index_of = {instr.offset: index for index, instr in enumerate(program)}
    local = [UNBOUND] * code.co_nlocals
    local[: len(args)] = args
    stack: list[Any] = []
    pc = 0
    while True:
        instr = program[pc]
        pc += 1
        jump = False
        match instr.opname:
            case "RESUME" | "NOP":
                pass
            case "LOAD_CONST":
                stack.append(instr.argval)
            case "LOAD_FAST" | "LOAD_FAST_CHECK":
                if local[instr.arg] is UNBOUND:
                    raise UnboundLocalError(f"{instr.argval!r} is read before it is assigned")
                stack.append(local[instr.arg])
            case "STORE_FAST":
                local[instr.arg] = stack.pop()
            case "POP_TOP":
                stack.pop()
            case "COPY":
                stack.append(stack[-instr.arg])
            case "SWAP":
                n = instr.arg
                stack[-n], stack[-1] = stack[-1], stack[-n]
            case "UNARY_NEGATIVE":
                stack[-1] = -stack[-1]
            case "UNARY_NOT":
                stack[-1] = not stack[-1]
            case "UNARY_INVERT":
                stack[-1] = ~stack[-1]
            case "BINARY_OP":
                right, left = stack.pop(), stack.pop()
                stack.append(binary(instr.argrepr, left, right))
            case "COMPARE_OP":
                right, left = stack.pop(), stack.pop()
                stack.append(COMPARE_OPS[instr.argval](left, right))
            case "JUMP_FORWARD" | "JUMP_BACKWARD" | "JUMP_BACKWARD_NO_INTERRUPT":
                jump = True
            case name if name.startswith("POP_JUMP_") and name.endswith("_IF_NOT_NONE"):
                jump = stack.pop() is not None
            case name if name.startswith("POP_JUMP_") and name.endswith("_IF_NONE"):
                jump = stack.pop() is None
            case name if name.startswith("POP_JUMP_") and name.endswith("_IF_TRUE"):
                jump = bool(stack.pop())
            case name if name.startswith("POP_JUMP_") and name.endswith("_IF_FALSE"):
                jump = not stack.pop()
            case "JUMP_IF_TRUE_OR_POP" | "JUMP_IF_FALSE_OR_POP" as name:
                jump = bool(stack[-1]) == name.startswith("JUMP_IF_TRUE")
                if not jump:
                    stack.pop()
            case "RETURN_VALUE" | "RETURN_CONST" as name:
                value = stack.pop() if name == "RETURN_VALUE" else instr.argval
                if trace is not None:
                    trace.append(Step(instr.offset, name, len(stack)))
                return value
            case other:
                raise UnsupportedInstruction(f"{other} is outside the subset this VM runs")
        if jump:
            pc = index_of[instr.argval]
        if trace is not None:
            trace.append(Step(instr.offset, instr.opname, len(stack)))
