"""The catalogue parser accepts a good katas.toml and names the file, entry and problem otherwise."""

from __future__ import annotations

from pathlib import Path

import pytest

from dojo.catalogue import CatalogueError, load

from .conftest import FakeRepo


def _catalogue(repo: FakeRepo, text: str) -> Path:
    path = repo.root / "katas.toml"
    path.write_text(text)
    return path


def test_a_valid_catalogue_keeps_learning_order(adder_repo: FakeRepo) -> None:
    adder_repo.add_kata("second", stub="# TODO\n", solution="\n", tests="\n")
    catalogue = load(adder_repo.root / "katas.toml")
    assert [k.name for k in catalogue.katas] == ["adder", "second"]
    adder = catalogue.get("adder")
    assert adder.files == ("adder.py",)
    assert adder.hints == ("first hint", "second hint")
    assert adder.kata_dir == adder_repo.root / "katas" / "demo" / "adder"
    assert catalogue.get("demo/adder") is adder


def test_a_topic_can_ask_for_stress_but_only_with_a_bool(fake_repo: FakeRepo) -> None:
    path = _catalogue(fake_repo, '[[topic]]\nname = "demo"\nstress = true\n')
    assert load(path).topics[0].stress is True
    _catalogue(fake_repo, '[[topic]]\nname = "demo"\nstress = "yes"\n')
    with pytest.raises(CatalogueError, match=r"topic #1 \('demo'\): field 'stress' has the wrong type"):
        load(path)


def test_bad_toml_names_the_file_and_the_line(fake_repo: FakeRepo) -> None:
    path = _catalogue(fake_repo, '[[topic]]\nname = "demo\n')
    with pytest.raises(CatalogueError, match=r"katas\.toml: invalid TOML: .*line 2"):
        load(path)


@pytest.mark.parametrize(
    ("entry", "problem"),
    [
        ('name = "adder"\ntopic = "demo"\nfiles = ["adder.py"]\nhints = ["a", "b"]\ncolour = 1',
         r"kata #1 \('adder'\): unknown field 'colour'"),
        ('name = "adder"\ntopic = "demo"\nfiles = ["adder.py"]',
         r"kata #1 \('adder'\): missing field 'hints'"),
        ('name = "adder"\ntopic = "demo"\nfiles = ["adder.py"]\nhints = ["only one"]',
         r"kata #1 \('adder'\): give 2 or 3 progressive hints, not 1"),
        ('name = "adder"\ntopic = "nowhere"\nfiles = ["adder.py"]\nhints = ["a", "b"]',
         r"kata #1 \('adder'\): topic 'nowhere' is not declared"),
        ('name = "adder"\ntopic = "demo"\nfiles = ["missing.py"]\nhints = ["a", "b"]',
         r"kata #1 \('adder'\): stub file katas/demo/adder/missing\.py does not exist"),
        ('name = "adder"\ntopic = "demo"\nfiles = ["adder.py"]\nhints = ["a", "b"]\nservices = ["mongo"]',
         r"kata #1 \('adder'\): unknown service 'mongo'"),
        ('name = "adder"\ntopic = "demo"\nfiles = ["adder.py"]\nhints = ["a", "b"]\ntools = ["rustc"]',
         r"kata #1 \('adder'\): unknown tool 'rustc' \(known: gcc, kubectl, node, strace\)"),
        ('name = "adder"\ntopic = "demo"\nfiles = ["adder.py"]\nhints = ["a", "b"]\ndifficulty = 4',
         r"kata #1 \('adder'\): difficulty must be one of 1 \(warm-up\), 2 \(interview\), 3 \(deep\)"),
        ('name = "adder"\ntopic = "demo"\nfiles = ["adder.py"]\nhints = ["a", "b"]\nminutes = 0',
         r"kata #1 \('adder'\): minutes must be from 1 to 240"),
        ('name = "adder"\ntopic = "demo"\nfiles = ["adder.py"]\nhints = ["a", "b"]\nminutes = 1.5',
         r"kata #1 \('adder'\): field 'minutes' has the wrong type"),
    ],
    ids=["unknown-field", "missing-field", "one-hint", "unknown-topic", "missing-file", "unknown-service",
         "unknown-tool", "difficulty-4", "minutes-0", "minutes-float"],
)
def test_a_malformed_entry_is_named_with_its_problem(
    adder_repo: FakeRepo, entry: str, problem: str
) -> None:
    path = _catalogue(adder_repo, f'[[topic]]\nname = "demo"\n\n[[kata]]\n{entry}\n')
    with pytest.raises(CatalogueError, match=problem) as raised:
        load(path)
    assert str(raised.value).startswith(str(path))


def test_a_duplicate_name_is_refused(adder_repo: FakeRepo) -> None:
    text = (adder_repo.root / "katas.toml").read_text()
    block = text[text.index("[[kata]]"):]
    path = _catalogue(adder_repo, text + block)
    with pytest.raises(CatalogueError, match=r"kata #2 \('adder'\): duplicate kata name 'adder'"):
        load(path)


def test_a_missing_solution_file_is_named(adder_repo: FakeRepo) -> None:
    (adder_repo.root / "solutions" / "demo" / "adder" / "adder.py").unlink()
    with pytest.raises(CatalogueError, match=r"solution file solutions/demo/adder/adder\.py does not exist"):
        load(adder_repo.root / "katas.toml")


def test_pytest_reports_a_broken_catalogue_as_a_usage_error(adder_repo: FakeRepo) -> None:
    _catalogue(adder_repo, '[[topic]]\nname = "demo"\n[[kata]]\nname = "x"\n')
    result = adder_repo.pytest("katas")
    assert result.returncode == 4, result.stdout + result.stderr
    assert "katas.toml: kata #1 ('x'): missing field" in result.stderr
