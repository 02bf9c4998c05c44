"""A game leaderboard on Redis sorted sets: best scores, competition ranks, pages, one board per period."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import redis

SHIFT = 2**32  # the composite's low 32 bits hold the tie-break: milliseconds into the period, inverted
MAX_SCORE = 2**53 // SHIFT - 1  # 2_097_151: every composite stays below 2**53, exact in a double

# KEYS[1]: the board. ARGV[1], ARGV[2]: the first and last position (0-based, board order); with
# ARGV[3], a player, they are offsets from that player's own position. Returns {first position,
# players above the first entry's score, player, composite, player, composite, ...}, or {} when
# the player is not on the board. One script: the positions, the entries and the count all read
# the same board, where separate round trips could each see a different one.
WINDOW_LUA = """
local board = KEYS[1]
local first, last = tonumber(ARGV[1]), tonumber(ARGV[2])
if ARGV[3] then
    local at = redis.call('ZREVRANK', board, ARGV[3])
    if not at then return {} end
    first, last = math.max(0, at + first), at + last
end
-- ZREVRANGE reads a negative position from the end: 0 -1 is the whole board, never an empty page
if last < first then return {first, 0} end
local entries = redis.call('ZREVRANGE', board, first, last, 'WITHSCORES')
if #entries == 0 then return {first, 0} end
-- everyone whose composite is at least (score + 1) * 2^32 has a strictly higher score
local score = math.floor(tonumber(entries[2]) / 4294967296)
local above = redis.call('ZCOUNT', board, string.format('%.0f', (score + 1) * 4294967296), '+inf')
return {first, above, unpack(entries)}
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
        # the offset into a period must fit the 32 tie-break bits: at most 2**32 ms, 49.7 days
        if not 1 <= period <= SHIFT // 1000:
            raise ValueError(f"period must be 1 to {SHIFT // 1000} seconds, got {period}")
        if keep < 0:
            raise ValueError(f"keep must be >= 0 seconds, got {keep}")
        self.client = client
        self.name = name
        self.period_ms = period * 1000
        self.keep_ms = keep * 1000
        self.clock = clock
        self.window = client.register_script(WINDOW_LUA)  # EVALSHA, and SCRIPT LOAD on NOSCRIPT

    def _now_ms(self) -> int:
        # whole milliseconds: round(), as int() would turn 1.001 s into 1000 ms
        return round(self.clock() * 1000)

    def _key(self, index: int) -> str:
        return f"leaderboard:{self.name}:{index}"

    def record(self, player: str, score: int) -> bool:
        """Keep `score` if it beats the player's best on the current board; True if it did."""
        if not isinstance(score, int) or isinstance(score, bool):
            raise TypeError(f"score must be an int, got {score!r}")
        if not 0 <= score <= MAX_SCORE:
            raise ValueError(f"score must be 0 to {MAX_SCORE}, got {score}")
        now = self._now_ms()
        index, offset = divmod(now, self.period_ms)
        # an earlier time in the period gets a larger composite: earlier achiever first
        composite = score * SHIFT + (SHIFT - 1 - offset)
        expires_in = (index + 1) * self.period_ms + self.keep_ms - now
        # MULTI: both or neither, so a client that dies between them leaves no board without expiry;
        # GT keeps the best in one command (CH: count a raised score, not only a new player)
        with self.client.pipeline(transaction=True) as multi:
            multi.zadd(self._key(index), {player: composite}, gt=True, ch=True)
            multi.pexpire(self._key(index), expires_in)
            changed, _ = multi.execute()
        return bool(changed)

    def _read(self, ago: int, first: int, last: int, player: str | None = None) -> list[Entry]:
        if ago < 0:
            raise ValueError(f"ago must be >= 0 periods, got {ago}")
        key = self._key(self._now_ms() // self.period_ms - ago)
        args = [first, last] if player is None else [first, last, player]
        reply = self.window(keys=[key], args=args)
        if not reply:
            return []
        start, above, flat = int(reply[0]), int(reply[1]), reply[2:]
        entries: list[Entry] = []
        for i in range(0, len(flat), 2):
            score = int(float(flat[i + 1])) // SHIFT
            if not entries:
                rank = above + 1  # ties may start above the first position read
            elif score == entries[-1].score:
                rank = entries[-1].rank  # a tie shares the rank
            else:
                rank = start + i // 2 + 1  # 1224: the rank after a tie skips
            entries.append(Entry(flat[i], score, rank))
        return entries

    def standing(self, player: str, ago: int = 0) -> Entry | None:
        """The player's entry on the board `ago` periods back, or None if not on it."""
        window = self._read(ago, 0, 0, player)
        if not window:
            return None
        (entry,) = window  # k = 0: the player alone
        return entry

    def page(self, offset: int, limit: int, ago: int = 0) -> list[Entry]:
        """The entries at positions offset .. offset + limit - 1 in board order."""
        if offset < 0 or limit < 0:
            raise ValueError(f"offset and limit must be >= 0, got {offset}, {limit}")
        return self._read(ago, offset, offset + limit - 1)

    def top(self, n: int, ago: int = 0) -> list[Entry]:
        """The first n entries: page(0, n)."""
        return self.page(0, n, ago)  # (a negative n is page's negative limit: ValueError)

    def around(self, player: str, k: int, ago: int = 0) -> list[Entry]:
        """Up to k entries above the player, the player, and up to k below; [] if not on the board."""
        if k < 0:
            raise ValueError(f"k must be >= 0, got {k}")
        return self._read(ago, -k, k, player)
