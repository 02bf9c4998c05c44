"""`kata doctor`: is this machine ready? Python, packages, Docker, Compose, local service binaries."""

from __future__ import annotations

import contextlib
import importlib.metadata
import os
import shutil
import subprocess
import sys
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import SpecifierSet
from rich.console import Console
from rich.table import Table
from rich.text import Text

from .. import needs
from ..catalogue import Catalogue

DISTRIBUTION = "backend-katas"
PLATFORMS = ("Debian/Ubuntu", "macOS", "Docker")


@dataclass
class Check:
    """One line of the report; `fix` says, per platform, how to get what is missing."""

    name: str
    ok: bool
    detail: str
    fix: dict[str, str] = field(default_factory=dict)
    required: bool = True  # a failed required check makes `kata doctor` exit 1


def _project(root: Path) -> tuple[str, list[str]]:
    """requires-python and the dependencies, from the checkout's pyproject.toml (the truth even
    when the editable install's metadata is older), else from the installed metadata."""
    with contextlib.suppress(OSError, tomllib.TOMLDecodeError, KeyError):
        project = tomllib.loads((root / "pyproject.toml").read_text("utf-8"))["project"]
        return project.get("requires-python", ""), list(project.get("dependencies", []))
    with contextlib.suppress(importlib.metadata.PackageNotFoundError):
        meta = importlib.metadata.metadata(DISTRIBUTION)
        requires = (meta.get_all("Requires-Python") or [""])[0]
        return requires, list(importlib.metadata.requires(DISTRIBUTION) or [])
    return "", []


def check_python(requires: str) -> Check:
    version = ".".join(map(str, sys.version_info[:3]))
    ok = not requires or SpecifierSet(requires).contains(version, prereleases=True)
    return Check(
        "Python", ok, f"{version} at {sys.executable} (needs {requires or 'any'})",
        {
            "Debian/Ubuntu": "sudo apt-get install python3 python3-venv  "
                             "(Debian 12 ships 3.11; older Ubuntu: the deadsnakes PPA)",
            "macOS": "brew install python@3.12",
            "Docker": 'docker run -it --rm -v "$PWD":/src -w /src python:3.12 bash',
        },
    )


def check_dependencies(requirements: list[str], root: Path) -> Check:
    problems = []
    for line in requirements:
        try:
            req = Requirement(line)
        except InvalidRequirement:
            continue
        if req.marker is not None and not req.marker.evaluate({"extra": ""}):
            continue  # an optional extra (dev tools)
        try:
            installed = importlib.metadata.version(req.name)
        except importlib.metadata.PackageNotFoundError:
            problems.append(f"{req.name} missing")
            continue
        if req.specifier and not req.specifier.contains(installed, prereleases=True):
            problems.append(f"{req.name} {installed} (needs {req.specifier})")
    install = f"{Path(sys.executable).name} -m pip install -e {root}"
    detail = "; ".join(problems) if problems else f"all {len(requirements)} present"
    return Check("Python packages", not problems, detail, dict.fromkeys(PLATFORMS[:2], install))


def _run(*command: str) -> str | None:
    """stdout of `command`, or None if it is missing, fails or hangs."""
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=15, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def check_docker() -> Check:
    fix = {
        "Debian/Ubuntu": "sudo apt-get install docker.io && sudo systemctl start docker && "
                         "sudo usermod -aG docker $USER  (then log in again)",
        "macOS": "brew install --cask docker, then open Docker Desktop "
                 "(or: brew install colima docker && colima start)",
    }
    try:
        import docker  # type: ignore[import-untyped]

        client = docker.from_env(timeout=5)
        version = client.version().get("Version", "?")
        client.close()
        return Check("Docker daemon", True, f"answers (server {version})", required=False)
    except Exception as exc:  # docker-py raises many kinds; all mean "no daemon for us"
        where = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
        client_too = "" if shutil.which("docker") else "; no `docker` command either"
        detail = f"no answer at {where} ({type(exc).__name__}){client_too}"
        if shutil.which("docker"):
            fix["Debian/Ubuntu"] = "sudo systemctl start docker  (or: sudo dockerd &)"
            fix["macOS"] = "open Docker Desktop (or: colima start)"
        return Check("Docker daemon", False, detail, fix, required=False)


def check_compose() -> Check:
    v2 = _run("docker", "compose", "version", "--short")
    if v2:
        return Check("Docker Compose", True, f"v2 ({v2}): `docker compose`", required=False)
    v1 = _run("docker-compose", "version", "--short")
    if v1:
        return Check("Docker Compose", True, f"v1 ({v1}): `docker-compose` (pytest-docker works; "
                     "testcontainers' DockerCompose needs v2)", required=False)
    return Check(
        "Docker Compose", False, "neither `docker compose` (v2) nor `docker-compose` (v1)",
        {
            "Debian/Ubuntu": "sudo apt-get install docker-compose-plugin  (Docker's apt repository; "
                             "Debian's own: sudo apt-get install docker-compose, v1)",
            "macOS": "included in Docker Desktop; or brew install docker-compose",
        },
        required=False,
    )


def check_service(service: str, docker_ok: bool, used_by: list[str]) -> Check:
    """The local binary the fixtures would use; a running Docker daemon, or the server inside its
    wheel (the embedded backend), are the alternatives."""
    # dojo.needs: the doctor looks exactly where the services fixtures will
    need = needs.SERVICES[service]
    name, image = need.binary, need.image
    binary, embedded = needs.find_binary(service), needs.embedded_binary(service)
    detail = f"{name}: {binary}" if binary else f"{name} not found (PATH and the usual folders)"
    if service == "postgres" and binary is not None:
        initdb = binary.parent / "initdb"
        detail += f", initdb: {initdb}" if initdb.is_file() else ", but no initdb beside it"
        binary = binary if initdb.is_file() else None
    if binary is None and image and docker_ok:
        detail += f"; Docker will run {image} instead"
    elif binary is None and embedded is not None:
        detail += f"; the embedded backend will run {embedded} (from its wheel) instead"
    needed_by = f" (used by {', '.join(used_by)})" if used_by else " (no kata uses it yet)"
    fix = {"Debian/Ubuntu": f"sudo apt-get install {need.debian}", "macOS": f"brew install {need.macos}"}
    fix["Docker"] = (f"start a Docker daemon: the tests run {image} themselves "
                     f"(docker pull {image} ahead of time)" if image
                     else "no container stand-in: install it locally")
    available = binary is not None or (docker_ok and image is not None) or embedded is not None
    return Check(f"{service}{needed_by}", binary is not None, detail, fix,
                 required=bool(used_by) and not available)


def check_tool(name: str, used_by: list[str]) -> Check:
    """A program some katas run (node, gcc...): on PATH, or those katas are skipped."""
    tool = needs.TOOLS[name]
    found = shutil.which(tool.binary)
    detail = f"{tool.binary}: {found}" if found else f"{tool.binary} not on PATH"
    fix = {"Debian/Ubuntu": f"sudo apt-get install {tool.debian}"}
    if tool.macos:
        fix["macOS"] = tool.macos
    return Check(f"{name} (used by {', '.join(used_by)})", found is not None, detail, fix,
                 required=found is None)


def checks(catalogue: Catalogue) -> list[Check]:
    requires, dependencies = _project(catalogue.root)
    found = [check_python(requires), check_dependencies(dependencies, catalogue.root)]
    docker = check_docker()
    found += [docker, check_compose()]
    for service in needs.SERVICES:
        users = [k.name for k in catalogue.katas if service in k.services]
        found.append(check_service(service, docker.ok, users))
    for name in needs.TOOLS:
        users = [k.name for k in catalogue.katas if name in k.tools]
        if users:
            found.append(check_tool(name, users))
    return found


def report(found: list[Check], console: Console) -> int:
    """Print the checks and how to fix each failure; 1 if a required piece is missing."""
    table = Table(title="kata doctor", show_header=True)
    for column in ("check", "", "detail"):
        table.add_column(column, overflow="fold")
    for check in found:
        mark = Text("ok", style="green") if check.ok else (
            Text("MISSING", style="red") if check.required else Text("missing", style="yellow"))
        table.add_row(check.name, mark, Text(check.detail))
    console.print(table)
    broken = [c for c in found if not c.ok]
    for check in broken:
        console.print(Text(f"\nhow to get {check.name.split(' (')[0]}:", style="bold"))
        for platform in PLATFORMS:
            if platform in check.fix:
                console.print(Text(f"  {platform:<14} {check.fix[platform]}"), soft_wrap=True)
    failing = [c for c in broken if c.required]
    if failing:
        console.print(Text(f"\n{len(failing)} problem(s) to fix before every kata can run",
                           style="red"))
        return 1
    tail = " (optional pieces missing: katas that need them use another backend)" if broken else ""
    console.print(Text(f"\nready{tail}", style="green"))
    return 0
