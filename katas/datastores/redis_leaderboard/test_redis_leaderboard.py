"""Tests for the leaderboard, against a real Redis and a sortedcontainers model of the README's contract.

The clock is injected (`FakeClock`): periods, tie-breaks and expiries are exact, never timed. Races
are forced, not hoped for: `SlowLink` is a redis-py client that runs the test's own code between
two of its round trips (another player scores, the client dies), so a read or a write made of two
round trips loses every time.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from typing import Any

import pytest
import redis
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, rule, run_state_machine_as_test
from sortedcontainers import SortedKeyList

from dojo.testing import wait_until
from fixtures.redis_link import SlowLink

from .redis_leaderboard import Entry, Leaderboard

SHIFT = 2**32  # the README's format: 32 tie-break bits ...
MAX_SCORE = 2**21 - 1  # ... leave 21 for the score below 2**53

DAY = 86_400
BASE = 20_000 * DAY  # 2024-10-04 00:00:00 UTC: the start of a period for every period length used here
BASE_MS = BASE * 1000

BEST = ("record keeps the player's BEST score: a lower or equal score changes nothing "
        "(ZADD with GT, or compare inside one Lua script)")
RANKS = ("ranks are standard competition ranks (1224): 1 + the number of players whose GAME score "
         "(composite // 2**32) is strictly higher, i.e. whose composite is >= (score + 1) * 2**32; never "
         "the player herself nor an equal score at another time (an inclusive bound at score * 2**32 + "
         "2**32 - 1, her own composite at the period's first millisecond, counts her). So equal scores "
         "share a rank and the next rank skips")
EARLIER = ("equal scores are ordered earlier achiever first: the composite's low 32 bits are "
           "2**32 - 1 - (milliseconds into the period), so an earlier time is a LARGER composite")
FLOOR = ("decode with floor division (composite // 2**32): round() or float division turns a "
         "composite whose tie-break bits are above one half into the next score")
BITS = ("the composite must stay below 2**53, where a double still holds every integer: score * 2**32 "
        "+ (2**32 - 1 - ms into the period). A decimal shift (score * 10**10) or ms since the epoch "
        "overflows the 53 bits, and distinct composites round to the same double")
ONE_STATE = ("a read must see ONE state of the board: run its reads in one Lua script (or WATCH the "
             "key and retry in MULTI). Another client scored between two of its round trips")


class FakeClock:
    """An injected clock in seconds: time moves only when the test says so."""

    def __init__(self, now: float = BASE) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def at_ms(self, ms: int) -> FakeClock:
        """Set the time to BASE + ms milliseconds."""
        self.now = (BASE_MS + ms) / 1000
        return self


# player names that a careless script turns into something else: empty, blank, numeric-looking, nil
ODD_NAMES = ["", " ", "名人", "zoë", "a b:c", "0", "-1", "1e3", "nan", "nil", "a\x00b"]


def key(name: str, index: int) -> str:
    return f"leaderboard:{name}:{index}"


def composite(score: int, offset_ms: int) -> int:
    return score * SHIFT + (SHIFT - 1 - offset_ms)


def as_tuples(entries: list[Entry]) -> list[tuple[str, int, int]]:
    return [(e.player, e.score, e.rank) for e in entries]


# -- the model ------------------------------------------------------------------------------------

class Model:
    """The README's contract on sortedcontainers: one SortedKeyList of (composite, player) per period,
    ascending by (composite, player's bytes): ZRANGE's order, so the board's order is its reverse."""

    def __init__(self, period_ms: int) -> None:
        self.period_ms = period_ms
        self.boards: dict[int, SortedKeyList] = {}
        self.best: dict[int, dict[str, int]] = {}

    def record(self, player: str, score: int, now_ms: int) -> bool:
        index, offset = divmod(now_ms, self.period_ms)
        board = self.boards.setdefault(index, SortedKeyList(key=lambda e: (e[0], e[1].encode())))
        best = self.best.setdefault(index, {})
        new = composite(score, offset)
        if player in best and best[player] >= new:
            return False
        if player in best:
            board.remove((best[player], player))
        best[player] = new
        board.add((new, player))
        return True

    def entries(self, index: int) -> list[Entry]:
        board = self.boards.get(index, SortedKeyList(key=lambda e: (e[0], e[1].encode())))
        out = []
        for c, player in reversed(board):
            score = c // SHIFT
            above = len(board) - board.bisect_key_left(((score + 1) * SHIFT, b""))
            out.append(Entry(player, score, above + 1))
        return out

    def standing(self, index: int, player: str) -> Entry | None:
        return next((e for e in self.entries(index) if e.player == player), None)

    def page(self, index: int, offset: int, limit: int) -> list[Entry]:
        return self.entries(index)[offset:offset + limit]

    def around(self, index: int, player: str, k: int) -> list[Entry]:
        entries = self.entries(index)
        at = next((i for i, e in enumerate(entries) if e.player == player), None)
        return [] if at is None else entries[max(0, at - k):at + k + 1]


def explain(what: str, expected: Any, got: Any) -> str:
    """The failure message: both answers, and the likely cause."""
    lines = [f"{what}: expected {expected}, got {got}."]
    want = expected if isinstance(expected, list) else [expected]
    have = got if isinstance(got, list) else [got]
    if any(e is None for e in want + have):
        lines.append("A player not on the board has no standing (None); one on it has one.")
    elif len(want) != len(have):
        lines.append("A page holds positions offset .. offset + limit - 1 (fewer at the end, none past "
                     "it); around() holds positions max(0, p - k) .. p + k. ZREVRANGE reads a negative "
                     "position from the END: 0 -1 is the whole board, and -1 2 is not the top 3.")
    elif sorted((e.player, e.score) for e in want) != sorted((e.player, e.score) for e in have):
        if [e.player for e in want] == [e.player for e in have]:
            lines.append(f"Wrong scores. {BEST}. {FLOOR}.")
        else:
            lines.append(f"Wrong players or scores. {BEST}. {BITS}.")
    elif [e.player for e in want] != [e.player for e in have]:
        lines.append(f"Same entries, wrong order: {EARLIER}; same composite: ZREVRANGE's order "
                     "(player name descending).")
    else:
        lines.append(f"Wrong ranks: {RANKS}. On a page the first entry may tie with players above "
                     "the page: count them (ZCOUNT of composites >= (score + 1) * 2**32), never "
                     "take the rank from the offset.")
    return "\n".join(lines)


def check(what: str, expected: Any, got: Any) -> None:
    assert got == expected, explain(what, expected, got)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def fill(board: Leaderboard, clock: FakeClock, scores: list[tuple[str, int]], model: Model | None = None) -> None:
    """Record each (player, score) one millisecond after the previous one."""
    for player, score in scores:
        clock.now += 0.001
        board.record(player, score)
        if model is not None:
            model.record(player, score, round(clock.now * 1000))


# -- stage 1: record, standing, pages ------------------------------------------------------------

@pytest.mark.stage(1, "record, standing, pages")
class TestRecordAndRead:
    def test_record_keeps_each_players_best_score(self, redis_client: redis.Redis, clock: FakeClock) -> None:
        board = Leaderboard(redis_client, "arena", clock=clock)
        assert board.record("ada", 10) is True, "the first score of a player is her best: record returns True"
        assert board.standing("ada") == Entry("ada", 10, 1), (
            f"after record('ada', 10) on an empty board her standing is {board.standing('ada')}: score 10, rank 1. "
            f"{RANKS}"
        )
        clock.now += 1
        assert board.record("ada", 5) is False, f"a lower score is not a best: record returns False. {BEST}"
        assert board.standing("ada") == Entry("ada", 10, 1), f"a lower score replaced the best. {BEST}"
        assert board.record("ada", 25) is True, "a higher score is a new best: record returns True"
        clock.now += 1
        assert board.record("ada", 25) is False, f"an equal score is not a new best. {BEST}"
        assert board.standing("ada") == Entry("ada", 25, 1), f"ada's best is 25, got {board.standing('ada')}. {BEST}"
        assert board.record("bob", 0) is True and board.standing("bob") == Entry("bob", 0, 2), (
            f"0 is a score like any other: bob is {board.standing('bob')}, expected rank 2. {RANKS}"
        )

    def test_an_empty_board_and_an_unknown_player(self, redis_client: redis.Redis, clock: FakeClock) -> None:
        board = Leaderboard(redis_client, "arena", clock=clock)
        assert board.standing("nobody") is None, "a player not on the board has no standing: None"
        assert board.top(3) == [] and board.page(0, 5) == [] and board.around("nobody", 2) == [], (
            "an empty board (no key in Redis) has no entries: top, page and around return []"
        )
        board.record("ada", 7)
        assert board.standing("nobody") is None, "a player not on the board has no standing: None"
        assert board.around("nobody", 2) == [], "around() a player not on the board is []"

    def test_top_and_pages_walk_the_board_in_order(self, redis_client: redis.Redis, clock: FakeClock) -> None:
        board = Leaderboard(redis_client, "arena", clock=clock)
        scores = [("ann", 30), ("ben", 60), ("cat", 10), ("dan", 50), ("eve", 20), ("fay", 40)]
        model = Model(DAY * 1000)
        fill(board, clock, scores, model)
        index = round(clock.now * 1000) // (DAY * 1000)
        check("top(3)", model.page(index, 0, 3), board.top(3))
        check("top(10) of 6 players", model.page(index, 0, 10), board.top(10))
        for offset, limit in [(0, 2), (2, 2), (4, 2), (5, 3), (1, 1)]:
            check(f"page({offset}, {limit})", model.page(index, offset, limit), board.page(offset, limit))
        for offset in (6, 7, 100):
            check(f"page({offset}, 3): past the end of a board of 6", [], board.page(offset, 3))

    def test_a_page_of_zero_entries_is_empty(self, redis_client: redis.Redis, clock: FakeClock) -> None:
        """ZREVRANGE key 0 -1 is the WHOLE board: offset + limit - 1 is -1 when both are 0."""
        board = Leaderboard(redis_client, "arena", clock=clock)
        fill(board, clock, [("ann", 3), ("ben", 2), ("cat", 1)])
        for call, got in [("top(0)", board.top(0)), ("page(0, 0)", board.page(0, 0)),
                          ("page(2, 0)", board.page(2, 0))]:
            assert got == [], (
                f"{call} returned {got}: a page of 0 entries is empty. ZREVRANGE reads stop = -1 as the "
                "LAST position, so 'ZREVRANGE key 0 -1' is the whole board: return [] before asking"
            )

    def test_players_are_any_strings(self, redis_client: redis.Redis, clock: FakeClock) -> None:
        """Every read of every odd name round-trips: none is a marker, none is converted."""
        board = Leaderboard(redis_client, "arena", clock=clock)
        model = Model(DAY * 1000)
        fill(board, clock, [(name, 10 * i) for i, name in enumerate(ODD_NAMES)], model)
        index = BASE // DAY
        why = ("player names are any strings (empty, spaces, Unicode, colons, names that look like numbers "
               "or like Lua's nil): the member is the name as it is, and no name may double as a 'no "
               "player' marker (an empty ARGV meaning 'a page, not a player') or be parsed")
        check(f"top({len(ODD_NAMES)}) of the names {ODD_NAMES}. {why}", model.page(index, 0, len(ODD_NAMES)),
              board.top(len(ODD_NAMES)))
        for at, name in enumerate(reversed(ODD_NAMES)):
            check(f"standing({name!r}). {why}", model.standing(index, name), board.standing(name))
            for k in (0, 1):
                check(f"around({name!r}, {k}). {why}", model.around(index, name, k), board.around(name, k))
            check(f"page({at}, 1), {name!r}'s position. {why}", model.page(index, at, 1), board.page(at, 1))

    def test_each_named_board_is_its_own(self, redis_client: redis.Redis, clock: FakeClock) -> None:
        arena, maze = Leaderboard(redis_client, "arena", clock=clock), Leaderboard(redis_client, "maze", clock=clock)
        arena.record("ada", 10)
        maze.record("bob", 5)
        for name, board, want in [("arena", arena, [Entry("ada", 10, 1)]), ("maze", maze, [Entry("bob", 5, 1)])]:
            check(f"top(5) of {name!r} (two boards with different names share nothing: the key is "
                  "leaderboard:{name}:{period index})", want, board.top(5))

    def test_refusals(self, redis_client: redis.Redis, clock: FakeClock) -> None:
        board = Leaderboard(redis_client, "arena", clock=clock)
        for bad in (1.5, "10", True, None, 10.0):
            with pytest.raises(TypeError):
                board.record("ada", bad)  # type: ignore[arg-type]
        for bad in (-1, MAX_SCORE + 1, 2**53):
            with pytest.raises(ValueError):
                board.record("ada", bad)
        assert redis_client.keys("*") == [], "a refused record must write nothing"
        board.record("ada", MAX_SCORE)
        board.record("bob", 0)
        check("top(2) after record('ada', MAX_SCORE), record('bob', 0): both valid scores",
              [Entry("ada", MAX_SCORE, 1), Entry("bob", 0, 2)], board.top(2))
        calls: list[tuple[str, Callable[[], object]]] = [
            ("page(-1, 2)", lambda: board.page(-1, 2)), ("page(0, -1)", lambda: board.page(0, -1)),
            ("top(-1)", lambda: board.top(-1)), ("around('ada', -1)", lambda: board.around("ada", -1)),
            ("standing('ada', ago=-1)", lambda: board.standing("ada", ago=-1)),
            ("page(0, 2, ago=-1)", lambda: board.page(0, 2, ago=-1)),
            ("top(2, ago=-1)", lambda: board.top(2, ago=-1)),
            ("around('ada', 1, ago=-1)", lambda: board.around("ada", 1, ago=-1)),
        ]
        for text, call in calls:
            try:
                got = call()
            except ValueError:
                continue
            pytest.fail(f"{text} returned {got}: a negative offset, limit, n, k or ago is a ValueError")

    def test_the_period_and_keep_are_checked(self, redis_client: redis.Redis) -> None:
        for period, keep in [(0, 0), (-1, 0), (SHIFT // 1000 + 1, 0), (DAY, -1)]:
            with pytest.raises(ValueError):
                Leaderboard(redis_client, "arena", period=period, keep=keep)
        longest = Leaderboard(redis_client, "arena", period=SHIFT // 1000, keep=0, clock=FakeClock(0))
        longest.record("ada", 1)
        check(f"top(1) with period {SHIFT // 1000} s (2**32 ms, the most the 32 tie-break bits hold) and "
              "keep 0, both valid", [Entry("ada", 1, 1)], longest.top(1))


# -- stage 2: ties ----------------------------------------------------------------------------------

@pytest.mark.stage(2, "ties: 1224 ranks, earlier achiever first")
class TestTies:
    def test_equal_scores_share_a_rank_and_the_next_rank_skips(
        self, redis_client: redis.Redis, clock: FakeClock,
    ) -> None:
        board = Leaderboard(redis_client, "arena", clock=clock)
        fill(board, clock, [("ann", 50), ("ben", 40), ("cat", 40), ("dan", 40), ("eve", 30), ("fay", 30), ("gus", 1)])
        want = [("ann", 50, 1), ("ben", 40, 2), ("cat", 40, 2), ("dan", 40, 2), ("eve", 30, 5), ("fay", 30, 5),
                ("gus", 1, 7)]
        got = as_tuples(board.top(7))
        assert got == want, f"top(7): expected {want}, got {got}: {RANKS} ('1224', not 1234 or 1223)"
        for player, score, rank in want:
            assert board.standing(player) == Entry(player, score, rank), (
                f"standing({player!r}) is {board.standing(player)}, expected rank {rank}: {RANKS}"
            )

    def test_the_earlier_achiever_comes_first(self, redis_client: redis.Redis, clock: FakeClock) -> None:
        board = Leaderboard(redis_client, "arena", clock=clock)
        clock.at_ms(5_000)
        board.record("amy", 40)
        clock.at_ms(1_000)  # (a clock may go back: what counts is the time of each record)
        board.record("zed", 40)
        got = as_tuples(board.top(2))
        assert got == [("zed", 40, 1), ("amy", 40, 1)], (
            f"zed reached 40 at 1 s into the day, amy at 5 s: expected zed first, got {got}. {EARLIER}"
        )
        clock.at_ms(9_000)
        board.record("bob", 40)
        assert [e.player for e in board.top(3)] == ["zed", "amy", "bob"], EARLIER

    def test_a_repeated_score_keeps_its_first_time(self, redis_client: redis.Redis, clock: FakeClock) -> None:
        """A duplicate delivery, or the same score reached again later, must not move the player down."""
        board = Leaderboard(redis_client, "arena", clock=clock)
        clock.at_ms(1_000)
        board.record("ann", 40)
        clock.at_ms(2_000)
        board.record("ben", 40)
        clock.at_ms(3_000)
        assert board.record("ann", 40) is False, f"ann already had 40: {BEST}"
        assert [e.player for e in board.top(2)] == ["ann", "ben"], (
            "ann reached 40 before ben; her same 40 delivered again later moved her behind ben. Keep the "
            "EARLIER time: with an inverted tie-break the later record is a smaller composite, and ZADD GT "
            "keeps the larger"
        )

    def test_an_equal_score_at_an_earlier_time_moves_the_player_up(
        self, redis_client: redis.Redis, clock: FakeClock,
    ) -> None:
        """The clock went back (another server's lags): the same score at an earlier millisecond is a best."""
        board = Leaderboard(redis_client, "arena", clock=clock)
        clock.at_ms(5_000)
        board.record("amy", 40)
        clock.at_ms(3_000)
        board.record("bob", 40)
        why = ("record keeps the player's best (score, time): a higher score, or the SAME score at an EARLIER "
               "millisecond of the period (the larger composite; ZADD GT compares composites). It returns "
               "True and moves her time earlier; a compare of the game scores alone keeps her later time")
        clock.at_ms(1_000)  # the clock went back: amy reached 40 at 1 s, before bob's 3 s
        assert board.record("amy", 40) is True, f"amy's 40 recorded again at 1 s (she had it at 5 s). {why}"
        check("top(2) after amy's 40 at 5 s, bob's 40 at 3 s, amy's 40 again at 1 s. " + why,
              [Entry("amy", 40, 1), Entry("bob", 40, 1)], board.top(2))
        stored = redis_client.zscore(key("arena", BASE // DAY), "amy")
        assert stored == composite(40, 1_000), (
            f"amy's composite is {stored}, expected 40 at 1 000 ms: {composite(40, 1_000)}. {why}"
        )
        assert board.record("amy", 40) is False, (
            "amy's 40 at the same millisecond again: the same composite changes nothing, record returns False"
        )

    def test_the_same_score_in_the_same_millisecond_orders_by_name_descending(
        self, redis_client: redis.Redis, clock: FakeClock,
    ) -> None:
        board = Leaderboard(redis_client, "arena", clock=clock)
        for player in ("bob", "al", "cy", "alf"):
            board.record(player, 9)
        got = as_tuples(board.top(4))
        assert got == [("cy", 9, 1), ("bob", 9, 1), ("alf", 9, 1), ("al", 9, 1)], (
            f"four players reached 9 in the same millisecond: equal composites, so ZREVRANGE's order, the "
            f"name descending; all rank 1. Got {got}. {RANKS}"
        )

    @pytest.mark.parametrize("offset", range(8))
    def test_ties_across_a_page_edge_keep_their_rank(
        self, redis_client: redis.Redis, clock: FakeClock, offset: int,
    ) -> None:
        board = Leaderboard(redis_client, "arena", clock=clock)
        model = Model(DAY * 1000)
        fill(board, clock, [("ann", 50), ("ben", 40), ("cat", 40), ("dan", 40), ("eve", 30), ("fay", 30),
                            ("gus", 10)], model)
        index = round(clock.now * 1000) // (DAY * 1000)
        for limit in range(5):
            check(f"page({offset}, {limit}) of 50, 40, 40, 40, 30, 30, 10",
                  model.page(index, offset, limit), board.page(offset, limit))

    def test_around_me_is_clipped_at_both_ends(self, redis_client: redis.Redis, clock: FakeClock) -> None:
        board = Leaderboard(redis_client, "arena", clock=clock)
        model = Model(DAY * 1000)
        players = [("ann", 50), ("ben", 40), ("cat", 40), ("dan", 30), ("eve", 20), ("fay", 20)]
        fill(board, clock, players, model)
        index = round(clock.now * 1000) // (DAY * 1000)
        for player, _ in players:
            for k in range(5):
                check(f"around({player!r}, {k}) on 50, 40, 40, 30, 20, 20",
                      model.around(index, player, k), board.around(player, k))

    def test_every_sequence_of_calls_agrees_with_the_model(self, redis_client: redis.Redis) -> None:
        run_state_machine_as_test(
            lambda: BoardMachine(redis_client, period=DAY, ticks=[0, 0, 1, 2, 250, 60_000]),
            settings=settings(max_examples=40, stateful_step_count=20, deadline=None),
        )


PLAYERS = st.sampled_from(["ann", "ben", "cat", "dan", "eve"]) | st.sampled_from(ODD_NAMES)
SCORES = st.sampled_from([0, 1, 7, 7, 8, 30, MAX_SCORE - 1, MAX_SCORE]) | st.integers(0, MAX_SCORE)


class BoardMachine(RuleBasedStateMachine):
    """Records, clock ticks and every read, on the leaderboard and on the model, compared call by call."""

    def __init__(self, client: redis.Redis, period: int, ticks: list[int]) -> None:
        super().__init__()
        client.flushdb()
        self.clock = FakeClock()
        self.board = Leaderboard(client, "machine", period=period, keep=DAY, clock=self.clock)
        self.model = Model(period * 1000)
        self.now_ms = BASE_MS
        self.calls: list[str] = []
        self.ticks = st.sampled_from(ticks)

    def index(self, ago: int) -> int:
        return self.now_ms // self.model.period_ms - ago

    def check(self, what: str, expected: Any, got: Any) -> None:
        self.calls.append(what)
        assert got == expected, explain(what, expected, got) + "\nThe calls:\n  " + "\n  ".join(self.calls)

    @rule(player=PLAYERS, score=SCORES)
    def record(self, player: str, score: int) -> None:
        want = self.model.record(player, score, self.now_ms)
        self.check(f"record({player!r}, {score}) at clock {self.clock.now:.4f} (+{self.now_ms - BASE_MS} ms)", want,
                   self.board.record(player, score))

    @rule(data=st.data())
    def tick(self, data: st.DataObject) -> None:
        self.now_ms += data.draw(self.ticks)
        # time.time() has sub-millisecond digits: every call rounds them to the same now_ms
        self.clock.now = (self.now_ms + data.draw(st.sampled_from([0, -0.4, 0.4]))) / 1000

    @rule(player=PLAYERS, ago=st.sampled_from([0, 0, 1]))
    def standing(self, player: str, ago: int) -> None:
        self.check(f"standing({player!r}, ago={ago})", self.model.standing(self.index(ago), player),
                   self.board.standing(player, ago=ago))

    @rule(offset=st.integers(0, 6), limit=st.integers(0, 6), ago=st.sampled_from([0, 0, 1]))
    def page(self, offset: int, limit: int, ago: int) -> None:
        self.check(f"page({offset}, {limit}, ago={ago})", self.model.page(self.index(ago), offset, limit),
                   self.board.page(offset, limit, ago=ago))

    @rule(n=st.integers(0, 6))
    def top(self, n: int) -> None:
        self.check(f"top({n})", self.model.page(self.index(0), 0, n), self.board.top(n))

    @rule(player=PLAYERS, k=st.integers(0, 3), ago=st.sampled_from([0, 0, 1]))
    def around(self, player: str, k: int, ago: int) -> None:
        self.check(f"around({player!r}, {k}, ago={ago})", self.model.around(self.index(ago), player, k),
                   self.board.around(player, k, ago=ago))


# -- stage 3: the 53 bits of a double ---------------------------------------------------------------

@pytest.mark.stage(3, "the composite score in 53 bits")
class TestComposite:
    @pytest.mark.parametrize(("seconds", "offset_ms"), [
        (0, 0), (0.001, 1), (12.345, 12_345), (DAY - 0.001, DAY * 1000 - 1), (0.0126, 13), (7.0006, 7001),
        (0.0004, 0),
    ])
    def test_the_stored_format(
        self, redis_client: redis.Redis, clock: FakeClock, seconds: float, offset_ms: int,
    ) -> None:
        """Other services read the board: the key, the member and the composite are fixed by the README."""
        clock.now = BASE + seconds  # time.time() has sub-millisecond digits: now_ms rounds them
        board = Leaderboard(redis_client, "arena", clock=clock)
        board.record("ada", 1234)
        index = BASE // DAY
        stored = redis_client.zscore(key("arena", index), "ada")
        assert stored is not None, (
            f"no member 'ada' in {key('arena', index)!r}; keys: {redis_client.keys('*')}. The key is "
            "leaderboard:{name}:{now_ms // period_ms}, the member the player's name"
        )
        assert int(stored) == composite(1234, offset_ms), (
            f"score 1234 at {seconds} s ({offset_ms} ms) into the period is stored as {int(stored)}, expected "
            f"1234 * 2**32 + (2**32 - 1 - {offset_ms}) = {composite(1234, offset_ms)}. {EARLIER}; the "
            "offset counts from the period's start (now_ms % period_ms), not from the epoch; now_ms is "
            "round(clock() * 1000): int() drops the 0.6 ms of 7.0006 s"
        )

    def test_scores_at_the_limit_stay_exact_and_ordered(self, redis_client: redis.Redis, clock: FakeClock) -> None:
        board = Leaderboard(redis_client, "arena", clock=clock)
        last_ms = DAY * 1000 - 1
        for player, score, at in [("late_max", MAX_SCORE, last_ms), ("early_max", MAX_SCORE, 0),
                                  ("early_next", MAX_SCORE - 1, 0), ("late_next", MAX_SCORE - 1, last_ms),
                                  ("zero", 0, 0)]:
            clock.at_ms(at)
            board.record(player, score)
        got = as_tuples(board.top(5))
        want = [("early_max", MAX_SCORE, 1), ("late_max", MAX_SCORE, 1), ("early_next", MAX_SCORE - 1, 3),
                ("late_next", MAX_SCORE - 1, 3), ("zero", 0, 5)]
        assert got == want, (
            f"at MAX_SCORE = 2**21 - 1 = {MAX_SCORE}, the first and last millisecond of the period: "
            f"expected {want}, got {got}. {BITS}. {FLOOR}."
        )
        assert redis_client.zscore(key("arena", BASE // DAY), "early_max") == 2**53 - 1, (
            "MAX_SCORE at the period's first millisecond is the largest composite, 2**53 - 1"
        )

    @pytest.mark.parametrize("low_bits", [0, 1, SHIFT // 2 - 1, SHIFT // 2, SHIFT - 1], ids=lambda b: f"low={b}")
    def test_a_board_written_by_another_service_reads_back(
        self, redis_client: redis.Redis, clock: FakeClock, low_bits: int,
    ) -> None:
        """Another app server wrote these composites: any 32 tie-break bits decode to the same score."""
        board = Leaderboard(redis_client, "arena", clock=clock)
        board_key = key("arena", BASE // DAY)
        redis_client.zadd(board_key, {"top": MAX_SCORE * SHIFT + low_bits, "mid": 77 * SHIFT + low_bits,
                                      "low": low_bits, "tied": 77 * SHIFT})
        mid = board.standing("mid")
        want = [("top", MAX_SCORE, 1), ("mid", 77, 2), ("tied", 77, 2), ("low", 0, 4)]
        if low_bits == 0:
            want[1:3] = [("tied", 77, 2), ("mid", 77, 2)]  # equal composites: name descending
        got = as_tuples(board.top(4))
        assert mid == Entry("mid", 77, 2) and got == want, (
            f"composites with low bits {low_bits} (score * 2**32 + {low_bits}) read back as {mid} and "
            f"{got}, expected {want}. {FLOOR}. {RANKS}."
        )


# -- stage 4: one board per period ------------------------------------------------------------------

@pytest.mark.stage(4, "one board per period, kept for a while")
class TestPeriods:
    def test_each_period_has_its_own_board(self, redis_client: redis.Redis, clock: FakeClock) -> None:
        board = Leaderboard(redis_client, "arena", period=3600, keep=DAY, clock=clock)
        index = BASE // 3600
        clock.at_ms(3600_000 - 1)  # the last millisecond of an hour
        board.record("ann", 10)
        clock.at_ms(3600_000)  # the first millisecond of the next
        assert board.standing("ann") is None and board.top(5) == [], (
            "a new period starts an empty board: the key is leaderboard:{name}:{now_ms // period_ms}"
        )
        assert board.standing("ann", ago=1) == Entry("ann", 10, 1), (
            "ago=1 reads the previous period's board (ann scored in its last millisecond)"
        )
        board.record("ann", 3)
        assert board.standing("ann") == Entry("ann", 3, 1), (
            "a new period starts from nothing: ann's best of the previous hour does not carry over"
        )
        assert board.page(0, 5, ago=1) == [Entry("ann", 10, 1)] and board.around("ann", 1, ago=1) == [
            Entry("ann", 10, 1)] and board.top(5, ago=2) == [], (
            "page, around and top take `ago` too: ago=1 is the previous hour's board, ago=2 an empty one"
        )
        assert set(redis_client.keys("*")) == {key("arena", index), key("arena", index + 1)}, (
            f"expected one key per hour, {key('arena', index)!r} and {key('arena', index + 1)!r}; found "
            f"{redis_client.keys('*')}"
        )

    def test_the_period_changes_at_the_rounded_millisecond(self, redis_client: redis.Redis, clock: FakeClock) -> None:
        board = Leaderboard(redis_client, "arena", period=3600, clock=clock)
        clock.now = BASE + 3600 - 0.0006  # 3_599_999.4 ms: the last millisecond of the hour
        board.record("ann", 1)
        clock.now = BASE + 3600 - 0.0004  # 3_599_999.6 ms rounds to 3_600_000: the next hour
        board.record("ben", 2)
        index = BASE // 3600
        boards = {k: redis_client.zrange(k, 0, -1) for k in redis_client.keys("*")}
        assert boards == {key("arena", index): ["ann"], key("arena", index + 1): ["ben"]}, (
            f"0.4 ms before the hour ends, now_ms = round(clock() * 1000) is already the next hour's "
            f"first millisecond; the boards are {boards}. round(), not int(): int() keeps the old hour"
        )
        ann, ben = Entry("ann", 1, 1), Entry("ben", 2, 1)
        reads: list[tuple[float, str, Callable[[], Any], Any]] = [
            (-0.0006, "standing('ann')", lambda: board.standing("ann"), ann),
            (-0.0006, "top(5)", lambda: board.top(5), [ann]),
            (-0.0006, "around('ann', 1)", lambda: board.around("ann", 1), [ann]),
            (-0.0004, "standing('ben')", lambda: board.standing("ben"), ben),
            (-0.0004, "standing('ann')", lambda: board.standing("ann"), None),
            (-0.0004, "page(0, 5)", lambda: board.page(0, 5), [ben]),
            (-0.0004, "around('ben', 1)", lambda: board.around("ben", 1), [ben]),
            (-0.0004, "standing('ann', ago=1)", lambda: board.standing("ann", ago=1), ann),
            (-0.0004, "top(5, ago=1)", lambda: board.top(5, ago=1), [ann]),
            (-0.0004, "around('ann', 1, ago=1)", lambda: board.around("ann", 1, ago=1), [ann]),
        ]
        for before_end, call, read, want in reads:
            clock.now = BASE + 3600 + before_end
            now_ms = round(clock.now * 1000)
            check(f"{call} at {-before_end * 1000:.1f} ms before the hour ends (ann recorded 0.6 ms before, "
                  f"ben 0.4 ms before, on the next hour's board). A read picks its board from the same "
                  f"now_ms = round(clock() * 1000) as record: index {now_ms // 3600_000} here, minus ago; "
                  "int(clock()), whole seconds or a truncated millisecond reads another hour than record "
                  "wrote", want, read())

    @pytest.mark.parametrize(("period", "keep", "at_ms"), [
        (None, None, 0), (DAY, 7 * DAY, 13 * 3600_000 + 1), (3600, DAY, 3600_000 - 1), (60, 0, 30_000),
    ], ids=["defaults-day-start", "day-afternoon", "hour-last-ms", "minute-keep-0"])
    def test_the_board_expires_keep_seconds_after_its_period_ends(
        self, redis_client: redis.Redis, clock: FakeClock, period: int | None, keep: int | None, at_ms: int,
    ) -> None:
        if period is None or keep is None:  # the defaults: a daily board, kept a week
            board = Leaderboard(redis_client, "arena", clock=clock.at_ms(at_ms))
            period, keep = DAY, 7 * DAY
        else:
            board = Leaderboard(redis_client, "arena", period=period, keep=keep, clock=clock.at_ms(at_ms))
        board.record("ann", 10)
        now_ms = BASE_MS + at_ms
        index = now_ms // (period * 1000)
        want = (index + 1) * period * 1000 + keep * 1000 - now_ms
        pttl = redis_client.pttl(key("arena", index))
        assert want - 500 <= pttl <= want, (
            f"recorded {at_ms} ms into a {period} s period with keep={keep}: the board must expire "
            f"`keep` seconds after its period ENDS, in {want} ms by the injected clock; its PTTL is {pttl} "
            "ms (-1: no expiry, a board left forever; -2: no key). PEXPIRE key (period end + keep - now) "
            "with every record"
        )
        if (now_ms + 1000) // (period * 1000) != index:
            return  # a second later is the next period
        clock.now += 1
        board.record("ann", 5)
        pttl = redis_client.pttl(key("arena", index))
        assert want - 1500 <= pttl <= want, (
            f"a second record 1 s later (a lower score, which changes nothing else) left PTTL {pttl} ms; "
            f"the board still ends at the same moment, about {want - 1000} ms after it by the injected "
            f"clock (or, left as it was, {want} ms after the first)"
        )

    def test_an_expired_board_is_gone(self, redis_client: redis.Redis, clock: FakeClock) -> None:
        board = Leaderboard(redis_client, "arena", period=1, keep=0, clock=clock.at_ms(998))
        board.record("ann", 10)  # 2 ms before the end of a 1 s period, kept 0 s: expires in 2 ms
        deadline = time.monotonic() + 5
        while redis_client.exists(key("arena", BASE)) and time.monotonic() < deadline:
            time.sleep(0.005)
        assert board.top(5) == [] and board.standing("ann") is None, (
            "the board's expiry passed (period end + keep, 2 ms after the record): it is gone, and reads "
            "of it are empty"
        )

    def test_the_default_clock_is_the_unix_time(self, redis_client: redis.Redis) -> None:
        board = Leaderboard(redis_client, "arena", period=3600)
        before = round(time.time() * 1000) // 3600_000
        board.record("ann", 10)
        after = round(time.time() * 1000) // 3600_000
        assert set(redis_client.keys("*")) <= {key("arena", before), key("arena", after)} and redis_client.keys("*"), (
            f"with no clock, the period is now_ms // period_ms from time.time() (index {before}); found "
            f"{redis_client.keys('*')}"
        )
        assert board.standing("ann") == Entry("ann", 10, 1), (
            f"with the default clock, record then standing read different boards: {board.standing('ann')}"
        )

    def test_every_sequence_across_periods_agrees_with_the_model(self, redis_client: redis.Redis) -> None:
        run_state_machine_as_test(
            lambda: BoardMachine(redis_client, period=1, ticks=[0, 1, 400, 999, 1000, 2500]),
            settings=settings(max_examples=30, stateful_step_count=20, deadline=None),
        )


# -- stage 5: atomicity ----------------------------------------------------------------------------

def split_commands(data: bytes) -> list[bytes]:
    """The RESP commands in a batch, each as sent: *<n>\r\n then n times $<len>\r\n<bytes>\r\n."""
    commands, i = [], 0
    while i < len(data):
        start, end = i, data.index(b"\r\n", i)
        count, i = int(data[i + 1:end]), end + 2
        for _ in range(count):
            end = data.index(b"\r\n", i)
            i = end + 2 + int(data[i + 1:end]) + 2
        commands.append(data[start:i])
    return commands


def crashing_connection(sent: int) -> type[redis.Connection]:
    """A connection class whose client dies halfway through its first batch of more than `sent`
    commands: only the first `sent` reach the server, then the socket closes, and every later
    command fails (a dead client does not retry)."""

    class Crashing(redis.Connection):
        dead = False

        def send_packed_command(self, command: Any, check_health: bool = True) -> None:
            if Crashing.dead:
                raise redis.ConnectionError("the client is dead")
            chunks = [command] if isinstance(command, (bytes, str)) else command
            data = b"".join(c.encode() if isinstance(c, str) else bytes(c) for c in chunks)
            commands = split_commands(data)
            if len(commands) > sent:
                super().send_packed_command([b"".join(commands[:sent])], check_health)
                Crashing.dead = True
                self.disconnect()
                raise redis.ConnectionError(f"the client died after sending {sent} of {len(commands)} commands")
            super().send_packed_command(command, check_health)

    return Crashing


@pytest.mark.stage(5, "atomic: races and a dying client")
class TestAtomicity:
    @pytest.mark.parametrize("n", [1, 2, 3])
    def test_a_better_score_recorded_between_two_round_trips_is_kept(
        self, redis_client: redis.Redis, redis_clients: Callable[..., Any], clock: FakeClock, n: int,
    ) -> None:
        """ann records 20 on a slow client; after its n-th round trip she scores 30 on another."""
        Leaderboard(redis_client, "arena", clock=clock).record("ann", 10)
        slow: SlowLink = redis_clients(SlowLink)
        other = Leaderboard(redis_clients(), "arena", clock=clock)
        slow.at(n, lambda: other.record("ann", 30))
        Leaderboard(slow, "arena", clock=clock).record("ann", 20)
        if slow.after is not None:  # record made fewer than n round trips: nothing raced it
            other.record("ann", 30)
        slow.after = None
        got = Leaderboard(redis_client, "arena", clock=clock).standing("ann")
        assert got == Entry("ann", 30, 1), (
            f"ann's 30 was recorded between round trips #{n} and #{n + 1} of her slower record(20); her "
            f"standing is now {got}: the lower score overwrote the best. A ZSCORE, a compare in Python "
            "and a ZADD are three steps another client runs between: ZADD GT (one command) or a Lua "
            "script compares and writes in one step"
        )

    @pytest.mark.parametrize("n", [1, 2, 3])
    def test_a_client_that_dies_mid_record_leaves_no_board_without_expiry(
        self, redis_clients: Callable[..., Any], redis_client: redis.Redis, clock: FakeClock, n: int,
    ) -> None:
        dying: SlowLink = redis_clients(SlowLink)
        dying.at(n, dying.die)
        with contextlib.suppress(redis.RedisError):
            Leaderboard(dying, "arena", clock=clock).record("ann", 10)
        board_key = key("arena", BASE // DAY)
        pttl = redis_client.pttl(board_key)
        assert pttl != -1, (
            f"the client died after its round trip #{n} inside record; {board_key!r} is left with no expiry: "
            "a board that is never deleted. Send ZADD and PEXPIRE together in one MULTI transaction (or one "
            "Lua script): both happen or neither"
        )

    @pytest.mark.parametrize("sent", [1, 2, 3])
    def test_a_client_that_dies_halfway_through_sending_a_batch_leaves_no_board_without_expiry(
        self, redis_client: redis.Redis, redis_server: Any, clock: FakeClock, sent: int,
    ) -> None:
        """The client crashes after the first `sent` commands of a pipeline reached the server."""
        pool = redis.ConnectionPool(connection_class=crashing_connection(sent), host=redis_server.host,
                                    port=redis_server.port, decode_responses=True, client_name="dying")
        dying = redis.Redis(connection_pool=pool)
        with contextlib.suppress(redis.RedisError):
            Leaderboard(dying, "arena", clock=clock).record("ann", 10)
        pool.disconnect()
        board_key = key("arena", BASE // DAY)
        wait_until(lambda: all(c["name"] != "dying" for c in redis_client.client_list()),
                   what="the server to see the dead client's connection close")
        pttl = redis_client.pttl(board_key)
        assert pttl != -1, (
            f"the client died after sending the first {sent} command(s) of a batch inside record; "
            f"{board_key!r} is left with no expiry: a board that is never deleted. A pipeline without "
            "MULTI runs whatever arrived; MULTI ... EXEC runs both or neither (so does a Lua script)"
        )

    @pytest.mark.parametrize("n", [1, 2, 3])
    @pytest.mark.parametrize("read", ["standing", "page", "around"])
    def test_a_read_sees_one_state_of_the_board(
        self, redis_client: redis.Redis, redis_clients: Callable[..., Any], clock: FakeClock, read: str, n: int,
    ) -> None:
        """Between round trips #n and #n+1 of the read, eve scores 35 and cat 50."""
        model = Model(DAY * 1000)
        writer = Leaderboard(redis_client, "arena", clock=clock)
        fill(writer, clock, [("ann", 40), ("ben", 30), ("cat", 30), ("dan", 20)], model)
        index = BASE // DAY
        calls: dict[str, Callable[[Leaderboard], Any]] = {
            "standing": lambda b: b.standing("cat"), "page": lambda b: b.page(1, 2),
            "around": lambda b: b.around("cat", 1),
        }
        answers: dict[str, Callable[[], Any]] = {
            "standing": lambda: model.standing(index, "cat"), "page": lambda: model.page(index, 1, 2),
            "around": lambda: model.around(index, "cat", 1),
        }
        before = answers[read]()

        def others_score() -> None:
            fill(writer, clock, [("eve", 35), ("cat", 50)], model)

        slow: SlowLink = redis_clients(SlowLink)
        slow.at(n, others_score)
        got = calls[read](Leaderboard(slow, "arena", clock=clock))
        if slow.after is not None:  # the read made fewer than n round trips: nothing raced it
            others_score()
        slow.after = None
        after = answers[read]()
        assert got in (before, after), (
            f"{read}: before the others scored the answer was {before}, after it {after}; the read "
            f"returned {got}, a mix of both. {ONE_STATE}"
        )

    def test_reads_survive_a_flushed_script_cache(self, redis_client: redis.Redis, clock: FakeClock) -> None:
        board = Leaderboard(redis_client, "arena", clock=clock)
        fill(board, clock, [("ann", 2), ("ben", 1)])
        assert board.top(2) == [Entry("ann", 2, 1), Entry("ben", 1, 2)], f"top(2) is {board.top(2)}"
        redis_client.script_flush()  # as after a restart: EVALSHA answers NOSCRIPT
        try:
            got = board.top(2)
        except redis.exceptions.NoScriptError as exc:
            pytest.fail(f"NOSCRIPT was not handled ({exc}): fall back to EVAL, or use register_script")
        assert got == [Entry("ann", 2, 1), Entry("ben", 1, 2)], f"after SCRIPT FLUSH, top(2) is {got}"
