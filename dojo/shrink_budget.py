"""Hypothesis stops shrinking in time for a failing test to report its example within its limit.

Hypothesis shrinks a failing example for up to five minutes. A property test whose examples fork
processes or talk to a server (tens of milliseconds each) can shrink far past the kata's time
limit, and the learner then sees "timed out: deadlock or infinite loop?" instead of the
counterexample that explains the bug. Hypothesis keeps that cap as an internal constant on
purpose (HypothesisWorks/hypothesis#3243, #3400); its own tests patch it, and so do we, only
while a test runs, and only if it is still where we expect it. A partly shrunk example is what
Hypothesis itself reports when the cap ends shrinking; its note about that ("more than five
minutes... PLEASE REPORT THIS") is then replaced by one that tells the truth.
"""

from __future__ import annotations

import sys
from collections.abc import Generator, Iterator
from contextlib import contextmanager

import pytest

ENGINE = "hypothesis.internal.conjecture.engine"
CAP = "MAX_SHRINKING_SECONDS"
# Of the test's time limit, the part shrinking may take: generation comes first, and the test
# must still finish, report and tear down inside the limit.
SHARE = 1 / 3
# The start of the note Hypothesis prints when the cap ends shrinking (hypothesis 6.170)
SLOW_SHRINK_NOTE = "WARNING: Hypothesis has spent more than five minutes working to shrink"
OUR_NOTE = ("Hypothesis stopped shrinking the failing example at a third of the test's time limit, "
            "so that the failure shows before the limit: the example may not be the smallest.")


@contextmanager
def shrink_within(time_limit: float) -> Iterator[None]:
    """While the block runs, Hypothesis shrinks for at most a third of `time_limit` seconds."""
    engine = sys.modules.get(ENGINE)  # not imported: the test module doesn't use Hypothesis
    before = getattr(engine, CAP, None)
    if not isinstance(before, (int, float)):
        yield
        return
    setattr(engine, CAP, _budget(time_limit, before))
    try:
        yield
    finally:
        setattr(engine, CAP, before)


def _budget(time_limit: float, before: float) -> float:
    return min(before, max(1.0, time_limit * SHARE))


@pytest.hookimpl(wrapper=True, tryfirst=True)  # outermost: after Hypothesis' plugin adds its note
def pytest_runtest_makereport(item: pytest.Item) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    report.sections = [
        (title, _truthful(text)) if title == "Hypothesis" else (title, text) for title, text in report.sections
    ]
    return report


def _truthful(text: str) -> str:
    """Hypothesis' note with its five-minute warning (not true here, nothing to report upstream)
    replaced by what happened."""
    start = text.find(SLOW_SHRINK_NOTE)
    if start < 0:
        return text
    end = text.find("performance for everyone.", start)
    end = len(text) if end < 0 else end + len("performance for everyone.")
    return text[:start] + OUR_NOTE + text[end:]
