"""A kata's tests in ordered stages: `kata run` shows the stage the learner is on, not a wall.

A test joins a stage with `@pytest.mark.stage(2, "timeouts")` (on the test, its class or the
module's `pytestmark`). With `--kata-stages` (what `kata run` and `kata watch` pass), the tests run
in stage order; the first stage with a failure is the current one: its first failure is reported
whole, the others in a line each; a failure in a later stage is one line in a category of its own
("5 in a later stage" in pytest's last line, still a failure for the exit status and the reports),
and the summary says where the learner stands. Plain `pytest katas/<topic>` runs and reports everything as usual.
A kata without stage marks is one stage: nothing changes for it.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import NamedTuple

import pytest

from .not_yet import PREFIX as NOT_YET_PREFIX

LATER_PREFIX = "in a later stage: "
SECTION_LINES = 4  # of each captured output or server log beside the stage's first failure
LATER_CATEGORY = "in a later stage"  # pytest's stats key: its last line says "5 in a later stage"


class Stage(NamedTuple):
    number: int
    name: str


class StageProblem(ValueError):
    """A test's stage marks are not one well-formed `stage(number, name)`."""


def stage_of(item: pytest.Item) -> Stage | None:
    """The stage `item` belongs to; None if it has no stage mark; StageProblem if its marks
    disagree (a class in stage 2 holding a test marked stage 3) or one is malformed."""
    stages = {_parse(mark) for mark in item.iter_markers("stage")}
    if len(stages) > 1:
        listed = ", ".join(f"{s.number} {s.name!r}" for s in sorted(stages))
        raise StageProblem(f"marked with more than one stage: {listed}")
    return stages.pop() if stages else None


def _parse(mark: pytest.Mark) -> Stage:
    args = list(mark.args) + [mark.kwargs[k] for k in ("number", "name") if k in mark.kwargs]
    if (len(args) != 2 or not isinstance(args[0], int) or isinstance(args[0], bool)
            or args[0] < 1 or not isinstance(args[1], str) or not args[1].strip()):
        raise StageProblem(f"stage mark {mark.args!r} is not stage(number >= 1, \"name\")")
    return Stage(args[0], args[1].strip())


def check(stages: dict[str, Stage | None]) -> list[str]:
    """What is wrong with a kata's stages (test id -> its stage): every test in a stage or none,
    stages numbered 1, 2, 3... without a gap, one name per number."""
    marked = {test: stage for test, stage in stages.items() if stage is not None}
    if not marked:
        return []
    problems = [f"{test} has no stage mark (the kata's other tests have one)"
                for test, stage in stages.items() if stage is None]
    names: dict[int, set[str]] = {}
    for stage in marked.values():
        names.setdefault(stage.number, set()).add(stage.name)
    numbers = sorted(names)
    if numbers != list(range(1, len(numbers) + 1)):
        problems.append(f"stages must be numbered 1, 2, 3... without a gap; found {numbers}")
    problems += [f"stage {number} has more than one name: {sorted(found)}"
                 for number, found in names.items() if len(found) > 1]
    return problems


# test id -> its stage, or why its marks are not one stage; found once, at collection
found_key = pytest.StashKey[dict[str, "Stage | StageProblem"]]()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    found: dict[str, Stage | StageProblem] = {}
    for item in items:
        try:
            stage = stage_of(item)
        except StageProblem as problem:
            found[item.nodeid] = problem
            continue
        if stage is not None:
            found[item.nodeid] = stage
    config.stash[found_key] = found


def report_fields(found: Stage | StageProblem) -> dict[str, object]:
    """What the engine's JSON report says of a test's stage."""
    if isinstance(found, StageProblem):
        return {"stage_problem": str(found)}
    return {"stage": found.number, "stage_name": found.name}


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.getgroup("kata").addoption(
        "--kata-stages", action="store_true", default=False,
        help="run a kata's tests in stage order and report later stages' failures in one line",
    )


def pytest_configure(config: pytest.Config) -> None:
    if config.getoption("kata_stages", False):  # a plugin object only when asked
        config.pluginmanager.register(StagedRun(), "kata-stages")


class StagedRun:
    """Orders the tests by stage, finds the current stage, and keeps later stages short."""

    def __init__(self) -> None:
        self.stage: dict[str, Stage] = {}  # test id -> its stage (staged katas only)
        self.tests: dict[Stage, int] = {}
        self.failing: dict[Stage, int] = {}
        self.current: Stage | None = None  # the first stage with a failure
        self._counted: set[str] = set()  # a test failing in call and teardown counts once
        self.shown_in_full = False  # the current stage's first real failure is shown whole
        self.shortened = 0  # and how many others of that stage are shown as a line
        self.real_failures = 0  # in the current stage, not "not implemented yet"
        self.hidden_warnings = 0

    @pytest.hookimpl(trylast=True)  # after any reordering plugin (and the stages found): stage order wins
    def pytest_collection_modifyitems(self, config: pytest.Config, items: list[pytest.Item]) -> None:
        known = config.stash.get(found_key, {})
        for item in items:  # the ones left after -k and the like
            found = known.get(item.nodeid)
            if isinstance(found, Stage):  # a StageProblem: `kata verify` names it; the run goes on
                self.stage[item.nodeid] = found
                self.tests[found] = self.tests.get(found, 0) + 1
        if len(self.tests) > 1:
            last = max(self.tests)
            items.sort(key=lambda item: self.stage.get(item.nodeid, last))

    @pytest.hookimpl(wrapper=True, tryfirst=True)  # outermost: after not_yet has had its say
    def pytest_runtest_makereport(
        self, item: pytest.Item, call: pytest.CallInfo[None]
    ) -> Generator[None, pytest.TestReport, pytest.TestReport]:
        report = yield
        stage = self.stage.get(item.nodeid)
        if not report.failed or stage is None or len(self.tests) < 2:
            return report
        if report.nodeid not in self._counted:
            self._counted.add(report.nodeid)
            self.failing[stage] = self.failing.get(stage, 0) + 1
        if self.current is None:
            self.current = stage
        if stage.number > self.current.number:
            report.longrepr = f"{LATER_PREFIX}stage {stage.number}, {stage.name}"
        elif not (isinstance(report.longrepr, str) and report.longrepr.startswith(NOT_YET_PREFIX)):
            self.real_failures += 1
            if self.shown_in_full:  # one failure in full is a screen; the others, a line each
                report.longrepr = _first_line(report)
                self.shortened += 1
                report.sections = []
            elif call.excinfo is not None and _chained(call.excinfo.value):
                # the last exception whole, without the ones it ended (an HTTP client's timeout
                # behind three layers of its library's own): `pytest <test>` shows the chain
                excinfo = call.excinfo
                excinfo.traceback = excinfo.traceback.cut(path=item.path).filter(excinfo)
                report.longrepr = excinfo.getrepr(style="short", chain=False)
            # its captured output and server logs: the last lines (`pytest <test>` shows them all)
            report.sections = [(title, _last_lines(text, SECTION_LINES)) for title, text in report.sections]
            self.shown_in_full = True
        return report

    def pytest_report_teststatus(self, report: pytest.TestReport) -> tuple[str, str, str] | None:
        longrepr = report.longrepr
        if report.failed and isinstance(longrepr, str) and longrepr.startswith(LATER_PREFIX):
            return LATER_CATEGORY, "f", "IN A LATER STAGE"
        return None

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        # before the terminal's summary: a stub's "coroutine was never awaited" and the like say
        # nothing while every failure is a part not written yet; once one is, they are shown
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        if len(self.tests) > 1 and self.real_failures == 0 and reporter is not None:
            self.hidden_warnings = len(reporter.stats.pop("warnings", []))

    def pytest_terminal_summary(self, terminalreporter: pytest.TerminalReporter) -> None:
        if len(self.tests) < 2:
            return
        total = max(self.tests).number
        terminalreporter.section("stages", sep="-", bold=True)
        for stage in sorted(self.tests):
            count, failing = self.tests[stage], self.failing.get(stage, 0)
            where = f"stage {stage.number} of {total}, {stage.name}:"
            if self.current is None or stage < self.current:
                terminalreporter.write_line(f"{where} green ({_tests(count)})", green=True)
            elif stage == self.current:
                terminalreporter.write_line(
                    f"{where} {failing} of {_tests(count)} failing  <- you are here", red=True, bold=True
                )
            else:
                terminalreporter.write_line(f"{where} {_tests(count)}, for later")
        if self.hidden_warnings:
            count = self.hidden_warnings
            terminalreporter.write_line(f"({count} warning{'' if count == 1 else 's'} of code not "
                                        "written yet not shown; `pytest <kata folder>` shows them)")
        if self.shortened:
            terminalreporter.write_line(
                f"(the stage's first failure is shown whole, {self.shortened} more in a line each: "
                "`pytest <file>::<test>` shows one of them whole)"
            )


def _last_lines(text: str, count: int) -> str:
    lines = text.rstrip("\n").splitlines()
    if len(lines) <= count:
        return text
    return f"({len(lines) - count} lines above not shown)\n" + "\n".join(lines[-count:]) + "\n"


def _chained(error: BaseException) -> bool:
    return error.__cause__ is not None or (error.__context__ is not None and not error.__suppress_context__)


def _first_line(report: pytest.TestReport) -> str:
    crash = getattr(report.longrepr, "reprcrash", None)
    text = crash.message if crash is not None else str(report.longrepr)
    line = next((line.strip() for line in text.splitlines() if line.strip()), "failed")
    return line if len(line) <= 150 else line[:147] + "..."


def _tests(count: int) -> str:
    return "1 test" if count == 1 else f"{count} tests"
