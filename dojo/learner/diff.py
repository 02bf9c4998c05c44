"""The learner's files next to the reference solution: a coloured unified diff, or the solution."""

from __future__ import annotations

import ast
import difflib
from collections.abc import Iterable
from pathlib import Path

from rich.console import Console
from rich.syntax import Syntax
from rich.text import Text

from ..catalogue import Kata

_STYLES = {"+": "green", "-": "red", "@": "cyan"}


def _lines(path: Path) -> list[str]:
    if not path.is_file():
        return []
    return path.read_text(encoding="utf-8", errors="replace").splitlines(keepends=True)


def unified(kata: Kata, *, code_only: bool = False) -> list[str]:
    """Unified diff lines, yours (---) against the solution (+++), for every learner file."""
    read = code_of if code_only else _lines
    lines: list[str] = []
    for name, mine, theirs in zip(kata.files, kata.learner_files(), kata.solution_files(),
                                  strict=True):
        lines += difflib.unified_diff(
            read(mine), read(theirs),
            fromfile=f"yours: katas/{kata.topic}/{kata.name}/{name}",
            tofile=f"solution: solutions/{kata.topic}/{kata.name}/{name}",
        )
    return lines


def print_unified(lines: Iterable[str], console: Console, indent: str = "") -> None:
    """Unified diff lines in colour (plain when not a terminal), each printed whole: never cut
    or wrapped by us, so a narrow terminal or a pipe gets the lines git would print."""
    for line in lines:
        text = line.rstrip("\n")
        style = "bold" if text.startswith(("---", "+++")) else _STYLES.get(text[:1], "")
        console.print(Text(indent + text, style=style), soft_wrap=True)


def print_diff(kata: Kata, console: Console, *, code_only: bool = False) -> bool:
    """Print the diff in colour (plain when not a terminal); False if the files are identical.
    With `code_only`, comments, docstrings and formatting are left out of the comparison."""
    lines = unified(kata, code_only=code_only)
    print_unified(lines, console)
    if not lines:
        same = "match the solution's code" if code_only else "match the solution exactly"
        console.print(f"your {', '.join(kata.files)} {same}")
    return bool(lines)


def code_of(path: Path) -> list[str]:
    """The file's code only: for Python, the syntax tree printed back (comments, docstrings and
    formatting gone); for other files, without comment and blank lines. A Python file that
    doesn't parse is compared as it is."""
    lines = _lines(path)
    if path.suffix == ".py":
        try:
            tree = ast.parse("".join(lines))
        except SyntaxError:
            return lines
        for node in ast.walk(tree):
            body = getattr(node, "body", None)
            if (isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
                    and body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant)
                    and isinstance(body[0].value.value, str)):
                node.body = body[1:] or [ast.Pass()]
        return [line + "\n" for line in ast.unparse(tree).splitlines()]
    return [line for line in lines if line.strip() and not line.lstrip().startswith(("#", "//", ";"))]


def print_solution(kata: Kata, console: Console) -> None:
    """Print each solution file, highlighted on a terminal, with a line naming it."""
    for name, path in zip(kata.files, kata.solution_files(), strict=True):
        console.rule(f"solutions/{kata.topic}/{kata.name}/{name}", align="left")
        source = path.read_text(encoding="utf-8", errors="replace")
        if console.is_terminal:
            console.print(Syntax(source, lexer=Syntax.guess_lexer(str(path), source)))
        else:
            console.print(Text(source.rstrip("\n")), soft_wrap=True)
