"""Tests for the coreutils: byte-identical to GNU coreutils on generated and tricky input."""

from __future__ import annotations

import os
import subprocess

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from .coreutils import cut, head, sort, tail, uniq_c, wc

ENV = {"PATH": os.environ["PATH"], "LC_ALL": "C.UTF-8"}
EXAMPLES = settings(max_examples=30, deadline=None, database=None)


def gnu(argv: list[str], data: bytes) -> bytes:
    """What the real GNU tool prints for `data` on its stdin."""
    return subprocess.run(argv, input=data, capture_output=True, env=ENV, timeout=30, check=True).stdout


def check(argv: list[str], data: bytes, ours: bytes, why: str) -> None:
    expected = gnu(argv, data)
    assert ours == expected, (
        f"`{' '.join(argv)}` on input {data!r}:\n  GNU:   {expected!r}\n  yours: {ours!r}\n{why}"
    )


# --- input: empty, no trailing newline, CRLF, UTF-8, numbers, repeats --------------------------

chars = st.sampled_from([*list("abcAB019 -.:\t"), "é", "字", "😀", "\r"])
text_lines = st.text(alphabet=chars, max_size=8)
number_lines = st.one_of(
    st.integers(-1000, 1000).map(str),
    st.decimals(-100, 100, places=2, allow_nan=False).map(str),
    st.sampled_from(["", " 7", "\t-3", "+4", "-0", "0", ".5", "-.5", "1.", "abc", "3abc", "1e3", "007"]),
)
lines = st.lists(st.one_of(text_lines, number_lines), max_size=12)


@st.composite
def inputs(draw: st.DrawFn) -> bytes:
    """Lines joined by LF or CRLF, with or without a final newline, sometimes repeated."""
    body = draw(lines)
    if body and draw(st.booleans()):  # runs of equal lines, for uniq
        body = [line for line in body for _ in range(draw(st.integers(1, 3)))]
    newline = draw(st.sampled_from(["\n", "\n", "\r\n"]))
    text = newline.join(body)
    if body and draw(st.booleans()):
        text += newline
    return text.encode()


TRICKY = [
    b"", b"\n", b"no newline", b"a\r\nb\r\n", b"lone\rcarriage\nreturn\r", b"x\n\n\ny",
    b"tab\tand\x0bvertical\x0ctab\n", b"\xc3\xa9t\xc3\xa9 \xe5\xad\x97\n",
]


# --- wc ------------------------------------------------------------------------------------

WC_WHY = (
    "wc counts b'\\n' characters (a last line without one is not counted), words as runs of "
    "non-whitespace (space, \\t, \\n, \\r, \\v, \\f all separate words), and bytes, not characters; "
    "each count right-aligned in 7 columns, separated by one space."
)


@pytest.mark.parametrize("data", TRICKY)
def test_wc_on_tricky_input(data: bytes) -> None:
    check(["wc"], data, wc(data), WC_WHY)


@EXAMPLES
@given(data=inputs())
def test_wc_matches_gnu(data: bytes) -> None:
    check(["wc"], data, wc(data), WC_WHY)


# --- head and tail -------------------------------------------------------------------------

LINES_WHY = (
    "head and tail copy lines unchanged: only b'\\n' ends a line (a b'\\r' is just a byte, and "
    "bytes.splitlines() would split there), and a last line without b'\\n' is a line too, "
    "printed without one."
)


@pytest.mark.parametrize("n", [0, 1, 2, 10])
@pytest.mark.parametrize("data", TRICKY)
def test_head_and_tail_on_tricky_input(data: bytes, n: int) -> None:
    check(["head", "-n", str(n)], data, head(data, n), LINES_WHY)
    check(["tail", "-n", str(n)], data, tail(data, n), LINES_WHY)


@EXAMPLES
@given(data=inputs(), n=st.integers(0, 14))
def test_head_and_tail_match_gnu(data: bytes, n: int) -> None:
    check(["head", "-n", str(n)], data, head(data, n), LINES_WHY)
    check(["tail", "-n", str(n)], data, tail(data, n), LINES_WHY)


# --- sort ----------------------------------------------------------------------------------

SORT_WHY = (
    "sort compares lines as bytes (C.UTF-8: code point order) and ends every output line with "
    "b'\\n'. -n reads a leading number (blanks, optional '-', digits, optional '.fraction'; "
    "'+4', 'abc' and '' read as 0); lines with EQUAL numbers are then compared as bytes (the "
    "last-resort comparison), and -r reverses everything, that tie-break included."
)


@pytest.mark.parametrize(("numeric", "reverse"), [(False, False), (False, True), (True, False), (True, True)])
def test_sort_on_tricky_input(numeric: bool, reverse: bool) -> None:
    data = b"10\n9\n-1\n+4\n 3\n007\n7\n1.5\n.5\nabc\n-0\n0\n\nB\na\r\n\xc3\xa9\n1e3"
    argv = ["sort"] + (["-n"] if numeric else []) + (["-r"] if reverse else [])
    check(argv, data, sort(data, numeric=numeric, reverse=reverse), SORT_WHY)


@EXAMPLES
@given(data=inputs(), numeric=st.booleans(), reverse=st.booleans())
def test_sort_matches_gnu(data: bytes, numeric: bool, reverse: bool) -> None:
    argv = ["sort"] + (["-n"] if numeric else []) + (["-r"] if reverse else [])
    check(argv, data, sort(data, numeric=numeric, reverse=reverse), SORT_WHY)


# --- uniq -c -------------------------------------------------------------------------------

UNIQ_WHY = (
    "uniq -c merges only ADJACENT equal lines (a line seen again later starts a new count), "
    "prints the count right-aligned in 7 columns, a space, the line, and b'\\n'."
)


def test_uniq_c_counts_only_adjacent_repeats() -> None:
    data = b"a\na\nb\na\na\na\nb"
    check(["uniq", "-c"], data, uniq_c(data), UNIQ_WHY)


@EXAMPLES
@given(data=inputs())
def test_uniq_c_matches_gnu(data: bytes) -> None:
    check(["uniq", "-c"], data, uniq_c(data), UNIQ_WHY)


# --- cut -d -f -----------------------------------------------------------------------------

CUT_WHY = (
    "cut prints the selected fields in INCREASING order whatever order -f lists them in, each "
    "once, joined by the delimiter; fields past the end are left out; a line without the "
    "delimiter is printed whole."
)


def test_cut_prints_fields_in_increasing_order() -> None:
    data = b"a:b:c:d\nno delimiter\n:x:\n"
    check(["cut", "-d", ":", "-f", "3,1,3"], data, cut(data, b":", [3, 1, 3]), CUT_WHY)


@EXAMPLES
@given(
    data=inputs(),
    delimiter=st.sampled_from([":", " ", "\t", "-", "."]),
    fields=st.lists(st.integers(1, 5), min_size=1, max_size=4),
)
def test_cut_matches_gnu(data: bytes, delimiter: str, fields: list[int]) -> None:
    argv = ["cut", "-d", delimiter, "-f", ",".join(map(str, fields))]
    check(argv, data, cut(data, delimiter.encode(), fields), CUT_WHY)
