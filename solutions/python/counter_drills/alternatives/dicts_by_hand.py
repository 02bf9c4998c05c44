"""Counter drills: top-k with deterministic ties, anagram groups, multiset difference and intersection."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable


def top_k_frequent(words: Iterable[str], k: int) -> list[tuple[str, int]]:
    """The k most frequent words with their counts, most frequent first; equal counts in
    alphabetical order. Fewer than k distinct words: all of them. k <= 0: [], without reading
    `words` (the answer doesn't depend on them).

    >>> top_k_frequent(["b", "a", "b", "a", "c"], 2)
    [('a', 2), ('b', 2)]
    """
    if k <= 0:
        return []
    counts: dict[str, int] = defaultdict(int)
    for word in words:
        counts[word] += 1
    # One sort of the u distinct words, O(u log u): fine unless u is huge and k tiny.
    return sorted(counts.items(), key=lambda item: (-item[1], item[0]))[:k]


def group_anagrams(words: Iterable[str]) -> list[list[str]]:
    """Words grouped with their anagrams (same letters, same number of times each). Groups come
    in order of their first word's appearance; words keep input order, duplicates included.

    >>> group_anagrams(["eat", "tea", "tan", "ate", "nat", "bat"])
    [['eat', 'tea', 'ate'], ['tan', 'nat'], ['bat']]
    """
    # A Counter is unhashable; its frozenset of items is hashable and equal exactly for anagrams
    # (O(L) per word; "".join(sorted(w)) works too, at O(L log L)). A set of letters would be
    # wrong: "aab" and "abb" have the same set. dicts keep insertion order: groups by first word.
    groups: defaultdict[tuple[tuple[str, int], ...], list[str]] = defaultdict(list)
    for word in words:
        groups[tuple(sorted(Counter(word).items()))].append(word)  # letter counts, sorted
    return list(groups.values())


def missing_for(note: str, magazine: str) -> Counter[str]:
    """The letters (with how many of each) still needed to cut `note` out of `magazine`; an empty
    Counter when the magazine has enough. Only positive counts appear in the result.

    >>> missing_for("aab", "abc")
    Counter({'a': 1})
    """
    # The `-` operator is multiset difference and drops counts <= 0; Counter.subtract() would
    # keep zeros and negatives ("the magazine has 2 spare b's" is not something missing).
    have = Counter(magazine)
    return Counter({c: n - have[c] for c, n in Counter(note).items() if n > have[c]})


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
    common = Counter(words[0])
    for word in words[1:]:
        common &= Counter(word)  # in-place intersection: the minimum of each count
    return sorted(common.elements())
