"""Progressive hints: each call reveals one more, and repeats the ones already seen."""

from __future__ import annotations

from rich.console import Console
from rich.text import Text

from ..catalogue import Kata
from .state import State


def reveal(kata: Kata, state: State, *, everything: bool = False) -> int:
    """Count one more hint (all of them with `everything`) as shown, save, return the count."""
    seen = state.hints.get(kata.slug, 0)
    shown = len(kata.hints) if everything else min(seen + 1, len(kata.hints))
    state.hints[kata.slug] = max(seen, shown)
    state.save()
    return state.hints[kata.slug]


def show(
    kata: Kata, state: State, console: Console, *, everything: bool = False, again: str = ""
) -> None:
    """Print the hints seen so far, the newest one highlighted, and what is left (`again`: how
    to ask for the next one, `kata hint NAME` by default)."""
    before = state.hints.get(kata.slug, 0)
    count = reveal(kata, state, everything=everything)
    total = len(kata.hints)
    for number, text in enumerate(kata.hints[:count], start=1):
        fresh = number > before
        label = (f"hint {number} of {total}: ", "bold" if fresh else "dim")
        # Text, not markup: a hint may well contain [brackets]
        console.print(Text.assemble(label, (text, "" if fresh else "dim")))
    if count < total:
        console.print(f"[dim]{total - count} more: {again or f'`kata hint {kata.name}`'} again[/dim]")
    elif before == total:
        console.print(
            f"[dim]no more hints; `kata diff {kata.name}` compares your code with the solution[/dim]"
        )
