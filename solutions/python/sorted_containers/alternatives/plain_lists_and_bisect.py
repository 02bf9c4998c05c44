"""SortedList and SortedDict drills: sliding-window median, a ranked leaderboard, a booking calendar."""

from __future__ import annotations

from bisect import bisect_left, bisect_right, insort
from collections.abc import Iterable, Sequence

Interval = tuple[int, int]  # half-open [start, end): 10-12 and 12-14 do not overlap

# No sortedcontainers: plain sorted lists and the bisect module. Finding a place is O(log n)
# comparisons; inserting or deleting there shifts the pointers after it, an O(n) memmove that is
# a thousand times cheaper than a Python loop (say so in an interview: it stops scaling somewhere
# past a million items).


def sliding_median(nums: Sequence[int], k: int) -> list[float]:
    """The median of every window of k consecutive numbers, left to right: len(nums) - k + 1
    values, [] if k > len(nums). For even k, the mean of the two middle values. ValueError if
    k < 1. Aim for O(n log k).
    """
    if k < 1:
        raise ValueError(f"window size must be at least 1, got {k}")
    if k > len(nums):
        return []
    window = sorted(nums[:k])
    mid = k // 2
    medians = []
    for leaving in range(len(nums) - k + 1):
        medians.append(float(window[mid]) if k % 2 else (window[mid - 1] + window[mid]) / 2)
        if leaving + k < len(nums):
            del window[bisect_left(window, nums[leaving])]  # not list.remove: that one scans
            insort(window, nums[leaving + k])
    return medians


class Leaderboard:
    """Players ranked by score, highest first; equal scores rank alphabetically by name.
    Every operation in O(log n).
    """

    def __init__(self) -> None:
        self._scores: dict[str, int] = {}
        self._ranking: list[tuple[int, str]] = []  # (-score, player), kept sorted

    def submit(self, player: str, score: int) -> None:
        """Set the player's score, replacing any earlier one (it may go down)."""
        if player in self._scores:
            self._drop(player)
        self._scores[player] = score
        insort(self._ranking, (-score, player))

    def _drop(self, player: str) -> None:
        del self._ranking[bisect_left(self._ranking, (-self._scores[player], player))]

    def rank(self, player: str) -> int:
        """1 for the best player; KeyError for an unknown player."""
        return bisect_left(self._ranking, (-self._scores[player], player)) + 1

    def top(self, k: int) -> list[tuple[str, int]]:
        """The k best as (player, score), best first; fewer if there are fewer players, none
        if k <= 0."""
        return [(player, -neg) for neg, player in self._ranking[: max(k, 0)]]

    def remove(self, player: str) -> None:
        """Take the player off the board; KeyError for an unknown player."""
        self._drop(player)
        del self._scores[player]

    def __len__(self) -> int:
        return len(self._ranking)


class Calendar:
    """Non-overlapping bookings of half-open intervals [start, end), kept in order."""

    def __init__(self) -> None:
        # Two parallel sorted lists: bookings don't overlap, so the ends are sorted as well.
        self._starts: list[int] = []
        self._ends: list[int] = []

    def book(self, start: int, end: int) -> bool:
        """Book [start, end) and return True, or return False (changing nothing) if it overlaps
        a booking. ValueError if start >= end. O(log n)."""
        if start >= end:
            raise ValueError(f"a booking needs start < end, got [{start}, {end})")
        # The first booking that ends after `start` is the only one that can overlap: it
        # overlaps exactly when it starts before `end`.
        i = bisect_right(self._ends, start)
        if i < len(self._starts) and self._starts[i] < end:
            return False
        self._starts.insert(i, start)
        self._ends.insert(i, end)
        return True

    def cancel(self, start: int) -> None:
        """Cancel the booking that starts at `start`; KeyError if there is none."""
        i = bisect_left(self._starts, start)
        if i == len(self._starts) or self._starts[i] != start:
            raise KeyError(start)
        del self._starts[i], self._ends[i]

    def bookings(self) -> list[Interval]:
        """All bookings, earliest first."""
        return list(zip(self._starts, self._ends, strict=True))

    def free(self, lo: int, hi: int) -> list[Interval]:
        """The free gaps inside [lo, hi), earliest first ([] if lo >= hi)."""
        gaps = []
        cursor = lo
        i = bisect_right(self._ends, lo)  # the first booking still running after lo
        while cursor < hi and i < len(self._starts) and self._starts[i] < hi:
            if self._starts[i] > cursor:
                gaps.append((cursor, self._starts[i]))
            cursor = max(cursor, self._ends[i])
            i += 1
        if cursor < hi:
            gaps.append((cursor, hi))
        return gaps


def merge_intervals(intervals: Iterable[Interval]) -> list[Interval]:
    """The union of half-open intervals (each with start < end) as sorted, disjoint intervals;
    overlapping or touching ones merge.
    """
    merged: list[list[int]] = []
    for start, end in sorted(intervals):
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    return [(start, end) for start, end in merged]
