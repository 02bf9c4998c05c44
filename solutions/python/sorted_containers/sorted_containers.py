"""SortedList and SortedDict drills: sliding-window median, a ranked leaderboard, a booking calendar."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from sortedcontainers import SortedDict, SortedList

Interval = tuple[int, int]  # half-open [start, end): 10-12 and 12-14 do not overlap


def sliding_median(nums: Sequence[int], k: int) -> list[float]:
    """The median of every window of k consecutive numbers, left to right: len(nums) - k + 1
    values, [] if k > len(nums). For even k, the mean of the two middle values. ValueError if
    k < 1. Aim for O(n log k).

    >>> sliding_median([1, 3, -1, -3, 5, 3, 6, 7], 3)
    [1.0, -1.0, -1.0, 3.0, 5.0, 6.0]
    >>> sliding_median([1, 2, 3, 4], 2)
    [1.5, 2.5, 3.5]
    """
    if k < 1:
        raise ValueError(f"window size must be at least 1, got {k}")
    if k > len(nums):
        return []
    # SortedList: add, remove and index are O(log k) (a list of sorted sublists of ~1000 items
    # each, plus a positional index), against O(k log k) for sorting each window again.
    window = SortedList(nums[:k])
    mid = k // 2
    medians = []
    for leaving in range(len(nums) - k + 1):
        # `/ 2`, not `// 2`: the mean of 2 and 3 is 2.5, and (-3 + 0) // 2 is -2, not -1.5.
        medians.append(float(window[mid]) if k % 2 else (window[mid - 1] + window[mid]) / 2)
        if leaving + k < len(nums):
            window.remove(nums[leaving])  # removes one occurrence: duplicates are fine
            window.add(nums[leaving + k])
    return medians


class Leaderboard:
    """Players ranked by score, highest first; equal scores rank alphabetically by name.
    Every operation in O(log n).

    >>> board = Leaderboard()
    >>> board.submit("ann", 50); board.submit("bob", 70); board.submit("cat", 50)
    >>> board.rank("bob"), board.rank("ann"), board.rank("cat")
    (1, 2, 3)
    >>> board.top(2)
    [('bob', 70), ('ann', 50)]
    """

    def __init__(self) -> None:
        self._scores: dict[str, int] = {}
        # (-score, player) sorts exactly in rank order: higher scores first, then names A-Z.
        # The dict is needed to find a player's current entry when it has to be replaced.
        self._ranking: SortedList = SortedList()

    def submit(self, player: str, score: int) -> None:
        """Set the player's score, replacing any earlier one (it may go down)."""
        old = self._scores.get(player)
        if old is not None:
            self._ranking.remove((-old, player))  # else the old entry would still hold a rank
        self._scores[player] = score
        self._ranking.add((-score, player))

    def rank(self, player: str) -> int:
        """1 for the best player; KeyError for an unknown player."""
        # index() bisects the sorted sublists and sums their lengths through the positional
        # index: O(log n), where counting the better players would be O(n).
        return self._ranking.index((-self._scores[player], player)) + 1

    def top(self, k: int) -> list[tuple[str, int]]:
        """The k best as (player, score), best first; fewer if there are fewer players, none
        if k <= 0."""
        return [(player, -neg) for neg, player in self._ranking.islice(0, max(k, 0))]

    def remove(self, player: str) -> None:
        """Take the player off the board; KeyError for an unknown player."""
        score = self._scores.pop(player)
        self._ranking.remove((-score, player))

    def __len__(self) -> int:
        return len(self._scores)


class Calendar:
    """Non-overlapping bookings of half-open intervals [start, end), kept in order.

    >>> cal = Calendar()
    >>> cal.book(10, 20), cal.book(15, 25), cal.book(20, 30)
    (True, False, True)
    >>> cal.free(0, 40)
    [(0, 10), (30, 40)]
    """

    def __init__(self) -> None:
        # Bookings never overlap, so sorted by start they are sorted by end too: a new one can
        # only collide with its two neighbours in start order.
        self._by_start: SortedDict = SortedDict()

    def book(self, start: int, end: int) -> bool:
        """Book [start, end) and return True, or return False (changing nothing) if it overlaps
        a booking. ValueError if start >= end. O(log n)."""
        if start >= end:
            raise ValueError(f"a booking needs start < end, got [{start}, {end})")
        after = self._by_start.bisect_right(start)  # index of the first booking starting later
        if after > 0:
            _, previous_end = self._by_start.peekitem(after - 1)
            if previous_end > start:  # `>`, not `>=`: a booking ending at 12 frees 12
                return False
        if after < len(self._by_start):
            next_start, _ = self._by_start.peekitem(after)
            if next_start < end:
                return False
        self._by_start[start] = end
        return True

    def cancel(self, start: int) -> None:
        """Cancel the booking that starts at `start`; KeyError if there is none."""
        del self._by_start[start]

    def bookings(self) -> list[Interval]:
        """All bookings, earliest first."""
        return list(self._by_start.items())

    def free(self, lo: int, hi: int) -> list[Interval]:
        """The free gaps inside [lo, hi), earliest first ([] if lo >= hi)."""
        gaps = []
        cursor = lo
        # The booking that starts at or before lo may still cover it; begin there, and stop at the
        # first booking starting at or after hi: O(log n + bookings in range).
        first = max(self._by_start.bisect_right(lo) - 1, 0)
        for start in self._by_start.islice(first):
            if start >= hi:
                break
            if start > cursor:
                gaps.append((cursor, start))
            cursor = max(cursor, self._by_start[start])
        if cursor < hi:
            gaps.append((cursor, hi))
        return gaps


def merge_intervals(intervals: Iterable[Interval]) -> list[Interval]:
    """The union of half-open intervals (each with start < end) as sorted, disjoint intervals;
    overlapping or touching ones merge.

    >>> merge_intervals([(8, 10), (1, 3), (2, 6), (6, 7)])
    [(1, 7), (8, 10)]
    """
    merged: list[Interval] = []
    # After sorting by start, an interval can only merge with the last merged one: O(n log n).
    for start, end in sorted(intervals):
        if merged and start <= merged[-1][1]:  # `<=`: touching half-open intervals merge too
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))  # max: it may lie inside
        else:
            merged.append((start, end))
    return merged
