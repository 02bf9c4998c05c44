"""Settings of the kata plugin, read once: command-line flag > environment > ini > default."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import pytest

TRUTHY = {"1", "true", "yes", "on"}
FALSY = {"0", "false", "no", "off", ""}


@dataclass(frozen=True)
class Settings:
    """Which tree the tests read (katas/ or solutions/) and per-file overrides."""

    solutions: bool
    overrides: dict[str, Path]  # "topic/kata/file" -> the file to use instead
    report: Path | None
    stress: bool = False


def add_options(parser: pytest.Parser) -> None:
    group = parser.getgroup("kata", "backend katas")
    group.addoption(
        "--solutions",
        action="store_true",
        default=None,
        help="run the tests against the reference solutions in solutions/ "
        "(env KATA_SOLUTIONS=1, ini kata_solutions = true)",
    )
    group.addoption(
        "--kata-override",
        action="append",
        default=[],
        metavar="TOPIC/KATA/FILE=PATH",
        help="use PATH in place of a kata file (the maintainer check and drills use this)",
    )
    group.addoption(
        "--kata-report",
        default=None,
        metavar="PATH",
        help="write each test's outcome as JSON to PATH (the maintainer check reads it)",
    )
    group.addoption(
        "--stress",
        action="store_true",
        default=False,
        help="amplify races: switch threads every 10 microseconds instead of every 5 ms "
        "(env KATA_STRESS=1); combine with --count N to see 'passed k of N'",
    )
    parser.addini("kata_solutions", "run the tests against solutions/", type="bool", default=False)


def _flag(value: str, name: str) -> bool:
    lowered = value.strip().lower()
    if lowered in TRUTHY:
        return True
    if lowered in FALSY:
        return False
    raise pytest.UsageError(f"{name}={value!r}: use 1 or 0 (true/false)")


def read(config: pytest.Config) -> Settings:
    flag = config.getoption("solutions")
    if flag is not None:
        solutions = bool(flag)
    elif "KATA_SOLUTIONS" in os.environ:
        solutions = _flag(os.environ["KATA_SOLUTIONS"], "KATA_SOLUTIONS")
    else:
        solutions = bool(config.getini("kata_solutions"))
    overrides: dict[str, Path] = {}
    for item in config.getoption("kata_override"):
        target, sep, replacement = item.partition("=")
        if not sep or target.count("/") != 2:
            raise pytest.UsageError(
                f"--kata-override {item!r}: expected TOPIC/KATA/FILE=PATH, "
                "e.g. concurrency/bounded_queue/bounded_queue.py=/tmp/mine.py"
            )
        path = Path(replacement).resolve()
        if not path.is_file():
            raise pytest.UsageError(f"--kata-override {item!r}: {path} is not a file")
        overrides[target] = path
    report = config.getoption("kata_report")
    stress = config.getoption("stress") or _flag(os.environ.get("KATA_STRESS", "0"), "KATA_STRESS")
    return Settings(solutions, overrides, Path(report) if report else None, stress)
