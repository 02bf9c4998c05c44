"""System calls from Python: libc's syscall() and its wrappers through ctypes, errno and all."""

from __future__ import annotations

import ctypes
import os
import platform

# System call numbers are part of the kernel's ABI, and they differ per architecture (see
# /usr/include/x86_64-linux-gnu/asm/unistd_64.h, or asm-generic/unistd.h for arm64).
SYSCALL_NUMBERS: dict[str, dict[str, int]] = {
    "x86_64": {"read": 0, "write": 1, "lseek": 8, "getpid": 39, "uname": 63, "getppid": 110},
    "aarch64": {"read": 63, "write": 64, "lseek": 62, "getpid": 172, "uname": 160, "getppid": 173},
}
NR = SYSCALL_NUMBERS[platform.machine()]

# TODO: the libc already loaded into this process is ctypes.CDLL(None). Can ctypes.get_errno()
# see the errno of a failed call with the line below as it is?
libc = ctypes.CDLL(None)

# TODO: ctypes assumes every argument and result is a C int (32 bits) unless told otherwise:
# declare what libc.syscall returns, and the argument and result types of libc.write.


class UtsName(ctypes.Structure):
    """struct utsname from <sys/utsname.h> on Linux: six 65-byte, NUL-terminated strings."""

    _fields_ = [
        (name, ctypes.c_char * 65)  # 64 characters and the NUL that ends them
        for name in ("sysname", "nodename", "release", "version", "machine", "domainname")
    ]


def _check(result: int) -> int:
    """The C convention: -1 means failure and the reason is in errno. Raise it as OSError."""
    # TODO: -1 means failure: raise OSError(errno, os.strerror(errno)) with ctypes.get_errno();
    # anything else is the result.
    raise NotImplementedError("_check")


def syscall(number: int, *args: int | bytes | ctypes.Array[ctypes.c_char] | ctypes.Structure) -> int:
    """libc's syscall(number, args...): enter the kernel with this number and these arguments.

    Integers are passed as C longs (64 bits; 0 is a NULL pointer), bytes and ctypes buffers
    as pointers, a ctypes.Structure by address. Returns the kernel's result; raises
    OSError(errno, strerror) when the call fails: ENOSYS for an unknown number, EFAULT for an
    address that isn't ours, whatever the call itself reports otherwise.

    >>> syscall(NR["getpid"]) == os.getpid()
    True
    """
    # TODO: convert int arguments to ctypes.c_long (64 bits; ctypes would pass a C int),
    # a ctypes.Structure to ctypes.byref(...) (its address); call libc.syscall and _check it.
    raise NotImplementedError("syscall")


def getpid() -> int:
    """getpid(2) through syscall(): this process's id, asked each time (a forked child has its own)."""
    # TODO: syscall with NR["getpid"].
    raise NotImplementedError("getpid")


def getppid() -> int:
    """getppid(2) through syscall(): the parent's process id."""
    # TODO: syscall with NR["getppid"].
    raise NotImplementedError("getppid")


def write(fd: int, data: bytes) -> int:
    """write(2) through syscall(): write `data` to `fd` once; return the bytes the kernel took.

    That may be fewer than len(data) (a full non-blocking pipe); b"" writes 0.
    """
    # TODO: syscall(NR["write"], fd, data, len(data)): the bytes object is passed as a pointer.
    raise NotImplementedError("write")


def read(fd: int, size: int) -> bytes:
    """read(2) through syscall(), once: at most `size` bytes from `fd`, NULs included.

    Exactly what the kernel filled in, which may be fewer than `size` (a short read at end of
    file, or a pipe with less waiting); b"" at end of file and for size 0.
    """
    # TODO: a buffer from ctypes.create_string_buffer(size); the kernel says how many bytes
    # it filled in.
    raise NotImplementedError("read")


def lseek(fd: int, offset: int, whence: int) -> int:
    """lseek(2) through syscall(): move `fd`'s offset; return the new offset (64 bits each way)."""
    # TODO: syscall with NR["lseek"]; offsets can be larger than 32 bits.
    raise NotImplementedError("lseek")


def uname() -> dict[str, str]:
    """uname(2) through syscall(): sysname, nodename, release, version, machine."""
    # TODO: pass an UtsName() to the kernel (by address) and decode its fields.
    raise NotImplementedError("uname")


def libc_write(fd: int, data: bytes) -> int:
    """libc's write() wrapper (not syscall()): the same system call, the usual C way."""
    # TODO: call libc.write (declared below the imports) and _check the result.
    raise NotImplementedError("libc_write")
