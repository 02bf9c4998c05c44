"""The full mutation run: every mutant of every kata (or of the topics named), on N jobs.

Prints, per kata, the mutants run, the score and the time; then the whole run's time, the mean
cost of one mutant, and the ratio of that cost to one plain run of the kata's solution tests
(what a mutant costs beyond the tests themselves). CI runs only a sample: this is the rest.

Usage: python benchmarks/mutants_full.py [--topic T ...] [--kata K ...] [--jobs 2]
"""

from __future__ import annotations

import argparse
import time

from _timing import ROOT

from dojo.catalogue import CATALOGUE_NAME, load
from dojo.mutation.mutants import run_mutants
from dojo.running.runner import run_kata


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--topic", action="append", default=[])
    parser.add_argument("--kata", action="append", default=[])
    parser.add_argument("--jobs", type=int, default=2)
    args = parser.parse_args()
    catalogue = load(ROOT / CATALOGUE_NAME)
    katas = [k for k in catalogue.katas
             if (not args.topic or k.topic in args.topic) and (not args.kata or k.name in args.kata)]
    stressed = {t.name for t in catalogue.topics if t.stress}
    started = time.perf_counter()
    mutants = solution_seconds = mutant_seconds = 0.0
    for kata in katas:
        t0 = time.perf_counter()
        run_kata(kata, solutions=True)
        t1 = time.perf_counter()
        report = run_mutants(kata, jobs=args.jobs, stress=kata.topic in stressed)
        t2 = time.perf_counter()
        if report.results:
            solution_seconds += (t1 - t0) * len(report.results)
            mutant_seconds += (t2 - t1) * args.jobs
            mutants += len(report.results)
        print(f"{kata.slug:40s} {report.killed:4d}/{report.judged:<4d} {report.score:5.0%} "
              f"{t2 - t1:7.1f} s", flush=True)
    total = time.perf_counter() - started
    print(f"\n{len(katas)} katas, {int(mutants)} mutants in {total:.0f} s on {args.jobs} job(s)")
    if mutants:
        print(f"one mutant: {mutant_seconds / mutants:.2f} s of a job; "
              f"ratio mutant / full solution run: {mutant_seconds / solution_seconds:.2f} "
              "(below 1: a killed mutant stops at its first failure)")


if __name__ == "__main__":
    main()
