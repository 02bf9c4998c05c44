"""`kata report`: a grader's per-kata, per-test view of the learner's current files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from junitparser import Failure, JUnitXml

from .conftest import solve

pytestmark = pytest.mark.time_limit(180)


def test_junit_has_every_test_of_every_kata_with_its_outcome(kata, repo: Path):
    solve(repo, "adder")
    done = kata("report", "--output", "graded.xml")
    assert done.returncode == 1, "some tests fail: a CI job running it goes red"
    assert "3 katas: 2 tests passed, 2 failed; report in graded.xml" in done.stdout, done.stdout

    suites = list(JUnitXml.fromfile(str(repo / "graded.xml")))
    cases = {(case.classname, case.name): case for suite in suites for case in suite}
    assert set(cases) == {
        ("katas.basics.adder.test_adder", "test_small_numbers"),
        ("katas.basics.adder.test_adder", "test_negative_numbers"),
        ("katas.basics.greeter.test_greeter", "test_greets_by_name"),
        ("katas.strings.shouter.test_shouter", "test_shouts"),
    }
    failed = {name for (_, name), case in cases.items() if any(isinstance(r, Failure) for r in case.result)}
    assert failed == {"test_greets_by_name", "test_shouts"}, "the learner's files, never the solutions"


def test_json_groups_the_tests_by_kata_and_a_topic_narrows_it(kata, repo: Path):
    solve(repo, "shouter")
    done = kata("report", "--format", "json", "--topic", "strings")
    assert done.returncode == 0, done.stdout
    report = json.loads((repo / "kata-report.json").read_text())
    assert report["katas"] == [{"kata": "strings/shouter", "passed": 1, "failed": 0, "skipped": 0,
                                "tests": [{"name": "test_shouts", "outcome": "passed", "message": ""}]}]


def test_a_failure_carries_its_message_and_bad_options_are_refused(kata, repo: Path):
    kata("report", "--format", "json")
    greeter = next(k for k in json.loads((repo / "kata-report.json").read_text())["katas"]
                   if k["kata"] == "basics/greeter")
    assert greeter["tests"][0]["outcome"] == "failed"
    assert "greet" in greeter["tests"][0]["message"], "what failed, for the learner reading the grade"
    for args, problem in ((["--format", "tap"], "--format is one of junit, json"),
                          (["--topic", "nope"], "no topic 'nope'")):
        refused = kata("report", *args)
        assert refused.returncode == 2 and problem in refused.stdout, refused.stdout
