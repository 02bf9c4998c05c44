"""Tests for the Counter drills, each checked against a brute-force oracle with hypothesis."""

from __future__ import annotations

from collections import Counter

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from .counter_drills import common_chars, group_anagrams, missing_for, top_k_frequent

PROPERTY = settings(
    max_examples=150, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow]
)

# Small alphabets make repeats, ties and anagrams common.
short_words = st.text(alphabet="abc", max_size=4)
word_lists = st.lists(st.sampled_from(["ant", "bee", "cat", "dog", "eel", "fox"]), max_size=30)


# --- oracles: obviously right, slow ---------------------------------------------------------


def oracle_top_k(words: list[str], k: int) -> list[tuple[str, int]]:
    ranked = sorted({(w, words.count(w)) for w in words}, key=lambda wc: (-wc[1], wc[0]))
    return ranked[: max(k, 0)]


def is_anagram(a: str, b: str) -> bool:
    return all(a.count(c) == b.count(c) for c in set(a) | set(b))


def oracle_groups(words: list[str]) -> list[list[str]]:
    groups: list[list[str]] = []
    for w in words:
        for g in groups:
            if is_anagram(g[0], w):
                g.append(w)
                break
        else:
            groups.append([w])
    return groups


def oracle_missing(note: str, magazine: str) -> dict[str, int]:
    need = {c: note.count(c) - magazine.count(c) for c in set(note)}
    return {c: n for c, n in need.items() if n > 0}


def oracle_common(words: list[str]) -> list[str]:
    if not words:
        return []
    return sorted(c for c in set(words[0]) for _ in range(min(w.count(c) for w in words)))


# --- top k ----------------------------------------------------------------------------------


def test_top_k_breaks_ties_alphabetically_not_by_first_appearance() -> None:
    words = ["pear", "fig", "pear", "fig", "apple", "apple", "kiwi"]
    got = top_k_frequent(words, 2)
    assert got == [("apple", 2), ("fig", 2)], (
        f"got {got}: all three of pear, fig, apple appear twice, so ties go alphabetical. "
        "Counter.most_common() orders ties by first appearance, so add the word to the sort key"
    )


def test_top_k_edge_cases() -> None:
    assert top_k_frequent([], 3) == []
    assert top_k_frequent(["a", "b"], 0) == []
    assert top_k_frequent(["b", "a", "b"], 10) == [("b", 2), ("a", 1)], "k above the distinct count"


@PROPERTY
@given(word_lists, st.integers(-1, 8))
def test_top_k_matches_the_oracle(words: list[str], k: int) -> None:
    want = oracle_top_k(words, k)
    got = top_k_frequent(iter(words), k)  # an iterator: it may be read only once
    assert got == want, f"top {k} of {words}: expected {want} (count desc, then alphabetical)"


# --- anagrams -------------------------------------------------------------------------------


def test_anagram_groups_compare_letter_counts_not_letter_sets() -> None:
    got = group_anagrams(["aab", "abb", "aba"])
    assert got == [["aab", "aba"], ["abb"]], (
        f"got {got}: 'aab' and 'abb' use the same letters but not the same number of times, so "
        "they are not an anagram; key by sorted letters or by frozenset(Counter(w).items())"
    )


def test_anagram_groups_keep_order_and_duplicates() -> None:
    got = group_anagrams(["eat", "tea", "tan", "ate", "nat", "bat", "eat"])
    assert got == [["eat", "tea", "ate", "eat"], ["tan", "nat"], ["bat"]]
    assert group_anagrams([]) == []
    assert group_anagrams(["", ""]) == [["", ""]]


@PROPERTY
@given(st.lists(short_words, max_size=20))
def test_anagram_groups_match_the_oracle(words: list[str]) -> None:
    want = oracle_groups(words)
    assert group_anagrams(iter(words)) == want, f"anagram groups of {words}: expected {want}"


# --- multiset difference and intersection -----------------------------------------------------


def test_missing_letters_are_only_positive_counts() -> None:
    got = missing_for("aab", "abbbc")
    assert dict(got) == {"a": 1}, (
        f"got {dict(got)}: only what is still needed, with positive counts. Counter.subtract() "
        "keeps zeros and negatives; the `-` operator drops them"
    )
    assert dict(missing_for("abc", "cbaxyz")) == {}, "everything is there: nothing missing"
    assert isinstance(missing_for("a", ""), Counter)


@PROPERTY
@given(short_words, short_words)
def test_missing_letters_match_the_oracle(note: str, magazine: str) -> None:
    want = oracle_missing(note, magazine)
    got = missing_for(note, magazine)
    assert dict(got) == want, (
        f"missing_for({note!r}, {magazine!r}): expected {want}, got {dict(got)} (only positive counts)"
    )


def test_common_chars_keep_repeats() -> None:
    got = common_chars(["bella", "label", "roller"])
    assert got == ["e", "l", "l"], (
        f"got {got}: 'l' is at least twice in every word, so it appears twice. A set intersection "
        "loses repeats; Counter's `&` keeps the minimum count"
    )
    assert common_chars([]) == []
    assert common_chars(["abc", ""]) == []
    assert common_chars(["cab"]) == ["a", "b", "c"]


@PROPERTY
@given(st.lists(short_words, max_size=5))
def test_common_chars_match_the_oracle(words: list[str]) -> None:
    want = oracle_common(words)
    assert common_chars(words) == want, f"common_chars({words}): expected {want}"


@pytest.mark.parametrize("k", [1, 50])
def test_top_k_on_a_large_generator(k: int) -> None:
    """200 000 words from a generator: count once, then rank the 997 distinct ones."""
    words = (f"w{i % 997}" for i in range(200_000))
    got = top_k_frequent(words, k)
    # 200000 = 997 * 200 + 600: w0..w599 appear 201 times, the others 200
    want = sorted(f"w{i}" for i in range(600))[:k]
    assert [w for w, _ in got] == want and all(n == 201 for _, n in got), (
        f"expected the {k} alphabetically first of the words seen 201 times, got {got[:3]}..."
    )
