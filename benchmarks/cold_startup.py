"""Cold `pytest <kata>` on a pure kata against bare pytest without plugins, measured in one run.

Usage: python benchmarks/cold_startup.py [KATA_DIR] [--rounds N]
Target (issue 11): (kata wall time - the tests' own time) / bare pytest without plugins <= 1.5.
The tests' own time is pytest's setup + call + teardown per test, from a JUnit XML report. Extra
rows show where start-up goes: plugin autoload, and the services plugin (fixtures.plugin), whose
client libraries (psycopg, redis, docker) a pure kata does not need.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import xml.etree.ElementTree as ET
from pathlib import Path

from _timing import ROOT, pytest_cmd, wall_time

DEFAULT_KATA = "katas/python/scope_closures"  # no Hypothesis, no services


def tests_time(kata: str, xml: Path) -> float:
    """The tests' own seconds (setup, call, teardown) in one cold run of the solutions."""
    wall_time(pytest_cmd("--solutions", kata, f"--junitxml={xml}"), cwd=ROOT)
    return sum(float(case.get("time", 0)) for case in ET.parse(xml).iter("testcase"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("kata", nargs="?", default=DEFAULT_KATA)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    no_autoload = {**os.environ, "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"}
    with tempfile.TemporaryDirectory() as tmp:
        empty = Path(tmp) / "test_empty.py"
        empty.write_text("def test_nothing():\n    pass\n")
        ini = Path(tmp) / "pytest.ini"
        ini.write_text("[pytest]\n")
        bare = pytest_cmd(str(empty), "-c", str(ini))
        commands: dict[str, tuple[list[str], dict[str, str] | None]] = {
            "bare pytest, no plugins, one empty test": (bare, no_autoload),
            "bare pytest, plugins autoloaded": (bare, None),
            f"pytest --solutions {args.kata}": (pytest_cmd("--solutions", args.kata), None),
            "  the same without fixtures.plugin": (
                pytest_cmd("--solutions", args.kata, "-p", "no:fixtures.plugin"), None),
        }
        best = {name: float("inf") for name in commands}
        for _ in range(args.rounds):  # interleaved: the machine's load hits every row alike
            for name, (command, env) in commands.items():
                best[name] = min(best[name], wall_time(command, cwd=ROOT, env=env))
        own = tests_time(args.kata, Path(tmp) / "junit.xml")
    floor = best["bare pytest, no plugins, one empty test"]
    print(f"{'':48s} {'seconds':>8s} {'/ bare':>7s}")
    for name, seconds in best.items():
        print(f"{name:48s} {seconds:8.2f} {seconds / floor:7.2f}")
    kata = best[f"pytest --solutions {args.kata}"]
    ratio = (kata - own) / floor
    print(f"the tests' own time: {own:.2f} s; start-up ratio (kata - tests) / bare = {ratio:.2f} "
          f"({'within' if ratio <= 1.5 else 'OVER'} the 1.5 target); best of {args.rounds}, "
          f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    if os.environ.get("PYTHONDONTWRITEBYTECODE"):
        print("PYTHONDONTWRITEBYTECODE is set: pytest cannot cache the plugins it assertion-rewrites "
              "and compiles them again on every run (unset it for a learner's figures)")


if __name__ == "__main__":
    main()
