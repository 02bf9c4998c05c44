"""A services setting that makes no sense blocks no pure kata and is never called an interruption (issue 33, item 9)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import KATA_COMMAND, cli_env

pytestmark = pytest.mark.time_limit(300)

SERVICE_TEST = """
def test_pure():
    assert 1 + 1 == 2


def test_needs_redis(redis_client):
    redis_client.ping()
"""


def _with_services_plugin(repo: Path) -> None:
    (repo / "conftest.py").write_text('pytest_plugins = ["dojo.pytest_plugin", "fixtures.plugin"]\n')


def test_kata_run_of_a_pure_kata_with_a_bogus_backend_runs_the_tests(repo: Path):
    _with_services_plugin(repo)
    done = subprocess.run([*KATA_COMMAND, "run", "adder"], cwd=repo, capture_output=True, text=True,
                          env={**cli_env(), "KATA_SERVICES": "bogus"}, timeout=120)
    output = done.stdout + done.stderr
    assert "interrupted" not in output, output
    assert "2 of 2 tests failing" in output, output


def test_a_bogus_backend_fails_only_the_tests_that_need_a_service_saying_what_to_fix(repo: Path):
    _with_services_plugin(repo)
    (repo / "test_services_here.py").write_text(SERVICE_TEST)
    done = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-rA",
                           "test_services_here.py"], cwd=repo, capture_output=True, text=True,
                          env={**cli_env(), "KATA_SERVICES": "bogus"}, timeout=120)
    output = done.stdout + done.stderr
    assert done.returncode == 1, output
    assert "PASSED test_services_here.py::test_pure" in output, output
    assert "services backend 'bogus' (from KATA_SERVICES): use one of auto, docker, local" in output, output
    assert "Traceback" not in output
