"""Six GNU coreutils in Python, byte for byte: wc, head -n, tail -n, sort [-n] [-r], uniq -c, cut -d -f."""

from __future__ import annotations

import re
from collections.abc import Sequence
from decimal import Decimal

# Every function takes what the tool would read on stdin and returns what it writes to stdout,
# as GNU coreutils 9 does with LC_ALL=C.UTF-8.


def wc(data: bytes) -> bytes:
    """`wc` on stdin: lines, words and bytes, each right-aligned in 7 columns.

    Words are runs of non-whitespace; in C.UTF-8 whitespace includes the Unicode spaces
    (U+3000, U+2000-U+200A, ...) and no-break spaces (U+00A0, U+2007, U+202F, U+2060), and a
    byte that is not UTF-8 is part of its word.

    >>> wc(b"hello world\\n")
    b'      1       2      12\\n'
    >>> wc("a\\u3000b".encode())
    b'      0       2       5\\n'
    """
    # TODO: count b"\n" characters, words (runs of non-whitespace: decode to see the Unicode
    #       spaces) and bytes.
    raise NotImplementedError("wc")


def head(data: bytes, n: int = 10) -> bytes:
    """`head -n N`: the first N lines, exactly as they were (no newline added)."""
    # TODO: only b"\n" ends a line (not a lone b"\r"); keep each line's ending as it is.
    raise NotImplementedError("head")


def tail(data: bytes, n: int = 10) -> bytes:
    """`tail -n N`: the last N lines; a last line without b"\\n" counts as a line."""
    # TODO: mind n=0 (xs[-0:] is all of xs) and a last line without b"\n".
    raise NotImplementedError("tail")


def sort(data: bytes, numeric: bool = False, reverse: bool = False) -> bytes:
    """`sort`, `sort -n`, `sort -r`, `sort -nr`: every output line ends with b"\\n".

    Lines are compared byte by byte (C.UTF-8 collation is code point order, which is byte
    order for UTF-8). With -n the leading number is compared exactly, at any length (not as a
    float); lines with equal numbers fall back to that byte comparison (GNU's "last-resort
    comparison"), and -r reverses the whole order, tie-break included.
    """
    # TODO: split into lines; sort by bytes, or by (number, bytes) with numeric=True.
    raise NotImplementedError("sort")


def uniq_c(data: bytes) -> bytes:
    """`uniq -c`: each run of equal ADJACENT lines once, prefixed by its count in 7 columns."""
    # TODO: walk the lines, counting runs of equal neighbours.
    raise NotImplementedError("uniq_c")


def cut(data: bytes, delimiter: bytes, fields: Sequence[int]) -> bytes:
    """`cut -d D -f LIST`: the listed fields (1-based), in increasing order, joined by D.

    A line without the delimiter is printed whole (GNU, without -s). `fields=[3, 1]` prints
    fields 1 and 3, in that order: cut never reorders or repeats fields. A delimiter that is
    not exactly one byte raises ValueError.
    """
    # TODO: check the delimiter; sorted(set(fields)); lines without the delimiter pass through whole.
    raise NotImplementedError("cut")
