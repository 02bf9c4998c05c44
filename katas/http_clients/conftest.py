"""Fixtures for the http_clients katas: a scriptable misbehaving HTTP server and a connect black hole."""

# re-exported (the `as` form says so to linters): pytest finds fixtures by name in a conftest
from fixtures.flaky_server import black_hole as black_hole
from fixtures.flaky_server import flaky_server as flaky_server
