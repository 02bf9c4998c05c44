"""Every kata run warm (a child of the warm server) and cold (a fresh pytest): same outcome per test?

Usage: python benchmarks/warm_matches_cold.py [--kata NAME ...] [--tree learner|solutions|both]
Prints one line per kata and tree, then the mismatches; exit code 1 if there is any. Katas whose
services are missing skip their tests both ways, which still compares equal.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

from _timing import ROOT

sys.path.insert(0, str(ROOT))

from dojo.catalogue import Kata, load
from dojo.running.runner import run_kata
from dojo.running.warm_client import WarmPytest

Outcomes = dict[str, str]


def cold(kata: Kata, solutions: bool) -> Outcomes:
    result = run_kata(kata, solutions=solutions)
    return {o.nodeid: o.outcome for o in result.outcomes}


def warm(runner: WarmPytest, kata: Kata, solutions: bool, tmp: Path) -> Outcomes:
    report = tmp / f"{kata.name}-{int(solutions)}.json"
    args = [str(kata.kata_dir), "-p", "no:cacheprovider", "-q", "--no-header", "-rN", "--tb=short",
            f"--kata-report={report}", *(["--solutions"] if solutions else [])]
    runner.env["KATA_SOLUTIONS"] = "1" if solutions else "0"
    with open(os.devnull, "w") as sink:
        saved = os.dup(1), os.dup(2)
        os.dup2(sink.fileno(), 1)
        os.dup2(sink.fileno(), 2)
        try:
            code = runner.try_warm(args, timeout=120 + kata.time_limit * 20)
        finally:
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            for fd in saved:
                os.close(fd)
    if code is None:
        raise RuntimeError("the warm server is gone")
    if not report.is_file():
        return {}
    return {k: v["outcome"] for k, v in json.loads(report.read_text()).items()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--kata", action="append", default=[])
    parser.add_argument("--tree", choices=["learner", "solutions", "both"], default="both")
    args = parser.parse_args()
    catalogue = load(ROOT / "katas.toml", check_files=False)
    katas = [catalogue.get(name) for name in args.kata] if args.kata else list(catalogue.katas)
    trees = {"learner": [False], "solutions": [True], "both": [False, True]}[args.tree]
    mismatches = []
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "KATA_SOLUTIONS": "0"}
        runner = WarmPytest(ROOT, env, [ROOT / "katas"], sock_path=Path(tmp) / "warm.sock")
        runner.ensure()
        if not runner.wait_ready():
            print("the warm server did not start: see .kata/warm.log")
            return 2
        try:
            for kata in katas:
                for solutions in trees:
                    started = time.perf_counter()
                    hot = warm(runner, kata, solutions, Path(tmp))
                    middle = time.perf_counter()
                    fresh = cold(kata, solutions)
                    done = time.perf_counter()
                    same = hot == fresh
                    tree = "solutions" if solutions else "learner"
                    counts = {o: list(fresh.values()).count(o) for o in sorted(set(fresh.values()))}
                    print(f"{'same' if same else 'DIFF':4s} {kata.slug:40s} {tree:9s} {counts} "
                          f"warm {middle - started:5.2f} s, cold {done - middle:5.2f} s", flush=True)
                    if not same:
                        keys = sorted(set(hot) | set(fresh))
                        mismatches += [f"{kata.slug} ({tree}) {k}: warm {hot.get(k)}, cold {fresh.get(k)}"
                                       for k in keys if hot.get(k) != fresh.get(k)]
        finally:
            runner.close()
    print("\n".join(mismatches) if mismatches else "every test has the same outcome warm and cold")
    return 1 if mismatches else 0


if __name__ == "__main__":
    sys.exit(main())
