"""Hypothesis stops shrinking in time for a failing test to report its example within its limit.

Hypothesis shrinks a failing example for up to five minutes. A property test whose examples fork
processes or talk to a server (tens of milliseconds each) can shrink far past the kata's time
limit, and the learner then sees "timed out: deadlock or infinite loop?" instead of the
counterexample that explains the bug. Hypothesis keeps that cap as an internal constant on
purpose (HypothesisWorks/hypothesis#3243, #3400); its own tests patch it, and so do we, only
while a test runs, and only if it is still where we expect it. A partly shrunk example is what
Hypothesis itself reports when the cap ends shrinking.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager

ENGINE = "hypothesis.internal.conjecture.engine"
CAP = "MAX_SHRINKING_SECONDS"
# Of the test's time limit, the part shrinking may take: generation comes first, and the test
# must still finish, report and tear down inside the limit.
SHARE = 1 / 3


@contextmanager
def shrink_within(time_limit: float) -> Iterator[None]:
    """While the block runs, Hypothesis shrinks for at most a third of `time_limit` seconds."""
    engine = sys.modules.get(ENGINE)  # not imported: the test module doesn't use Hypothesis
    before = getattr(engine, CAP, None)
    if not isinstance(before, (int, float)):
        yield
        return
    setattr(engine, CAP, min(before, max(1.0, time_limit * SHARE)))
    try:
        yield
    finally:
        setattr(engine, CAP, before)
