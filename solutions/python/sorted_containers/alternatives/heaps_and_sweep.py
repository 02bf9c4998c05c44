"""SortedList and SortedDict drills: sliding-window median, a ranked leaderboard, a booking calendar."""

from __future__ import annotations

import heapq
from collections import Counter
from collections.abc import Iterable, Sequence

from sortedcontainers import SortedKeyList, SortedList

Interval = tuple[int, int]  # half-open [start, end): 10-12 and 12-14 do not overlap


def sliding_median(nums: Sequence[int], k: int) -> list[float]:
    """The median of every window of k consecutive numbers, left to right: len(nums) - k + 1
    values, [] if k > len(nums). For even k, the mean of the two middle values. ValueError if
    k < 1. Aim for O(n log k).
    """
    # Two heaps: `low` (a max-heap, negated) holds the smaller half, `high` the larger. A number
    # leaving the window is only marked in `gone`, and popped when it reaches a heap's top:
    # lazy deletion, O(log n) amortized per step.
    if k < 1:
        raise ValueError(f"window size must be at least 1, got {k}")
    if k > len(nums):
        return []
    low: list[int] = []
    high: list[int] = []
    gone: Counter[int] = Counter()
    sizes = [0, 0]  # live items in low, high

    def prune(heap: list[int], sign: int) -> None:
        while heap and gone[sign * heap[0]]:
            gone[sign * heap[0]] -= 1
            heapq.heappop(heap)

    def balance() -> None:
        # low holds ceil(live / 2) items: its top is the (lower) median
        if sizes[0] > sizes[1] + 1:
            heapq.heappush(high, -heapq.heappop(low))
            sizes[0] -= 1
            sizes[1] += 1
            prune(low, -1)
        elif sizes[0] < sizes[1]:
            heapq.heappush(low, -heapq.heappop(high))
            sizes[1] -= 1
            sizes[0] += 1
            prune(high, 1)

    def add(x: int) -> None:
        if not low or x <= -low[0]:
            heapq.heappush(low, -x)
            sizes[0] += 1
        else:
            heapq.heappush(high, x)
            sizes[1] += 1
        balance()

    def discard(x: int) -> None:
        gone[x] += 1
        if x <= -low[0]:
            sizes[0] -= 1
            if x == -low[0]:
                prune(low, -1)
        else:
            sizes[1] -= 1
            if high and x == high[0]:
                prune(high, 1)
        balance()

    for x in nums[:k]:
        add(x)
    medians = []
    for leaving in range(len(nums) - k + 1):
        medians.append(float(-low[0]) if k % 2 else (-low[0] + high[0]) / 2)
        if leaving + k < len(nums):
            discard(nums[leaving])
            add(nums[leaving + k])
    return medians


class Leaderboard:
    """Players ranked by score, highest first; equal scores rank alphabetically by name.
    Every operation in O(log n).
    """

    def __init__(self) -> None:
        self._scores: dict[str, int] = {}
        # The players themselves, sorted by a key read from the dict: a player's score may only
        # change while the player is out of the list, or the list's order breaks.
        self._ranking = SortedKeyList(key=lambda p: (-self._scores[p], p))

    def submit(self, player: str, score: int) -> None:
        """Set the player's score, replacing any earlier one (it may go down)."""
        if player in self._scores:
            self._ranking.remove(player)
        self._scores[player] = score
        self._ranking.add(player)

    def rank(self, player: str) -> int:
        """1 for the best player; KeyError for an unknown player."""
        if player not in self._scores:
            raise KeyError(player)
        return int(self._ranking.index(player)) + 1

    def top(self, k: int) -> list[tuple[str, int]]:
        """The k best as (player, score), best first; fewer if there are fewer players, none
        if k <= 0."""
        if k <= 0:
            return []
        return [(p, self._scores[p]) for p in self._ranking[:k]]

    def remove(self, player: str) -> None:
        """Take the player off the board; KeyError for an unknown player."""
        if player not in self._scores:
            raise KeyError(player)
        self._ranking.remove(player)
        del self._scores[player]

    def __len__(self) -> int:
        return len(self._scores)


class Calendar:
    """Non-overlapping bookings of half-open intervals [start, end), kept in order."""

    def __init__(self) -> None:
        self._bookings: SortedList = SortedList()  # (start, end)

    def book(self, start: int, end: int) -> bool:
        """Book [start, end) and return True, or return False (changing nothing) if it overlaps
        a booking. ValueError if start >= end. O(log n)."""
        if start >= end:
            raise ValueError(f"a booking needs start < end, got [{start}, {end})")
        i = self._bookings.bisect_left((start, start))
        if i < len(self._bookings) and self._bookings[i][0] < end:
            return False  # the next one starts before we end
        if i > 0 and self._bookings[i - 1][1] > start:
            return False  # the previous one ends after we start
        self._bookings.add((start, end))
        return True

    def cancel(self, start: int) -> None:
        """Cancel the booking that starts at `start`; KeyError if there is none."""
        i = self._bookings.bisect_left((start, start))
        if i == len(self._bookings) or self._bookings[i][0] != start:
            raise KeyError(start)
        del self._bookings[i]

    def bookings(self) -> list[Interval]:
        """All bookings, earliest first."""
        return list(self._bookings)

    def free(self, lo: int, hi: int) -> list[Interval]:
        """The free gaps inside [lo, hi), earliest first ([] if lo >= hi)."""
        if lo >= hi:
            return []
        gaps = []
        cursor = lo
        first = max(self._bookings.bisect_left((lo, lo)) - 1, 0)
        for start, end in self._bookings.islice(first):
            if start >= hi:
                break
            if end <= cursor:
                continue
            if start > cursor:
                gaps.append((cursor, start))
            cursor = end
        if cursor < hi:
            gaps.append((cursor, hi))
        return gaps


def merge_intervals(intervals: Iterable[Interval]) -> list[Interval]:
    """The union of half-open intervals (each with start < end) as sorted, disjoint intervals;
    overlapping or touching ones merge.
    """
    # A sweep over the endpoints: +1 at a start, -1 at an end. At equal coordinates the starts
    # come first ((x, 0) < (x, 1)), so touching intervals never drop to depth 0 between them.
    events = []
    for start, end in intervals:
        events += [(start, 0), (end, 1)]
    merged = []
    depth = opened = 0
    for x, kind in sorted(events):
        if kind == 0:
            if depth == 0:
                opened = x
            depth += 1
        else:
            depth -= 1
            if depth == 0:
                merged.append((opened, x))
    return merged
