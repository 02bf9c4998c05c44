"""The learner's files next to the reference solution: a coloured unified diff, or the solution."""

from __future__ import annotations

import difflib
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


def unified(kata: Kata) -> list[str]:
    """Unified diff lines, yours (---) against the solution (+++), for every learner file."""
    lines: list[str] = []
    for name, mine, theirs in zip(kata.files, kata.learner_files(), kata.solution_files(),
                                  strict=True):
        lines += difflib.unified_diff(
            _lines(mine), _lines(theirs),
            fromfile=f"yours: katas/{kata.topic}/{kata.name}/{name}",
            tofile=f"solution: solutions/{kata.topic}/{kata.name}/{name}",
        )
    return lines


def print_diff(kata: Kata, console: Console) -> bool:
    """Print the diff in colour (plain when not a terminal); False if the files are identical."""
    lines = unified(kata)
    for line in lines:
        text = line.rstrip("\n")
        style = "bold" if text.startswith(("---", "+++")) else _STYLES.get(text[:1], "")
        console.print(Text(text, style=style), soft_wrap=True)
    if not lines:
        console.print(f"your {', '.join(kata.files)} match the solution exactly")
    return bool(lines)


def print_solution(kata: Kata, console: Console) -> None:
    """Print each solution file, highlighted on a terminal, with a line naming it."""
    for name, path in zip(kata.files, kata.solution_files(), strict=True):
        console.rule(f"solutions/{kata.topic}/{kata.name}/{name}", align="left")
        source = path.read_text(encoding="utf-8", errors="replace")
        if console.is_terminal:
            console.print(Syntax(source, lexer=Syntax.guess_lexer(str(path), source)))
        else:
            console.print(Text(source.rstrip("\n")), soft_wrap=True)
