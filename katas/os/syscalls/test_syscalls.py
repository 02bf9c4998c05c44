"""Tests for the syscalls module: the kernel's own answers, errno, 64-bit values, and strace's view."""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from . import syscalls
from .syscalls import getpid, getppid, libc_write, lseek, read, uname, write

GiB = 1 << 30


@pytest.fixture
def pipe() -> Iterator[tuple[int, int]]:
    r, w = os.pipe()
    yield r, w
    for fd in (r, w):
        with contextlib.suppress(OSError):  # a test may have closed it
            os.close(fd)


@pytest.fixture
def closed_fd() -> int:
    """A descriptor number that is certainly not open right now."""
    fd = os.open(os.devnull, os.O_RDONLY)
    os.close(fd)
    return fd


def _raises_errno(call: Callable[[], object], expected: int, what: str) -> None:
    """`call` must raise OSError with errno `expected`, as the os module does for the same call."""
    try:
        result = call()
    except OSError as exc:
        if exc.errno == 0 or exc.errno is None:
            raise AssertionError(
                f"{what} raised {exc!r}: errno {exc.errno}, expected {errno.errorcode[expected]}. "
                "ctypes keeps its own copy of errno only for a library loaded with "
                "ctypes.CDLL(None, use_errno=True); then read it with ctypes.get_errno()."
            ) from None
        assert exc.errno == expected, (
            f"{what} raised errno {errno.errorcode.get(exc.errno, exc.errno)}, expected "
            f"{errno.errorcode[expected]} (the os module's own call fails with that)"
        )
        return
    raise AssertionError(
        f"{what} returned {result!r} instead of raising OSError({errno.errorcode[expected]}). "
        "A failing system call returns -1 through libc and leaves the reason in errno: turn "
        "that into OSError(errno, os.strerror(errno)), as the os module does."
    )


# --- asking the kernel -------------------------------------------------------------------------


def test_getpid_and_getppid_are_the_kernels_answers() -> None:
    got = (getpid(), getppid())
    assert got == (os.getpid(), os.getppid()), (
        f"getpid(), getppid() gave {got}; the kernel says {(os.getpid(), os.getppid())}. Is the "
        f"syscall number right for {os.uname().machine} (NR: {syscalls.NR})?"
    )


def test_uname_reads_the_struct_the_kernel_fills_in() -> None:
    expected = dict(zip(["sysname", "nodename", "release", "version", "machine"], os.uname(), strict=True))
    got = uname()
    assert got == expected, (
        f"uname() gave {got}\nos.uname() gives {expected}.\nPass the address of a struct "
        "utsname (six char[65] fields) and decode each field up to its NUL."
    )


# --- moving bytes ------------------------------------------------------------------------------

PAYLOAD = "naïve \x00 bytes: NUL inside, UTF-8 too\n".encode()


def test_write_sends_every_byte_to_the_descriptor(pipe: tuple[int, int]) -> None:
    r, w = pipe
    count = write(w, PAYLOAD)
    got = os.read(r, 1000)
    assert (count, got) == (len(PAYLOAD), PAYLOAD), (
        f"write(fd, {PAYLOAD!r}) returned {count} and the pipe received {got!r}. Pass the "
        "bytes object itself (ctypes hands C a pointer to its buffer) and len(data): a C "
        "string stops at the first NUL, a str length counts characters, not bytes."
    )


def test_libc_write_goes_through_the_wrapper(pipe: tuple[int, int]) -> None:
    r, w = pipe
    count = libc_write(w, PAYLOAD)
    got = os.read(r, 1000)
    assert (count, got) == (len(PAYLOAD), PAYLOAD), f"libc_write returned {count}, the pipe got {got!r}"


def test_read_returns_only_what_the_kernel_filled_in(tmp_path: Path) -> None:
    path = tmp_path / "five"
    path.write_bytes(b"hello")
    fd = os.open(path, os.O_RDONLY)
    try:
        first, second = read(fd, 100), read(fd, 100)
    finally:
        os.close(fd)
    assert first == b"hello", (
        f"read(fd, 100) on a 5-byte file gave {first!r}. The kernel returns how many bytes it "
        "filled in; the rest of your buffer is not data: return buffer.raw[:count]."
    )
    assert second == b"", f"a read at end of file must give b'' (the kernel returns 0), got {second!r}"


def test_lseek_returns_offsets_past_4_gib(tmp_path: Path) -> None:
    """A sparse file: seeking costs no disk space."""
    fd = os.open(tmp_path / "sparse", os.O_RDWR | os.O_CREAT)
    try:
        got = lseek(fd, 5 * GiB, os.SEEK_SET)
        kernel = os.lseek(fd, 0, os.SEEK_CUR)
        end = lseek(fd, 0, os.SEEK_END)
    except ctypes.ArgumentError as exc:
        raise AssertionError(
            f"lseek(fd, 5 GiB, SEEK_SET) failed in ctypes: {exc}. A Python int goes to C as a "
            "32-bit int unless you say otherwise: wrap integer arguments in ctypes.c_long."
        ) from None
    finally:
        os.close(fd)
    assert kernel == 5 * GiB, (
        f"after lseek(fd, 5 GiB, SEEK_SET) the kernel's offset is {kernel}, not {5 * GiB}: the "
        "offset argument was cut to 32 bits. Pass integers as ctypes.c_long."
    )
    assert got == 5 * GiB, (
        f"lseek returned {got}, the kernel's result is {5 * GiB} (= {got} mod 2**32?). ctypes "
        "assumes a C int (32 bits) result unless you set the function's restype: "
        "libc.syscall.restype = ctypes.c_long."
    )
    assert end == 0, f"lseek(fd, 0, SEEK_END) on an empty file must give 0, got {end}"


# --- errors: -1 and errno ----------------------------------------------------------------------


def test_errors_raise_oserror_with_the_kernels_errno(pipe: tuple[int, int], closed_fd: int) -> None:
    r, w = pipe
    _raises_errno(lambda: write(closed_fd, b"x"), errno.EBADF, "write to a closed fd")
    _raises_errno(lambda: read(w, 10), errno.EBADF, "read from a pipe's write end")
    _raises_errno(lambda: lseek(r, 0, os.SEEK_SET), errno.ESPIPE, "lseek on a pipe")
    _raises_errno(lambda: libc_write(closed_fd, b"x"), errno.EBADF, "libc_write to a closed fd")


def test_errors_match_the_os_module(tmp_path: Path) -> None:
    """os.lseek with a negative offset is the oracle: the same system call, the same errno."""
    fd = os.open(tmp_path / "f", os.O_RDWR | os.O_CREAT)
    try:
        with pytest.raises(OSError) as oracle:
            os.lseek(fd, -1, os.SEEK_SET)
        _raises_errno(lambda: lseek(fd, -1, os.SEEK_SET), oracle.value.errno or 0, "lseek to -1")
    finally:
        os.close(fd)


# --- strace: the same calls, seen from outside -------------------------------------------------

TRACED = r"""
import os, runpy, sys
m = runpy.run_path(sys.argv[1])
fd = os.open(sys.argv[2], os.O_RDWR | os.O_CREAT)
os.write(2, b"<<begin>>\n")
m["getpid"]()
m["getppid"]()
m["write"](1, b"through syscall()\n")
m["libc_write"](1, b"through libc\n")
m["lseek"](fd, 5 << 30, os.SEEK_SET)
m["uname"]()
os.write(2, b"<<end>>\n")
"""
TRACE_SET = "getpid,getppid,write,lseek,uname"


def _strace_or_skip() -> str:
    strace = shutil.which("strace")
    if strace is None:
        pytest.skip("strace is not installed (apt-get install strace): the in-process tests ran")
    probe = subprocess.run([strace, "-o", os.devnull, "true"], capture_output=True, timeout=30)
    if probe.returncode != 0:
        pytest.skip(f"strace cannot trace here (ptrace not permitted?): {probe.stderr.decode()[:200]}")
    return strace


def test_strace_shows_the_real_system_calls(kata_file: Callable[[str], Path], tmp_path: Path) -> None:
    """Run your module in a fresh interpreter under strace and read what crossed into the kernel."""
    assert getpid() == os.getpid()  # in process first: the stub fails here, with or without strace
    strace = _strace_or_skip()
    log = tmp_path / "strace.log"
    proc = subprocess.run(
        [strace, "-qq", "-e", f"trace={TRACE_SET}", "-e", "signal=none", "-o", str(log),
         sys.executable, "-c", TRACED, str(kata_file("syscalls.py")), str(tmp_path / "sparse")],
        capture_output=True, timeout=30,
    )
    assert proc.returncode == 0, f"the traced script failed:\n{proc.stderr.decode()[-1500:]}"
    assert proc.stdout == b"through syscall()\nthrough libc\n", f"its stdout: {proc.stdout!r}"
    lines = log.read_text().splitlines()
    begin = next(i for i, line in enumerate(lines) if "<<begin>>" in line)
    end = next(i for i, line in enumerate(lines) if "<<end>>" in line)
    traced = [line for line in lines[begin + 1 : end] if not line.startswith("+++")]
    names = [re.split(r"\(", line, maxsplit=1)[0] for line in traced]
    shown = "\n  ".join(traced)
    assert names == ["getpid", "getppid", "write", "write", "lseek", "uname"], (
        f"between the markers strace saw these system calls:\n  {shown}\nexpected exactly one "
        "each of getpid, getppid, write (syscall()), write (libc), lseek and uname, in that order."
    )
    assert traced[2].startswith('write(1, "through syscall()\\n", 18)') and traced[2].endswith("= 18"), traced[2]
    assert traced[3].startswith('write(1, "through libc\\n", 13)') and traced[3].endswith("= 13"), traced[3]
    assert ", 5368709120, SEEK_SET)" in traced[4] and traced[4].endswith("= 5368709120"), (
        f"strace shows {traced[4]!r}: the kernel must receive and return the 64-bit offset 5 GiB"
    )
