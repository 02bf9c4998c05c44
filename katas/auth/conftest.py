"""Fixtures the auth katas share: a client for the learner's servers on 127.0.0.1."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests

from dojo.testing import local_http


@pytest.fixture
def http() -> Iterator[requests.Session]:
    """The test's HTTP client: nothing from the environment between it and 127.0.0.1."""
    with local_http() as session:
        yield session
