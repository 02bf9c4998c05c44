"""The engine's JSON report (dojo/json_report.py) read back as typed outcomes: one reader for
`kata run` and `kata verify`. Imports nothing heavy: the `kata` command reads it."""

from __future__ import annotations

import json
from dataclasses import dataclass, fields
from pathlib import Path


@dataclass
class TestOutcome:
    nodeid: str
    outcome: str  # passed | failed | error | skipped
    phase: str  # collect | setup | call | teardown
    message: str = ""
    details: str = ""
    stage: int | None = None  # the test's stage (dojo/stages.py), if its kata has stages
    stage_name: str = ""
    stage_problem: str = ""  # its stage marks disagree or are malformed

    @property
    def broken(self) -> bool:
        return self.outcome in ("failed", "error")


_KNOWN = {f.name for f in fields(TestOutcome)} - {"nodeid"}


def read(path: Path) -> list[TestOutcome] | None:
    """The outcomes in the report at `path`, in the order pytest reported them; None if there is
    no readable report (pytest never got to write it). Keys a newer engine adds are ignored."""
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(raw, dict):
        return None
    return [TestOutcome(nodeid=nodeid, **{k: v for k, v in entry.items() if k in _KNOWN})
            for nodeid, entry in raw.items() if isinstance(entry, dict)]
