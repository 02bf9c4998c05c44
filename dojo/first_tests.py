"""`--kata-first=TEXT`: the tests that carry TEXT run first; `--kata-stop-at=TEXT`: the session
stops at the first failure whose report says TEXT.

`kata verify` judges a known mistake by the failure whose message names the cause. That phrase is
nearly always in the failing test's own source (its assertion message) or in its parameters (a
scenario's rule), so those tests go to the front, and the run ends as soon as a failure says it:
the mistake is judged after one test instead of after every test. When the phrase lives in a
shared helper (a diagnosis only some tests reach), the run goes on only until such a failure, not
through every test (a mistake that makes each test hang until its limit paid for all of them).
"""

from __future__ import annotations

import inspect
import re

import pytest

_JOINED_LITERALS = re.compile(r"""["']\s*\n\s*[rbfu]*["']""")  # "...the loop "\n    "does not..."


def _normalise(text: str) -> str:
    return " ".join(_JOINED_LITERALS.sub("", text).lower().split())


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.getgroup("kata").addoption(
        "--kata-first",
        default=None,
        metavar="TEXT",
        help="run first the tests whose source or parameters contain TEXT (case-insensitive)",
    )
    parser.getgroup("kata").addoption(
        "--kata-stop-at",
        default=None,
        metavar="TEXT",
        help="stop the session at the first failure whose report contains TEXT (case-insensitive)",
    )


def pytest_configure(config: pytest.Config) -> None:
    text = config.getoption("kata_stop_at", None)
    if text:  # a plugin object only when asked, as pytest's own junitxml is
        config.pluginmanager.register(StopAt(_normalise(text)), "kata-stop-at")


class StopAt:
    """Ends the session at the first failure whose report carries the phrase."""

    def __init__(self, phrase: str) -> None:
        self.phrase = phrase
        self.session: pytest.Session | None = None

    def pytest_sessionstart(self, session: pytest.Session) -> None:
        self.session = session

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if not report.failed or self.session is None:
            return
        shown = report.nodeid + report.longreprtext + "".join(content for _, content in report.sections)
        if self.phrase in _normalise(shown):
            self.session.shouldstop = f"a failure says {self.phrase!r}"


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    text = config.getoption("kata_first")
    if not text:
        return
    wanted = _normalise(text)
    sources: dict[object, str] = {}

    def carries(item: pytest.Item) -> bool:
        function = getattr(item, "function", None)
        if function is not None and function not in sources:
            try:
                sources[function] = _normalise(inspect.getsource(function))
            except (OSError, TypeError):
                sources[function] = ""
        params = getattr(getattr(item, "callspec", None), "params", {})
        shown = " ".join(repr(getattr(v, "__dict__", v)) for v in params.values())
        return wanted in sources.get(function, "") or wanted in _normalise(shown)

    items.sort(key=lambda item: not carries(item))  # stable: the rest keep their order
