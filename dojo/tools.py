"""Programs a kata holds the learner's code against (node, gcc, kubectl, strace): not services
(nothing to start), but a kata cannot run without them. Named per kata in katas.toml (`tools`)."""

from __future__ import annotations

import shutil
from dataclasses import dataclass


@dataclass(frozen=True)
class Tool:
    binary: str
    debian: str  # `apt-get install` this
    macos: str  # how to get it on a Mac ("" where it does not exist there)


KNOWN_TOOLS = {
    "node": Tool("node", "nodejs", "brew install node"),
    "gcc": Tool("gcc", "gcc libc6-dev", "xcode-select --install  (clang, as gcc)"),
    "kubectl": Tool("kubectl", "kubectl  (Kubernetes' apt repository)", "brew install kubectl"),
    "strace": Tool("strace", "strace", ""),
}


def how_to_get(name: str) -> str:
    tool = KNOWN_TOOLS[name]
    ways = [f"sudo apt-get install {tool.debian}"] + ([tool.macos] if tool.macos else [])
    return " | ".join(ways)


def missing(names: tuple[str, ...]) -> list[str]:
    """One line per tool of `names` that is not on PATH, saying how to get it."""
    return [f"{name}: not on PATH ({how_to_get(name)})" for name in names
            if shutil.which(KNOWN_TOOLS[name].binary) is None]
