"""A game leaderboard on Redis sorted sets: best scores, competition ranks, pages, one board per period."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import redis

SHIFT = 2**32  # the composite's low 32 bits hold the tie-break: milliseconds into the period, inverted
MAX_SCORE = 2**53 // SHIFT - 1  # 2_097_151: every composite stays below 2**53, exact in a double

RankOf = Callable[[str], int | None]  # a player's 0-based position on the watched board, or None

# No Lua here: optimistic transactions. WATCH the board, read, and let EXEC tell whether anyone
# wrote to it meanwhile (then EXEC answers nil, redis-py raises WatchError, and we start over).
WINDOW_LUA = ""


@dataclass(frozen=True)
class Entry:
    """One line of the board: `rank` is the standard competition rank (1224), 1-based."""

    player: str
    score: int
    rank: int


class Leaderboard:
    """Best scores per player on one board per `period` seconds, kept `keep` seconds after it ends."""

    def __init__(
        self, client: redis.Redis, name: str, period: int = 86_400, keep: int = 7 * 86_400,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not 1 <= period <= SHIFT // 1000:
            raise ValueError(f"period must be 1 to {SHIFT // 1000} seconds, got {period}")
        if keep < 0:
            raise ValueError(f"keep must be >= 0 seconds, got {keep}")
        self.client = client
        self.name = name
        self.period_ms = period * 1000
        self.keep_ms = keep * 1000
        self.clock = clock

    def _key(self, index: int) -> str:
        return f"leaderboard:{self.name}:{index}"

    def record(self, player: str, score: int) -> bool:
        if type(score) is not int:
            raise TypeError(f"score must be an int, got {score!r}")
        if score < 0 or score > MAX_SCORE:
            raise ValueError(f"score must be 0 to {MAX_SCORE}, got {score}")
        now = round(self.clock() * 1000)
        index, offset = divmod(now, self.period_ms)
        key = self._key(index)
        new = score * SHIFT + SHIFT - 1 - offset
        end = (index + 1) * self.period_ms + self.keep_ms
        with self.client.pipeline() as pipe:
            while True:
                try:
                    pipe.watch(key)
                    old = pipe.zscore(key, player)
                    if old is not None and int(old) >= new:
                        pipe.unwatch()
                        return False
                    pipe.multi()
                    pipe.zadd(key, {player: new})
                    pipe.pexpire(key, end - now)
                    pipe.execute()
                    return True
                except redis.WatchError:
                    continue  # someone wrote to the board between our read and EXEC: read again

    def _read(self, ago: int, pick: Callable[[RankOf], tuple[int, int] | None]) -> list[Entry]:
        """`pick` chooses the positions to read, given a way to look up a position on the board."""
        if ago < 0:
            raise ValueError(f"ago must be >= 0 periods, got {ago}")
        key = self._key(round(self.clock() * 1000) // self.period_ms - ago)
        with self.client.pipeline() as pipe:
            while True:
                try:
                    pipe.watch(key)
                    span = pick(lambda player: pipe.zrevrank(key, player))
                    if span is None:
                        pipe.unwatch()
                        return []
                    first, last = span
                    rows = pipe.zrevrange(key, first, last, withscores=True) if last >= first else []
                    above = 0
                    if rows:
                        floor = (int(rows[0][1]) // SHIFT + 1) * SHIFT
                        above = pipe.zcount(key, floor, "+inf")
                    pipe.multi()
                    pipe.execute()  # an empty MULTI/EXEC: it fails if the board changed since WATCH
                    break
                except redis.WatchError:
                    continue
        entries: list[Entry] = []
        for position, (player, composite) in enumerate(rows, start=first + 1):
            score = int(composite) // SHIFT
            tied = [e.rank for e in entries[-1:] if e.score == score]
            entries.append(Entry(player, score, tied[0] if tied else (above + 1 if not entries else position)))
        return entries

    def standing(self, player: str, ago: int = 0) -> Entry | None:
        found = self.around(player, 0, ago)
        return found[0] if found else None

    def page(self, offset: int, limit: int, ago: int = 0) -> list[Entry]:
        if min(offset, limit) < 0:
            raise ValueError(f"offset and limit must be >= 0, got {offset}, {limit}")
        return self._read(ago, lambda _rank: (offset, offset + limit - 1))

    def top(self, n: int, ago: int = 0) -> list[Entry]:
        return self.page(0, n, ago)

    def around(self, player: str, k: int, ago: int = 0) -> list[Entry]:
        if k < 0:
            raise ValueError(f"k must be >= 0, got {k}")

        def span(rank_of: RankOf) -> tuple[int, int] | None:
            at = rank_of(player)
            return None if at is None else (max(0, at - k), at + k)

        return self._read(ago, span)
