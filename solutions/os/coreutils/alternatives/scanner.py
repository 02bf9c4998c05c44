"""Six GNU coreutils in Python, byte for byte: wc, head -n, tail -n, sort [-n] [-r], uniq -c, cut -d -f."""

from __future__ import annotations

from collections.abc import Sequence
from functools import cmp_to_key

# The way the C tools work: scan the bytes. wc decodes UTF-8 by hand in one pass with an
# in-word flag, head and tail find newlines (tail from the end, as GNU tail reads a file
# backwards), and sort -n compares the digit strings themselves, as GNU's numcompare does:
# no number is ever converted.

_ASCII_SPACE = frozenset(b" \t\n\v\f\r")
_UNICODE_SPACE = frozenset([0x00A0, 0x1680, *range(0x2000, 0x200B), 0x2028, 0x2029, 0x202F, 0x205F,
                            0x2060, 0x3000])


def _decode_one(data: bytes, i: int) -> tuple[int | None, int]:
    """The code point at data[i] and its length; (None, 1) for a byte that starts no character."""
    lead = data[i]
    if lead < 0x80:
        return lead, 1
    if 0xC2 <= lead <= 0xDF:
        size, low, high, value = 2, 0x80, 0xBF, lead & 0x1F
    elif 0xE0 <= lead <= 0xEF:
        size, value = 3, lead & 0x0F
        low, high = (0xA0, 0xBF) if lead == 0xE0 else (0x80, 0x9F) if lead == 0xED else (0x80, 0xBF)
    elif 0xF0 <= lead <= 0xF4:
        size, value = 4, lead & 0x07
        low, high = (0x90, 0xBF) if lead == 0xF0 else (0x80, 0x8F) if lead == 0xF4 else (0x80, 0xBF)
    else:
        return None, 1
    for k in range(1, size):
        if i + k >= len(data) or not (low if k == 1 else 0x80) <= data[i + k] <= (high if k == 1 else 0xBF):
            return None, 1  # skip the lead byte only: what follows may start a character
        value = value << 6 | data[i + k] & 0x3F
    return value, size


def wc(data: bytes) -> bytes:
    """`wc` on stdin: lines, words and bytes, each right-aligned in 7 columns.

    >>> wc(b"hello world\\n")
    b'      1       2      12\\n'
    """
    words, in_word, i = 0, False, 0
    while i < len(data):
        char, size = _decode_one(data, i)
        space = char is not None and (char in _ASCII_SPACE or char in _UNICODE_SPACE)
        if not space and not in_word:
            words += 1  # a word starts at the first non-space after a space (or the start)
        in_word = not space
        i += size
    return b"%7d %7d %7d\n" % (data.count(b"\n"), words, len(data))


def head(data: bytes, n: int = 10) -> bytes:
    """`head -n N`: the first N lines, exactly as they were (no newline added)."""
    end = 0
    for _ in range(n):
        newline = data.find(b"\n", end)
        if newline < 0:
            return data  # fewer than n newlines: everything, the unterminated last line too
        end = newline + 1
    return data[:end]


def tail(data: bytes, n: int = 10) -> bytes:
    """`tail -n N`: the last N lines; a last line without b"\\n" counts as a line."""
    if n <= 0:
        return b""
    # A final b"\n" ends the last line, it does not start an empty one: look before it.
    start = len(data) - 1 if data.endswith(b"\n") else len(data)
    for _ in range(n):
        start = data.rfind(b"\n", 0, start)
        if start < 0:
            return data
    return data[start + 1:]


def _split_number(line: bytes) -> tuple[bool, bytes, bytes]:
    """(negative, integer digits without leading zeros, fraction digits without trailing zeros)."""
    i = 0
    while i < len(line) and line[i] in b" \t":
        i += 1
    negative = line[i:i + 1] == b"-"
    i += negative
    start = i
    while i < len(line) and line[i] in b"0123456789":
        i += 1
    whole = line[start:i].lstrip(b"0")
    frac = b""
    if line[i:i + 1] == b".":
        start = i = i + 1
        while i < len(line) and line[i] in b"0123456789":
            i += 1
        frac = line[start:i].rstrip(b"0")
    if not whole and not frac:
        negative = False  # -0, -, -.000 are all zero
    return negative, whole, frac


def _compare_magnitude(a: tuple[bytes, bytes], b: tuple[bytes, bytes]) -> int:
    (wa, fa), (wb, fb) = a, b
    if len(wa) != len(wb):
        return -1 if len(wa) < len(wb) else 1  # more integer digits, bigger number
    # Same length: digit strings compare like the numbers; fractions compare as strings too.
    return (wa > wb) - (wa < wb) or (fa > fb) - (fa < fb)


def _numcompare(a: bytes, b: bytes) -> int:
    na, wa, fa = _split_number(a)
    nb, wb, fb = _split_number(b)
    if na != nb:
        return -1 if na else 1
    order = _compare_magnitude((wa, fa), (wb, fb))
    return -order if na else order


def _compare(numeric: bool, a: bytes, b: bytes) -> int:
    order = _numcompare(a, b) if numeric else 0
    return order or (a > b) - (a < b)  # the last-resort comparison: whole lines as bytes


def sort(data: bytes, numeric: bool = False, reverse: bool = False) -> bytes:
    """`sort`, `sort -n`, `sort -r`, `sort -nr`: every output line ends with b"\\n"."""
    lines = data.split(b"\n")
    if lines[-1] == b"":
        lines.pop()
    lines.sort(key=cmp_to_key(lambda a, b: _compare(numeric, a, b)), reverse=reverse)
    return b"".join(line + b"\n" for line in lines)


def uniq_c(data: bytes) -> bytes:
    """`uniq -c`: each run of equal ADJACENT lines once, prefixed by its count in 7 columns."""
    out = []
    start = 0
    run_line, run_count = None, 0
    while start < len(data):
        end = data.find(b"\n", start)
        end = len(data) if end < 0 else end
        line, start = data[start:end], end + 1
        if line != run_line and run_line is not None:
            out.append(b"%7d %s\n" % (run_count, run_line))
            run_count = 0
        run_line, run_count = line, run_count + 1
    if run_line is not None:
        out.append(b"%7d %s\n" % (run_count, run_line))
    return b"".join(out)


def cut(data: bytes, delimiter: bytes, fields: Sequence[int]) -> bytes:
    """`cut -d D -f LIST`: the listed fields (1-based), in increasing order, joined by D."""
    if len(delimiter) != 1:
        raise ValueError(f"cut: the delimiter must be a single byte, not {delimiter!r}")
    wanted = set(fields)
    out = bytearray()
    lines = data.split(b"\n")
    if lines[-1] == b"":
        lines.pop()
    for line in lines:
        if delimiter not in line:
            out += line + b"\n"
            continue
        # Walk the fields left to right, printing a delimiter before every selected field
        # but the first: increasing order and no repeats come for free.
        number, start, printed = 1, 0, False
        while start <= len(line):
            end = line.find(delimiter, start)
            end = len(line) if end < 0 else end
            if number in wanted:
                out += (delimiter if printed else b"") + line[start:end]
                printed = True
            number, start = number + 1, end + 1
        out += b"\n"
    return bytes(out)
