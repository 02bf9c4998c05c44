"""System calls from Python: one CFUNCTYPE prototype of syscall() with seven longs, addresses as ints."""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import platform

SYSCALL_NUMBERS: dict[str, dict[str, int]] = {
    "x86_64": {"read": 0, "write": 1, "lseek": 8, "getpid": 39, "uname": 63, "getppid": 110},
    "aarch64": {"read": 63, "write": 64, "lseek": 62, "getpid": 172, "uname": 160, "getppid": 173},
}
NR = SYSCALL_NUMBERS[platform.machine()]

# The C library by name (libc.so.6), not the process's global namespace.
libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)

# syscall() takes a number and up to six register-sized arguments: declare exactly that, once.
# Unused arguments are zeros the kernel ignores. use_errno on the prototype saves errno too.
_Long = ctypes.c_long
_syscall7 = ctypes.CFUNCTYPE(_Long, _Long, _Long, _Long, _Long, _Long, _Long, _Long, use_errno=True)(("syscall", libc))
_write = ctypes.CFUNCTYPE(ctypes.c_ssize_t, ctypes.c_int, ctypes.c_void_p, ctypes.c_size_t, use_errno=True)(
    ("write", libc)
)


class UtsName(ctypes.Structure):
    _fields_ = [
        (field, ctypes.c_char * 65) for field in ("sysname", "nodename", "release", "version", "machine", "domainname")
    ]


def _address(arg: object) -> int:
    """What goes in a register: an int as is, memory by its address."""
    if isinstance(arg, int):
        return arg
    if isinstance(arg, bytes):
        return ctypes.cast(ctypes.c_char_p(arg), ctypes.c_void_p).value or 0
    return ctypes.addressof(arg)  # type: ignore[arg-type]


def _raise_on_error(result: int) -> int:
    if result < 0:  # libc's syscall() and write() return -1 and set errno
        code = ctypes.get_errno()
        raise OSError(code, os.strerror(code))
    return result


def syscall(number: int, *args: int | bytes | ctypes.Array[ctypes.c_char] | ctypes.Structure) -> int:
    if len(args) > 6:
        raise TypeError("a system call takes at most six arguments")
    registers = [_address(arg) for arg in args] + [0] * (6 - len(args))
    return _raise_on_error(_syscall7(number, *registers))


def getpid() -> int:
    return syscall(NR["getpid"])


def getppid() -> int:
    return syscall(NR["getppid"])


def write(fd: int, data: bytes) -> int:
    return syscall(NR["write"], fd, data, len(data))


def read(fd: int, size: int) -> bytes:
    memory = (ctypes.c_char * max(size, 1))()
    filled = syscall(NR["read"], fd, memory, size)
    return ctypes.string_at(memory, filled)


def lseek(fd: int, offset: int, whence: int) -> int:
    return syscall(NR["lseek"], fd, offset, whence)


def uname() -> dict[str, str]:
    info = UtsName()
    syscall(NR["uname"], info)
    return {field: getattr(info, field).decode() for field in ("sysname", "nodename", "release", "version", "machine")}


def libc_write(fd: int, data: bytes) -> int:
    return _raise_on_error(_write(fd, data, len(data)))
