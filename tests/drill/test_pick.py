"""Choosing a kata: weighted towards the ones not drilled lately or failed last time."""

from __future__ import annotations

import datetime as dt
import random
from collections import Counter
from pathlib import Path

from dojo.catalogue import Kata
from dojo.drill.log import GREEN, TIMED_OUT, DrillLog, Entry
from dojo.drill.pick import choose, mock_set, weight

NOW = dt.datetime(2026, 3, 30, 12, 0, tzinfo=dt.UTC)


def _kata(name: str, topic: str = "basics") -> Kata:
    return Kata(name=name, topic=topic, title=name, files=(f"{name}.py",), hints=())


def _drilled(kata: Kata, days_ago: float, outcome: str = GREEN) -> Entry:
    when = (NOW - dt.timedelta(days=days_ago)).isoformat()
    return Entry(kata.slug, when, outcome, 100.0, 2, 20.0)


def test_weights_favour_katas_never_or_long_ago_drilled_and_the_ones_failed_last_time():
    fresh, week, month, never, failed = (_kata(n) for n in ("a", "b", "c", "d", "e"))
    log = DrillLog(Path("unused"), [
        _drilled(fresh, 0.1), _drilled(week, 7), _drilled(month, 60),
        _drilled(failed, 3, GREEN), _drilled(failed, 0.1, TIMED_OUT),  # the last one counts
    ])
    w = {k.name: weight(k, log, NOW) for k in (fresh, week, month, never, failed)}
    assert w["a"] < w["b"] < w["c"] == w["d"], w
    assert w["e"] > w["a"] * 2, "failed last time comes back sooner than solved at the same time"


def test_choose_follows_the_weights():
    fresh, never = _kata("fresh"), _kata("never")
    log = DrillLog(Path("unused"), [_drilled(fresh, 0)])
    rng = random.Random(1)
    counts = Counter(choose([fresh, never], log, NOW, rng).name for _ in range(2000))
    assert counts["never"] > counts["fresh"] * 3, counts  # 5 : 1 in expectation


def test_a_mock_mixes_topics_and_never_repeats_a_kata():
    katas = [_kata("a1", "a"), _kata("a2", "a"), _kata("a3", "a"), _kata("b1", "b"), _kata("c1", "c")]
    log = DrillLog(Path("unused"))
    for seed in range(30):
        chosen = mock_set(katas, 3, log, NOW, random.Random(seed))
        assert sorted(k.topic for k in chosen) == ["a", "b", "c"], chosen
        five = mock_set(katas, 9, log, NOW, random.Random(seed))
        assert sorted(k.name for k in five) == ["a1", "a2", "a3", "b1", "c1"]
        assert {five[0].topic, five[1].topic, five[2].topic} == {"a", "b", "c"}, "one per topic first"
