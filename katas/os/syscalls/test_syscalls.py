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
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from . import syscalls
from .syscalls import NR, getpid, getppid, libc_write, lseek, read, uname, write

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


@pytest.mark.stage(1, "asking the kernel")
def test_getpid_and_getppid_are_the_kernels_answers() -> None:
    got = (getpid(), getppid())
    assert got == (os.getpid(), os.getppid()), (
        f"getpid(), getppid() gave {got}; the kernel says {(os.getpid(), os.getppid())}. Is the "
        f"syscall number right for {os.uname().machine} (NR: {syscalls.NR})?"
    )


@pytest.mark.stage(1, "asking the kernel")
def test_getpid_and_getppid_in_a_forked_child() -> None:
    """In a child the answers change: the kernel's, not a value cached at import."""
    parent = os.getpid()
    assert getpid() == parent  # asked in the parent first: a cached answer would now be the parent's
    pid = os.fork()
    if pid == 0:  # the child: report by exit status only, never return into pytest
        try:
            ok = getpid() == os.getpid() != parent and getppid() == parent
            os._exit(0 if ok else 1)
        finally:
            os._exit(2)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, (
        "in a forked child getpid() must be the child's pid and getppid() the parent's: ask "
        "the kernel on every call (syscall(NR['getpid'])), don't cache an answer."
    )


# The ABI, from the kernel's own headers: asm/unistd_64.h (x86_64) and asm-generic/unistd.h.
ABI = {
    "x86_64": {"read": 0, "write": 1, "lseek": 8, "getpid": 39, "uname": 63, "getppid": 110},
    "aarch64": {"read": 63, "write": 64, "lseek": 62, "getpid": 172, "uname": 160, "getppid": 173},
}
HEADERS = {
    "x86_64": "/usr/include/x86_64-linux-gnu/asm/unistd_64.h",
    "aarch64": "/usr/include/asm-generic/unistd.h",
}


@pytest.mark.stage(1, "asking the kernel")
def test_the_numbers_are_the_kernels_abi_on_both_architectures() -> None:
    """SYSCALL_NUMBERS is the ABI: checked on this machine by calling, on the other by the header."""
    assert getpid() == os.getpid(), "getpid() must be the kernel's answer"
    for arch, header in HEADERS.items():
        with contextlib.suppress(OSError):  # the headers (linux-libc-dev) confirm the table above
            text = Path(header).read_text()
            for name, number in ABI[arch].items():
                found = re.search(rf"#define __NR(?:3264)?_{name}\s+(\d+)", text)
                assert found is None or int(found.group(1)) == number, (header, name)
    assert syscalls.SYSCALL_NUMBERS == ABI, (
        f"SYSCALL_NUMBERS is {syscalls.SYSCALL_NUMBERS}, the kernel's ABI is {ABI}: the numbers "
        "never change on an architecture, and a wrong one calls another system call."
    )


@pytest.mark.stage(3, "errors and errno")
def test_an_unknown_system_call_number_fails_with_enosys() -> None:
    _raises_errno(lambda: syscalls.syscall(100_000), errno.ENOSYS, "syscall(100000)")


@pytest.mark.stage(3, "errors and errno")
def test_a_bad_address_fails_with_efault(pipe: tuple[int, int]) -> None:
    """The kernel checks every pointer it is given: address 0 is nobody's memory (man 2 write)."""
    r, w = pipe
    os.write(w, b"x")
    _raises_errno(lambda: syscalls.syscall(NR["write"], w, 0, 1), errno.EFAULT, "write(w, NULL, 1)")
    _raises_errno(lambda: syscalls.syscall(NR["read"], r, 0, 1), errno.EFAULT, "read(r, NULL, 1)")


@pytest.mark.stage(1, "asking the kernel")
def test_uname_reads_the_struct_the_kernel_fills_in() -> None:
    expected = dict(zip(["sysname", "nodename", "release", "version", "machine"], os.uname(), strict=True))
    got = uname()
    assert got == expected, (
        f"uname() gave {got}\nos.uname() gives {expected}.\nPass the address of a struct "
        "utsname (six char[65] fields) and decode each field up to its NUL."
    )


# --- moving bytes ------------------------------------------------------------------------------

PAYLOAD = "naïve \x00 bytes: NUL inside, UTF-8 too\n".encode()


@pytest.mark.stage(2, "moving bytes")
def test_write_sends_every_byte_to_the_descriptor(pipe: tuple[int, int]) -> None:
    r, w = pipe
    count = write(w, PAYLOAD)
    got = os.read(r, 1000)
    assert (count, got) == (len(PAYLOAD), PAYLOAD), (
        f"write(fd, {PAYLOAD!r}) returned {count} and the pipe received {got!r}. Pass the "
        "bytes object itself (ctypes hands C a pointer to its buffer) and len(data): a C "
        "string stops at the first NUL, a str length counts characters, not bytes."
    )


@pytest.mark.stage(2, "moving bytes")
def test_libc_write_goes_through_the_wrapper(pipe: tuple[int, int]) -> None:
    r, w = pipe
    count = libc_write(w, PAYLOAD)
    got = os.read(r, 1000)
    assert (count, got) == (len(PAYLOAD), PAYLOAD), f"libc_write returned {count}, the pipe got {got!r}"


@pytest.mark.stage(2, "moving bytes")
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


@pytest.mark.stage(2, "moving bytes")
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


@pytest.mark.stage(2, "moving bytes")
def test_size_zero_and_empty_data(pipe: tuple[int, int], tmp_path: Path) -> None:
    _, w = pipe
    assert write(w, b"") == 0 and libc_write(w, b"") == 0, "writing b'' writes 0 bytes"
    path = tmp_path / "f"
    path.write_bytes(b"abc")
    fd = os.open(path, os.O_RDONLY)
    try:
        got = (read(fd, 0), read(fd, 3))
    finally:
        os.close(fd)
    assert got == (b"", b"abc"), f"read(fd, 0) then read(fd, 3) gave {got}, the kernel: (b'', b'abc')"


@pytest.mark.stage(4, "against the oracles")
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    content=st.binary(max_size=300) | st.builds(lambda n: b"\x00" * n, st.integers(0, 40)),
    sizes=st.lists(st.integers(0, 128), min_size=1, max_size=8),
)
def test_reads_agree_with_os_read(tmp_path: Path, content: bytes, sizes: list[int]) -> None:
    """Two descriptors on one file, os.read on one as the oracle: short reads, NULs, EOF."""
    path = tmp_path / "data"
    path.write_bytes(content)
    mine, theirs = os.open(path, os.O_RDONLY), os.open(path, os.O_RDONLY)
    try:
        for size in sizes:
            got, expected = read(mine, size), os.read(theirs, size)
            assert got == expected, (
                f"read(fd, {size}) gave {got!r}, os.read gives {expected!r} (file {content!r}, "
                f"sizes {sizes}). Return exactly the bytes the kernel filled in, "
                "buffer.raw[:count]: not buffer.value (it stops at the first NUL), not the whole "
                "buffer."
            )
    finally:
        os.close(mine)
        os.close(theirs)


@pytest.mark.stage(2, "moving bytes")
def test_a_read_on_a_pipe_returns_what_is_there(pipe: tuple[int, int]) -> None:
    """One read(2) is one answer: 3 bytes waiting and size 100 give those 3, at once."""
    r, w = pipe
    os.set_blocking(r, False)  # a second read(2) would wait for ever: here it fails instead
    os.write(w, b"a\x00c")
    try:
        got: bytes | str = read(r, 100)
    except OSError as exc:
        got = errno.errorcode.get(exc.errno or 0, str(exc))
    assert got == b"a\x00c", (
        f"read(r, 100) with 3 bytes in a pipe gave {got!r}, os.read gives b'a\\x00c': one "
        "read(2), whose count may be less than size (a short read), not a loop until size bytes."
    )
    _raises_errno(lambda: read(r, 100), errno.EAGAIN, "read from an empty non-blocking pipe")
    os.close(w)
    assert read(r, 100) == b"", "with the write end closed and nothing left, read gives b'' (EOF)"


@pytest.mark.stage(3, "errors and errno")
@pytest.mark.parametrize("call", [write, libc_write], ids=["write", "libc_write"])
def test_a_short_write_returns_what_the_kernel_took(call: Callable[[int, bytes], int]) -> None:
    """A non-blocking pipe takes only what fits (64 KiB): the count is the kernel's, not len(data)."""
    data = bytes(range(256)) * 1024  # 256 KiB
    pipes = [os.pipe(), os.pipe()]
    try:
        for _, w in pipes:
            os.set_blocking(w, False)
        (_, mine), (_, theirs) = pipes
        got, expected = call(mine, data), os.write(theirs, data)
        assert got == expected < len(data), (
            f"{call.__name__} of 256 KiB to a non-blocking pipe returned {got}; os.write returns "
            f"{expected}: return the kernel's count of bytes written, which may be less than "
            "len(data), never len(data) itself."
        )
        _raises_errno(lambda: call(mine, b"x"), errno.EAGAIN, f"{call.__name__} to a full non-blocking pipe")
    finally:
        for pair in pipes:
            for fd in pair:
                os.close(fd)


LSEEK_STEPS = st.lists(
    st.tuples(st.integers(-(1 << 40), 1 << 40), st.sampled_from([os.SEEK_SET, os.SEEK_CUR, os.SEEK_END])),
    min_size=1,
    max_size=6,
)


@pytest.mark.stage(4, "against the oracles")
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=LSEEK_STEPS, size=st.sampled_from([0, 1, 5 * GiB + 3]))
def test_lseek_agrees_with_os_lseek(tmp_path: Path, steps: list[tuple[int, int]], size: int) -> None:
    """Offsets up to 1 TiB, every whence, on an empty file and a sparse 5 GiB one; errors too."""
    path = tmp_path / "sparse"
    with open(path, "wb") as f:
        f.truncate(size)
    mine, theirs = os.open(path, os.O_RDONLY), os.open(path, os.O_RDONLY)
    try:
        for offset, whence in steps:
            try:
                expected: int | str = os.lseek(theirs, offset, whence)
            except OSError as exc:
                expected = errno.errorcode[exc.errno or 0]
            try:
                got: int | str = lseek(mine, offset, whence)
            except OSError as exc:
                got = errno.errorcode.get(exc.errno or 0, str(exc.errno))
            assert got == expected, (
                f"lseek(fd, {offset}, {whence}) on a {size}-byte file gave {got}, os.lseek "
                f"{expected} (steps {steps}). Offsets are 64 bits each way: pass ints as "
                "ctypes.c_long and set libc.syscall.restype = ctypes.c_long; a failure is "
                "OSError with the kernel's errno."
            )
    finally:
        os.close(mine)
        os.close(theirs)


# --- errors: -1 and errno ----------------------------------------------------------------------


@pytest.mark.stage(3, "errors and errno")
def test_errors_raise_oserror_with_the_kernels_errno(pipe: tuple[int, int], closed_fd: int) -> None:
    r, w = pipe
    _raises_errno(lambda: write(closed_fd, b"x"), errno.EBADF, "write to a closed fd")
    _raises_errno(lambda: read(w, 10), errno.EBADF, "read from a pipe's write end")
    _raises_errno(lambda: lseek(r, 0, os.SEEK_SET), errno.ESPIPE, "lseek on a pipe")
    _raises_errno(lambda: libc_write(closed_fd, b"x"), errno.EBADF, "libc_write to a closed fd")
    _raises_errno(lambda: read(closed_fd, 1), errno.EBADF, "read from a closed fd")
    _raises_errno(lambda: lseek(closed_fd, 0, os.SEEK_SET), errno.EBADF, "lseek on a closed fd")
    _raises_errno(lambda: lseek(r, 0, 10), errno.EINVAL, "lseek with whence 10")


@pytest.mark.stage(3, "errors and errno")
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


@pytest.mark.stage(4, "against the oracles")
def test_strace_shows_the_real_system_calls(kata_file: Callable[[str], Path], tmp_path: Path) -> None:
    """Run your module in a fresh interpreter under strace and read what crossed into the kernel."""
    assert getpid() == os.getpid()  # in process first: the stub fails here, with or without strace
    strace = _strace_or_skip()
    log = tmp_path / "strace.log"
    proc = subprocess.run(
        [
            strace,
            "-qq",
            "-e",
            f"trace={TRACE_SET}",
            "-e",
            "signal=none",
            "-o",
            str(log),
            sys.executable,
            "-c",
            TRACED,
            str(kata_file("syscalls.py")),
            str(tmp_path / "sparse"),
        ],
        capture_output=True,
        timeout=30,
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
