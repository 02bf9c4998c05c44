"""A stack-machine interpreter for a subset of CPython bytecode, run on real functions' code objects."""

from __future__ import annotations

import dis
import itertools
import operator
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

# BINARY_OP's argrepr -> the operation (the in-place forms use the in-place operators).
BINARY_OPS: dict[str, Callable[[Any, Any], Any]] = {
    symbol: function
    for plain, inplace, symbol in [
        (operator.add, operator.iadd, "+"),
        (operator.sub, operator.isub, "-"),
        (operator.mul, operator.imul, "*"),
        (operator.truediv, operator.itruediv, "/"),
        (operator.floordiv, operator.ifloordiv, "//"),
        (operator.mod, operator.imod, "%"),
        (operator.pow, operator.ipow, "**"),
        (operator.lshift, operator.ilshift, "<<"),
        (operator.rshift, operator.irshift, ">>"),
        (operator.and_, operator.iand, "&"),
        (operator.or_, operator.ior, "|"),
        (operator.xor, operator.ixor, "^"),
        (operator.matmul, operator.imatmul, "@"),
    ]
    for symbol, function in [(symbol, plain), (symbol + "=", inplace)]
}
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


@dataclass
class Frame:
    """Locals by name (a missing key is an unbound local), the value stack, the next offset."""

    names: dict[str, Any]
    stack: list[Any] = field(default_factory=list)
    next_offset: int | None = 0
    returned: bool = False
    result: Any = None


Handler = Callable[[Frame, dis.Instruction], None]
HANDLERS: dict[str, Handler] = {}


def handles(*opnames: str) -> Callable[[Handler], Handler]:
    def register(handler: Handler) -> Handler:
        for opname in opnames:
            HANDLERS[opname] = handler
        return handler

    return register


@handles("RESUME", "NOP")
def _nothing(frame: Frame, instr: dis.Instruction) -> None:
    return None


@handles("LOAD_CONST")
def _load_const(frame: Frame, instr: dis.Instruction) -> None:
    frame.stack.append(instr.argval)


@handles("LOAD_FAST", "LOAD_FAST_CHECK")
def _load_fast(frame: Frame, instr: dis.Instruction) -> None:
    if instr.argval not in frame.names:
        raise UnboundLocalError(f"local variable {instr.argval!r} referenced before assignment")
    frame.stack.append(frame.names[instr.argval])


@handles("STORE_FAST")
def _store_fast(frame: Frame, instr: dis.Instruction) -> None:
    frame.names[instr.argval] = frame.stack.pop()


@handles("POP_TOP")
def _pop_top(frame: Frame, instr: dis.Instruction) -> None:
    del frame.stack[-1]


@handles("COPY")
def _copy(frame: Frame, instr: dis.Instruction) -> None:
    frame.stack.append(frame.stack[len(frame.stack) - instr.arg])


@handles("SWAP")
def _swap(frame: Frame, instr: dis.Instruction) -> None:
    top, other = len(frame.stack) - 1, len(frame.stack) - instr.arg
    frame.stack[top], frame.stack[other] = frame.stack[other], frame.stack[top]


UNARY: dict[str, Callable[[Any], Any]] = {
    "UNARY_NEGATIVE": operator.neg,
    "UNARY_NOT": operator.not_,
    "UNARY_INVERT": operator.invert,
}


@handles(*UNARY)
def _unary(frame: Frame, instr: dis.Instruction) -> None:
    frame.stack[-1] = UNARY[instr.opname](frame.stack[-1])


@handles("BINARY_OP", "COMPARE_OP")
def _binary(frame: Frame, instr: dis.Instruction) -> None:
    table = BINARY_OPS if instr.opname == "BINARY_OP" else COMPARE_OPS
    right = frame.stack.pop()
    frame.stack[-1] = table[instr.argrepr](frame.stack[-1], right)


@handles("JUMP_FORWARD", "JUMP_BACKWARD", "JUMP_BACKWARD_NO_INTERRUPT")
def _jump(frame: Frame, instr: dis.Instruction) -> None:
    frame.next_offset = instr.argval


TESTS: dict[str, Callable[[Any], bool]] = {
    "TRUE": operator.truth,
    "FALSE": operator.not_,
    "NONE": lambda value: value is None,
    "NOT_NONE": lambda value: value is not None,
}
POP_JUMPS = {f"POP_JUMP_{way}IF_{test}": TESTS[test] for way in ("", "FORWARD_", "BACKWARD_") for test in TESTS}


@handles(*POP_JUMPS)
def _pop_jump(frame: Frame, instr: dis.Instruction) -> None:
    if POP_JUMPS[instr.opname](frame.stack.pop()):
        frame.next_offset = instr.argval


@handles("JUMP_IF_TRUE_OR_POP", "JUMP_IF_FALSE_OR_POP")
def _jump_or_pop(frame: Frame, instr: dis.Instruction) -> None:
    if operator.truth(frame.stack[-1]) is (instr.opname == "JUMP_IF_TRUE_OR_POP"):
        frame.next_offset = instr.argval  # keep the value: it is the result of `a or b`
    else:
        frame.stack.pop()


@handles("RETURN_VALUE", "RETURN_CONST")
def _return(frame: Frame, instr: dis.Instruction) -> None:
    frame.result = frame.stack.pop() if instr.opname == "RETURN_VALUE" else instr.argval
    frame.returned = True


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
    # The program counter is an offset: the instructions by offset, and each one's successor.
    instructions = list(dis.get_instructions(code))
    at = {instr.offset: instr for instr in instructions}
    after = {here.offset: there.offset for here, there in itertools.pairwise(instructions)}
    frame = Frame(names=dict(zip(code.co_varnames, args, strict=False)))
    while True:
        instr = at[frame.next_offset]
        handler = HANDLERS.get(instr.opname)
        if handler is None:
            raise UnsupportedInstruction(f"{instr.opname} at offset {instr.offset} is not in the subset")
        frame.next_offset = after.get(instr.offset)
        handler(frame, instr)
        if trace is not None:
            trace.append(Step(instr.offset, instr.opname, len(frame.stack)))
        if frame.returned:
            return frame.result
