"""`kata solutions-branch`: a local git branch where every learner file is its reference solution.

The branch is one commit on top of the learner's HEAD, so git's own tools compare their work with
the reference: `git diff solutions -- katas/concurrency/bounded_queue`, `git difftool`,
`git checkout solutions -- <file>`, an IDE's "compare with branch". It is built with plumbing on a
throwaway index (read-tree, update-index, write-tree, commit-tree, update-ref): the learner's
branch, index and working tree are never touched. A refresh with nothing new changes nothing.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from ..catalogue import KATAS_DIR, SOLUTIONS_DIR, Catalogue

BRANCH = "solutions"
REF = f"refs/heads/{BRANCH}"
# A trailer on every commit we make: a `solutions` branch without it is the learner's own, and
# is never moved.
TRAILER = "Kata-Solutions-Branch: yes"
# The generated commit needs no identity of the learner's (a fresh machine may have none).
IDENTITY = {
    "GIT_AUTHOR_NAME": "kata", "GIT_AUTHOR_EMAIL": "kata@localhost",
    "GIT_COMMITTER_NAME": "kata", "GIT_COMMITTER_EMAIL": "kata@localhost",
}


class BranchProblem(Exception):
    """The branch cannot be made or refreshed; the message says why and what to do."""


@dataclass
class Refreshed:
    commit: str  # the branch's tip
    base: str  # the learner's HEAD it sits on
    files: int  # learner files replaced by their reference
    changed: bool  # False: it was already up to date
    missing: list[str] = field(default_factory=list)  # references HEAD does not have


def refresh(catalogue: Catalogue) -> Refreshed:
    """Create or move `solutions` to HEAD plus one commit with every reference in place."""
    root = catalogue.root
    head = _rev(root, "HEAD^{commit}")
    if head is None:
        raise BranchProblem("this is not a git clone with a commit: the branch is made on top of HEAD")
    if _git(root, "symbolic-ref", "--quiet", "--short", "HEAD", check=False).strip() == BRANCH:
        raise BranchProblem(f"you are on the {BRANCH} branch: switch back to your own branch first "
                            "(git switch -), then refresh it")
    existing = _rev(root, REF)
    if existing is not None and TRAILER not in _git(root, "log", "-1", "--format=%B", existing):
        raise BranchProblem(f"a branch called {BRANCH} exists and was not made by kata: it is left "
                            f"alone. Rename it (git branch -m {BRANCH} <new-name>) and try again")

    entries, missing = [], []
    for kata in catalogue.katas:
        for name in kata.files:
            reference = f"{SOLUTIONS_DIR}/{kata.topic}/{kata.name}/{name}"
            listed = _git(root, "ls-tree", head, "--", reference).split()
            if len(listed) < 3:
                missing.append(reference)
                continue
            mode, _, blob = listed[:3]
            entries.append(f"{mode} {blob}\t{KATAS_DIR}/{kata.topic}/{kata.name}/{name}\n")
    tree = _tree_with(root, head, "".join(entries))

    if existing is not None and _rev(root, f"{existing}^{{tree}}") == tree and _rev(root, f"{existing}^") == head:
        return Refreshed(existing, head, len(entries), changed=False, missing=missing)
    message = (f"The reference solutions in place of the learner files ({len(entries)} files)\n\n"
               f"Made by `kata solutions-branch` on top of {head[:12]}; refresh it with the same "
               f"command.\n\n{TRAILER}\n")
    commit = _git(root, "commit-tree", tree, "-p", head, "-m", message, env=IDENTITY).strip()
    # compare-and-swap: if someone moved the branch meanwhile, git refuses instead of losing it
    _git(root, "update-ref", "-m", "kata solutions-branch", REF, commit, existing or "0" * len(commit))
    return Refreshed(commit, head, len(entries), changed=True, missing=missing)


def _tree_with(root: Path, head: str, index_info: str) -> str:
    """HEAD's tree with `index_info` (git update-index --index-info lines) applied, built in a
    throwaway index so the learner's own index stays as it is."""
    with tempfile.TemporaryDirectory(prefix="kata-solutions-index-") as tmp:
        index = {"GIT_INDEX_FILE": str(Path(tmp) / "index")}
        _git(root, "read-tree", head, env=index)
        _git(root, "update-index", "--index-info", env=index, stdin=index_info)
        return _git(root, "write-tree", env=index).strip()


def _rev(root: Path, name: str) -> str | None:
    found = _git(root, "rev-parse", "--verify", "--quiet", name, check=False).strip()
    return found or None


def _git(root: Path, *args: str, env: dict[str, str] | None = None, stdin: str | None = None,
         check: bool = True) -> str:
    try:
        done = subprocess.run(["git", "-C", str(root), *args], input=stdin, capture_output=True,
                              text=True, env={**os.environ, **(env or {})}, timeout=60, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise BranchProblem(f"cannot run git: {exc}") from None
    if check and done.returncode != 0:
        reason = done.stderr.strip().splitlines()
        raise BranchProblem(f"git {args[0]} failed: {reason[-1] if reason else f'exit {done.returncode}'}")
    return done.stdout
