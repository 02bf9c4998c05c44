"""`kata report`: the learner's current state, per kata and per test, as a file a grader reads.

JUnit XML is written by pytest itself (`--junitxml`), the format GitHub Classroom, GitLab and
Jenkins read; JSON is the engine's own per-test report, grouped by kata. Either way the tests run
on the learner's files, never the solutions, in one pytest session over the chosen katas.
"""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ..catalogue import Catalogue, Kata
from ..running import interrupts
from ..running.launch import learner_env

FORMATS = ("junit", "json")
SUITE_NAME = "backend-katas"


@dataclass
class KataResult:
    kata: str
    passed: int = 0
    failed: int = 0
    skipped: int = 0
    tests: list[dict[str, str]] = field(default_factory=list)  # name, outcome, message


@dataclass
class Summary:
    exit_code: int  # pytest's
    katas: list[KataResult]

    @property
    def passed(self) -> int:
        return sum(k.passed for k in self.katas)

    @property
    def failed(self) -> int:
        return sum(k.failed for k in self.katas)


def write(catalogue: Catalogue, katas: list[Kata], format_: str, output: Path) -> Summary:
    """Run the tests of `katas` on the learner's files and write the report to `output`."""
    with tempfile.TemporaryDirectory(prefix="kata-report-") as tmp:
        engine_report = Path(tmp) / "report.json"
        args = [sys.executable, "-m", "pytest", *(str(k.kata_dir) for k in katas), "-p", "no:cacheprovider",
                "-q", "--no-header", "--tb=line", f"--kata-report={engine_report}"]
        if format_ == "junit":
            args += [f"--junitxml={output.resolve()}", "-o", f"junit_suite_name={SUITE_NAME}",
                     "-o", "junit_family=xunit2"]
        code = interrupts.wait_for(subprocess.Popen(args, cwd=catalogue.root, env=learner_env(),
                                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        entries = _read(engine_report)
    summary = Summary(code, [_kata_result(catalogue, kata, entries) for kata in katas])
    if format_ == "json":
        document = {"generated": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                    "pytest_exit_code": code, "katas": [asdict(k) for k in summary.katas]}
        output.write_text(json.dumps(document, indent=1) + "\n", encoding="utf-8")
    return summary


def _read(report: Path) -> dict[str, dict[str, str]]:
    try:
        loaded = json.loads(report.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return loaded if isinstance(loaded, dict) else {}


def _kata_result(catalogue: Catalogue, kata: Kata, entries: dict[str, dict[str, str]]) -> KataResult:
    result = KataResult(kata.slug)
    prefix = kata.kata_dir.relative_to(catalogue.root).as_posix() + "/"
    for nodeid, entry in entries.items():
        if not nodeid.startswith(prefix) or entry.get("phase") == "collect":
            continue
        outcome = entry.get("outcome", "failed")
        outcome = "failed" if outcome == "error" else outcome
        setattr(result, outcome, getattr(result, outcome) + 1)
        result.tests.append({"name": nodeid.split("::", 1)[-1], "outcome": outcome,
                             "message": entry.get("message", "") if outcome != "passed" else ""})
    collect_errors = [e for n, e in entries.items() if n.startswith(prefix) and e.get("phase") == "collect"]
    if collect_errors and not result.tests:  # nothing ran: the kata counts as one failure
        result.failed = 1
        result.tests.append({"name": "collection", "outcome": "failed",
                             "message": collect_errors[0].get("message", "")})
    return result
