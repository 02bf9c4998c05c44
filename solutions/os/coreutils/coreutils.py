"""Six GNU coreutils in Python, byte for byte: wc, head -n, tail -n, sort [-n] [-r], uniq -c, cut -d -f."""

from __future__ import annotations

import re
from collections.abc import Sequence
from decimal import Decimal
from itertools import groupby

# Every function takes what the tool would read on stdin and returns what it writes to stdout,
# as GNU coreutils 9 does with LC_ALL=C.UTF-8.

_NUMBER = re.compile(rb"[ \t]*(-?)(\d*)(?:\.(\d*))?")

# What separates words for GNU wc in C.UTF-8: ASCII's six whitespace characters, the Unicode
# spaces glibc's iswspace() knows (U+1680, U+2000-U+2006, U+2008-U+200A, U+2028, U+2029, U+205F,
# U+3000), and the no-break spaces GNU adds (U+00A0, U+2007, U+202F, U+2060). Not str.isspace():
# that also takes U+001C-U+001F and U+0085, and misses U+2060.
_WHITESPACE = "\t\n\v\f\r \u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u2060\u3000"
_WORD = re.compile(f"[^{_WHITESPACE}]+")


def _lines(data: bytes) -> list[bytes]:
    """The lines of `data`, each without its b"\\n"; a last line without one still counts."""
    # Only b"\n" ends a line: bytes.splitlines() would also split at a lone b"\r" (CRLF input).
    lines = data.split(b"\n")
    if lines[-1] == b"":
        lines.pop()  # data ended with b"\n" (or was empty): no partial line after it
    return lines


def _with_ends(data: bytes) -> list[bytes]:
    """Lines with their b"\\n" kept (the last may lack one), so head and tail add nothing."""
    lines = [line + b"\n" for line in data.split(b"\n")]
    lines[-1] = lines[-1][:-1]  # what follows the last b"\n" has no b"\n" of its own
    if lines[-1] == b"":
        lines.pop()
    return lines


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
    # Lines are b"\n" characters (a last line without one is not counted); bytes are bytes (é is
    # 2); words are runs of anything but whitespace, which in C.UTF-8 is more than ASCII's six.
    # Decode to see the multibyte spaces; surrogateescape keeps each invalid byte as a character
    # of its own, and an invalid byte is not whitespace, so it is part of the word around it.
    words = _WORD.findall(data.decode("utf-8", errors="surrogateescape"))
    return b"%7d %7d %7d\n" % (data.count(b"\n"), len(words), len(data))


def head(data: bytes, n: int = 10) -> bytes:
    """`head -n N`: the first N lines, exactly as they were (no newline added)."""
    return b"".join(_with_ends(data)[:n])


def tail(data: bytes, n: int = 10) -> bytes:
    """`tail -n N`: the last N lines; a last line without b"\\n" counts as a line."""
    return b"".join(_with_ends(data)[-n:]) if n > 0 else b""


def _number(line: bytes) -> Decimal:
    # GNU sort -n: leading blanks (space, tab), an optional '-', digits, an optional fraction;
    # anything else (a '+', letters, nothing) reads as 0. GNU compares the digit strings, so
    # the key must be exact at any length: Decimal("...") is, where float() rounds past 2**53
    # (and -Decimal(...) would round to the context's 28 digits: the sign goes in the string).
    match = _NUMBER.match(line)
    assert match is not None  # the pattern can match the empty string
    sign, whole, frac = match.groups(default=b"")
    return Decimal(sign.decode() + (whole or b"0").decode() + "." + (frac or b"0").decode())


def sort(data: bytes, numeric: bool = False, reverse: bool = False) -> bytes:
    """`sort`, `sort -n`, `sort -r`, `sort -nr`: every output line ends with b"\\n".

    Lines are compared byte by byte (C.UTF-8 collation is code point order, which is byte
    order for UTF-8). With -n the leading number is compared exactly, at any length (not as a
    float); lines with equal numbers fall back to that byte comparison (GNU's "last-resort
    comparison"), and -r reverses the whole order, tie-break included.
    """
    lines = _lines(data)
    if numeric:
        lines.sort(key=lambda line: (_number(line), line), reverse=reverse)
    else:
        lines.sort(reverse=reverse)
    return b"".join(line + b"\n" for line in lines)


def uniq_c(data: bytes) -> bytes:
    """`uniq -c`: each run of equal ADJACENT lines once, prefixed by its count in 7 columns."""
    # groupby groups neighbours only, which is exactly uniq: a line seen again later starts a
    # new run (that is why `sort | uniq -c` is the idiom).
    runs = ((sum(1 for _ in run), line) for line, run in groupby(_lines(data)))
    return b"".join(b"%7d %s\n" % (count, line) for count, line in runs)


def cut(data: bytes, delimiter: bytes, fields: Sequence[int]) -> bytes:
    """`cut -d D -f LIST`: the listed fields (1-based), in increasing order, joined by D.

    A line without the delimiter is printed whole (GNU, without -s). `fields=[3, 1]` prints
    fields 1 and 3, in that order: cut never reorders or repeats fields. A delimiter that is
    not exactly one byte raises ValueError.
    """
    if len(delimiter) != 1:
        raise ValueError("the delimiter must be a single byte")
    wanted = sorted(set(fields))  # cut -f 3,1,1 is cut -f 1,3
    out = []
    for line in _lines(data):
        if delimiter not in line:
            out.append(line + b"\n")
            continue
        parts = line.split(delimiter)
        out.append(delimiter.join(parts[i - 1] for i in wanted if i <= len(parts)) + b"\n")
    return b"".join(out)
