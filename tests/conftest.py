"""The engine's own tests start whole pytest runs in subprocesses: they get a generous limit."""

from __future__ import annotations

import pytest


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if item.get_closest_marker("time_limit") is None:
            item.add_marker(pytest.mark.time_limit(180))
