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

# CDLL(None) is the libc already loaded into this process. use_errno=True makes ctypes copy
# errno into a private slot right after each call: without it, ctypes.get_errno() reads a
# slot nobody wrote (0), and the interpreter may have overwritten the real errno meanwhile.
libc = ctypes.CDLL(None, use_errno=True)

# ctypes assumes every argument and result is a C int (32 bits) unless told otherwise. A
# pointer, a size or a 5 GiB file offset would be cut to 32 bits: declare the real types.
libc.syscall.restype = ctypes.c_long
libc.write.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_size_t]
libc.write.restype = ctypes.c_ssize_t


class UtsName(ctypes.Structure):
    """struct utsname from <sys/utsname.h> on Linux: six 65-byte, NUL-terminated strings."""

    _fields_ = [
        (name, ctypes.c_char * 65)  # 64 characters and the NUL that ends them
        for name in ("sysname", "nodename", "release", "version", "machine", "domainname")
    ]


def _check(result: int) -> int:
    """The C convention: -1 means failure and the reason is in errno. Raise it as OSError."""
    if result == -1:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))
    return result


def _register(arg: int | bytes | ctypes.Array[ctypes.c_char] | ctypes.Structure) -> object:
    """What one argument register holds: an int as a C long, memory by its address."""
    if isinstance(arg, int):
        return ctypes.c_long(arg)  # ctypes would pass a bare int as a 32-bit C int
    if isinstance(arg, ctypes.Structure):
        return ctypes.byref(arg)
    return arg  # bytes and ctypes buffers: ctypes passes a pointer to their memory


def syscall(number: int, *args: int | bytes | ctypes.Array[ctypes.c_char] | ctypes.Structure) -> int:
    """libc's syscall(number, args...): enter the kernel with this number and these arguments.

    Integers are passed as C longs (64 bits; 0 is a NULL pointer), bytes and ctypes buffers
    as pointers, a ctypes.Structure by address. Returns the kernel's result; raises
    OSError(errno, strerror) when the call fails: ENOSYS for an unknown number, EFAULT for an
    address that isn't ours, whatever the call itself reports otherwise.

    >>> syscall(NR["getpid"]) == os.getpid()
    True
    """
    return _check(libc.syscall(ctypes.c_long(number), *map(_register, args)))


def getpid() -> int:
    """getpid(2) through syscall(): this process's id, asked each time (a forked child has its own)."""
    return syscall(NR["getpid"])


def getppid() -> int:
    """getppid(2) through syscall(): the parent's process id."""
    return syscall(NR["getppid"])


def write(fd: int, data: bytes) -> int:
    """write(2) through syscall(): write `data` to `fd` once; return the bytes the kernel took.

    That may be fewer than len(data) (a full non-blocking pipe); b"" writes 0.
    """
    return syscall(NR["write"], fd, data, len(data))


def read(fd: int, size: int) -> bytes:
    """read(2) through syscall(), once: at most `size` bytes from `fd`, NULs included.

    Exactly what the kernel filled in, which may be fewer than `size` (a short read at end of
    file, or a pipe with less waiting); b"" at end of file and for size 0.
    """
    buffer = ctypes.create_string_buffer(size)
    count = syscall(NR["read"], fd, buffer, size)
    # The kernel says how many bytes it filled in; the rest of the buffer is not data.
    return buffer.raw[:count]


def lseek(fd: int, offset: int, whence: int) -> int:
    """lseek(2) through syscall(): move `fd`'s offset; return the new offset (64 bits each way)."""
    return syscall(NR["lseek"], fd, offset, whence)


def uname() -> dict[str, str]:
    """uname(2) through syscall(): sysname, nodename, release, version, machine."""
    # The kernel fills a struct in our memory: we pass its address, it writes the fields.
    info = UtsName()
    syscall(NR["uname"], info)
    return {name: getattr(info, name).decode() for name in ("sysname", "nodename", "release", "version", "machine")}


def libc_write(fd: int, data: bytes) -> int:
    """libc's write() wrapper (not syscall()): the same system call, the usual C way."""
    return _check(libc.write(fd, data, len(data)))
