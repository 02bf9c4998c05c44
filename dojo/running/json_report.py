"""`--kata-report=FILE`: each test's outcome as JSON, read back by `kata run` and `kata verify`.

A plugin object registered only when the option is given (as pytest's own junitxml is), so each
session, including each run the warm server forks, starts with its own empty record.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ..stages import found_key, report_fields

PLUGIN_NAME = "kata-json-report"


def register(config: pytest.Config, path: Path | None) -> None:
    if path is not None and not hasattr(config, "workerinput"):  # xdist: the controller writes it
        config.pluginmanager.register(JsonReport(path), PLUGIN_NAME)


class JsonReport:
    """nodeid -> {"outcome": passed|failed|error|skipped, "phase", "message", "details", and the
    test's stage fields (dojo/stages.py)}; the first problem of a test is the one kept."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.records: dict[str, dict[str, object]] = {}

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.failed or report.skipped:
            self._record(report.nodeid, report.when or "call", report.outcome, report)
        else:
            self.records.setdefault(report.nodeid, {"outcome": "passed", "phase": "call"})

    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        if report.failed:
            self._record(report.nodeid or ".", "collect", "failed", report)

    def _record(
        self, nodeid: str, when: str, outcome: str, report: pytest.TestReport | pytest.CollectReport
    ) -> None:
        entry = self.records.setdefault(nodeid, {"outcome": "passed", "phase": "call"})
        if entry["outcome"] in ("failed", "error"):
            return  # the first problem is the one that explains the rest
        if outcome == "skipped":
            kind = "skipped"
        else:
            # a failure in the test body is a failure; in collection or a fixture, an error
            kind = "failed" if when == "call" else "error"
        entry.update(outcome=kind, phase=when, **_describe(report))

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        for nodeid, found in session.config.stash.get(found_key, {}).items():
            if nodeid in self.records:
                self.records[nodeid].update(report_fields(found))
        self.path.write_text(json.dumps(self.records, indent=1), encoding="utf-8")


def _describe(report: pytest.TestReport | pytest.CollectReport) -> dict[str, str]:
    longrepr = report.longrepr
    if isinstance(longrepr, tuple):  # a skip: (path, line, reason)
        return {"message": str(longrepr[2]), "details": ""}
    full = str(longrepr or "")
    crash = getattr(longrepr, "reprcrash", None)
    message = crash.message if crash is not None else (full.strip().splitlines() or [""])[-1]
    return {"message": message, "details": full}
