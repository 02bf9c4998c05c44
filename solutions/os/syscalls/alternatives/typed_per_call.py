"""System calls from Python: a separately typed syscall() function object per system call."""

from __future__ import annotations

import ctypes
import os
import platform

SYSCALL_NUMBERS: dict[str, dict[str, int]] = {
    "x86_64": {"read": 0, "write": 1, "lseek": 8, "getpid": 39, "uname": 63, "getppid": 110},
    "aarch64": {"read": 63, "write": 64, "lseek": 62, "getpid": 172, "uname": 160, "getppid": 173},
}
NR = SYSCALL_NUMBERS[platform.machine()]

libc = ctypes.CDLL(None, use_errno=True)


class UtsName(ctypes.Structure):
    _fields_ = [
        ("sysname", ctypes.c_char * 65),
        ("nodename", ctypes.c_char * 65),
        ("release", ctypes.c_char * 65),
        ("version", ctypes.c_char * 65),
        ("machine", ctypes.c_char * 65),
        ("domainname", ctypes.c_char * 65),
    ]


def _typed(restype: type, *argtypes: type) -> ctypes._CFuncPtr:  # type: ignore[name-defined]
    """libc["syscall"] is a NEW function object each time: each can have its own argtypes."""
    function = libc["syscall"]
    function.restype = restype
    function.argtypes = [ctypes.c_long, *argtypes]
    return function


_generic = _typed(ctypes.c_long)  # only the number typed; arguments converted in syscall()
_sys_noargs = _typed(ctypes.c_long)
_sys_write = _typed(ctypes.c_ssize_t, ctypes.c_int, ctypes.c_char_p, ctypes.c_size_t)
_sys_read = _typed(ctypes.c_ssize_t, ctypes.c_int, ctypes.c_void_p, ctypes.c_size_t)
_sys_lseek = _typed(ctypes.c_long, ctypes.c_int, ctypes.c_long, ctypes.c_int)
_sys_uname = _typed(ctypes.c_int, ctypes.POINTER(UtsName))

_libc_write = libc.write
_libc_write.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_size_t]
_libc_write.restype = ctypes.c_ssize_t


def _ok(result: int) -> int:
    if result != -1:
        return result
    number = ctypes.get_errno()
    raise OSError(number, os.strerror(number))


def syscall(number: int, *args: int | bytes | ctypes.Array[ctypes.c_char] | ctypes.Structure) -> int:
    def register(arg: object) -> object:
        if isinstance(arg, bool) or not isinstance(arg, int):
            return ctypes.pointer(arg) if isinstance(arg, ctypes.Structure) else arg
        return ctypes.c_long(arg)

    return _ok(_generic(number, *map(register, args)))


def getpid() -> int:
    return _ok(_sys_noargs(NR["getpid"]))


def getppid() -> int:
    return _ok(_sys_noargs(NR["getppid"]))


def write(fd: int, data: bytes) -> int:
    return _ok(_sys_write(NR["write"], fd, data, len(data)))


def read(fd: int, size: int) -> bytes:
    buffer = bytearray(size)
    pointer = (ctypes.c_char * size).from_buffer(buffer) if size else None
    count = _ok(_sys_read(NR["read"], fd, ctypes.cast(pointer, ctypes.c_void_p) if size else None, size))
    return bytes(buffer[:count])


def lseek(fd: int, offset: int, whence: int) -> int:
    return _ok(_sys_lseek(NR["lseek"], fd, offset, whence))


def uname() -> dict[str, str]:
    info = UtsName()
    _ok(_sys_uname(NR["uname"], ctypes.byref(info)))
    return {name: getattr(info, name).split(b"\0", 1)[0].decode() for name, _ in UtsName._fields_[:5]}


def libc_write(fd: int, data: bytes) -> int:
    return _ok(_libc_write(fd, data, len(data)))
