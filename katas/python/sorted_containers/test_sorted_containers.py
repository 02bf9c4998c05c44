"""Tests for the sortedcontainers drills: brute-force oracles with hypothesis, and one test of scale."""

from __future__ import annotations

import random
import re
import statistics

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dojo.timelimit import KataTimeout

from .sorted_containers import Calendar, Leaderboard, merge_intervals, sliding_median

PROPERTY = settings(
    max_examples=150, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow]
)

# Size of the scale test, measured against the kata's 20 s limit: an O(log n) leaderboard needs
# about 0.5 s of CPU (about 7 s wall on 2 cores loaded 5x over); one that scans or sorts all
# players on every call does 30 000 x 30 000 steps: 200 s (scan) to 1500 s (sort) of CPU.
SCALE = 30_000


def runs(points: set[int]) -> list[tuple[int, int]]:
    """Maximal runs of consecutive integers, as half-open intervals: {1, 2, 4} -> [(1, 3), (4, 5)]."""
    out: list[tuple[int, int]] = []
    for p in sorted(points):
        if out and out[-1][1] == p:
            out[-1] = (out[-1][0], p + 1)
        else:
            out.append((p, p + 1))
    return out


# --- sliding-window median ---------------------------------------------------------------------


def test_sliding_median_examples() -> None:
    assert sliding_median([1, 3, -1, -3, 5, 3, 6, 7], 3) == [1.0, -1.0, -1.0, 3.0, 5.0, 6.0]
    assert sliding_median([1, 2, 3, 4], 4) == [2.5]
    assert sliding_median([5, 5, 5, 1], 1) == [5.0, 5.0, 5.0, 1.0]
    assert sliding_median([1, 2], 3) == [], "a window larger than the input: no medians"


def test_even_window_median_is_the_true_mean() -> None:
    got = sliding_median([-3, 0, 4], 2)
    assert got == [-1.5, 2.0], (
        f"got {got}: the median of an even window is (a + b) / 2; `// 2` floors, so "
        "(-3 + 0) // 2 is -2"
    )


def test_window_size_must_be_positive() -> None:
    with pytest.raises(ValueError):
        sliding_median([1, 2, 3], 0)


@PROPERTY
@given(st.lists(st.integers(-50, 50), max_size=30), st.integers(1, 8))
def test_sliding_median_matches_the_oracle(nums: list[int], k: int) -> None:
    want = [float(statistics.median(nums[i : i + k])) for i in range(len(nums) - k + 1)]
    got = sliding_median(nums, k)
    assert got == want, f"sliding_median({nums}, {k}): expected {want}, got {got}"


# --- leaderboard -------------------------------------------------------------------------------


def test_ranks_follow_score_then_name() -> None:
    board = Leaderboard()
    for player, score in [("cat", 50), ("bob", 70), ("ann", 50), ("dan", 10)]:
        board.submit(player, score)
    assert [board.rank(p) for p in ("bob", "ann", "cat", "dan")] == [1, 2, 3, 4]
    assert board.top(2) == [("bob", 70), ("ann", 50)]
    assert board.top(10) == [("bob", 70), ("ann", 50), ("cat", 50), ("dan", 10)]
    assert len(board) == 4


def test_a_new_score_replaces_the_old_one() -> None:
    board = Leaderboard()
    board.submit("ann", 90)
    board.submit("bob", 80)
    board.submit("ann", 10)  # ann's score goes down
    assert len(board) == 2
    assert board.top(5) == [("bob", 80), ("ann", 10)], (
        f"got {board.top(5)}: after a new submit the old score must be gone; remove the old "
        "(-score, player) entry from the sorted list before adding the new one"
    )
    assert (board.rank("bob"), board.rank("ann")) == (1, 2)


def test_removed_and_unknown_players() -> None:
    board = Leaderboard()
    board.submit("ann", 5)
    board.submit("bob", 7)
    board.remove("bob")
    assert board.rank("ann") == 1 and len(board) == 1
    with pytest.raises(KeyError):
        board.rank("bob")
    with pytest.raises(KeyError):
        board.remove("zed")


leaderboard_ops = st.lists(
    st.tuples(st.sampled_from(["submit", "submit", "remove"]), st.sampled_from("abcdef"),
              st.integers(0, 5)),
    max_size=25,
)


@PROPERTY
@given(leaderboard_ops)
def test_leaderboard_matches_a_dict_oracle(ops: list[tuple[str, str, int]]) -> None:
    board, scores = Leaderboard(), {}
    for op, player, score in ops:
        if op == "submit":
            board.submit(player, score)
            scores[player] = score
        elif player in scores:
            board.remove(player)
            del scores[player]
    order = sorted(scores, key=lambda p: (-scores[p], p))
    assert len(board) == len(scores)
    assert board.top(len(order) + 1) == [(p, scores[p]) for p in order], f"after {ops}"
    for position, player in enumerate(order, start=1):
        assert board.rank(player) == position, (
            f"after {ops}: {player} should rank {position} (score desc, then name), "
            f"got {board.rank(player)}"
        )


def test_leaderboard_scales_like_n_log_n() -> None:
    """30 000 players, then 30 000 re-submits each followed by a rank query."""
    rng = random.Random(2024)
    players = [f"player{i:05d}" for i in range(SCALE)]
    scores = {p: rng.randrange(1_000_000) for p in players}
    updates = [(rng.choice(players), rng.randrange(1_000_000)) for _ in range(SCALE)]
    board = Leaderboard()
    try:
        for player, score in scores.items():
            board.submit(player, score)
        for player, score in updates:
            board.submit(player, score)
            scores[player] = score
            board.rank(player)
    except KataTimeout as exc:
        limit = re.search(r"timed out after \S+ s", str(exc))
        raise AssertionError(
            f"{SCALE:,} submits, then {SCALE:,} re-submits each followed by rank(): "
            f"{limit.group(0) if limit else 'timed out'} because of complexity, not a deadlock. "
            "Your rank() or submit() costs O(n) "
            "per call (a scan, a sort or a list search over all players), so the whole run is "
            f"O(n^2): about {SCALE * SCALE:,} steps. Keep the players in a SortedList of "
            "(-score, name) and use .index(): O(log n) per call"
        ) from None
    order = sorted(players, key=lambda p: (-scores[p], p))
    assert board.top(10) == [(p, scores[p]) for p in order[:10]]
    for position in range(1, SCALE + 1, 97):
        player = order[position - 1]
        assert board.rank(player) == position, f"{player} should rank {position}"


# --- calendar -------------------------------------------------------------------------------


def test_back_to_back_bookings_fit_because_intervals_are_half_open() -> None:
    cal = Calendar()
    assert cal.book(10, 12)
    assert cal.book(12, 14), (
        "[12, 14) was refused next to [10, 12): intervals are half-open, so a booking that ends "
        "at 12 leaves 12 free; the overlap test is previous_end > start, not >="
    )
    assert cal.book(8, 10)
    assert cal.bookings() == [(8, 10), (10, 12), (12, 14)]


def test_a_booking_is_checked_against_both_neighbours() -> None:
    cal = Calendar()
    assert cal.book(10, 20)
    assert cal.book(30, 40)
    for start, end in [(15, 25), (25, 35), (5, 45), (10, 20), (30, 31), (19, 31)]:
        assert not cal.book(start, end), (
            f"[{start}, {end}) overlaps a booking in {cal.bookings()}: check the booking that "
            "starts just before it (does it end after start?) and the next booking (does it "
            "start before end?)"
        )
    assert cal.bookings() == [(10, 20), (30, 40)], "a refused booking must change nothing"
    assert cal.book(20, 30)


def test_cancel_frees_the_slot_and_bad_input_is_refused() -> None:
    cal = Calendar()
    assert cal.book(1, 5)
    cal.cancel(1)
    assert cal.bookings() == []
    assert cal.book(2, 4)
    with pytest.raises(KeyError):
        cal.cancel(3)
    with pytest.raises(ValueError):
        cal.book(7, 7)


def test_free_gaps_inside_a_range() -> None:
    cal = Calendar()
    for start, end in [(9, 10), (11, 13), (13, 14), (16, 18)]:
        assert cal.book(start, end)
    assert cal.free(8, 20) == [(8, 9), (10, 11), (14, 16), (18, 20)]
    assert cal.free(9, 17) == [(10, 11), (14, 16)], "a booking may cover lo or run past hi"
    assert cal.free(12, 13) == []
    assert cal.free(5, 5) == []


calendar_ops = st.lists(
    st.tuples(st.integers(0, 30), st.integers(1, 8)).map(lambda t: (t[0], t[0] + t[1])),
    max_size=20,
)


@PROPERTY
@given(calendar_ops, st.integers(0, 40), st.integers(0, 40))
def test_calendar_matches_a_point_set_oracle(
    requests: list[tuple[int, int]], lo: int, hi: int
) -> None:
    cal, taken = Calendar(), set()
    for start, end in requests:
        want = taken.isdisjoint(range(start, end))
        got = cal.book(start, end)
        assert got == want, (
            f"book({start}, {end}) with {cal.bookings()} booked: expected {want}, got {got}"
        )
        if want:
            taken.update(range(start, end))
    assert [p for s, e in cal.bookings() for p in range(s, e)] == sorted(taken)
    want_free = runs(set(range(lo, hi)) - taken)
    assert cal.free(lo, hi) == want_free, f"free({lo}, {hi}) with {cal.bookings()}: {want_free}"


# --- merging intervals -----------------------------------------------------------------------


def test_merge_examples() -> None:
    got = merge_intervals([(5, 6), (1, 2), (3, 4)])
    assert got == [(1, 2), (3, 4), (5, 6)], (
        f"got {got}: sort the intervals by start before sweeping"
    )
    assert merge_intervals([(8, 10), (1, 3), (2, 6), (6, 7)]) == [(1, 7), (8, 10)]
    assert merge_intervals([(1, 10), (2, 3)]) == [(1, 10)], "an interval inside another"
    assert merge_intervals([]) == []


@PROPERTY
@given(calendar_ops)
def test_merge_matches_a_point_set_oracle(intervals: list[tuple[int, int]]) -> None:
    want = runs({p for s, e in intervals for p in range(s, e)})
    got = merge_intervals(iter(intervals))
    assert got == want, f"merge_intervals({intervals}): expected {want}, got {got}"
