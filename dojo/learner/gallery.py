"""`kata mistakes`: once a kata is done, the wrong turns other learners take, and how tests catch them."""

from __future__ import annotations

from rich.console import Console
from rich.markup import escape

from ..catalogue import Kata
from ..mistakes import load_gallery, try_mistake
from .diff import print_unified


def show(kata: Kata, console: Console) -> int:
    """Run each known mistake against the kata's tests and show what goes wrong; 0 if shown."""
    gallery = load_gallery(kata)
    if not gallery:
        console.print(f"{kata.name} has no known mistakes yet.")
        return 0
    console.print(f"[bold]{kata.slug}[/bold]: {len(gallery)} known mistakes, each caught by the tests\n")
    for number, mistake in enumerate(gallery, start=1):
        with console.status(f"running the tests against mistake {number}: {mistake.name}"):
            result = try_mistake(kata, mistake)
        console.print(f"[bold]{number}. {escape(mistake.name)}[/bold]: {escape(mistake.description)}")
        if result.failed_tests:
            console.print(f"   caught by [cyan]{escape(result.failed_tests[0])}[/cyan]")
            console.print(f"   [red]{escape(result.first_message.strip().splitlines()[0][:300])}[/red]"
                          if result.first_message.strip() else "")
        else:
            console.print(f"   [yellow]not caught: {escape(result.problem)}[/yellow]")
        print_unified(mistake.diff().splitlines(), console, indent="   ")
        console.print()
    return 0
