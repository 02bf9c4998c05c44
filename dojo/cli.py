"""The `kata` command: the learner's commands and the maintainer check."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console

from . import catalogue as catalogue_mod
from .verify_cli import verify_command

app = typer.Typer(
    name="kata",
    help="Backend & systems katas: run, watch, hint and check your solutions.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console(highlight=False)
err_console = Console(stderr=True, highlight=False)


@app.callback()
def _group() -> None:
    """Backend & systems katas: run, watch, hint and check your solutions."""


def load_catalogue() -> catalogue_mod.Catalogue:
    """The repository's catalogue, or exit 2 with the reason it cannot be read."""
    try:
        return catalogue_mod.load(catalogue_mod.find_root() / catalogue_mod.CATALOGUE_NAME)
    except catalogue_mod.CatalogueError as exc:
        err_console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from None


@app.command("verify")
def verify(
    kata: Annotated[list[str] | None, typer.Option("--kata", "-k", help="only this kata (repeatable)")] = None,
    topic: Annotated[list[str] | None, typer.Option("--topic", "-t", help="only this topic (repeatable)")] = None,
    repeat: Annotated[int, typer.Option(help="how many times the solution must pass")] = 3,
    strict: Annotated[bool, typer.Option(help="treat skipped tests (missing services) as problems")] = False,
    mistakes: Annotated[bool, typer.Option(help="also run each kata's known mistakes")] = True,
) -> None:
    """Maintainer check: every kata complete, failing on its stub, passing on its solution."""
    code = verify_command(
        load_catalogue(), kata or [], topic or [], repeat, strict, console, mistakes
    )
    raise typer.Exit(code)


def main() -> None:
    app()
