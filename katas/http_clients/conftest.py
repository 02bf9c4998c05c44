"""Fixtures for the http_clients katas: a scriptable misbehaving HTTP server and a connect black hole."""

from fixtures.flaky_server import black_hole, flaky_server  # noqa: F401 (fixtures, by name)
