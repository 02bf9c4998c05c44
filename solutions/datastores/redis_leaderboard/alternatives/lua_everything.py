"""A game leaderboard on Redis sorted sets: best scores, competition ranks, pages, one board per period."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import redis

SHIFT = 2**32  # the composite's low 32 bits hold the tie-break: milliseconds into the period, inverted
MAX_SCORE = 2**53 // SHIFT - 1  # 2_097_151: every composite stays below 2**53, exact in a double

# KEYS[1]: the board. ARGV: player, composite, expiry in ms. Compare, write and expire in one step.
RECORD_LUA = """
local old = tonumber(redis.call('ZSCORE', KEYS[1], ARGV[1]))
local new = tonumber(ARGV[2])
if old and old >= new then return 0 end
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 1
"""

# KEYS[1]: the board. ARGV: mode ('page' or 'around'), then offset and limit, or player and k.
# Returns a flat list: player, score, rank, player, score, rank, ...; every rank from a ZCOUNT.
WINDOW_LUA = """
local board, first, last = KEYS[1], 0, -1
if ARGV[1] == 'page' then
    first = tonumber(ARGV[2])
    last = first + tonumber(ARGV[3]) - 1
else
    local at = redis.call('ZREVRANK', board, ARGV[2])
    if not at then return {} end
    first = at - tonumber(ARGV[3])
    if first < 0 then first = 0 end
    last = at + tonumber(ARGV[3])
end
if last < first then return {} end
local rows = redis.call('ZREVRANGE', board, first, last, 'WITHSCORES')
local out, prev, rank = {}, nil, 0
for i = 1, #rows, 2 do
    local score = math.floor(tonumber(rows[i + 1]) / 4294967296)
    if score ~= prev then
        rank = 1 + redis.call('ZCOUNT', board, string.format('%.0f', (score + 1) * 4294967296), '+inf')
        prev = score
    end
    table.insert(out, rows[i])
    table.insert(out, string.format('%.0f', score))
    table.insert(out, rank)
end
return out
"""


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
        if period < 1 or period * 1000 > SHIFT:
            raise ValueError(f"period must be 1 to {SHIFT // 1000} seconds, got {period}")
        if keep < 0:
            raise ValueError(f"keep must be >= 0 seconds, got {keep}")
        self.client, self.name, self.clock = client, name, clock
        self.period_ms, self.keep_ms = period * 1000, keep * 1000
        self._record = client.register_script(RECORD_LUA)
        self._window = client.register_script(WINDOW_LUA)

    def _board(self, now_ms: int, ago: int = 0) -> str:
        if ago < 0:
            raise ValueError(f"ago must be >= 0 periods, got {ago}")
        return f"leaderboard:{self.name}:{now_ms // self.period_ms - ago}"

    def record(self, player: str, score: int) -> bool:
        if isinstance(score, bool) or not isinstance(score, int):
            raise TypeError(f"score must be an int, got {score!r}")
        if not 0 <= score <= MAX_SCORE:
            raise ValueError(f"score must be 0 to {MAX_SCORE}, got {score}")
        now = round(self.clock() * 1000)
        start = now - now % self.period_ms
        late = now - start  # the tie-break: milliseconds since the period began
        expires_in = start + self.period_ms + self.keep_ms - now
        changed = self._record(keys=[self._board(now)], args=[player, score * SHIFT + SHIFT - 1 - late, expires_in])
        return changed == 1

    def _rows(self, ago: int, *args: object) -> list[Entry]:
        flat = self._window(keys=[self._board(round(self.clock() * 1000), ago)], args=list(args))
        return [Entry(flat[i], int(flat[i + 1]), int(flat[i + 2])) for i in range(0, len(flat), 3)]

    def standing(self, player: str, ago: int = 0) -> Entry | None:
        rows = self._rows(ago, "around", player, 0)
        return rows[0] if rows else None

    def page(self, offset: int, limit: int, ago: int = 0) -> list[Entry]:
        if offset < 0 or limit < 0:
            raise ValueError(f"offset and limit must be >= 0, got {offset}, {limit}")
        return self._rows(ago, "page", offset, limit)

    def top(self, n: int, ago: int = 0) -> list[Entry]:
        if n < 0:
            raise ValueError(f"n must be >= 0, got {n}")
        return self._rows(ago, "page", 0, n)

    def around(self, player: str, k: int, ago: int = 0) -> list[Entry]:
        if k < 0:
            raise ValueError(f"k must be >= 0, got {k}")
        return self._rows(ago, "around", player, k)
