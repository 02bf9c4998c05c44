"""A game leaderboard on Redis sorted sets: best scores, competition ranks, pages, one board per period."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import redis

SHIFT = 2**32  # the composite's low 32 bits hold the tie-break: milliseconds into the period, inverted
MAX_SCORE = 2**53 // SHIFT - 1  # 2_097_151: every composite stays below 2**53, exact in a double

# TODO: the reads that must agree (a position, the entries there, the players above them) in one
# Lua script, if you take that road (or WATCH the key and retry in MULTI).
WINDOW_LUA = """
return redis.error_reply('WINDOW_LUA is not written yet')
"""


@dataclass(frozen=True)
class Entry:
    """One line of the board: `rank` is the standard competition rank (1224), 1-based."""

    player: str
    score: int
    rank: int


class Leaderboard:
    """Best scores per player on one board per `period` seconds, kept `keep` seconds after it ends.

    >>> board = Leaderboard(redis.Redis(decode_responses=True), "arena")
    >>> board.record("ada", 120), board.record("bob", 120), board.record("cy", 90)
    (True, True, True)
    >>> board.top(3)  # equal scores share a rank, the earlier first; the next rank skips (1224)
    [Entry(player='ada', score=120, rank=1),
     Entry(player='bob', score=120, rank=1),
     Entry(player='cy', score=90, rank=3)]
    """

    def __init__(
        self, client: redis.Redis, name: str, period: int = 86_400, keep: int = 7 * 86_400,
        clock: Callable[[], float] = time.time,
    ) -> None:
        # TODO: refuse a period outside 1 .. 2**32 // 1000 seconds and a negative keep (ValueError).
        self.client = client
        self.name = name
        self.period = period
        self.keep = keep
        self.clock = clock

    def record(self, player: str, score: int) -> bool:
        """Keep `score` if it beats the player's best on the current board; True if it did.

        TypeError unless score is an int (not a bool); ValueError unless 0 <= score <= MAX_SCORE.
        """
        # TODO: now_ms = round(clock() * 1000); key leaderboard:{name}:{now_ms // period_ms};
        # composite = score * SHIFT + (SHIFT - 1 - now_ms % period_ms); keep the best (ZADD GT CH)
        # and PEXPIRE the board to `keep` after its period ends, both or neither (MULTI).
        raise NotImplementedError("Leaderboard.record")

    def standing(self, player: str, ago: int = 0) -> Entry | None:
        """The player's entry on the board `ago` periods back, or None if not on it."""
        # TODO: the score and the rank read from the same board (one script, or WATCH + MULTI).
        raise NotImplementedError("Leaderboard.standing")

    def page(self, offset: int, limit: int, ago: int = 0) -> list[Entry]:
        """The entries at positions offset .. offset + limit - 1 in board order (ValueError if negative)."""
        # TODO: ZREVRANGE with WITHSCORES; careful, a stop of -1 means the last position.
        raise NotImplementedError("Leaderboard.page")

    def top(self, n: int, ago: int = 0) -> list[Entry]:
        """The first n entries: page(0, n)."""
        # TODO
        raise NotImplementedError("Leaderboard.top")

    def around(self, player: str, k: int, ago: int = 0) -> list[Entry]:
        """Up to k entries above the player, the player, and up to k below; [] if not on the board."""
        # TODO: ZREVRANK, then positions max(0, p - k) .. p + k, all on the same board.
        raise NotImplementedError("Leaderboard.around")
