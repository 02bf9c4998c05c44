"""Presents the maintainer check: a line per kata as it finishes, a table per topic, a summary."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from .catalogue import Catalogue, Kata
from .verify import KataReport, verify


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
    repeat: int,
    strict: bool,
    console: Console,
    mistakes: bool = True,
    jobs: int = 1,
    services_only: bool = False,
) -> int:
    """Run the check and print it; the exit code is 0 when nothing is wrong, else 1 (2: usage)."""
    try:
        katas = select(catalogue, names, topics)
        if services_only:  # the katas whose services have a local and a Docker backend
            katas = [k for k in katas if set(k.services) - {"docker"}]
    except ValueError as exc:
        console.print(f"[red]error:[/red] {exc}")
        return 2

    def progress(report: KataReport) -> None:
        mark = "[green]ok[/green]" if report.ok else "[red]FAIL[/red]"
        if report.ok and report.skipped:
            mark = "[yellow]skip[/yellow]"
        console.print(f"{mark} {report.kata.slug}")

    reports, catalogue_level = verify(catalogue, katas, repeat, strict, mistakes, on_report=progress, jobs=jobs)
    console.print(_table(reports, repeat))
    if mistakes:
        console.print(_mistakes_by_topic(reports))
    problems = [(r.kata.slug, p) for r in reports for p in r.problems]
    if names or topics:  # a narrowed run judges its katas, not the whole catalogue
        catalogue_level = []
    problems += [("catalogue", p) for p in catalogue_level]
    for slug, problem in problems:
        console.print(f"[red]{slug}[/red]: {problem}")
    ok = sum(r.ok and not r.skipped for r in reports)
    skipped = sum(r.ok and bool(r.skipped) for r in reports)
    console.print(
        f"\n{ok} of {len(reports)} katas verified, {skipped} skipped, "
        f"{len(reports) - ok - skipped} with problems"
        + (f", {len(catalogue_level)} catalogue problem(s)" if catalogue_level else "")
    )
    return 1 if problems else 0


def _table(reports: list[KataReport], repeat: int) -> Table:
    table = Table(title="maintainer check", show_lines=False)
    table.add_column("kata", no_wrap=True)
    for column in ("tests", "stub fails", f"solution x{repeat}", "mistakes", "result"):
        table.add_column(column)
    for r in reports:
        result = "ok" if r.ok else f"{len(r.problems)} problem(s)"
        if r.ok and r.skipped:
            result = f"skipped: {r.skipped[:40]}"
        table.add_row(
            r.kata.slug, str(r.tests), f"{r.stub_failing}/{r.tests}",
            f"{r.solution_runs}x" if r.solution_runs else "-",
            f"{r.caught}/{len(r.mistakes)}" if r.mistakes else "-", result,
        )
    return table


def _mistakes_by_topic(reports: list[KataReport]) -> str:
    totals: dict[str, list[int]] = {}
    for r in reports:
        caught_total = totals.setdefault(r.kata.topic, [0, 0])
        caught_total[0] += r.caught
        caught_total[1] += len(r.mistakes)
    return "mistakes caught: " + ", ".join(f"{t} {c}/{n}" for t, (c, n) in totals.items())
