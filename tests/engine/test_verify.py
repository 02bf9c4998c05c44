"""The maintainer check names the kata and the test for each kind of problem it exists to catch."""

from __future__ import annotations

import json

import pytest

from dojo.catalogue import Kata, load
from dojo.mistakes import MistakeFileError, load_gallery
from dojo.verify import Checks, static_problems, verify_kata

from .conftest import FakeRepo


def _report(repo: FakeRepo, name: str = "adder", mistakes: bool = False):  # type: ignore[no-untyped-def]
    kata = load(repo.root / "katas.toml").get(name)
    return verify_kata(kata, Checks(repeat=2, mistakes=mistakes, alternatives=False))


def test_a_complete_kata_passes(adder_repo: FakeRepo) -> None:
    report = _report(adder_repo)
    assert report.problems == []
    assert (report.tests, report.stub_failing, report.solution_runs) == (2, 2, 2)


def test_the_report_says_which_check_took_the_time(adder_repo: FakeRepo) -> None:
    # CI's 45-minute budget is planned from these: every check that ran has its share
    kata = load(adder_repo.root / "katas.toml").get("adder")
    report = verify_kata(kata, Checks(repeat=1, mistakes=True, alternatives=False))
    assert set(report.seconds) == {"stub", "solution", "mistakes"}
    assert all(seconds > 0 for seconds in report.seconds.values())


def test_a_broken_solution_is_named_by_test(adder_repo: FakeRepo) -> None:
    (adder_repo.root / "solutions/demo/adder/adder.py").write_text(
        "def add(a, b):\n    return abs(a) + abs(b)\n"
    )
    report = _report(adder_repo)
    assert any(
        p.startswith("test_adds_negative_numbers FAILED on the solution") for p in report.problems
    ), report.problems


def test_a_stub_that_passes_a_test_is_named(adder_repo: FakeRepo) -> None:
    (adder_repo.root / "katas/demo/adder/adder.py").write_text(
        "def add(a, b):\n    # TODO\n    return 5\n"
    )
    report = _report(adder_repo)
    assert "test_adds_small_numbers PASSES on the stub: it checks nothing the learner does" in report.problems


def test_a_collection_error_on_the_stub_is_a_problem(adder_repo: FakeRepo) -> None:
    (adder_repo.root / "katas/demo/adder/adder.py").write_text("# TODO\nimport does_not_exist\n")
    report = _report(adder_repo)
    assert any("errors on the stub in collect" in p for p in report.problems), report.problems


def test_missing_todo_readme_and_stray_files_are_reported(adder_repo: FakeRepo) -> None:
    kata_dir = adder_repo.root / "katas/demo/adder"
    (kata_dir / "adder.py").write_text('def add(a, b):\n    raise NotImplementedError\n')
    (kata_dir / "README.md").unlink()
    (kata_dir / "notes.txt").write_text("scratch")
    report = _report(adder_repo)
    assert "katas/demo/adder/adder.py has no TODO marking what to edit" in report.problems
    assert any("README.md is missing" in p for p in report.problems)
    assert "stray file katas/demo/adder/notes.txt (not in the catalogue entry)" in report.problems


def _with_first_hint(repo: FakeRepo, first: str) -> Kata:
    catalogue = repo.root / "katas.toml"
    # a JSON string is a valid TOML basic string
    catalogue.write_text(catalogue.read_text().replace('"first hint"', json.dumps(first)))
    kata = load(catalogue).get("adder")
    assert kata.hints[0] == first
    return kata


@pytest.mark.parametrize(
    ("first", "shown"),
    [
        ("Call `add` and return what it gives.", "`"),
        ("Return operator.add(a, b) and you are done.", "operator.add("),
        ("total = a + b, then return total.", " = "),
        ("Match the digits with r'\\d+' first.", "r'"),
        ("The header is b'\\x00\\x01' in network order.", "b'"),
    ],
)
def test_a_first_hint_that_shows_code_is_named(adder_repo: FakeRepo, first: str, shown: str) -> None:
    problems = static_problems(_with_first_hint(adder_repo, first))
    message = f"first hint shows code ({shown!r}): hints nudge before they show code; move it to a later hint"
    assert message in problems, problems


def test_a_first_hint_that_nudges_passes(adder_repo: FakeRepo) -> None:
    nudge = "What does adding two negative numbers give? Think about the sign (and zero) before you write code."
    assert static_problems(_with_first_hint(adder_repo, nudge)) == []


def test_a_cited_document_the_repository_lacks_is_named(adder_repo: FakeRepo) -> None:
    readme = adder_repo.root / "katas/demo/adder/README.md"
    readme.write_text(readme.read_text() + "\nThe vectors: docs/vectors.md §1 and docs/gone.md.\n")
    (adder_repo.root / "docs").mkdir()
    (adder_repo.root / "docs/vectors.md").write_text("# vectors\n")
    problems = static_problems(load(adder_repo.root / "katas.toml").get("adder"))
    assert problems == ["katas/demo/adder/README.md cites docs/gone.md, which is not in the repository"], problems


def test_a_readme_without_the_question_or_the_closing_sections_is_named(adder_repo: FakeRepo) -> None:
    readme = adder_repo.root / "katas/demo/adder/README.md"
    readme.write_text("# Adder\n\n**Task.** Add. " + "It explains at length. " * 20
                      + "\n\n## Sources\n\nRFC 1149, in words only.\n")
    problems = static_problems(load(adder_repo.root / "katas.toml").get("adder"))
    assert problems == [
        "katas/demo/adder/README.md does not open with **The interviewer's question:** (before its first section)",
        "katas/demo/adder/README.md has no '## What a good answer covers' section",
        "katas/demo/adder/README.md has no '## Follow-ups' section",
        "katas/demo/adder/README.md: '## Sources' links no primary source",
    ], problems


def test_an_entry_without_difficulty_or_minutes_is_named(adder_repo: FakeRepo) -> None:
    catalogue = adder_repo.root / "katas.toml"
    catalogue.write_text(catalogue.read_text().replace("difficulty = 1\nminutes = 10\n", ""))
    problems = static_problems(load(catalogue).get("adder"))
    assert "katas.toml: adder has no difficulty (a learner plans with it)" in problems, problems
    assert "katas.toml: adder has no minutes (a learner plans with it)" in problems, problems


def _add_mistakes(repo: FakeRepo, bodies: dict[str, str], expect: str = "assert") -> None:
    """One mistake per body: the solution's `return a + b` edited into `return <body>`."""
    entries = [
        f'[[mistake]]\nname = "{name}"\nreplaces = "adder.py"\ndescription = "{name}"\n'
        f'expect = "{expect}"\n[[mistake.edit]]\nfind = "return a + b"\nreplace = "return {body}"\n'
        for name, body in bodies.items()
    ]
    (repo.root / "solutions/demo/adder/mistakes.toml").write_text("\n".join(entries))


def test_a_kata_missing_from_its_topic_readme_is_reported(adder_repo: FakeRepo) -> None:
    (adder_repo.root / "katas/demo/README.md").write_text("# demo\n\nNo table yet.\n")
    report = _report(adder_repo)
    assert "katas/demo/README.md does not link adder/README.md (its table of katas)" in report.problems


def test_a_mistake_that_slips_through_is_named(adder_repo: FakeRepo) -> None:
    _add_mistakes(adder_repo, {"subtracts": "a - b", "multiplies": "a * b", "adds_twice": "b + a"})
    report = _report(adder_repo, mistakes=True)
    assert report.caught == 2
    assert "mistake 'adds_twice' slips through: every test passes" in report.problems


def test_a_mistake_caught_without_its_phrase_is_a_problem(adder_repo: FakeRepo) -> None:
    _add_mistakes(adder_repo, {"subtracts": "a - b", "off_by_one": "a + b + 1", "zero": "0"},
                  expect="overflow")
    report = _report(adder_repo, mistakes=True)
    assert report.caught == 0
    assert any("no failure says 'overflow'" in p for p in report.problems), report.problems


def test_fewer_than_three_mistakes_is_a_problem(adder_repo: FakeRepo) -> None:
    _add_mistakes(adder_repo, {"subtracts": "a - b"})
    kata = load(adder_repo.root / "katas.toml").get("adder")
    assert len(load_gallery(kata)) == 1
    report = _report(adder_repo, mistakes=True)
    assert any("1 known mistake(s)" in p for p in report.problems), report.problems


def test_a_mistake_whose_edit_no_longer_fits_the_solution_says_so(adder_repo: FakeRepo) -> None:
    _add_mistakes(adder_repo, {"subtracts": "a - b", "multiplies": "a * b", "zero": "0"})
    (adder_repo.root / "solutions/demo/adder/adder.py").write_text("def add(a, b):\n    return b + a\n")
    report = _report(adder_repo, mistakes=True)
    assert any(
        "mistakes.toml: mistake #1 ('subtracts'): edit #1: its find text is not in the solution" in p
        for p in report.problems
    ), report.problems


def test_an_edit_that_matches_two_places_is_refused(adder_repo: FakeRepo) -> None:
    (adder_repo.root / "solutions/demo/adder/adder.py").write_text(
        "def add(a, b):\n    return a + b\n\n\ndef add_again(a, b):\n    return a + b\n"
    )
    _add_mistakes(adder_repo, {"subtracts": "a - b"})
    kata = load(adder_repo.root / "katas.toml").get("adder")
    with pytest.raises(MistakeFileError, match="occurs 2 times in the solution"):
        load_gallery(kata)


def test_a_mistake_is_shown_as_a_diff_against_the_solution(adder_repo: FakeRepo) -> None:
    _add_mistakes(adder_repo, {"subtracts": "a - b"})
    (mistake,) = load_gallery(load(adder_repo.root / "katas.toml").get("adder"))
    assert "-    return a + b\n+    return a - b\n" in mistake.diff()


def test_repeat_suffixes_are_stripped_but_lookalike_ids_are_kept() -> None:
    from dojo.running.runner import base_nodeid

    assert base_nodeid("t.py::test_x[2-3]", 3) == "t.py::test_x"
    assert base_nodeid("t.py::test_x[24-80-2-3]", 3) == "t.py::test_x[24-80]"
    assert base_nodeid("t.py::test_x[24-80]", 1) == "t.py::test_x[24-80]"


def test_a_topic_without_katas_is_a_catalogue_problem(adder_repo: FakeRepo) -> None:
    from dojo.verify import catalogue_problems

    with (adder_repo.root / "katas.toml").open("a") as catalogue:
        catalogue.write('\n[[topic]]\nname = "empty"\n')
    problems = catalogue_problems(load(adder_repo.root / "katas.toml"))
    assert problems == ["topic 'empty' has no kata (`pytest katas/empty` would collect nothing)"]


def test_a_mistake_sample_runs_that_many_drawn_by_the_seed(adder_repo: FakeRepo) -> None:
    mistakes = {"subtracts": "a - b", "multiplies": "a * b", "zero": "0", "adds_twice": "b + a"}
    _add_mistakes(adder_repo, mistakes)
    kata = load(adder_repo.root / "katas.toml").get("adder")
    tried = [
        [m.mistake.name for m in verify_kata(kata, Checks(alternatives=False, mistake_sample=2, seed=seed)).mistakes]
        for seed in (1, 1, 2, 3, 4)
    ]
    assert all(len(names) == 2 for names in tried), tried
    assert tried[0] == tried[1], "the same seed draws the same sample (CI prints it for a replay)"
    assert len({tuple(names) for names in tried}) > 1, "other seeds draw other samples"
    for names in tried:
        assert names == [m for m in mistakes if m in names], "a sample keeps the gallery's order"
