"""The katas still waiting for their rigor pass, read from solutions/rigor_pending.toml.

For a kata listed there, `kata verify` reports a mutation score under the bar and missing
correct alternatives as warnings instead of problems; every other kata must meet the bar. The
list only shrinks: the commit that brings a kata to the bar removes its line.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

from .catalogue import SOLUTIONS_DIR, Catalogue

PENDING_FILE = "rigor_pending.toml"


class PendingFileError(Exception):
    """rigor_pending.toml is malformed or names a kata the catalogue does not have."""


def pending_path(root: Path) -> Path:
    return root / SOLUTIONS_DIR / PENDING_FILE


def load_pending(catalogue: Catalogue) -> dict[str, str]:
    """kata slug -> the issue that will bring it to the bar."""
    path = pending_path(catalogue.root)
    if not path.is_file():
        return {}
    try:
        raw = tomllib.loads(path.read_text("utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise PendingFileError(f"{path}: invalid TOML: {exc}") from None
    pending = raw.get("pending", {})
    if set(raw) - {"pending"} or not isinstance(pending, dict):
        raise PendingFileError(f"{path}: expected one [pending] table of \"topic/kata\" = \"issue\"")
    known = {k.slug for k in catalogue.katas}
    for slug, issue in pending.items():
        if slug not in known:
            raise PendingFileError(f"{path}: {slug!r} is not a kata (stale line? remove it)")
        if not isinstance(issue, str) or not issue.strip():
            raise PendingFileError(f"{path}: {slug!r} needs the issue that will bring it to the bar")
    return dict(pending)
