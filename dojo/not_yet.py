"""A test that fails only because the learner has not written that part yet says so in one line.

On a fresh stub every test fails with the stub's NotImplementedError, and pytest would print each
traceback in full: hundreds of lines (700 for rw_lock) that say nothing but "not written yet",
burying the first real failure once the learner starts. Such a failure still fails (the exit
status, the engine's report and JUnit XML see a failure) but is reported in a category of its own:
one line per missing piece at the end ("RWLock.acquire_read: 8 tests") and "8 not implemented
yet" in pytest's last line, so the FAILURES section holds only real failures. Every other failure
keeps pytest's full report.
"""

from __future__ import annotations

import contextlib
import functools
import re
from collections import Counter
from collections.abc import Generator
from pathlib import Path

import pytest

PREFIX = "not implemented yet: "
CATEGORY = "not implemented yet"  # pytest's stats key: its last line says "8 not implemented yet"


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    excinfo = call.excinfo
    if report.failed and excinfo is not None:
        stub_error = _stub_error(item, excinfo.value)
        if stub_error is not None:
            report.longrepr = f"{PREFIX}{stub_error or 'NotImplementedError'}"
        else:
            piece = _stub_error_in_text(item, str(report.longrepr))
            if piece is not None:
                report.longrepr = f"{PREFIX}{piece}"
    return report


# a traceback printed into the failure (a subprocess's output, a server thread's log), its lines
# perhaps behind pytest's "E   "
_RAISED_IN = re.compile(r'File "[^"\n]*?([^"/\\\n]+)", line \d+, in ')
_NOT_IMPLEMENTED = re.compile(r"^(?:E\s)?\s*NotImplementedError(?:: (.+))?$", re.MULTILINE)


def _stub_error_in_text(item: pytest.Item, text: str) -> str | None:
    """The stub's NotImplementedError quoted in the failure's text: the last traceback in it ends
    in the kata's learner file and raises NotImplementedError (the learner's code ran in another
    process or a thread the test only saw the output of). None otherwise."""
    from .pytest_plugin import kata_of  # the plugin loads this module: import it only when asked

    kata = kata_of(item)
    if kata is None:
        return None
    for quoted in _QUOTED.finditer(text):  # "download() gave NotImplementedError('download')"
        if quoted.group(2) in _stub_pieces(tuple(_versions(kata.learner_files()))):
            return quoted.group(2)
    raised = list(_NOT_IMPLEMENTED.finditer(text))
    if not raised:
        return None
    before = [m.group(1) for m in _RAISED_IN.finditer(text, 0, raised[-1].start())]
    if not before or before[-1] not in kata.files:
        return None
    return (raised[-1].group(1) or "NotImplementedError").strip()


# the repr of the error, quoted by a test that caught it
_QUOTED = re.compile(r"""NotImplementedError\((['"])(.+?)\1\)""")
_RAISE_LITERAL = re.compile(r"""raise NotImplementedError\((['"])(.+?)\1\)""")


def _versions(files: list[Path]) -> list[tuple[Path, int]]:
    """Each file with its modification time: a file the learner saved since is read again."""
    found = []
    for path in files:
        with contextlib.suppress(OSError):
            found.append((path, path.stat().st_mtime_ns))
    return found


@functools.lru_cache(maxsize=64)
def _stub_pieces(files: tuple[tuple[Path, int], ...]) -> frozenset[str]:
    """The messages the learner's files raise NotImplementedError with ("Answer.answer"): only
    those, quoted in a failure, mean a part not written yet."""
    pieces: set[str] = set()
    for path, _ in files:
        with contextlib.suppress(OSError):
            pieces.update(m.group(2) for m in _RAISE_LITERAL.finditer(path.read_text(encoding="utf-8")))
    return frozenset(pieces)


def _stub_error(item: pytest.Item, error: BaseException) -> NotImplementedError | None:
    """The NotImplementedError raised by the kata's own learner file (the stub, its scratch copy in
    a drill, an override) that made the test fail: the error itself, or one it caused (a test that
    catches it and fails saying "read_frame raised NotImplementedError instead of ..."). None if
    the failure has another cause, or the NotImplementedError came from a test or a library."""
    from .pytest_plugin import kata_of  # the plugin loads this module: import it only when asked

    kata = kata_of(item)
    seen: set[int] = set()
    current: BaseException | None = error
    while kata is not None and current is not None and id(current) not in seen:
        seen.add(id(current))
        if type(current) is NotImplementedError and _innermost_file(current) in kata.files:
            return current
        if isinstance(current, BaseExceptionGroup):  # Hypothesis' several distinct failures
            found = (_stub_error(item, member) for member in current.exceptions)
            return next((stub for stub in found if stub is not None), None)
        current = current.__cause__ or current.__context__
    return None


def _innermost_file(error: BaseException) -> str:
    tb = error.__traceback__
    if tb is None:
        return ""
    while tb.tb_next is not None:
        tb = tb.tb_next
    return Path(tb.tb_frame.f_code.co_filename).name


def pytest_report_teststatus(report: pytest.TestReport) -> tuple[str, str, str] | None:
    # recognised by the one-line report itself, which survives xdist's trip to the controller
    if report.when == "call" and report.failed and _is_not_yet(report):
        return CATEGORY, "F", "NOT IMPLEMENTED YET"
    return None


def _is_not_yet(report: pytest.TestReport) -> bool:
    return isinstance(report.longrepr, str) and report.longrepr.startswith(PREFIX)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    reports = terminalreporter.stats.get(CATEGORY, [])
    if not reports:
        return
    missing = Counter(str(report.longrepr).removeprefix(PREFIX) for report in reports)
    terminalreporter.section(CATEGORY, sep="-", yellow=True)
    for piece, tests in missing.items():  # in the order the tests first met them
        terminalreporter.write_line(f"{piece}: {tests} test{'' if tests == 1 else 's'}")
