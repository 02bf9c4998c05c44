"""SortedList and SortedDict drills: sliding-window median, a ranked leaderboard, a booking calendar."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

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
    # TODO: keep the window in a sortedcontainers.SortedList: add the newcomer, remove the
    #       one that left, read the middle by index.
    raise NotImplementedError("sliding_median")


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
        # TODO: the current score of each player, and the players in rank order (a SortedList
        #       of keys that sort the way ranks go).
        pass

    def submit(self, player: str, score: int) -> None:
        """Set the player's score, replacing any earlier one (it may go down)."""
        # TODO
        raise NotImplementedError("Leaderboard.submit")

    def rank(self, player: str) -> int:
        """1 for the best player; KeyError for an unknown player."""
        # TODO: the player's position in the sorted order, without scanning it.
        raise NotImplementedError("Leaderboard.rank")

    def top(self, k: int) -> list[tuple[str, int]]:
        """The k best as (player, score), best first; fewer if there are fewer players, none
        if k <= 0."""
        # TODO
        raise NotImplementedError("Leaderboard.top")

    def remove(self, player: str) -> None:
        """Take the player off the board; KeyError for an unknown player."""
        # TODO
        raise NotImplementedError("Leaderboard.remove")

    def __len__(self) -> int:
        # TODO
        raise NotImplementedError("Leaderboard.__len__")


class Calendar:
    """Non-overlapping bookings of half-open intervals [start, end), kept in order.

    >>> cal = Calendar()
    >>> cal.book(10, 20), cal.book(15, 25), cal.book(20, 30)
    (True, False, True)
    >>> cal.free(0, 40)
    [(0, 10), (30, 40)]
    """

    def __init__(self) -> None:
        # TODO: bookings by start time in a sortedcontainers.SortedDict (start -> end).
        pass

    def book(self, start: int, end: int) -> bool:
        """Book [start, end) and return True, or return False (changing nothing) if it overlaps
        a booking. ValueError if start >= end. O(log n)."""
        # TODO: only the bookings just before and just after `start` can overlap.
        raise NotImplementedError("Calendar.book")

    def cancel(self, start: int) -> None:
        """Cancel the booking that starts at `start`; KeyError if there is none."""
        # TODO
        raise NotImplementedError("Calendar.cancel")

    def bookings(self) -> list[Interval]:
        """All bookings, earliest first."""
        # TODO
        raise NotImplementedError("Calendar.bookings")

    def free(self, lo: int, hi: int) -> list[Interval]:
        """The free gaps inside [lo, hi), earliest first ([] if lo >= hi)."""
        # TODO: start from the booking that may cover lo, walk forward while bookings start < hi.
        raise NotImplementedError("Calendar.free")


def merge_intervals(intervals: Iterable[Interval]) -> list[Interval]:
    """The union of half-open intervals (each with start < end) as sorted, disjoint intervals;
    overlapping or touching ones merge.

    >>> merge_intervals([(8, 10), (1, 3), (2, 6), (6, 7)])
    [(1, 7), (8, 10)]
    """
    # TODO: sort by start, then sweep, extending the last merged interval.
    raise NotImplementedError("merge_intervals")
