"""Counter drills: top-k with deterministic ties, anagram groups, multiset difference and intersection."""

from __future__ import annotations

import heapq
from collections import Counter
from collections.abc import Iterable
from functools import reduce
from operator import and_


def top_k_frequent(words: Iterable[str], k: int) -> list[tuple[str, int]]:
    """The k most frequent words with their counts, most frequent first; equal counts in
    alphabetical order. Fewer than k distinct words: all of them. k <= 0: [], without reading
    `words` (the answer doesn't depend on them).

    >>> top_k_frequent(["b", "a", "b", "a", "c"], 2)
    [('a', 2), ('b', 2)]
    """
    if k <= 0:
        return []
    counts = Counter(words)
    # most_common() breaks ties by first appearance (insertion order), not alphabetically, so the
    # tie-break goes into the key. nsmallest keeps a heap of k: O(u log k) for u distinct words.
    return heapq.nsmallest(k, counts.items(), key=lambda item: (-item[1], item[0]))


def group_anagrams(words: Iterable[str]) -> list[list[str]]:
    """Words grouped with their anagrams (same letters, same number of times each). Groups come
    in order of their first word's appearance; words keep input order, duplicates included.

    >>> group_anagrams(["eat", "tea", "tan", "ate", "nat", "bat"])
    [['eat', 'tea', 'ate'], ['tan', 'nat'], ['bat']]
    """
    # A Counter is unhashable; its frozenset of items is hashable and equal exactly for anagrams
    # (O(L) per word; "".join(sorted(w)) works too, at O(L log L)). A set of letters would be
    # wrong: "aab" and "abb" have the same set. dicts keep insertion order: groups by first word.
    groups: dict[frozenset[tuple[str, int]], list[str]] = {}
    for word in words:
        groups.setdefault(frozenset(Counter(word).items()), []).append(word)
    return list(groups.values())


def missing_for(note: str, magazine: str) -> Counter[str]:
    """The letters (with how many of each) still needed to cut `note` out of `magazine`; an empty
    Counter when the magazine has enough. Only positive counts appear in the result.

    >>> missing_for("aab", "abc")
    Counter({'a': 1})
    """
    # The `-` operator is multiset difference and drops counts <= 0; Counter.subtract() would
    # keep zeros and negatives ("the magazine has 2 spare b's" is not something missing).
    return Counter(note) - Counter(magazine)


def common_chars(words: list[str]) -> list[str]:
    """Characters in every word, repeated as often as in the word with the fewest of them,
    sorted. No words: [].

    >>> common_chars(["bella", "label", "roller"])
    ['e', 'l', 'l']
    """
    if not words:
        return []
    # `&` is multiset intersection: the minimum of each count. A set intersection would lose
    # repeats ("l" twice). elements() repeats each key count times.
    common = reduce(and_, (Counter(w) for w in words))
    return sorted(common.elements())
