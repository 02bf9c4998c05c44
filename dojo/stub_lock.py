"""stubs.lock: git's blob id of every shipped stub, so the pristine stub never comes from a learner's commit.

Regenerate it after changing a stub, from the committed stubs: `python -m dojo.stub_lock`.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from .catalogue import CATALOGUE_NAME, find_root, load

LOCK_NAME = "stubs.lock"
HEADER = (
    "# git blob id and path of every shipped stub: `kata reset` and `kata drill` restore these,\n"
    "# never a later commit (it may be the learner's). After changing a stub, commit it, then\n"
    "# run `python -m dojo.stub_lock` and commit this file.\n"
)


def read(root: Path) -> dict[str, str]:
    """Path (relative to the root) -> blob id of the shipped stub; empty if there is no lock."""
    try:
        text = (root / LOCK_NAME).read_text(encoding="utf-8")
    except OSError:
        return {}
    recorded = {}
    for line in text.splitlines():
        blob, _, path = line.partition(" ")
        if line.startswith("#") or not path:
            continue
        recorded[path.strip()] = blob
    return recorded


def committed(root: Path, ref: str = "HEAD") -> dict[str, str]:
    """The blob id at `ref` of every learner file the catalogue names (files git lacks are left out)."""
    catalogue = load(root / CATALOGUE_NAME, check_files=False)
    wanted = {(k.kata_dir / name).relative_to(root).as_posix() for k in catalogue.katas for name in k.files}
    listing = subprocess.run(["git", "-C", str(root), "ls-tree", "-r", "-z", ref, "--", "katas"],
                             capture_output=True, check=True).stdout
    blobs = {}
    for entry in listing.split(b"\0"):
        meta, _, path = entry.partition(b"\t")
        if path.decode() in wanted:
            blobs[path.decode()] = meta.split()[2].decode()
    return blobs


def render(blobs: dict[str, str]) -> str:
    return HEADER + "".join(f"{blob} {path}\n" for path, blob in sorted(blobs.items()))


def main() -> int:
    root = find_root()
    (root / LOCK_NAME).write_text(render(committed(root)), encoding="utf-8")
    print(f"{LOCK_NAME}: {len(committed(root))} stubs recorded from HEAD")
    return 0


if __name__ == "__main__":
    sys.exit(main())
