"""`kata alternatives`: other correct designs of a kata, each a diff against the reference solution."""

from __future__ import annotations

from rich.console import Console
from rich.markup import escape

from ..alternatives import load_alternatives
from ..catalogue import Kata
from .diff import print_unified


def show(kata: Kata, console: Console) -> int:
    """Print each alternative's design and its diff; 0 when shown (or when there are none)."""
    alternatives = load_alternatives(kata)
    if not alternatives:
        console.print(f"{kata.name} has no alternative designs written down yet.")
        return 0
    console.print(f"[bold]{kata.slug}[/bold]: {len(alternatives)} other correct designs; "
                  "the same tests accept each of them\n")
    for number, alternative in enumerate(alternatives, start=1):
        console.print(f"[bold]{number}. {escape(alternative.name)}[/bold]: {escape(alternative.design)}")
        print_unified(alternative.diff().splitlines(), console, indent="   ")
        console.print()
    return 0
