"""Tests for the coreutils: byte-identical to GNU coreutils on generated and tricky input."""

from __future__ import annotations

import os
import subprocess

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from .coreutils import cut, head, sort, tail, uniq_c, wc

# An explicit locale for every run of the real tool: the README's contract is GNU in C.UTF-8,
# whatever the machine's own LANG says.
ENV = {"PATH": os.environ["PATH"], "LC_ALL": "C.UTF-8"}
EXAMPLES = settings(max_examples=30, deadline=None, database=None)


def gnu(argv: list[str], data: bytes) -> bytes:
    """What the real GNU tool prints for `data` on its stdin."""
    return subprocess.run(argv, input=data, capture_output=True, env=ENV, timeout=30, check=True).stdout


def check(argv: list[str], data: bytes, ours: bytes, why: str) -> None:
    expected = gnu(argv, data)
    assert ours == expected, (
        f"`LC_ALL=C.UTF-8 {' '.join(argv)}` on input {data!r}:\n  GNU:   {expected!r}\n  yours: {ours!r}\n{why}"
    )


# --- the alphabet: every class of byte the tools meet -----------------------------------------
# Input is bytes, built from pieces that never form a b"\n" or a valid character by accident
# (no piece starts with a UTF-8 continuation byte), so each piece keeps its meaning.

U = str.encode  # "\u3000" -> its UTF-8 bytes
WORD_CHARS = [b"a", b"b", b"A", b"0", b"1", b"9", b"-", b".", b":", b",", b"+", b"_",
              U("é"), U("字"), U("😀"),
              U("\u200b"), U("\ufeff")]  # zero-width space and BOM: printable, NOT whitespace
ASCII_SPACES = [b" ", b"\t", b"\r", b"\x0b", b"\x0c"]
UNICODE_SPACES = [U("\u3000"), U("\u2003"), U("\u2002"), U("\u2009"), U("\u1680"), U("\u205f")]
NO_BREAK_SPACES = [U("\u00a0"), U("\u2007"), U("\u202f"), U("\u2060")]  # GNU wc splits at these
# Neither printable nor whitespace: C0 controls (U+001C-U+001F are whitespace to str.split(),
# not to GNU), DEL, NEL (U+0085), NUL, and bytes that are not UTF-8: a lone lead byte, a
# truncated ideographic space, an encoded surrogate, an overlong encoding of the space.
GLUE = [b"\x00", b"\x01", b"\x1c", b"\x1f", b"\x7f", U("\u0085"),
        b"\xff", b"\xc3", b"\xe3\x80", b"\xed\xa0\x80", b"\xc0\xa0"]
WHITESPACE = ASCII_SPACES + UNICODE_SPACES + NO_BREAK_SPACES
EVERY_PIECE = WORD_CHARS + WHITESPACE + GLUE


@st.composite
def close_numbers(draw: st.DrawFn) -> list[bytes]:
    """Numbers that differ only where a float cannot see: n and n+1 past 2**53, long fractions."""
    base = draw(st.integers(2**53 - 4, 10**30) | st.integers(-(10**30), -(2**53) + 4))
    fraction = draw(st.integers(10**17, 10**20))
    return [str(base).encode(), str(base + 1).encode(), str(base - 1).encode(),
            b"0.%d" % fraction, b"0.%d" % (fraction + 1), b"-0.%d" % fraction]


number_lines = st.one_of(
    st.integers(-1000, 1000).map(lambda n: str(n).encode()),
    st.integers(-(10**40), 10**40).map(lambda n: str(n).encode()),
    st.decimals(-100, 100, places=2, allow_nan=False).map(lambda d: str(d).encode()),
    st.decimals(-1, 1, places=25, allow_nan=False).map(lambda d: format(d, "f").encode()),
    st.sampled_from([b"", b" 7", b"\t-3", b"+4", b"-0", b"0", b"-", b".5", b"-.5", b"1.", b".", b"abc",
                     b"3abc", b"1e3", b"007", b"1,5", b"\x0b5", b"\r5", U("\u00a05"), b"--1", b"- 1"]),
)


@st.composite
def inputs(draw: st.DrawFn, pieces: list[bytes] = EVERY_PIECE) -> bytes:
    """Lines joined by LF or CRLF, with or without a final newline, sometimes repeated."""
    text_lines = st.lists(st.sampled_from(pieces), max_size=8).map(b"".join)
    body = draw(st.lists(st.one_of(text_lines, number_lines), max_size=12))
    if draw(st.booleans()):
        body += draw(close_numbers())
        body = draw(st.permutations(body))
    if body and draw(st.booleans()):  # runs of equal lines, for uniq
        body = [line for line in body for _ in range(draw(st.integers(1, 3)))]
    newline = draw(st.sampled_from([b"\n", b"\n", b"\r\n"]))
    data = newline.join(body)
    if body and draw(st.booleans()):
        data += newline
    return data


TRICKY = [
    b"", b"\n", b"no newline", b"a\r\nb\r\n", b"lone\rcarriage\nreturn\r", b"x\n\n\ny",
    b"tab\tand\x0bvertical\x0ctab\n", b"\xc3\xa9t\xc3\xa9 \xe5\xad\x97\n",
    b"nul\x00inside\nand\xff invalid\xc3 utf-8\n", b"\n\n\n", b"only the last line",
]


# --- wc ------------------------------------------------------------------------------------

WC_WHY = (
    "wc counts b'\\n' characters (a last line without one is not counted), bytes (not "
    "characters: é is 2), and words: runs of anything but whitespace. In C.UTF-8 whitespace is "
    "ASCII's six (space \\t \\n \\v \\f \\r), the Unicode spaces (U+3000, U+2000-U+200A, U+1680, "
    "U+205F) and the no-break spaces GNU adds (U+00A0, U+2007, U+202F, U+2060): decode the "
    "bytes to see them, bytes.split() does not. U+200B, U+0085 and U+001C-U+001F are NOT "
    "whitespace (str.split() thinks they are), and a byte that is not UTF-8 belongs to its "
    "word. Each count right-aligned in 7 columns, separated by one space."
)

# Inputs where every GNU coreutils 9.x agrees. 9.1 skips characters that are neither printable
# nor whitespace (controls, bytes that are not UTF-8): they neither start nor end a word. Later
# versions count them as word characters (the README's rule). So these inputs put such "glue"
# only inside words that also have a printable character, and leave out U+2028 and U+2029
# (whitespace but not printable: 9.1 ignores them, later versions split there).
WC_TRICKY = [
    U("a\u3000b c\n"), U("a\u2003b\n"), U("a\u00a0b\n"), U("a\u2007b\u202fc\u2060d\n"),
    U("\u3000\u3000lead and trail\u3000\n"), U("ogham\u1680space, math\u205fspace\n"),
    U("zero\u200bwidth\ufeffno-break is one word\n"), U("nel\u0085is not a space\n"),
    b"file\x1cgroup\x1drecord\x1eunit\x1fseparators are not spaces\n",
    b"invalid\xffbyte, lone\xc3lead, cut\xe3\x80short, overlong\xc0\xa0space\n",
    b"nul\x00byte del\x7fbyte\n", U("é字😀 in a word, no newline"),
]


@pytest.mark.stage(1, "counting with wc")
@pytest.mark.parametrize("data", TRICKY + WC_TRICKY)
def test_wc_on_tricky_input(data: bytes) -> None:
    check(["wc"], data, wc(data), WC_WHY)


@st.composite
def wc_inputs(draw: st.DrawFn) -> bytes:
    """Words (printable characters, glue only beside one) between runs of every whitespace."""
    separator = st.lists(st.sampled_from([*WHITESPACE, b"\n", b"\r\n"]), min_size=1, max_size=3).map(b"".join)
    words = draw(st.lists(st.tuples(
        st.sampled_from(WORD_CHARS),
        st.lists(st.sampled_from(WORD_CHARS + GLUE), max_size=4),
        st.booleans(),
    ), max_size=8))
    out = [draw(separator)] if draw(st.booleans()) else []
    for i, (printable, rest, glue_first) in enumerate(words):
        if i:
            out.append(draw(separator))
        out.append(b"".join([*rest, printable] if glue_first else [printable, *rest]))
    if words and draw(st.booleans()):
        out.append(draw(separator))
    return b"".join(out)


@pytest.mark.stage(1, "counting with wc")
@EXAMPLES
@given(data=wc_inputs())
def test_wc_matches_gnu(data: bytes) -> None:
    check(["wc"], data, wc(data), WC_WHY)


@pytest.mark.stage(1, "counting with wc")
@EXAMPLES
@given(data=inputs(pieces=WORD_CHARS + WHITESPACE))
def test_wc_matches_gnu_on_lines_and_numbers(data: bytes) -> None:
    check(["wc"], data, wc(data), WC_WHY)


# --- head and tail -------------------------------------------------------------------------

LINES_WHY = (
    "head and tail copy lines unchanged: only b'\\n' ends a line (a b'\\r' is just a byte, and "
    "bytes.splitlines() would split there), and a last line without b'\\n' is a line too, "
    "printed without one. -n 0 prints nothing (xs[-0:] is all of xs); N past the end prints "
    "everything."
)


@pytest.mark.stage(2, "head and tail")
@pytest.mark.parametrize("n", [0, 1, 2, 10**9])
@pytest.mark.parametrize("data", TRICKY)
def test_head_and_tail_on_tricky_input(data: bytes, n: int) -> None:
    check(["head", "-n", str(n)], data, head(data, n), LINES_WHY)
    check(["tail", "-n", str(n)], data, tail(data, n), LINES_WHY)


@pytest.mark.stage(2, "head and tail")
@EXAMPLES
@given(data=inputs(), n=st.integers(0, 14))
def test_head_and_tail_match_gnu(data: bytes, n: int) -> None:
    check(["head", "-n", str(n)], data, head(data, n), LINES_WHY)
    check(["tail", "-n", str(n)], data, tail(data, n), LINES_WHY)


@pytest.mark.stage(3, "sorting lines")
def test_defaults_are_the_tools_defaults() -> None:
    data = b"".join(b"line %d\n" % i for i in range(1, 26))
    check(["head"], data, head(data), "head() with no n is `head`: the first 10 lines.")
    check(["tail"], data, tail(data), "tail() with no n is `tail`: the last 10 lines.")
    data = b"10\n9\nb\na\n-1\n"
    check(["sort"], data, sort(data), "sort() with no flags is plain `sort`: bytes, ascending.")


# --- sort ----------------------------------------------------------------------------------

SORT_WHY = (
    "sort compares lines as bytes (C.UTF-8: code point order) and ends every output line with "
    "b'\\n'. -n reads a leading number (blanks: space and tab only; an optional '-', digits, an "
    "optional '.fraction'; '+4', 'abc' and '' read as 0) and compares it EXACTLY, at any length "
    "(float() cannot tell 9007199254740993 from 9007199254740992); lines with EQUAL numbers are "
    "then compared as bytes (the last-resort comparison), and -r reverses everything, that "
    "tie-break included."
)
SORT_FLAGS = [(False, False), (False, True), (True, False), (True, True)]


def sort_argv(numeric: bool, reverse: bool) -> list[str]:
    return ["sort"] + (["-n"] if numeric else []) + (["-r"] if reverse else [])


@pytest.mark.stage(3, "sorting lines")
@pytest.mark.parametrize(("numeric", "reverse"), SORT_FLAGS)
def test_sort_on_tricky_input(numeric: bool, reverse: bool) -> None:
    data = (b"10\n9\n-1\n+4\n 3\n007\n7\n1.5\n.5\nabc\n-0\n0\n\nB\na\r\n\xc3\xa9\n1e3\n\x0b2\n"
            b"\t-2\n-\n.\n\xff\n\xc2\xa01\n1e3")
    check(sort_argv(numeric, reverse), data, sort(data, numeric=numeric, reverse=reverse), SORT_WHY)


@pytest.mark.stage(3, "sorting lines")
@pytest.mark.parametrize(("numeric", "reverse"), SORT_FLAGS)
@pytest.mark.parametrize("data", [b"", b"\n", b"\n\n\n", b"no newline", b"b\r\na\r\n"])
def test_sort_on_empty_and_unterminated_input(data: bytes, numeric: bool, reverse: bool) -> None:
    check(sort_argv(numeric, reverse), data, sort(data, numeric=numeric, reverse=reverse), SORT_WHY)


@pytest.mark.stage(3, "sorting lines")
@pytest.mark.parametrize("reverse", [False, True])
def test_sort_n_compares_numbers_exactly_not_as_floats(reverse: bool) -> None:
    data = (b"-9007199254740992\n-9007199254740993\n9007199254740993\n9007199254740992\n"
            b"-123456789012345678901234567890123\n-123456789012345678901234567890124\n"
            b"0.10000000000000000001\n0.1\n0.10000000000000000002\n")
    check(sort_argv(True, reverse), data, sort(data, numeric=True, reverse=reverse), SORT_WHY)


@pytest.mark.stage(3, "sorting lines")
@EXAMPLES
@given(data=inputs(), numeric=st.booleans(), reverse=st.booleans())
def test_sort_matches_gnu(data: bytes, numeric: bool, reverse: bool) -> None:
    check(sort_argv(numeric, reverse), data, sort(data, numeric=numeric, reverse=reverse), SORT_WHY)


# --- uniq -c -------------------------------------------------------------------------------

UNIQ_WHY = (
    "uniq -c merges only ADJACENT equal lines (a line seen again later starts a new count), "
    "compares whole lines as bytes (b'a\\r' is not b'a'; a last line without b'\\n' equals the "
    "same line with one), and prints the count right-aligned in 7 columns, a space, the line, "
    "and b'\\n'."
)


@pytest.mark.stage(4, "uniq -c")
@pytest.mark.parametrize("data", [b"a\na\nb\na\na\na\nb", b"a\na", b"a\r\na\n", *TRICKY])
def test_uniq_c_counts_only_adjacent_repeats(data: bytes) -> None:
    check(["uniq", "-c"], data, uniq_c(data), UNIQ_WHY)


@pytest.mark.stage(4, "uniq -c")
@EXAMPLES
@given(data=inputs())
def test_uniq_c_matches_gnu(data: bytes) -> None:
    check(["uniq", "-c"], data, uniq_c(data), UNIQ_WHY)


# --- cut -d -f -----------------------------------------------------------------------------

CUT_WHY = (
    "cut prints the selected fields in INCREASING order whatever order -f lists them in, each "
    "once, joined by the delimiter; fields past the end are left out (a line with the "
    "delimiter but too few fields prints what it has, maybe an empty line); a line without "
    "the delimiter is printed whole; every output line ends with b'\\n'."
)


@pytest.mark.stage(5, "cut -d -f")
@pytest.mark.parametrize("data", [b"a:b:c:d\nno delimiter\n:x:\n::\n", *TRICKY])
def test_cut_prints_fields_in_increasing_order(data: bytes) -> None:
    check(["cut", "-d", ":", "-f", "3,1,3"], data, cut(data, b":", [3, 1, 3]), CUT_WHY)
    check(["cut", "-d", " ", "-f", "2"], data, cut(data, b" ", [2]), CUT_WHY)


@pytest.mark.stage(5, "cut -d -f")
@EXAMPLES
@given(
    data=inputs(),
    delimiter=st.sampled_from([":", " ", "\t", "-", ".", ",", "\x01"]),
    fields=st.lists(st.integers(1, 6), min_size=1, max_size=4) | st.just([1, 100]),
)
def test_cut_matches_gnu(data: bytes, delimiter: str, fields: list[int]) -> None:
    argv = ["cut", "-d", delimiter, "-f", ",".join(map(str, fields))]
    check(argv, data, cut(data, delimiter.encode(), fields), CUT_WHY)


@pytest.mark.stage(5, "cut -d -f")
@pytest.mark.parametrize("delimiter", [b"", b"::", "é".encode()])
def test_cut_refuses_a_delimiter_that_is_not_one_byte(delimiter: bytes) -> None:
    try:
        out = cut(b"a::b\n", delimiter, [1])
    except ValueError:
        return
    pytest.fail(f"cut(..., {delimiter!r}, [1]) returned {out!r}: a delimiter is exactly one byte "
                "(GNU: 'the delimiter must be a single character'); anything else is a ValueError")
