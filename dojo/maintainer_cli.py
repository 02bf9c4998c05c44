"""The maintainers' commands: `kata verify` (the whole check) and `kata mutants` (one kata's)."""

from __future__ import annotations

from typing import Annotated

import typer

from .cli_common import KataArg, console, find_kata, load_catalogue, usage_error
from .mutation import command as mutants_cmd
from .verify import Checks
from .verify_cli import verify_command


def register(app: typer.Typer) -> None:
    app.command("verify")(verify)
    app.command("mutants")(mutants_)


def verify(
    kata: Annotated[list[str] | None, typer.Option("--kata", "-k", help="only this kata (repeatable)")] = None,
    topic: Annotated[list[str] | None, typer.Option("--topic", "-t", help="only this topic (repeatable)")] = None,
    exclude_topic: Annotated[
        list[str] | None, typer.Option("--exclude-topic", help="all topics but this one (repeatable)")
    ] = None,
    repeat: Annotated[int, typer.Option(help="how many times the solution must pass")] = 3,
    strict: Annotated[bool, typer.Option(help="treat skipped tests (missing services) as problems")] = False,
    mistakes: Annotated[bool, typer.Option(help="also run each kata's known mistakes")] = True,
    alternatives: Annotated[bool, typer.Option(help="also run each kata's correct alternatives")] = True,
    alternatives_repeat: Annotated[
        int | None, typer.Option(help="how many times each alternative must pass (default: --repeat)")
    ] = None,
    mutants: Annotated[bool, typer.Option(help="also run mutants of each solution (score >= 90 %)")] = False,
    mutant_sample: Annotated[
        int | None, typer.Option(help="run only this many mutants per kata, drawn with --seed")
    ] = None,
    mistake_sample: Annotated[
        int | None, typer.Option(help="run only this many known mistakes per kata, drawn with --seed")
    ] = None,
    seed: Annotated[
        int | None, typer.Option(help="seed for the samples (default: each kata's own, from its files)")
    ] = None,
    jobs: Annotated[int, typer.Option("--jobs", "-j", help="katas checked at the same time")] = 1,
    services_only: Annotated[bool, typer.Option(help="only katas using Redis, Postgres, nginx or haproxy")] = False,
) -> None:
    """Maintainer check: every kata complete, failing on its stub, passing on its solution."""
    if repeat < 1:
        raise usage_error("--repeat must be at least 1: the solution has to pass at least once")
    if alternatives_repeat is not None and alternatives_repeat < 1:
        raise usage_error("--alternatives-repeat must be at least 1")
    for option, sample in (("--mutant-sample", mutant_sample), ("--mistake-sample", mistake_sample)):
        if sample is not None and sample < 1:
            raise usage_error(f"{option} must be at least 1")
    if topic and exclude_topic:
        raise usage_error("--topic and --exclude-topic: give one or the other")
    catalogue = load_catalogue()
    checks = Checks(
        repeat=repeat, strict=strict, mistakes=mistakes, alternatives=alternatives,
        alternatives_repeat=repeat if alternatives_repeat is None else alternatives_repeat, mutants=mutants,
        mutant_sample=mutant_sample, mistake_sample=mistake_sample,
        seed=seed,
    )
    if exclude_topic:
        unknown = set(exclude_topic) - {t.name for t in catalogue.topics}
        if unknown:
            raise usage_error(f"no topic {sorted(unknown)[0]!r} to exclude")
        topic = [t.name for t in catalogue.topics if t.name not in exclude_topic]
    code = verify_command(catalogue, kata or [], topic or [], checks, console, jobs=jobs,
                          services_only=services_only)
    raise typer.Exit(code)


def mutants_(
    kata: KataArg,
    jobs: Annotated[int, typer.Option("--jobs", "-j", help="mutants run at the same time")] = 1,
    sample: Annotated[int | None, typer.Option(help="run only this many, drawn with --seed")] = None,
    seed: Annotated[int | None, typer.Option(help="seed for --sample (default: the kata's own, as CI's)")] = None,
    list_only: Annotated[bool, typer.Option("--list", help="list the mutants and their ids; run none")] = False,
    record: Annotated[
        bool, typer.Option(help="keep this full run in mutants.toml: CI's samples are judged against it")
    ] = False,
) -> None:
    """Maintainers: run the kata's tests on mutants of its solution; print the score and survivors."""
    catalogue = load_catalogue()
    chosen = find_kata(catalogue, kata)
    if record and sample is not None:
        raise usage_error("--record keeps a full run: leave out --sample")
    try:
        code = mutants_cmd.mutants(catalogue, chosen, console, jobs=jobs, sample=sample, seed=seed,
                                   list_only=list_only, record=record)
    except mutants_cmd.MutantFileError as exc:
        raise usage_error(str(exc)) from None
    raise typer.Exit(code)
