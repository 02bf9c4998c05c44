"""`--kata-first`: the tests that carry a mistake's phrase run first, the rest keep their order."""

from __future__ import annotations

from .conftest import FakeRepo

TESTS = '''
import pytest

from .adder import add


def test_small():
    assert add(1, 2) == 3, "small numbers"


def test_negative():
    assert add(-1, -2) == -3, ("negative numbers are "
                               "Added As They Are")


def test_large():
    assert add(10**20, 1) == 10**20 + 1


CASES = [{"rule": "zero changes nothing"}, {"rule": "other"}]


@pytest.mark.parametrize("case", CASES)
def test_table(case):
    assert add(0, 0) == 0
'''


def _order(repo: FakeRepo, *args: str) -> list[str]:
    out = repo.pytest("katas/demo/adder", "--co", "-q", *args).stdout
    return [line.rsplit("::", 1)[-1] for line in out.splitlines() if "::" in line]


def test_the_tests_that_carry_the_phrase_go_first(adder_repo: FakeRepo) -> None:
    (adder_repo.root / "katas/demo/adder/test_adder.py").write_text(TESTS)
    plain = _order(adder_repo)
    assert plain == ["test_small", "test_negative", "test_large",
                     "test_table[case0]", "test_table[case1]"]
    # case-insensitive, and across string literals joined over a line break
    assert _order(adder_repo, "--kata-first=numbers are added as") == [
        "test_negative", "test_small", "test_large", "test_table[case0]", "test_table[case1]"]
    # a parameter that carries it (a scenario table's rule)
    assert _order(adder_repo, "--kata-first=Zero changes") == [
        "test_table[case0]", "test_small", "test_negative", "test_large", "test_table[case1]"]
    assert _order(adder_repo, "--kata-first=nowhere to be found") == plain


STOPS = '''
from .adder import add


def test_one():
    assert add(1, 1) == 3, "an unrelated failure"


def test_two():
    assert add(2, 2) == 5, "the failure that TEACHES the cause"


def test_three():
    assert add(3, 3) == 7, "after the teaching one: never run"
'''


def test_the_run_stops_at_the_first_failure_that_names_the_cause(adder_repo: FakeRepo) -> None:
    (adder_repo.root / "katas/demo/adder/test_adder.py").write_text(STOPS)
    result = adder_repo.pytest("katas/demo/adder", "--solutions", "-q", "--kata-stop-at=teaches the CAUSE")
    output = result.stdout
    assert "test_three" not in output and "2 failed" in output, output
    assert "a failure says 'teaches the cause'" in output, output
    # without the option, every test runs
    assert "3 failed" in adder_repo.pytest("katas/demo/adder", "--solutions", "-q").stdout
