"""Mutation operators: each finds the places in a module's AST where it applies and the text to put there.

A mutation is a span of the source (start and end offsets, in characters) and its replacement,
so a mutant is the solution with one small, readable change, and its diff is one line or a few.
Only code is mutated: docstrings, annotations and string constants (messages) never are, since
changing them changes no behaviour by construction.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from dataclasses import dataclass


@dataclass(frozen=True)
class Change:
    """Replace text[start:end] with `text`; `operator` says what kind of change it is."""

    operator: str
    start: int
    end: int
    text: str
    line: int  # 1-based line where the change starts


class Source:
    """A module's text with AST positions (UTF-8 byte columns) turned into character offsets."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.lines = text.splitlines(keepends=True)
        self._line_starts = [0]
        for line in self.lines:
            self._line_starts.append(self._line_starts[-1] + len(line))

    def offset(self, lineno: int, col_bytes: int) -> int:
        line = self.lines[lineno - 1]
        return self._line_starts[lineno - 1] + len(line.encode("utf-8")[:col_bytes].decode("utf-8"))

    def start(self, node: ast.AST) -> int:
        return self.offset(node.lineno, node.col_offset)  # type: ignore[attr-defined]

    def end(self, node: ast.AST) -> int:
        return self.offset(node.end_lineno, node.end_col_offset)  # type: ignore[attr-defined]

    def segment(self, node: ast.AST) -> str:
        return self.text[self.start(node):self.end(node)]


_COMPARE_FLIPS: dict[type, tuple[str, str]] = {
    ast.Lt: ("<", "<="), ast.LtE: ("<=", "<"), ast.Gt: (">", ">="), ast.GtE: (">=", ">"),
    ast.Eq: ("==", "!="), ast.NotEq: ("!=", "=="), ast.In: ("in", "not in"),
    ast.NotIn: ("not in", "in"), ast.Is: ("is", "is not"), ast.IsNot: ("is not", "is"),
}
_ARITH_SWAPS: dict[type, tuple[str, str]] = {
    ast.Add: ("+", "-"), ast.Sub: ("-", "+"), ast.Mult: ("*", "/"), ast.Div: ("/", "*"),
    ast.FloorDiv: ("//", "*"), ast.Mod: ("%", "//"), ast.BitOr: ("|", "&"), ast.BitAnd: ("&", "|"),
    ast.LShift: ("<<", ">>"), ast.RShift: (">>", "<<"), ast.BitXor: ("^", "|"),
}
_NAMES = {"<": "lt", "<=": "le", ">": "gt", ">=": "ge", "==": "eq", "!=": "ne", "in": "in",
          "not in": "not_in", "is": "is", "is not": "is_not", "+": "add", "-": "sub", "*": "mul",
          "/": "div", "//": "floordiv", "%": "mod", "|": "or", "&": "and", "<<": "lshift",
          ">>": "rshift", "^": "xor"}
_WAITS = {"wait", "wait_for"}
_NO_LOCK = '__import__("contextlib").nullcontext()'


def _token_pattern(token: str) -> re.Pattern[str]:
    if token[0].isalpha():
        return re.compile(r"\b" + token.replace(" ", r"\s+") + r"\b")
    # `<` must not match inside `<=` or `<<`, `*` not inside `**` or `*=`
    return re.compile(r"(?<![<>=!*/])" + re.escape(token) + r"(?![<>=*/])")


class Finder(ast.NodeVisitor):
    """Walks a module and collects every Change the operators allow."""

    def __init__(self, source: Source) -> None:
        self.src = source
        self.changes: list[Change] = []

    # -- helpers ------------------------------------------------------------------------------

    def _add(self, operator: str, start: int, end: int, text: str) -> None:
        line = self.src.text.count("\n", 0, start) + 1
        self.changes.append(Change(operator, start, end, text, line))

    def _replace_token_between(self, operator: str, left: ast.AST, right: ast.AST,
                               old: str, new: str) -> None:
        """Swap the operator token `old` in the gap between two operands (parentheses included)."""
        gap_start, gap_end = self.src.end(left), self.src.start(right)
        gap = self.src.text[gap_start:gap_end]
        found = _token_pattern(old).search(gap)
        if found:
            self._add(operator, gap_start + found.start(), gap_start + found.end(), new)

    def _body(self, body: list[ast.stmt]) -> None:
        for index, statement in enumerate(body):
            if index == 0 and _is_docstring(statement):
                continue
            self.visit(statement)

    # -- statements ---------------------------------------------------------------------------

    def visit_Module(self, node: ast.Module) -> None:
        self._body(node.body)

    def visit_FunctionDef(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        # annotations and the return annotation change nothing; defaults do
        for default in [*node.args.defaults, *node.args.kw_defaults]:
            if default is not None:
                self.visit(default)
        for decorator in node.decorator_list:
            self.visit(decorator)
        self._body(node.body)

    visit_AsyncFunctionDef = visit_FunctionDef

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        self._body(node.body)

    def visit_AnnAssign(self, node: ast.AnnAssign) -> None:
        if node.value is not None:
            self.visit(node.value)

    def visit_Import(self, node: ast.Import) -> None:
        return

    visit_ImportFrom = visit_Import  # type: ignore[assignment]

    def visit_If(self, node: ast.If) -> None:
        if _is_type_checking(node.test) or _is_main_guard(node.test):
            return
        self.generic_visit(node)

    def visit_Expr(self, node: ast.Expr) -> None:
        call = node.value.value if isinstance(node.value, ast.Await) else node.value
        if isinstance(call, ast.Call):
            self._add("delete_call", self.src.start(node), self.src.end(node), "pass")
        self.generic_visit(node)

    def visit_Break(self, node: ast.Break) -> None:
        self._add("delete_break", self.src.start(node), self.src.end(node), "pass")

    def visit_Continue(self, node: ast.Continue) -> None:
        self._add("delete_continue", self.src.start(node), self.src.end(node), "pass")

    def visit_Return(self, node: ast.Return) -> None:
        if node.value is not None and not _is_none(node.value):
            self._add("return_none", self.src.start(node.value), self.src.end(node.value), "None")
        self.generic_visit(node)

    def visit_While(self, node: ast.While) -> None:
        if _calls_any(node, _WAITS):
            start = self.src.start(node)
            self._add("while_to_if", start, start + len("while"), "if")
        self.generic_visit(node)

    def visit_With(self, node: ast.With | ast.AsyncWith) -> None:
        for item in node.items:
            expr = item.context_expr
            if item.optional_vars is None and isinstance(expr, (ast.Name, ast.Attribute)):
                self._add("without_lock", self.src.start(expr), self.src.end(expr), _NO_LOCK)
        self.generic_visit(node)

    visit_AsyncWith = visit_With

    def visit_Try(self, node: ast.Try) -> None:
        if node.finalbody:
            self._add("drop_finally", self.src.start(node.finalbody[0]),
                      self.src.end(node.finalbody[-1]), "pass")
        self.generic_visit(node)

    visit_TryStar = visit_Try  # type: ignore[assignment]

    def visit_ExceptHandler(self, node: ast.ExceptHandler) -> None:
        for name in _names_in(node.type):
            if name.id == "BaseException":
                self._add("base_exception_to_exception", self.src.start(name), self.src.end(name),
                          "Exception")
        self._body(node.body)

    def visit_AugAssign(self, node: ast.AugAssign) -> None:
        swap = _ARITH_SWAPS.get(type(node.op))
        if swap:
            old, new = swap
            self._replace_token_between(
                f"augassign_{_NAMES[old]}_to_{_NAMES[new]}", node.target, node.value, old + "=", new + "="
            )
        self.visit(node.value)

    # -- expressions --------------------------------------------------------------------------

    def visit_Compare(self, node: ast.Compare) -> None:
        operands = [node.left, *node.comparators]
        for index, op in enumerate(node.ops):
            old, new = _COMPARE_FLIPS[type(op)]
            self._replace_token_between(
                f"{_NAMES[old]}_to_{_NAMES[new]}", operands[index], operands[index + 1], old, new
            )
        self.generic_visit(node)

    def visit_BinOp(self, node: ast.BinOp) -> None:
        swap = _ARITH_SWAPS.get(type(node.op))
        is_format = isinstance(node.op, ast.Mod) and isinstance(node.left, ast.Constant) and isinstance(
            node.left.value, str
        )
        if swap and not is_format:
            old, new = swap
            self._replace_token_between(f"{_NAMES[old]}_to_{_NAMES[new]}", node.left, node.right, old, new)
        self.generic_visit(node)

    def visit_BoolOp(self, node: ast.BoolOp) -> None:
        old, new = ("and", "or") if isinstance(node.op, ast.And) else ("or", "and")
        # every connective of the chain at once: `a and b and c` -> `a or b or c`
        text = self.src.text
        pieces, cursor = [], self.src.start(node.values[0])
        for left, right in zip(node.values, node.values[1:], strict=False):
            gap_start, gap_end = self.src.end(left), self.src.start(right)
            gap = text[gap_start:gap_end]
            pieces.append(text[cursor:gap_start] + _token_pattern(old).sub(new, gap, count=1))
            cursor = gap_end
        pieces.append(text[cursor:self.src.end(node.values[-1])])
        self._add(f"{old}_to_{new}", self.src.start(node.values[0]), self.src.end(node.values[-1]),
                  "".join(pieces))
        self.generic_visit(node)

    def visit_UnaryOp(self, node: ast.UnaryOp) -> None:
        if isinstance(node.op, ast.Not):
            self._add("drop_not", self.src.start(node), self.src.start(node.operand), "")
        self.generic_visit(node)

    def visit_Constant(self, node: ast.Constant) -> None:
        value = node.value
        if isinstance(value, bool):
            self._add("flip_bool", self.src.start(node), self.src.end(node), str(not value))
        elif isinstance(value, int):
            start, end = self.src.start(node), self.src.end(node)
            self._add("constant_plus_1", start, end, str(value + 1))
            self._add("constant_minus_1", start, end, str(value - 1))

    def visit_JoinedStr(self, node: ast.JoinedStr) -> None:
        return  # an f-string is a message: its expressions only format it

    def visit_Call(self, node: ast.Call) -> None:
        func = node.func
        name = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""
        if name == "notify_all" and isinstance(func, ast.Attribute):
            end = self.src.end(func)
            self._add("notify_all_to_notify", end - len("notify_all"), end, "notify")
        if name == "compare_digest" and len(node.args) == 2 and not node.keywords:
            left, right = (self.src.segment(arg) for arg in node.args)
            self._add("compare_digest_to_eq", self.src.start(node), self.src.end(node),
                      f"({left} == {right})")
        if name == "wait_for" and isinstance(func, ast.Attribute) and node.args:
            # Condition.wait_for loops; one check and one wait is the `if` instead of `while` bug
            predicate = self.src.segment(node.args[0])
            rest = ", ".join(self.src.segment(a) for a in [*node.args[1:], *node.keywords])
            condition = self.src.segment(func.value)
            if not isinstance(node.args[0], ast.Lambda) or not node.args[0].args.args:
                self._add("wait_for_to_single_wait", self.src.start(node), self.src.end(node),
                          f"(({predicate})() or {condition}.wait({rest}))")
        for keyword in node.keywords:
            if keyword.arg == "timeout" and not _is_none(keyword.value):
                self._add("drop_timeout", self.src.start(keyword.value), self.src.end(keyword.value), "None")
        self.generic_visit(node)


def _is_docstring(statement: ast.stmt) -> bool:
    return (isinstance(statement, ast.Expr) and isinstance(statement.value, ast.Constant)
            and isinstance(statement.value.value, str))


def _is_none(node: ast.AST) -> bool:
    return isinstance(node, ast.Constant) and node.value is None


def _is_type_checking(test: ast.AST) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _is_main_guard(test: ast.AST) -> bool:
    return (isinstance(test, ast.Compare) and isinstance(test.left, ast.Name)
            and test.left.id == "__name__")


def _names_in(node: ast.AST | None) -> Iterator[ast.Name]:
    if node is None:
        return
    for child in ast.walk(node):
        if isinstance(child, ast.Name):
            yield child


def _calls_any(node: ast.AST, names: set[str]) -> bool:
    for child in ast.walk(node):
        if isinstance(child, ast.Call):
            func = child.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if name in names:
                return True
    return False


def find_changes(text: str) -> list[Change]:
    """Every change the operators make to this module, in source order."""
    finder = Finder(Source(text))
    finder.visit(ast.parse(text))
    return sorted(finder.changes, key=lambda c: (c.start, c.end, c.operator))
