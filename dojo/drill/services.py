"""Which services (and tools) this machine can give a kata, asked exactly as `kata doctor` asks."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from .. import needs
from ..catalogue import Kata
from ..learner import doctor

# service -> why it is not available ("" when it is)
Availability = Callable[[str], str]


def probe() -> Availability:
    """The doctor's checks, each run at most once and only for a service a candidate needs
    (asking Docker can take seconds when no daemon answers)."""
    answers: dict[str, str] = {}
    docker: list[doctor.Check] = []

    def docker_check() -> doctor.Check:
        if not docker:
            docker.append(doctor.check_docker())
        return docker[0]

    def why_not(service: str) -> str:
        if service not in answers:
            if service == "docker":
                check = docker_check()
                answers[service] = "" if check.ok else f"no Docker daemon ({check.detail})"
            else:
                check = doctor.check_service(service, docker_check().ok, ["drill"])
                # with a user named, the doctor marks a service `required` exactly when neither
                # a local binary nor Docker can provide it
                answers[service] = "" if check.ok or not check.required else check.detail
        return answers[service]

    return why_not


def missing(kata: Kata, why_not: Availability) -> str:
    """Why `kata` cannot run here ('' if every service and tool it needs is available)."""
    reasons = [f"{service}: {reason}" for service in kata.services if (reason := why_not(service))]
    return "; ".join(reasons + needs.missing_tools(kata.tools))


def split(katas: Iterable[Kata], why_not: Availability) -> tuple[list[Kata], dict[str, str]]:
    """The katas that can run here, and slug -> reason for each one left out."""
    usable: list[Kata] = []
    left_out: dict[str, str] = {}
    for kata in katas:
        reason = missing(kata, why_not)
        if reason:
            left_out[kata.slug] = reason
        else:
            usable.append(kata)
    return usable, left_out
