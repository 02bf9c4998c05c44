"""`kata mutants KATA`: run the tests on mutants of the solution, print the score and each survivor."""

from __future__ import annotations

from rich.console import Console

from ..catalogue import Catalogue, Kata
from .mutants import MIN_SCORE, MutantFileError, MutantResult, choose, run_mutants, write_record

__all__ = ["MutantFileError", "mutants"]


def mutants(catalogue: Catalogue, kata: Kata, console: Console, *, jobs: int = 1,
            sample: int | None = None, seed: int | None = None, list_only: bool = False,
            record: bool = False) -> int:
    """0 when the score meets the bar (or only a listing was asked for), else 1."""
    if list_only:
        chosen, report = choose(kata, sample, seed)
        for mutant in chosen:
            console.print(f"{mutant.id}\n    {mutant.one_line()}", markup=False, soft_wrap=True)
        console.print(f"{len(chosen)} mutant(s) to run; {report.equivalent} declared equivalent")
        return 0
    stressed = any(t.name == kata.topic and t.stress for t in catalogue.topics)
    done = [0]

    def progress(result: MutantResult) -> None:
        done[0] += 1
        verdict = f"killed by {result.by}" if result.killed else (
            "SURVIVED" if result.judged else f"not judged: {result.by}")
        console.print(f"[{done[0]}] {result.mutant.one_line()[:110]}  {verdict}", markup=False,
                      soft_wrap=True)

    report = run_mutants(kata, sample, seed, jobs=jobs, stress=stressed, on_result=progress)
    for mutant in report.survivors:
        console.print(f"survivor: {mutant.id}\n{mutant.diff()}\n", markup=False, soft_wrap=True)
    console.print(
        f"{kata.slug}: {report.killed}/{report.judged} mutants killed ({report.score:.0%}); "
        f"{report.equivalent} declared equivalent of {report.generated} generated"
        + (f"; sample of {report.sample}" + (f", seed {report.seed}" if report.seed is not None else "")
           if report.sample else "")
    )
    if record and sample is None:
        path = write_record(kata, report)
        console.print(f"recorded in {path}: CI's samples are judged against this run", markup=False)
    for problem in report.problems():
        console.print(problem.splitlines()[0], markup=False, soft_wrap=True)
    return 0 if report.score >= MIN_SCORE and not report.problems() else 1

