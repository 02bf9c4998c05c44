"""A test that fails only because the learner has not written that part yet says so in one line.

On a fresh stub every test fails with the stub's NotImplementedError, and pytest would print each
traceback in full: hundreds of lines (700 for rw_lock) that say nothing but "not written yet",
burying the first real failure once the learner starts. Such a failure is cut to one line,
"not implemented yet: RWLock.acquire_read"; every other failure keeps pytest's full report.
"""

from __future__ import annotations

from collections.abc import Generator
from pathlib import Path

import pytest

PREFIX = "not implemented yet: "


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    excinfo = call.excinfo
    if report.failed and excinfo is not None and _raised_by_a_stub(item, excinfo):
        report.longrepr = f"{PREFIX}{excinfo.value or excinfo.typename}"
    return report


def _raised_by_a_stub(item: pytest.Item, excinfo: pytest.ExceptionInfo[BaseException]) -> bool:
    """NotImplementedError raised by the kata's own learner file (the stub, its scratch copy in a
    drill, an override), not by a test, a helper or a library."""
    from .pytest_plugin import kata_of  # the plugin loads this module: import it only when asked

    if type(excinfo.value) is not NotImplementedError or not excinfo.traceback:
        return False
    kata = kata_of(item)
    raised_in = Path(str(excinfo.traceback[-1].path))
    return kata is not None and raised_in.name in kata.files
