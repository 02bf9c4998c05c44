"""Runs a kata's tests on a drill's scratch copy with a warm pytest; katas/ is only read."""

from __future__ import annotations

import tempfile
from pathlib import Path
from types import TracebackType

from ..learner.run import read_report
from ..learner.state import RunRecord
from ..running.launch import learner_env, pytest_args
from ..running.warm_client import WarmPytest
from .workspace import Workspace


class ScratchRunner:
    """A callable for `Drill`: one pytest session per run, the next interpreter warmed ahead
    (as `kata watch` does), with --kata-override pointing the tests at the scratch files."""

    def __init__(self, root: Path) -> None:
        self.warm = WarmPytest(root, learner_env())

    def __call__(self, workspace: Workspace) -> RunRecord | None:
        with tempfile.TemporaryDirectory(prefix="kata-drill-") as tmp:
            report = Path(tmp) / "report.json"
            args = [*pytest_args(workspace.kata, report), *workspace.overrides()]
            code = self.warm.run(args)
            record = read_report(report, workspace.fingerprint(), code)
        self.warm.ensure()
        return record

    def __enter__(self) -> ScratchRunner:
        self.warm.ensure()  # importing pytest while the learner reads the card
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.warm.close()
