"""Six GNU coreutils in Python, byte for byte: wc, head -n, tail -n, sort [-n] [-r], uniq -c, cut -d -f."""

from __future__ import annotations

import io
import re
import unicodedata
from collections import deque
from collections.abc import Sequence
from fractions import Fraction
from itertools import islice

# Python's own tools, picked for the exact semantics each tool needs: io.BytesIO iterates lines
# on b"\n" only, keeping it; a deque with maxlen keeps the last n; a Fraction is exact; the
# whitespace test asks unicodedata: the separators (Zs, Zl, Zp) are glibc's spaces plus the
# no-break ones, and GNU wc adds U+2060 (word joiner) to those.

_NUMBER = re.compile(rb"[ \t]*(-?)(\d*)(?:\.(\d*))?")


def _is_space(char: str) -> bool:
    return char in "\t\n\v\f\r \u2060" or unicodedata.category(char) in ("Zs", "Zl", "Zp")


def wc(data: bytes) -> bytes:
    """`wc` on stdin: lines, words and bytes, each right-aligned in 7 columns.

    >>> wc(b"hello world\\n")
    b'      1       2      12\\n'
    """
    text = data.decode("utf-8", errors="surrogateescape")  # an invalid byte: a non-space char
    words = sum(1 for i, char in enumerate(text)
                if not _is_space(char) and (i == 0 or _is_space(text[i - 1])))
    return b"%7d %7d %7d\n" % (data.count(b"\n"), words, len(data))


def head(data: bytes, n: int = 10) -> bytes:
    """`head -n N`: the first N lines, exactly as they were (no newline added)."""
    return b"".join(islice(io.BytesIO(data), n))


def tail(data: bytes, n: int = 10) -> bytes:
    """`tail -n N`: the last N lines; a last line without b"\\n" counts as a line."""
    return b"".join(deque(io.BytesIO(data), maxlen=max(n, 0)))


def _number(line: bytes) -> Fraction:
    match = _NUMBER.match(line)
    assert match is not None
    sign, whole, frac = match.groups(default=b"")
    value = Fraction(int(whole or b"0")) + (Fraction(int(frac), 10 ** len(frac)) if frac else 0)
    return -value if sign else value  # Fraction arithmetic is exact: no context, no rounding


def _lines(data: bytes) -> list[bytes]:
    return [line.removesuffix(b"\n") for line in io.BytesIO(data)]


def sort(data: bytes, numeric: bool = False, reverse: bool = False) -> bytes:
    """`sort`, `sort -n`, `sort -r`, `sort -nr`: every output line ends with b"\\n"."""
    if numeric:
        ordered = sorted(_lines(data), key=lambda line: (_number(line), line), reverse=reverse)
    else:
        ordered = sorted(_lines(data), reverse=reverse)
    return b"".join(line + b"\n" for line in ordered)


def uniq_c(data: bytes) -> bytes:
    """`uniq -c`: each run of equal ADJACENT lines once, prefixed by its count in 7 columns."""
    runs: list[list] = []
    for line in _lines(data):
        if runs and runs[-1][1] == line:
            runs[-1][0] += 1
        else:
            runs.append([1, line])
    return b"".join(b"%7d %s\n" % (count, line) for count, line in runs)


def cut(data: bytes, delimiter: bytes, fields: Sequence[int]) -> bytes:
    """`cut -d D -f LIST`: the listed fields (1-based), in increasing order, joined by D."""
    if len(delimiter) != 1:
        raise ValueError("cut: the delimiter must be a single byte")
    out = []
    for line in _lines(data):
        parts = line.split(delimiter)
        if len(parts) == 1:
            out.append(line)  # no delimiter: the line whole
        else:
            out.append(delimiter.join(part for number, part in enumerate(parts, 1) if number in fields))
    return b"".join(line + b"\n" for line in out)
