"""Keep a run that never used Hypothesis from importing it just to print its summary.

Hypothesis' pytest plugin is careful to import nothing until a test uses Hypothesis, except in
pytest_terminal_summary, which imports hypothesis.internal.observability unconditionally
(hypothesis 6.170): about 0.1 s of modules on a quiet machine, more than a pure kata's tests,
and far more when PYTHONDONTWRITEBYTECODE makes pytest re-rewrite each of them. With no
Hypothesis test in the run that summary has nothing to say, so the plugin leaves before it.
"""

from __future__ import annotations

import sys

import pytest

# The plugin by the module pyproject's addopts load it as, and by its entry-point name (group
# pytest11), under which autoload registers it when a run overrides addopts.
HYPOTHESIS_PLUGIN_NAMES = ("_hypothesis_pytestplugin", "hypothesispytest")


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session) -> None:
    # under xdist the controller prints the workers' Hypothesis findings: leave it alone there
    distributed = getattr(session.config.option, "dist", "no") != "no"
    if "hypothesis" in sys.modules or distributed:
        return
    manager = session.config.pluginmanager
    for name in HYPOTHESIS_PLUGIN_NAMES:
        if manager.get_plugin(name) is not None:
            manager.unregister(name=name)
