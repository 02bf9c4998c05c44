"""Tests for the sortedcontainers drills: brute-force oracles with hypothesis, and work counted
at two sizes for the complexity."""

from __future__ import annotations

import random
import statistics
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test

from .sorted_containers import Calendar, Leaderboard, merge_intervals, sliding_median

PROPERTY = settings(
    max_examples=150, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow]
)


def runs(points: set[int]) -> list[tuple[int, int]]:
    """Maximal runs of consecutive integers, as half-open intervals: {1, 2, 4} -> [(1, 3), (4, 5)]."""
    out: list[tuple[int, int]] = []
    for p in sorted(points):
        if out and out[-1][1] == p:
            out[-1] = (out[-1][0], p + 1)
        else:
            out.append((p, p + 1))
    return out


def refused(error: type[Exception], action: Callable[[], object], because: str) -> None:
    """`action()` must raise `error`; else fail, saying `because`."""
    try:
        action()
    except error:
        return
    except Exception as exc:  # any other exception is the wrong answer
        pytest.fail(f"raised {exc!r} instead: {because}")
    pytest.fail(f"accepted: {because}")


# --- counting work, for the complexity tests -----------------------------------------------------


class Counted:
    """Work done by the code under test: lines run in its module, and comparisons of numbers."""

    lines = 0
    comparisons = 0

    @classmethod
    def total(cls) -> int:
        return cls.lines + cls.comparisons


def _counting(name: str) -> Callable[[int, Any], Any]:
    compare = getattr(int, name)

    def method(self: int, other: Any) -> Any:
        Counted.comparisons += 1
        return compare(self, other)

    return method


class Num(int):
    """An int that counts the comparisons made on it: sorted(), bisect, a heap, a SortedList or a
    loop over the items all compare them. Negating or adding keeps counting."""

    __hash__ = int.__hash__
    __lt__, __le__ = _counting("__lt__"), _counting("__le__")
    __gt__, __ge__ = _counting("__gt__"), _counting("__ge__")
    __eq__, __ne__ = _counting("__eq__"), _counting("__ne__")  # type: ignore[assignment]

    def __neg__(self) -> Num:
        return Num(-int(self))

    def __add__(self, other: Any) -> Any:
        return Num(int(self) + other) if isinstance(other, int) else int(self) + other

    __radd__ = __add__

    def __sub__(self, other: Any) -> Any:
        return Num(int(self) - other) if isinstance(other, int) else int(self) - other

    def __rsub__(self, other: Any) -> Any:
        return Num(other - int(self)) if isinstance(other, int) else other - int(self)


@contextmanager
def counting_work(code_file: str) -> Iterator[None]:
    """Count the lines run in `code_file` (sys.settrace, that file only) and Num comparisons."""

    def line_counter(frame: FrameType, event: str, arg: object) -> Any:
        if event == "line":
            Counted.lines += 1
        return line_counter

    def on_call(frame: FrameType, event: str, arg: object) -> Any:
        return line_counter if frame.f_code.co_filename == code_file else None

    Counted.lines = Counted.comparisons = 0
    previous = sys.gettrace()
    sys.settrace(on_call)
    try:
        yield
    finally:
        sys.settrace(previous)


# --- sliding-window median ---------------------------------------------------------------------


@pytest.mark.stage(1, "the sliding median")
def test_sliding_median_examples() -> None:
    got = sliding_median([1, 3, -1, -3, 5, 3, 6, 7], 3)
    assert got == [1.0, -1.0, -1.0, 3.0, 5.0, 6.0], (
        f"LeetCode 480's example with k=3 gave {got}: the median of a window of odd size is its "
        "middle value once sorted, window[k // 2]"
    )
    got = sliding_median([1, 2, 3, 4], 4)
    assert got == [2.5], f"one window of 4 gave {got}: k == len(nums) is one window, (2 + 3) / 2"
    got = sliding_median([5, 5, 5, 1], 1)
    assert got == [5.0, 5.0, 5.0, 1.0], f"k=1 gave {got}: each number is its own median"
    got = sliding_median((4, 1, 4, 1, 4), 2)
    assert got == [2.5, 2.5, 2.5, 2.5], (
        f"a tuple with repeated values, k=2, gave {got}: nums is any sequence, and removing the "
        "number that left the window must remove ONE occurrence of it"
    )
    assert sliding_median([1, 2], 3) == [], "a window larger than the input: no medians"
    assert sliding_median([], 1) == [], "no numbers: no windows, no medians"


@pytest.mark.stage(1, "the sliding median")
def test_medians_are_floats() -> None:
    got = sliding_median([3, 1, 2], 3) + sliding_median([7, 9], 2)
    assert got == [2.0, 8.0] and all(type(m) is float for m in got), (
        f"got {got!r} ({[type(m).__name__ for m in got]}): the contract says floats, also for "
        "an odd window whose median is one of the ints (float(window[k // 2]))"
    )


@pytest.mark.stage(1, "the sliding median")
def test_even_window_median_is_the_true_mean() -> None:
    got = sliding_median([-3, 0, 4], 2)
    why = ("`// 2` floors, so (-3 + 0) // 2 is -2: use / 2" if got == [-2.0, 2.0] else
           "the windows are [-3, 0] and [0, 4]: after the first, -3 leaves and 4 arrives")
    assert got == [-1.5, 2.0], (
        f"sliding_median([-3, 0, 4], 2) is {got}, expected [-1.5, 2.0]: the median of an even "
        f"window is the mean (a + b) / 2 of its two middle values; {why}"
    )


@pytest.mark.stage(1, "the sliding median")
@pytest.mark.parametrize("k", [0, -1])
def test_window_size_must_be_positive(k: int) -> None:
    refused(ValueError, lambda: sliding_median([1, 2, 3], k),
            f"sliding_median(nums, {k}): a window needs at least one number, k < 1 is a ValueError")
    assert sliding_median([1, 2, 3], 1) == [1.0, 2.0, 3.0], "k = 1, the smallest legal window"


@pytest.mark.stage(1, "the sliding median")
@PROPERTY
@given(st.lists(st.integers(-50, 50), max_size=30), st.integers(1, 8))
def test_sliding_median_matches_the_oracle(nums: list[int], k: int) -> None:
    want = [float(statistics.median(nums[i : i + k])) for i in range(len(nums) - k + 1)]
    got = sliding_median(nums, k)
    assert got == want, (
        f"sliding_median({nums}, {k}): expected {want} (statistics.median of each slice), got {got}"
    )


def median_work(k: int) -> int:
    rng = random.Random(480)
    nums = [Num(rng.randrange(-10_000, 10_000)) for _ in range(1_000)]
    with counting_work(sliding_median.__code__.co_filename):
        got = sliding_median(nums, k)
    work = Counted.total()
    assert len(got) == len(nums) - k + 1, f"{len(got)} medians for {len(nums)} numbers, k={k}"
    return work


@pytest.mark.stage(5, "log-time work")
def test_sliding_median_does_log_k_work_per_window() -> None:
    small, large = median_work(25), median_work(200)
    ratio = large / max(small, 1)
    assert ratio < 3, (
        f"sliding_median over the same 1000 numbers did {small} units of work (comparisons of the "
        f"numbers, lines run in your module) with k=25 and {large} with k=200: {ratio:.1f} times "
        "as much, where O(log k) per window barely changes (about 1.5x). Something costs O(k) or "
        "more per window: sorting each window again (sorted(), statistics.median) is O(k log k), "
        "list.remove or a scan for the middle is O(k). Keep the window in a SortedList: add the "
        "newcomer, remove the leaver, read window[k // 2], each O(log k)"
    )


# --- leaderboard -------------------------------------------------------------------------------


@pytest.mark.stage(2, "the leaderboard")
def test_ranks_follow_score_then_name() -> None:
    board = Leaderboard()
    for player, score in [("cat", 50), ("bob", 70), ("ann", 50), ("dan", 10)]:
        board.submit(player, score)
    ranks = [board.rank(p) for p in ("bob", "ann", "cat", "dan")]
    assert ranks == [1, 2, 3, 4], (
        f"ranks of bob (70), ann (50), cat (50), dan (10): {ranks}, expected [1, 2, 3, 4]: "
        "higher scores first, equal scores A-Z, 1-based; the sort key is (-score, name)"
    )
    assert board.top(2) == [("bob", 70), ("ann", 50)], (
        f"top(2) is {board.top(2)}: the two best as (player, score), best first"
    )
    assert board.top(10) == [("bob", 70), ("ann", 50), ("cat", 50), ("dan", 10)], (
        f"top(10) with 4 players is {board.top(10)}: everyone, best first"
    )
    assert len(board) == 4, f"len() is {len(board)} with 4 players"


@pytest.mark.stage(2, "the leaderboard")
@pytest.mark.parametrize("k", [0, -1, -5])
def test_top_of_zero_or_fewer_is_empty(k: int) -> None:
    board = Leaderboard()
    for player, score in [("ann", 3), ("bob", 2), ("cat", 1)]:
        board.submit(player, score)
    assert board.top(k) == [], (
        f"top({k}) is {board.top(k)}: the {k} best players are no players. A slice with a "
        "negative stop counts from the end, so clamp k at 0 first"
    )


@pytest.mark.stage(2, "the leaderboard")
def test_a_new_score_replaces_the_old_one() -> None:
    board = Leaderboard()
    board.submit("ann", 90)
    board.submit("bob", 80)
    board.submit("ann", 10)  # ann's score goes down
    assert len(board) == 2, f"len() is {len(board)} after ann submitted twice: one entry each"
    assert board.top(5) == [("bob", 80), ("ann", 10)], (
        f"got {board.top(5)}: after a new submit the old score must be gone; remove the old "
        "(-score, player) entry from the sorted list before adding the new one"
    )
    assert (board.rank("bob"), board.rank("ann")) == (1, 2), "ann's 10 ranks below bob's 80"


@pytest.mark.stage(2, "the leaderboard")
def test_removed_and_unknown_players() -> None:
    board = Leaderboard()
    board.submit("ann", 5)
    board.submit("bob", 7)
    board.remove("bob")
    assert board.rank("ann") == 1 and len(board) == 1, (
        f"after removing bob: ann ranks {board.rank('ann')}, len {len(board)}; a removed player "
        "must leave both the scores and the ranking"
    )
    refused(KeyError, lambda: board.rank("bob"),
            "rank() of a removed player is a KeyError: remove() takes it out of the scores too")
    refused(KeyError, lambda: board.remove("zed"), "remove() of a player never seen is a KeyError")
    board.submit("bob", 1)
    assert (board.rank("ann"), board.rank("bob")) == (1, 2), "a removed player can come back"


class LeaderboardAgainstADict(RuleBasedStateMachine):
    """The leaderboard and a dict of scores sorted on every check, side by side."""

    def __init__(self) -> None:
        super().__init__()
        self.board = Leaderboard()
        self.scores: dict[str, int] = {}
        self.log: list[str] = []

    def order(self) -> list[str]:
        return sorted(self.scores, key=lambda p: (-self.scores[p], p))

    @rule(player=st.sampled_from("abcdef"), score=st.integers(-3, 5))
    def submit(self, player: str, score: int) -> None:
        self.log.append(f"submit({player!r}, {score})")
        self.board.submit(player, score)
        self.scores[player] = score

    @rule(player=st.sampled_from("abcdef"))
    def remove(self, player: str) -> None:
        self.log.append(f"remove({player!r})")
        if player in self.scores:
            self.board.remove(player)
            del self.scores[player]
        else:
            with pytest.raises(KeyError):
                self.board.remove(player)
            with pytest.raises(KeyError):
                self.board.rank(player)

    @rule(k=st.integers(-2, 8))
    def top(self, k: int) -> None:
        want = [(p, self.scores[p]) for p in self.order()[: max(k, 0)]]
        got = self.board.top(k)
        assert got == want, (
            f"top({k}) is {got}, expected {want}: best first by (-score, name), at most k, none "
            f"for k <= 0. After {self.log}"
        )

    @invariant()
    def ranks_and_length_agree(self) -> None:
        assert len(self.board) == len(self.scores), (
            f"len() is {len(self.board)} for {len(self.scores)} players: a re-submit must not "
            f"add an entry, a remove must take one away. After {self.log}"
        )
        for position, player in enumerate(self.order(), start=1):
            got = self.board.rank(player)
            assert got == position, (
                f"{player} (score {self.scores[player]}) should rank {position} (score "
                f"descending, then name), got {got}: a stale entry from an earlier score, or a "
                f"wrong sort key. After {self.log}"
            )


@pytest.mark.stage(2, "the leaderboard")
def test_leaderboard_matches_a_dict_oracle() -> None:
    run_state_machine_as_test(
        LeaderboardAgainstADict, settings=settings(PROPERTY, max_examples=100, stateful_step_count=20)
    )


ROUNDS = 60


def leaderboard_work(n: int) -> int:
    """Work for ROUNDS re-submits, each followed by rank(), top(3) and len(), among n players."""
    rng = random.Random(2024)
    players = [f"player{i:05d}" for i in range(n)]
    scores = {p: Num(rng.randrange(1_000_000)) for p in players}
    board = Leaderboard()
    for player, score in scores.items():
        board.submit(player, score)
    updates = [(rng.choice(players), Num(rng.randrange(1_000_000))) for _ in range(ROUNDS)]
    with counting_work(Leaderboard.submit.__code__.co_filename):
        for player, score in updates:
            board.submit(player, score)
            board.rank(player)
            board.top(3)
            len(board)
    work = Counted.total()
    for player, score in updates:
        scores[player] = score
    order = sorted(players, key=lambda p: (-scores[p], p))
    got = [board.rank(p) for p in order[:: max(n // 50, 1)]]
    assert got == list(range(1, n + 1))[:: max(n // 50, 1)], (
        f"after {n} submits and {ROUNDS} re-submits the ranks are wrong: {got[:10]}..."
    )
    return work


@pytest.mark.stage(5, "log-time work")
def test_leaderboard_does_log_n_work_per_call() -> None:
    small, large = leaderboard_work(200), leaderboard_work(1_600)
    ratio = large / max(small, 1)
    assert ratio < 3, (
        f"the same {ROUNDS} re-submits, each with rank(), top(3) and len(), did {small} units of "
        f"work (comparisons of scores, lines run in your module) among 200 players and {large} "
        f"among 1600: {ratio:.1f} times as much, where O(log n) per call barely changes (about "
        "1.4x). rank() or submit() costs O(n) per call (a scan, a sort or a list search over all "
        "players), O(n^2) for n calls. Keep the players in a SortedList of (-score, name) and "
        "use .index() and .remove(): O(log n) per call"
    )


# --- calendar -------------------------------------------------------------------------------


@pytest.mark.stage(3, "the calendar")
def test_back_to_back_bookings_fit_because_intervals_are_half_open() -> None:
    cal = Calendar()
    assert cal.book(10, 12), "the first booking into an empty calendar"
    assert cal.book(12, 14), (
        "[12, 14) was refused next to [10, 12): intervals are half-open, so a booking that ends "
        "at 12 leaves 12 free; the overlap test is previous_end > start, not >="
    )
    assert cal.book(8, 10), (
        "[8, 10) was refused before [10, 12): it ends where the next starts, no overlap; the "
        "test against the next booking is next_start < end, not <="
    )
    assert cal.bookings() == [(8, 10), (10, 12), (12, 14)], (
        f"bookings() is {cal.bookings()}: all bookings, earliest first"
    )


@pytest.mark.stage(3, "the calendar")
def test_a_booking_is_checked_against_both_neighbours() -> None:
    cal = Calendar()
    assert cal.book(10, 20) and cal.book(30, 40), "two separate bookings"
    for start, end in [(15, 25), (25, 35), (5, 45), (10, 20), (30, 31), (19, 31), (5, 11)]:
        assert not cal.book(start, end), (
            f"[{start}, {end}) overlaps a booking in {cal.bookings()}: check the booking that "
            "starts just before it (does it end after start?) and the next booking (does it "
            "start before end?)"
        )
    assert cal.bookings() == [(10, 20), (30, 40)], "a refused booking must change nothing"
    assert cal.book(20, 30), "[20, 30) fits exactly between [10, 20) and [30, 40)"


@pytest.mark.stage(3, "the calendar")
def test_cancel_frees_the_slot_and_bad_input_is_refused() -> None:
    cal = Calendar()
    assert cal.book(1, 5)
    cal.cancel(1)
    assert cal.bookings() == [], f"bookings() is {cal.bookings()} after cancelling the only one"
    assert cal.book(2, 4), "[2, 4) fits once [1, 5) is cancelled"
    refused(KeyError, lambda: cal.cancel(3),
            "cancel(3): 3 lies inside [2, 4), but no booking starts at 3, so it is a KeyError")
    for start, end in [(7, 7), (9, 8)]:
        refused(ValueError, lambda s=start, e=end: cal.book(s, e),  # type: ignore[misc]
                f"book({start}, {end}): a booking needs start < end, else a ValueError")
    assert cal.bookings() == [(2, 4)], "a refused cancel or booking changes nothing"


@pytest.mark.stage(3, "the calendar")
def test_free_gaps_inside_a_range() -> None:
    cal = Calendar()
    for start, end in [(9, 10), (11, 13), (13, 14), (16, 18)]:
        assert cal.book(start, end)
    cases = [
        ((8, 20), [(8, 9), (10, 11), (14, 16), (18, 20)], "gaps between and around bookings"),
        ((9, 17), [(10, 11), (14, 16)], "a booking covers lo, another runs past hi"),
        ((12, 13), [], "[12, 13) lies inside the booking [11, 13): start from the booking that "
                       "starts at or before lo, it may cover lo"),
        ((14, 16), [(14, 16)], "exactly a gap: bookings end at lo and start at hi"),
        ((10, 11), [(10, 11)], "exactly a gap between [9, 10) and [11, 13)"),
        ((5, 5), [], "lo == hi: an empty range has no gaps"),
        ((20, 5), [], "lo > hi: an empty range has no gaps"),
    ]
    for (lo, hi), want, why in cases:
        got = cal.free(lo, hi)
        assert got == want, f"free({lo}, {hi}) with {cal.bookings()} is {got}, expected {want}: {why}"


class CalendarAgainstAPointSet(RuleBasedStateMachine):
    """The calendar and a set of booked minutes, with books, cancels and free() side by side."""

    def __init__(self) -> None:
        super().__init__()
        self.cal = Calendar()
        self.booked: dict[int, int] = {}  # start -> end, the oracle's own bookings
        self.log: list[str] = []

    def taken(self) -> set[int]:
        return {p for s, e in self.booked.items() for p in range(s, e)}

    @rule(start=st.integers(0, 30), length=st.integers(1, 8))
    def book(self, start: int, length: int) -> None:
        end = start + length
        want = self.taken().isdisjoint(range(start, end))
        got = self.cal.book(start, end)
        assert got == want, (
            f"book({start}, {end}) returned {got}, expected {want} with {sorted(self.booked.items())} "
            f"booked (half-open intervals: [a, b) and [b, c) don't overlap). After {self.log}"
        )
        self.log.append(f"book({start}, {end}) -> {got}")
        if want:
            self.booked[start] = end

    @rule(start=st.integers(0, 30))
    def cancel(self, start: int) -> None:
        self.log.append(f"cancel({start})")
        if start in self.booked:
            self.cal.cancel(start)
            del self.booked[start]
        else:
            with pytest.raises(KeyError):
                self.cal.cancel(start)

    @rule(lo=st.integers(0, 40), hi=st.integers(0, 40))
    def free(self, lo: int, hi: int) -> None:
        want = runs(set(range(lo, hi)) - self.taken())
        got = self.cal.free(lo, hi)
        assert got == want, (
            f"free({lo}, {hi}) is {got}, expected {want} with {sorted(self.booked.items())} "
            f"booked. After {self.log}"
        )

    @invariant()
    def bookings_agree(self) -> None:
        assert self.cal.bookings() == sorted(self.booked.items()), (
            f"bookings() is {self.cal.bookings()}, expected {sorted(self.booked.items())}: "
            f"accepted bookings earliest first, refused ones never, cancelled ones gone. "
            f"After {self.log}"
        )


@pytest.mark.stage(3, "the calendar")
def test_calendar_matches_a_point_set_oracle() -> None:
    run_state_machine_as_test(
        CalendarAgainstAPointSet, settings=settings(PROPERTY, max_examples=100, stateful_step_count=20)
    )


# --- merging intervals -----------------------------------------------------------------------


@pytest.mark.stage(4, "merging intervals")
def test_merge_examples() -> None:
    got = merge_intervals([(5, 6), (1, 2), (3, 4)])
    assert got == [(1, 2), (3, 4), (5, 6)], (
        f"got {got}: sort the intervals by start before sweeping"
    )
    got = merge_intervals([(8, 10), (1, 3), (2, 6), (6, 7)])
    assert got == [(1, 7), (8, 10)], (
        f"got {got}: [1, 3) and [2, 6) overlap, and [6, 7) touches [2, 6): touching half-open "
        "intervals merge too (start <= last_end)"
    )
    got = merge_intervals([(1, 10), (2, 3)])
    assert got == [(1, 10)], f"got {got}: an interval inside another; extend with max(last_end, end)"
    assert merge_intervals([]) == [], "no intervals, no union"
    got = merge_intervals(iter([(3, 4)]))
    assert got == [(3, 4)], f"got {got} from an iterator of one interval: any iterable will do"


@pytest.mark.stage(4, "merging intervals")
@PROPERTY
@given(
    st.lists(
        st.tuples(st.integers(0, 30), st.integers(1, 8)).map(lambda t: (t[0], t[0] + t[1])),
        max_size=20,
    )
)
def test_merge_matches_a_point_set_oracle(intervals: list[tuple[int, int]]) -> None:
    want = runs({p for s, e in intervals for p in range(s, e)})
    got = merge_intervals(iter(intervals))
    assert got == want, (
        f"merge_intervals({intervals}): expected {want} (the runs of covered points), got {got}"
    )
