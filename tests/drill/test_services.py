"""Katas needing services: offered only where `kata doctor`'s checks find them."""

from __future__ import annotations

import pytest

from dojo import needs
from dojo.catalogue import Kata
from dojo.drill import services
from dojo.learner import doctor


def _kata(name: str, *wanted: str) -> Kata:
    return Kata(name=name, topic="t", title=name, files=(f"{name}.py",), hints=(), services=wanted)


def test_split_keeps_what_can_run_and_says_why_the_rest_cannot():
    why_not = {"redis": "redis-server not found", "postgres": ""}.get
    pure, cache, queue = _kata("pure"), _kata("cache", "redis"), _kata("queue", "postgres")
    usable, left_out = services.split([pure, cache, queue], lambda s: why_not(s) or "")
    assert usable == [pure, queue]
    assert left_out == {"t/cache": "redis: redis-server not found"}


def test_probe_asks_the_doctor_once_per_service_and_only_when_needed(monkeypatch: pytest.MonkeyPatch):
    asked: list[str] = []

    def docker() -> doctor.Check:
        asked.append("docker")
        return doctor.Check("Docker daemon", False, "no answer", required=False)

    def service(name: str, docker_ok: bool, used_by: list[str]) -> doctor.Check:
        asked.append(name)
        binary = name == "redis"
        # the doctor's own rule: with users, a service is required when nothing can provide it
        return doctor.Check(name, binary, f"{name} here" if binary else f"{name} not found",
                            required=bool(used_by) and not binary)

    monkeypatch.setattr(doctor, "check_docker", docker)
    monkeypatch.setattr(doctor, "check_service", service)
    why_not = services.probe()
    assert asked == [], "nothing is probed before a kata needs it"
    assert why_not("redis") == ""
    assert why_not("nginx") == "nginx not found"
    assert why_not("docker").startswith("no Docker daemon")
    why_not("redis"), why_not("nginx"), why_not("docker")
    assert sorted(asked) == ["docker", "nginx", "redis"], "each check runs once"


def test_a_container_stand_in_counts_as_available(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(doctor, "check_docker",
                        lambda: doctor.Check("Docker daemon", True, "answers", required=False))
    monkeypatch.setattr(needs, "find_binary", lambda service: None)
    monkeypatch.setattr(needs, "embedded_binary", lambda service: None)
    assert services.probe()("redis") == "", "no local binary, but Docker can run the image"


def test_a_kata_whose_tool_is_missing_is_left_out_saying_how_to_get_it(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("PATH", "/nonexistent")
    loop = Kata(name="loop", topic="t", title="loop", files=("loop.py",), hints=(), tools=("node",))
    usable, left_out = services.split([loop], lambda s: "")
    assert usable == []
    assert left_out == {"t/loop": "node: not on PATH (sudo apt-get install nodejs | brew install node)"}


def test_the_doctor_checks_each_tool_a_kata_uses(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("PATH", "/nonexistent")
    check = doctor.check_tool("gcc", ["calling_c"])
    assert (check.ok, check.required) == (False, True)
    assert check.name == "gcc (used by calling_c)"
    assert check.fix["Debian/Ubuntu"] == "sudo apt-get install gcc libc6-dev"
