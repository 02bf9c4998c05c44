"""Loads the kata engine's pytest plugin (and the services fixtures) for every run in this repo."""

from __future__ import annotations

import sys

import pytest

pytest_plugins = ["dojo.pytest_plugin", "fixtures.plugin", "fixtures.docker_tools"]

# The entry-point name of Hypothesis' pytest plugin (distribution "hypothesis", group pytest11).
HYPOTHESIS_PLUGIN = "hypothesispytest"


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session) -> None:
    """Keep a run that never used Hypothesis from importing it just to print its summary.

    Hypothesis' plugin is careful to import nothing until a test uses Hypothesis, except in
    pytest_terminal_summary, which imports hypothesis.internal.observability unconditionally
    (hypothesis 6.170): about 0.8 s of modules on a quiet machine, more than a pure kata's tests,
    and far more when PYTHONDONTWRITEBYTECODE makes pytest re-rewrite each of them. With no
    Hypothesis test in the run that summary has nothing to say, so the plugin leaves before it.
    """
    # under xdist the controller prints the workers' Hypothesis findings: leave it alone there
    distributed = getattr(session.config.option, "dist", "no") != "no"
    if "hypothesis" not in sys.modules and not distributed:
        manager = session.config.pluginmanager
        if manager.get_plugin(HYPOTHESIS_PLUGIN) is not None:
            manager.unregister(name=HYPOTHESIS_PLUGIN)
