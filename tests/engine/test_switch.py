"""The same tests run against katas/ or solutions/, chosen by flag, env var or ini option."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from .conftest import FakeRepo


def test_plain_pytest_runs_the_stub_and_fails(adder_repo: FakeRepo) -> None:
    result = adder_repo.pytest("katas/demo")
    assert result.returncode == 1
    assert "2 not implemented yet" in result.stdout and "\nadd: 2 tests\n" in result.stdout, result.stdout
    assert "testing katas/ (your code)" in result.stdout


def test_the_solutions_flag_runs_the_same_tests_on_the_solution(adder_repo: FakeRepo) -> None:
    result = adder_repo.pytest("--solutions", "katas/demo")
    assert result.returncode == 0, result.stdout
    assert "2 passed" in result.stdout
    assert "testing solutions/" in result.stdout


@pytest.mark.parametrize(("value", "code"), [("1", 0), ("true", 0), ("0", 1)])
def test_the_env_var_switches_too(adder_repo: FakeRepo, value: str, code: int) -> None:
    result = adder_repo.pytest("katas/demo", env={"KATA_SOLUTIONS": value})
    assert result.returncode == code, result.stdout


def test_a_nonsense_env_value_is_a_usage_error(adder_repo: FakeRepo) -> None:
    result = adder_repo.pytest("katas/demo", env={"KATA_SOLUTIONS": "maybe"})
    assert result.returncode == 4
    assert "KATA_SOLUTIONS='maybe'" in result.stderr


def test_the_ini_option_switches_and_the_flag_wins_over_env(adder_repo: FakeRepo) -> None:
    (adder_repo.root / "pyproject.toml").write_text("[tool.pytest.ini_options]\nkata_solutions = true\n")
    assert adder_repo.pytest("katas/demo").returncode == 0
    assert adder_repo.pytest("katas/demo", env={"KATA_SOLUTIONS": "0"}).returncode == 1
    flagged = adder_repo.pytest("--solutions", "katas/demo", env={"KATA_SOLUTIONS": "0"})
    assert flagged.returncode == 0


def test_an_override_replaces_one_file(adder_repo: FakeRepo) -> None:
    wrong = adder_repo.root / "wrong.py"
    wrong.write_text("def add(a, b):\n    return a - b\n")
    result = adder_repo.pytest("katas/demo", "--kata-override", f"demo/adder/adder.py={wrong}")
    assert result.returncode == 1
    assert "assert -1 == 5" in result.stdout


def test_kata_file_resolves_non_python_files_in_the_tree_under_test(fake_repo: FakeRepo) -> None:
    fake_repo.add_kata(
        "config",
        stub="# TODO\n",
        solution="\n",
        tests='''
            def test_reads_the_right_config(kata_file):
                assert kata_file("settings.conf").read_text() == "solution\\n"
        ''',
    )
    catalogue = fake_repo.root / "katas.toml"
    listed = catalogue.read_text().replace('files = ["config.py"]', 'files = ["config.py", "settings.conf"]')
    catalogue.write_text(listed)
    (fake_repo.root / "katas/demo/config/settings.conf").write_text("stub\n")
    (fake_repo.root / "solutions/demo/config/settings.conf").write_text("solution\n")
    assert fake_repo.pytest("katas/demo").returncode == 1
    assert fake_repo.pytest("--solutions", "katas/demo").returncode == 0


def test_it_works_under_xdist(adder_repo: FakeRepo) -> None:
    result = adder_repo.pytest("-n", "2", "--solutions", "katas/demo")
    assert result.returncode == 0, result.stdout
    assert "2 passed" in result.stdout


def test_an_uncatalogued_kata_fails_under_solutions_instead_of_testing_the_stub(
    adder_repo: FakeRepo,
) -> None:
    stray = adder_repo.root / "katas" / "demo" / "stray"
    stray.mkdir()
    (stray / "__init__.py").write_text("")
    (stray / "test_stray.py").write_text("def test_anything():\n    assert True\n")
    result = adder_repo.pytest("--solutions", "katas/demo/stray")
    assert result.returncode == 1, result.stdout
    assert "katas/demo/stray has no entry in katas.toml" in result.stdout


def test_stress_mode_switches_threads_far_more_often(fake_repo: FakeRepo) -> None:
    fake_repo.add_kata(
        "switchy",
        stub="# TODO\n",
        solution="\n",
        tests="import sys\n\ndef test_interval():\n    assert sys.getswitchinterval() < 1e-4\n",
    )
    assert fake_repo.pytest("katas/demo").returncode == 1
    stressed = fake_repo.pytest("--stress", "katas/demo")
    assert stressed.returncode == 0, stressed.stdout
    assert "stress mode" in stressed.stdout
    assert fake_repo.pytest("katas/demo", env={"KATA_STRESS": "1"}).returncode == 0


@pytest.mark.parametrize("tree", ["katas", "override"])
def test_a_same_size_save_in_the_same_second_is_not_hidden_by_a_cached_pyc(
    adder_repo: FakeRepo, tree: str
) -> None:
    """A .pyc is trusted by the source's whole-second mtime and its size: `a + b` -> `a - b`
    saved within the second of the last run would otherwise run the old code."""
    learner = adder_repo.root / "katas/demo/adder/adder.py"
    target = learner if tree == "katas" else adder_repo.root / "scratch.py"
    target.write_text("def add(a, b):\n    return a + b\n")
    args = ["katas/demo"] if tree == "katas" else ["katas/demo", f"--kata-override=demo/adder/adder.py={target}"]
    writes_bytecode = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    before = target.stat()
    first = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args],
                           cwd=adder_repo.root, env=writes_bytecode, capture_output=True, text=True)
    assert first.returncode == 0, first.stdout
    target.write_text("def add(a, b):\n    return a - b\n")
    os.utime(target, ns=(before.st_atime_ns, before.st_mtime_ns))  # the same second, the same size
    second = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args],
                            cwd=adder_repo.root, env=writes_bytecode, capture_output=True, text=True)
    assert second.returncode == 1, "the old code ran: " + second.stdout[-500:]


def test_a_kata_whose_tool_is_missing_is_skipped_saying_how_to_get_it(adder_repo: FakeRepo) -> None:
    with (adder_repo.root / "katas.toml").open("a") as catalogue:
        catalogue.write('tools = ["node"]\n')  # joins the adder entry, the last table
    result = adder_repo.pytest("--solutions", "-rs", "katas/demo", env={"PATH": "/nonexistent"})
    assert result.returncode == 0, result.stdout
    assert "this kata needs tools that are missing" in result.stdout
    assert "node: not on PATH (sudo apt-get install nodejs | brew install node)" in result.stdout


LOCAL_HTTP = '''
import http.server
import threading

import requests

from .local_http import answer


def test_a_local_server_is_reached_directly_whatever_the_proxy_settings():
    server = http.server.HTTPServer(("127.0.0.1", 0), http.server.SimpleHTTPRequestHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        assert requests.get(f"http://127.0.0.1:{server.server_port}/", timeout=5).status_code == 200
    finally:
        server.shutdown()
    assert answer() == 42
'''


def test_a_learners_http_proxy_never_carries_local_test_traffic(fake_repo: FakeRepo) -> None:
    # a proxy that refuses every connection: a request sent through it fails
    fake_repo.add_kata("local_http", "def answer():\n    return 42  # TODO\n", "def answer():\n    return 42\n",
                       LOCAL_HTTP)
    proxy = {"HTTP_PROXY": "http://127.0.0.1:9", "http_proxy": "http://127.0.0.1:9", "NO_PROXY": "example.com"}
    result = fake_repo.pytest("katas/demo", env=proxy)
    assert result.returncode == 0, result.stdout + result.stderr
