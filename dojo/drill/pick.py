"""Which kata to drill next: weighted towards the ones not drilled lately or failed last time."""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Sequence

from ..catalogue import Kata
from .log import GREEN, DrillLog

NEVER_DAYS = 28.0  # a kata never drilled counts as drilled four weeks ago: the most overdue
FAILED_FACTOR = 3.0  # a kata not solved last time comes back three times as often


def weight(kata: Kata, log: DrillLog, now: dt.datetime) -> float:
    """1 for a kata solved today, growing by 1 a week since its last drill up to 5, and tripled
    if the last drill did not go green: spaced repetition, roughly."""
    last = log.last_of(kata.slug)
    if last is None:
        return 1.0 + NEVER_DAYS / 7
    days = max(0.0, (now - last.when).total_seconds() / 86400)
    base = 1.0 + min(days, NEVER_DAYS) / 7
    return base if last.outcome == GREEN else base * FAILED_FACTOR


def choose(katas: Sequence[Kata], log: DrillLog, now: dt.datetime, rng: random.Random) -> Kata:
    """One kata, at random by weight."""
    if not katas:
        raise ValueError("no katas to choose from")
    return rng.choices(list(katas), weights=[weight(k, log, now) for k in katas])[0]


def mock_set(
    katas: Sequence[Kata], count: int, log: DrillLog, now: dt.datetime, rng: random.Random
) -> list[Kata]:
    """`count` different katas (fewer if there are not that many), mixing topics: each round
    takes at most one kata per topic, so topics repeat only once every topic had its turn."""
    left = list(katas)
    chosen: list[Kata] = []
    while left and len(chosen) < count:
        used: set[str] = set()
        while len(chosen) < count:
            fresh = [k for k in left if k.topic not in used]
            if not fresh:
                break
            kata = choose(fresh, log, now, rng)
            chosen.append(kata)
            used.add(kata.topic)
            left.remove(kata)
    return chosen
