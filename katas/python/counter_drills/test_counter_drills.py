"""Tests for the Counter drills, each checked against a brute-force oracle with hypothesis."""

from __future__ import annotations

import random
import sys
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any

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


@pytest.mark.stage(1, "the worked examples")
def test_top_k_breaks_ties_alphabetically_not_by_first_appearance() -> None:
    words = ["pear", "fig", "pear", "fig", "apple", "apple", "kiwi"]
    got = top_k_frequent(words, 2)
    assert got == [("apple", 2), ("fig", 2)], (
        f"got {got}: all three of pear, fig, apple appear twice, so ties go alphabetical. "
        "Counter.most_common() orders ties by first appearance, so add the word to the sort key"
    )


@pytest.mark.stage(2, "edge cases")
def test_top_k_edge_cases() -> None:
    assert top_k_frequent([], 3) == [], "no words: no top words"
    assert top_k_frequent(["a", "b"], 0) == [], "k = 0: none of them"
    assert top_k_frequent(["b", "a", "b"], -2) == [], "k < 0: none of them"
    assert top_k_frequent(["b", "a", "b"], 10) == [("b", 2), ("a", 1)], "k above the distinct count"
    assert top_k_frequent(["b", "a", "b"], 1) == [("b", 2)], "k = 1: only the most frequent"


@pytest.mark.stage(2, "edge cases")
def test_k_zero_or_less_answers_without_reading_the_words() -> None:
    def unreadable() -> Iterator[str]:
        raise AssertionError(
            "top_k_frequent(words, k) read `words` for k <= 0: the answer is [] whatever the "
            "words are, so return it first (the stream may be endless or costly)"
        )
        yield "never"  # a generator that fails when first read

    for k in (0, -1):
        assert top_k_frequent(unreadable(), k) == [], f"k = {k}: no words"
    assert top_k_frequent(iter(["x", "y", "x"]), 1) == [("x", 2)], "k = 1 reads the words"


@pytest.mark.stage(3, "against the oracles")
@PROPERTY
@given(word_lists, st.integers(-1, 8))
def test_top_k_matches_the_oracle(words: list[str], k: int) -> None:
    want = oracle_top_k(words, k)
    got = top_k_frequent(iter(words), k)  # an iterator: it may be read only once
    assert got == want, f"top {k} of {words}: expected {want} (count desc, then alphabetical)"


# --- anagrams -------------------------------------------------------------------------------


@pytest.mark.stage(1, "the worked examples")
def test_anagram_groups_compare_letter_counts_not_letter_sets() -> None:
    got = group_anagrams(["aab", "abb", "aba"])
    assert got == [["aab", "aba"], ["abb"]], (
        f"got {got}: 'aab' and 'abb' use the same letters but not the same number of times, so "
        "they are not an anagram; key by sorted letters or by frozenset(Counter(w).items())"
    )


@pytest.mark.stage(1, "the worked examples")
def test_anagram_groups_keep_order_and_duplicates() -> None:
    got = group_anagrams(["eat", "tea", "tan", "ate", "nat", "bat", "eat"])
    assert got == [["eat", "tea", "ate", "eat"], ["tan", "nat"], ["bat"]], (
        f"got {got}: groups in order of their first word, words in input order, the repeated "
        "'eat' kept (a dict from key to list keeps insertion order)"
    )
    assert group_anagrams([]) == [], "no words: no groups"
    assert group_anagrams(["", ""]) == [["", ""]], "two empty words are anagrams of each other"
    got = group_anagrams(["Tea", "eat"])
    assert got == [["Tea"], ["eat"]], f"got {got}: 'T' and 't' are different letters"


@pytest.mark.stage(3, "against the oracles")
@PROPERTY
@given(st.lists(short_words, max_size=20))
def test_anagram_groups_match_the_oracle(words: list[str]) -> None:
    want = oracle_groups(words)
    assert group_anagrams(iter(words)) == want, f"anagram groups of {words}: expected {want}"


# --- multiset difference and intersection -----------------------------------------------------


@pytest.mark.stage(1, "the worked examples")
def test_missing_letters_are_only_positive_counts() -> None:
    got = missing_for("aab", "abbbc")
    assert dict(got) == {"a": 1}, (
        f"got {dict(got)}: only what is still needed, with positive counts. Counter.subtract() "
        "keeps zeros and negatives; the `-` operator drops them"
    )
    assert dict(missing_for("abc", "cbaxyz")) == {}, "everything is there: nothing missing"
    got = missing_for("a", "")
    assert isinstance(got, Counter) and got == Counter("a"), (
        f"missing_for('a', '') is {got!r}: a Counter of what is still needed"
    )
    assert missing_for("", "abc") == Counter(), "an empty note needs nothing"


@pytest.mark.stage(3, "against the oracles")
@PROPERTY
@given(short_words, short_words)
def test_missing_letters_match_the_oracle(note: str, magazine: str) -> None:
    want = oracle_missing(note, magazine)
    got = missing_for(note, magazine)
    assert dict(got) == want, (
        f"missing_for({note!r}, {magazine!r}): expected {want}, got {dict(got)} (only positive counts)"
    )


@pytest.mark.stage(1, "the worked examples")
def test_common_chars_keep_repeats() -> None:
    got = common_chars(["bella", "label", "roller"])
    assert got == ["e", "l", "l"], (
        f"got {got}: 'l' is at least twice in every word, so it appears twice. A set intersection "
        "loses repeats; Counter's `&` keeps the minimum count"
    )
    assert common_chars([]) == [], "no words: no common characters"
    assert common_chars(["abc", ""]) == [], "nothing is common with an empty word"
    assert common_chars(["cab"]) == ["a", "b", "c"], "one word: all its characters, sorted"


@pytest.mark.stage(3, "against the oracles")
@PROPERTY
@given(st.lists(short_words, max_size=5))
def test_common_chars_match_the_oracle(words: list[str]) -> None:
    want = oracle_common(words)
    assert common_chars(words) == want, f"common_chars({words}): expected {want}"


@pytest.mark.stage(4, "large inputs")
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


# --- work counted at two sizes: the complexity, not the clock ---------------------------------


class Counted:
    """Work done by the code under test: lines run in its module, and hashes and comparisons of
    the words."""

    lines = 0
    word_ops = 0


class Word(str):
    """A str that counts hashing and comparisons: a dict lookup costs one or two, a scan of a
    list (list.count, `in` a list) one per item."""

    __slots__ = ()

    def __hash__(self) -> int:
        Counted.word_ops += 1
        return str.__hash__(self)

    def __eq__(self, other: object) -> bool:
        Counted.word_ops += 1
        return str.__eq__(self, other)

    def __lt__(self, other: str) -> bool:
        Counted.word_ops += 1
        return str.__lt__(self, other)


@contextmanager
def counting_work(code_file: str) -> Iterator[None]:
    """Count the lines run in `code_file` (sys.settrace, that file only) and Word operations."""

    def line_counter(frame: FrameType, event: str, arg: object) -> Any:
        if event == "line":
            Counted.lines += 1
        return line_counter

    def on_call(frame: FrameType, event: str, arg: object) -> Any:
        return line_counter if frame.f_code.co_filename == code_file else None

    Counted.lines = Counted.word_ops = 0
    previous = sys.gettrace()
    sys.settrace(on_call)
    try:
        yield
    finally:
        sys.settrace(previous)


def top_k_work(distinct: int) -> int:
    """Work of top_k_frequent(words, 5) on 4000 words, `distinct` of them different."""
    rng = random.Random(347)
    words = [Word(f"w{rng.randrange(distinct)}") for _ in range(4_000)]
    with counting_work(top_k_frequent.__code__.co_filename):
        got = top_k_frequent(iter(words), 5)
    work = Counted.lines + Counted.word_ops
    plain = [str(w) for w in words]
    want = sorted(((w, plain.count(w)) for w in set(plain)), key=lambda wc: (-wc[1], wc[0]))[:5]
    assert got == want, (
        f"top 5 of 4000 words ({distinct} distinct): expected {want}, got {got}: count "
        "descending, equal counts alphabetical (the tie-break belongs in the sort key)"
    )
    return work


def anagram_work(groups: int) -> int:
    """Work of group_anagrams on 2000 words that fall into `groups` anagram groups."""
    rng = random.Random(49)
    # group i: letter i % 20, repeated i // 20 + 1 times, then "xyz": no two groups are anagrams
    bases = [chr(ord("a") + i % 20) * (i // 20 + 1) + "xyz" for i in range(groups)]
    words = ["".join(rng.sample(base, len(base))) for base in (rng.choice(bases) for _ in range(2_000))]
    with counting_work(group_anagrams.__code__.co_filename):
        got = group_anagrams(iter(words))
    work = Counted.lines
    assert len(got) == len({"".join(sorted(w)) for w in words}), f"wrong groups for {groups} groups"
    return work


WORK_CAUSES = {
    "top_k_frequent": "counting each distinct word again (list.count, or a scan per word) is "
                      "O(n) per word; count them all in one pass with Counter(words), then rank",
    "group_anagrams": "comparing each word with every group found so far is O(groups) per word; "
                      "compute a key per word (sorted letters, or frozenset(Counter(w).items())) "
                      "and look its group up in a dict",
}


@pytest.mark.stage(4, "large inputs")
@pytest.mark.parametrize(("work", "name", "what"), [
    (top_k_work, "top_k_frequent", "distinct words among 4000"),
    (anagram_work, "group_anagrams", "anagram groups among 2000 words"),
])
def test_the_work_grows_with_the_input_not_with_the_variety(
    work: Callable[[int], int], name: str, what: str
) -> None:
    small, large = work(25), work(200)
    ratio = large / max(small, 1)
    assert ratio < 3, (
        f"{name} did {small} units of work (lines run in your module, hashes and comparisons of "
        f"the words) with 25 {what} and {large} with 200: {ratio:.1f} times as much for the same "
        f"number of words, where a one-pass answer does about the same. {WORK_CAUSES[name]}"
    )
