"""Counter drills: top-k with deterministic ties, anagram groups, multiset difference and intersection."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable


def top_k_frequent(words: Iterable[str], k: int) -> list[tuple[str, int]]:
    """The k most frequent words with their counts, most frequent first; equal counts in
    alphabetical order. Fewer than k distinct words: all of them. k <= 0: [], without reading
    `words` (the answer doesn't depend on them).

    >>> top_k_frequent(["b", "a", "b", "a", "c"], 2)
    [('a', 2), ('b', 2)]
    """
    # TODO: count, then pick the k best by (-count, word). Mind most_common()'s tie order.
    raise NotImplementedError("top_k_frequent")


def group_anagrams(words: Iterable[str]) -> list[list[str]]:
    """Words grouped with their anagrams (same letters, same number of times each). Groups come
    in order of their first word's appearance; words keep input order, duplicates included.

    >>> group_anagrams(["eat", "tea", "tan", "ate", "nat", "bat"])
    [['eat', 'tea', 'ate'], ['tan', 'nat'], ['bat']]
    """
    # TODO: one hashable key per word that is equal exactly for anagrams.
    raise NotImplementedError("group_anagrams")


def missing_for(note: str, magazine: str) -> Counter[str]:
    """The letters (with how many of each) still needed to cut `note` out of `magazine`; an empty
    Counter when the magazine has enough. Only positive counts appear in the result.

    >>> missing_for("aab", "abc")
    Counter({'a': 1})
    """
    # TODO: multiset difference.
    raise NotImplementedError("missing_for")


def common_chars(words: list[str]) -> list[str]:
    """Characters in every word, repeated as often as in the word with the fewest of them,
    sorted. No words: [].

    >>> common_chars(["bella", "label", "roller"])
    ['e', 'l', 'l']
    """
    # TODO: multiset intersection across all words.
    raise NotImplementedError("common_chars")
