"""A stack-machine interpreter for a subset of CPython bytecode, run on real functions' code objects."""

from __future__ import annotations

import dis
import operator
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

OPERATOR_NAMES = {
    "+": "add",
    "-": "sub",
    "*": "mul",
    "/": "truediv",
    "//": "floordiv",
    "%": "mod",
    "**": "pow",
    "<<": "lshift",
    ">>": "rshift",
    "&": "and_",
    "|": "or_",
    "^": "xor",
    "@": "matmul",
}
BINARY_OPS: dict[str, Callable[[Any, Any], Any]] = {  # BINARY_OP by symbol; "x=" is operator.ix
    **{k: getattr(operator, v) for k, v in OPERATOR_NAMES.items()},
    **{k + "=": getattr(operator, "i" + v.rstrip("_")) for k, v in OPERATOR_NAMES.items()},
}
COMPARE_OPS = {
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


class _Return(Exception):
    """How the RETURN closure leaves the dispatch loop with the function's result."""

    def __init__(self, value: Any) -> None:
        self.value = value


def run(func: Callable[..., Any], *args: Any, trace: list[Step] | None = None) -> Any:
    """Execute `func`'s bytecode on a value stack, with `args` as its first locals, and return
    what its RETURN_VALUE returns. Threaded code: every instruction is decoded once, before
    anything runs, into a closure that does its work and returns the index of the next one (so
    an instruction outside the subset is refused before the first one runs); the loop only calls
    closures. Locals live in a dict by index, where a missing key is an unassigned local.

    >>> def gcd(a, b):
    ...     while b:
    ...         a, b = b, a % b
    ...     return a
    >>> run(gcd, 84, 36)
    12
    """
    code = func.__code__
    instrs = list(dis.get_instructions(code))
    index = {ins.offset: n for n, ins in enumerate(instrs)}
    stack: list[Any] = []
    fast: dict[int, Any] = dict(enumerate(args))

    def decode(ins: dis.Instruction) -> Callable[[int], int]:  # next index -> the index to run next
        op, arg = ins.opname, ins.arg
        if op in ("RESUME", "NOP"):
            return lambda nxt: nxt
        if op == "LOAD_CONST":
            val = ins.argval
            return lambda nxt: (stack.append(val), nxt)[1]
        if op in ("LOAD_FAST", "LOAD_FAST_CHECK"):

            def load(nxt):
                try:
                    stack.append(fast[arg])
                except KeyError:
                    raise UnboundLocalError(ins.argval) from None
                return nxt

            return load
        if op == "STORE_FAST":
            return lambda nxt: (fast.__setitem__(arg, stack.pop()), nxt)[1]
        if op == "POP_TOP":
            return lambda nxt: (stack.pop(), nxt)[1]
        if op == "COPY":
            return lambda nxt: (stack.append(stack[-arg]), nxt)[1]
        if op == "SWAP":

            def swap(nxt):
                stack[-1], stack[-arg] = stack[-arg], stack[-1]
                return nxt

            return swap
        unary = {"UNARY_NEGATIVE": operator.neg, "UNARY_NOT": operator.not_, "UNARY_INVERT": operator.invert}
        if op in unary:
            f = unary[op]
            return lambda nxt: (stack.append(f(stack.pop())), nxt)[1]
        if op in ("BINARY_OP", "COMPARE_OP"):
            f = (BINARY_OPS if op == "BINARY_OP" else COMPARE_OPS)[ins.argrepr]

            def binop(nxt):
                right = stack.pop()
                stack.append(f(stack.pop(), right))
                return nxt

            return binop
        if op in ("JUMP_FORWARD", "JUMP_BACKWARD", "JUMP_BACKWARD_NO_INTERRUPT"):
            target = index[ins.argval]
            return lambda nxt: target
        if op.startswith("POP_JUMP_"):
            target = index[ins.argval]
            cond = op.rsplit("_IF_", 1)[1]
            test = {
                "TRUE": bool,
                "FALSE": operator.not_,
                "NONE": lambda v: v is None,
                "NOT_NONE": lambda v: v is not None,
            }[cond]
            return lambda nxt: target if test(stack.pop()) else nxt
        if op in ("JUMP_IF_TRUE_OR_POP", "JUMP_IF_FALSE_OR_POP"):
            target, want = index[ins.argval], op == "JUMP_IF_TRUE_OR_POP"

            def or_pop(nxt):
                if bool(stack[-1]) == want:
                    return target
                stack.pop()
                return nxt

            return or_pop
        if op in ("RETURN_VALUE", "RETURN_CONST"):

            def ret(nxt):
                value = stack.pop() if op == "RETURN_VALUE" else ins.argval
                if trace is not None:
                    trace.append(Step(ins.offset, op, len(stack)))
                raise _Return(value)

            return ret
        raise UnsupportedInstruction(f"cannot run {op}")

    program = [decode(ins) for ins in instrs]
    pc = 0
    try:
        while True:
            here = pc
            pc = program[here](here + 1)
            if trace is not None:
                trace.append(Step(instrs[here].offset, instrs[here].opname, len(stack)))
    except _Return as done:
        return done.value
