"""Finds a kata from what the learner typed: exact, then prefix, substring, initials, typos."""

from __future__ import annotations

import difflib
from collections.abc import Callable

from ..catalogue import Catalogue, Kata

MIN_LOOSE_LETTERS = 3


class NoSuchKata(LookupError):
    """Nothing (or more than one thing) matches; the message suggests what the learner meant."""


def _norm(text: str) -> str:
    return text.strip().lower().replace("-", "_").replace(" ", "_")


def _initials(name: str) -> str:
    return "".join(part[0] for part in name.split("_") if part)


def _is_subsequence(needle: str, haystack: str) -> bool:
    it = iter(haystack)
    return all(ch in it for ch in needle)


def resolve(catalogue: Catalogue, query: str) -> Kata:
    """The one kata `query` names; NoSuchKata with suggestions otherwise.

    Tried in order, first unique hit wins: exact name or topic/name (case, '-' and ' ' ignored),
    prefix, substring (3 letters or more), initials ("bq" -> bounded_queue), letters in order
    from the first ("bndq", 3 letters or more).
    """
    wanted = _norm(query)
    katas = list(catalogue.katas)
    if not wanted:
        raise NoSuchKata("no kata ''; `kata list` shows them all")
    # two letters inside a name or scattered through it match nearly anything ("ab" was in
    # nginx_load_balancer): the loose tests need three, and letters in order the first letter too
    loose = len(wanted) >= MIN_LOOSE_LETTERS
    tests: tuple[Callable[[Kata], bool], ...] = (
        lambda k: wanted in (k.name, k.slug),
        lambda k: k.name.startswith(wanted) or k.slug.startswith(wanted),
        lambda k: loose and wanted in k.slug,
        lambda k: _initials(k.name) == wanted,
        lambda k: loose and k.name.startswith(wanted[0]) and _is_subsequence(wanted, k.name),
    )
    for test in tests:
        hits = [k for k in katas if test(k)]
        if len(hits) == 1:
            return hits[0]
        if len(hits) > 1:
            several = ", ".join(k.name for k in hits[:6])
            raise NoSuchKata(f"'{query}' matches several katas: {several}; be more specific")
    names = [k.name for k in katas]
    # the closest names even when none is close: a suggestion beats a dead end
    close = difflib.get_close_matches(wanted, names, n=3, cutoff=0.5) or difflib.get_close_matches(
        wanted, names, n=3, cutoff=0.0
    )
    if not close:
        raise NoSuchKata(f"no kata '{query}': the catalogue is empty")
    options = close[0] if len(close) == 1 else f"{', '.join(close[:-1])} or {close[-1]}"
    raise NoSuchKata(f"no kata '{query}'; did you mean {options}? (`kata list` shows them all)")


def is_exact(kata: Kata, query: str) -> bool:
    """True if `query` names the kata outright (name or topic/name), not by a guess."""
    return _norm(query) in (kata.name, kata.slug)
