"""Presents the maintainer check: a line per kata as it finishes, a table per topic, a summary."""

from __future__ import annotations

from dataclasses import replace

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from .catalogue import Catalogue, Kata
from .rigor import PendingFileError, load_pending
from .verify import Checks, KataReport, verify


def select(catalogue: Catalogue, names: list[str], topics: list[str]) -> list[Kata]:
    """The katas named or in the topics named (all if none); ValueError naming an unknown one."""
    known_topics = {t.name for t in catalogue.topics}
    for topic in topics:
        if topic not in known_topics:
            raise ValueError(f"no topic {topic!r} (topics: {', '.join(sorted(known_topics))})")
    chosen = []
    for name in names:
        try:
            chosen.append(catalogue.get(name))
        except KeyError:
            raise ValueError(f"no kata {name!r}") from None
    chosen += [k for k in catalogue.katas if k.topic in topics and k not in chosen]
    return chosen or list(catalogue.katas)


def verify_command(
    catalogue: Catalogue,
    names: list[str],
    topics: list[str],
    checks: Checks,
    console: Console,
    jobs: int = 1,
    services_only: bool = False,
) -> int:
    """Run the check and print it; the exit code is 0 when nothing is wrong, else 1 (2: usage)."""
    try:
        katas = select(catalogue, names, topics)
        if services_only:  # the katas whose services have a local and a Docker backend
            katas = [k for k in katas if set(k.services) - {"docker"}]
        pending = load_pending(catalogue)
    except (ValueError, PendingFileError) as exc:
        console.print(f"[red]error:[/red] {exc}")
        return 2
    checks = replace(
        checks, pending=frozenset(pending),
        stressed_topics=frozenset(t.name for t in catalogue.topics if t.stress),
    )
    if checks.mutants and checks.mutant_sample is not None:
        console.print(
            f"mutants: a sample of {checks.mutant_sample} per kata, {_drawn(checks)} (replay: "
            f"kata verify --mutants --mutant-sample {checks.mutant_sample}{_seed_option(checks)} --kata K)"
        )

    if checks.mistakes and checks.mistake_sample is not None:
        console.print(
            f"mistakes: a sample of {checks.mistake_sample} per kata, {_drawn(checks)} (replay: "
            f"kata verify --mistake-sample {checks.mistake_sample}{_seed_option(checks)} --kata K)"
        )

    def progress(report: KataReport) -> None:
        mark = "[green]ok[/green]" if report.ok else "[red]FAIL[/red]"
        if report.ok and report.skipped:
            mark = "[yellow]skip[/yellow]"
        score = f" mutants {_score(report)}" if report.mutation else ""
        console.print(f"{mark} {report.kata.slug}{score} [dim]({sum(report.seconds.values()):.0f} s)[/dim]")

    reports, catalogue_level = verify(catalogue, katas, checks, on_report=progress, jobs=jobs)
    console.print(_table(reports, checks.repeat))
    if checks.mistakes:
        console.print(_mistakes_by_topic(reports))
    if checks.mutants:
        console.print(_mutants_by_topic(reports))
        for r in reports:
            for mutant in r.mutation.survivors if r.mutation else []:
                console.print(f"[yellow]survivor[/yellow] {escape(r.kata.slug)}: {escape(mutant.one_line())}",
                              soft_wrap=True)
    for r in reports:
        why = f"rigor pass pending, {pending[r.kata.slug]}" if r.kata.slug in pending else "warning"
        for warning in r.warnings:
            console.print(f"[yellow]{escape(r.kata.slug)}[/yellow] ({escape(why)}): "
                          f"{escape(warning.splitlines()[0])}", soft_wrap=True)
    console.print(_time_by_check(reports))
    problems = [(r.kata.slug, p) for r in reports for p in r.problems]
    if names or topics:  # a narrowed run judges its katas, not the whole catalogue
        catalogue_level = []
    problems += [("catalogue", p) for p in catalogue_level]
    for slug, problem in problems:
        console.print(f"[red]{slug}[/red]: {problem}", soft_wrap=True)
    ok = sum(r.ok and not r.skipped for r in reports)
    skipped = sum(r.ok and bool(r.skipped) for r in reports)
    console.print(
        f"\n{ok} of {len(reports)} katas verified, {skipped} skipped, "
        f"{len(reports) - ok - skipped} with problems"
        + (f", {len(catalogue_level)} catalogue problem(s)" if catalogue_level else "")
    )
    return 1 if problems else 0


def _drawn(checks: Checks) -> str:
    return "each drawn with its kata's own seed" if checks.seed is None else f"seed {checks.seed}"


def _seed_option(checks: Checks) -> str:
    return "" if checks.seed is None else f" --seed {checks.seed}"


def _score(report: KataReport) -> str:
    mutation = report.mutation
    if mutation is None or not mutation.judged:
        return "-"
    note = " all: the sample had a survivor" if mutation.escalated_from else ""
    if mutation.sample is not None and mutation.record is not None:
        note = f"; recorded {mutation.record.killed}/{mutation.record.judged} ({mutation.record.score:.0%})"
    return f"{mutation.killed}/{mutation.judged} ({mutation.score:.0%}){note}"


def _time_by_check(reports: list[KataReport]) -> str:
    """Where the run's time went (summed over katas, so over wall time when --jobs > 1)."""
    totals: dict[str, float] = {}
    for r in reports:
        for check, seconds in r.seconds.items():
            totals[check] = totals.get(check, 0.0) + seconds
    slowest = sorted(reports, key=lambda r: -sum(r.seconds.values()))[:5]
    return ("time by check: " + ", ".join(f"{c} {s:.0f} s" for c, s in totals.items())
            + "; slowest: " + ", ".join(f"{r.kata.slug} {sum(r.seconds.values()):.0f} s" for r in slowest))


def _mutants_by_topic(reports: list[KataReport]) -> str:
    totals: dict[str, list[int]] = {}
    for r in reports:
        if r.mutation is not None:
            killed_judged = totals.setdefault(r.kata.topic, [0, 0])
            killed_judged[0] += r.mutation.killed
            killed_judged[1] += r.mutation.judged
    return "mutants killed: " + ", ".join(
        f"{t} {k}/{n} ({k / n:.0%})" if n else f"{t} -" for t, (k, n) in totals.items()
    )


def _table(reports: list[KataReport], repeat: int) -> Table:
    table = Table(title="maintainer check", show_lines=False)
    table.add_column("kata", no_wrap=True)
    for column in ("tests", "stub fails", f"solution x{repeat}", "mistakes", "alternatives", "mutants",
                   "result"):
        table.add_column(column)
    for r in reports:
        result = "ok" if r.ok else f"{len(r.problems)} problem(s)"
        if r.ok and r.skipped:
            result = f"skipped: {r.skipped[:40]}"
        table.add_row(
            r.kata.slug, str(r.tests), f"{r.stub_failing}/{r.tests}",
            f"{r.solution_runs}x" if r.solution_runs else "-",
            f"{r.caught}/{len(r.mistakes)}" if r.mistakes else "-",
            f"{sum(a.accepted for a in r.alternatives)}/{len(r.alternatives)}" if r.alternatives else "-",
            _score(r), result,
        )
    return table


def _mistakes_by_topic(reports: list[KataReport]) -> str:
    totals: dict[str, list[int]] = {}
    for r in reports:
        caught_total = totals.setdefault(r.kata.topic, [0, 0])
        caught_total[0] += r.caught
        caught_total[1] += len(r.mistakes)
    return "mistakes caught: " + ", ".join(f"{t} {c}/{n}" for t, (c, n) in totals.items())
