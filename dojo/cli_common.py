"""What every `kata` command shares: the consoles, the catalogue, finding a kata, usage errors."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from . import catalogue as catalogue_mod
from .learner.fuzzy import NoSuchKata, resolve

console = Console(highlight=False)
err_console = Console(stderr=True, highlight=False)

KataArg = Annotated[str, typer.Argument(help="kata name; fuzzy: 'bq' or 'bounded' find bounded_queue")]
OptionalKataArg = Annotated[
    str | None, typer.Argument(help="kata name (fuzzy); default: the kata you ran last")
]


def load_catalogue(check_files: bool = False) -> catalogue_mod.Catalogue:
    """The repository's catalogue, or exit 2 with the reason it cannot be read.

    Files are not checked here: one missing file must not lock every command (least of all
    `kata reset`, which brings it back); commands that run a kata check its own files.
    """
    try:
        path = catalogue_mod.find_root() / catalogue_mod.CATALOGUE_NAME
        return catalogue_mod.load(path, check_files=check_files)
    except catalogue_mod.CatalogueError as exc:
        err_console.print(f"[red]error:[/red] {escape(str(exc))}", soft_wrap=True)
        raise typer.Exit(2) from None


def usage_error(message: str) -> typer.Exit:
    err_console.print(f"[red]error:[/red] {escape(message)}", soft_wrap=True)
    return typer.Exit(2)


def find_kata(catalogue: catalogue_mod.Catalogue, name: str) -> catalogue_mod.Kata:
    try:
        return resolve(catalogue, name)
    except NoSuchKata as exc:
        raise usage_error(str(exc)) from None


