"""A container from scratch: new UTS, PID, mount and network namespaces, a private /proc, a cgroup."""

from __future__ import annotations

import ctypes
import fcntl
import os
import socket
import struct
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

# From <sched.h> and <sys/mount.h> (man 2 unshare, man 2 mount).
CLONE_NEWNS = 0x00020000  # mount namespace
CLONE_NEWUTS = 0x04000000  # hostname
CLONE_NEWPID = 0x20000000  # process ids (applies to the caller's next child)
CLONE_NEWNET = 0x40000000  # network devices, addresses, ports
MS_NOSUID, MS_NODEV, MS_NOEXEC = 2, 4, 8
MS_REC = 0x4000
MS_PRIVATE = 1 << 18
# From <linux/sockios.h> and <net/if.h>: the ioctls `ip link set lo up` uses.
SIOCGIFFLAGS, SIOCSIFFLAGS = 0x8913, 0x8914
IFF_UP = 0x1
# Statuses as `docker run` gives them when there is no command status to give.
SETUP_FAILED = 125  # the container could not be made (namespaces, cgroup, mounts)
COMMAND_NOT_FOUND = 127  # the command could not be executed

libc = ctypes.CDLL(None, use_errno=True)


@dataclass(frozen=True)
class ContainerResult:
    """What the containerised command did."""

    status: int  # as a shell shows it: the exit code, or 128 + N if signal N killed it
    stdout: bytes  # everything it wrote to its standard output


def _check(result: int, what: str) -> None:
    if result != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def unshare(flags: int) -> None:
    """unshare(2): move this process into new namespaces of the kinds in `flags`."""
    _check(libc.unshare(ctypes.c_int(flags)), "unshare")


def mount(source: str | None, target: str, fstype: str | None, flags: int, data: str | None = None) -> None:
    """mount(2): attach a filesystem (or change a mount's propagation, with source None)."""
    def c_str(text: str | None) -> bytes | None:
        return None if text is None else text.encode()  # None is passed as a NULL pointer

    result = libc.mount(c_str(source), c_str(target), c_str(fstype), ctypes.c_ulong(flags), c_str(data))
    _check(result, f"mount {target}")


def bring_up_loopback() -> None:
    """Set the IFF_UP flag of `lo` in this network namespace, as `ip link set lo up` does."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        # read-modify-write the flags, as `ip link set lo up` does
        request = struct.pack("16sh", b"lo", 0)
        _, flags = struct.unpack("16sh", fcntl.ioctl(sock, SIOCGIFFLAGS, request))
        fcntl.ioctl(sock, SIOCSIFFLAGS, struct.pack("16sh", b"lo", flags | IFF_UP))


def limit_memory(cgroup: Path, limit_bytes: int) -> None:
    """Set the memory limit of `cgroup` (a cgroup directory) and move this process into it.

    cgroup v2 calls the file memory.max, cgroup v1 memory.limit_in_bytes; both take bytes.
    """
    # The limit first, then join: the process never runs a moment without it.
    limit_file = cgroup / "memory.max"
    if not limit_file.exists():
        limit_file = cgroup / "memory.limit_in_bytes"
    limit_file.write_text(str(limit_bytes))
    # Children inherit their parent's cgroup at fork: join before starting the command.
    (cgroup / "cgroup.procs").write_text(str(os.getpid()))


def _report(pipe: int, status: int, exc: BaseException) -> None:
    """Tell the caller why there is no command status: `status` and the reason, one line."""
    os.write(pipe, f"{status} {exc}".encode())
    os._exit(0)  # the caller takes the status from the report, not from us


def _container_init(argv: Sequence[str], hostname: str, stdout_fd: int, errors: int) -> None:
    try:
        mount(None, "/", None, MS_REC | MS_PRIVATE)
        mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
        name = hostname.encode()
        _check(libc.sethostname(name, ctypes.c_size_t(len(name))), "sethostname")
        bring_up_loopback()
        os.dup2(stdout_fd, 1)
    except OSError as exc:
        _report(errors, SETUP_FAILED, exc)
    try:
        os.execvp(argv[0], list(argv))  # on success `errors` closes (close-on-exec): EOF
    except OSError as exc:
        _report(errors, COMMAND_NOT_FOUND, exc)


def run_container(
    argv: Sequence[str],
    hostname: str,
    memory_limit: int | None = None,
    cgroup: Path | None = None,
) -> ContainerResult:
    """Like the solution, but a failure's status and reason travel to the caller on a pipe."""
    if memory_limit is not None and cgroup is None:
        raise ValueError("a memory limit needs a cgroup directory")
    out_read, out_write = os.pipe()
    err_read, err_write = os.pipe()
    middle = os.fork()
    if middle == 0:
        try:
            try:
                unshare(CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWPID | CLONE_NEWNET)
                if memory_limit is not None and cgroup is not None:
                    limit_memory(cgroup, memory_limit)
                init = os.fork()
            except OSError as exc:
                _report(err_write, SETUP_FAILED, exc)
            if init == 0:
                _container_init(argv, hostname, out_write, err_write)
            os.close(out_write)
            os.close(err_write)
            code = os.waitstatus_to_exitcode(os.waitpid(init, 0)[1])
            os._exit(128 - code if code < 0 else code)
        finally:
            os._exit(SETUP_FAILED)
    os.close(out_write)
    os.close(err_write)
    with os.fdopen(out_read, "rb") as out:
        stdout = out.read()
    with os.fdopen(err_read, "rb") as err:
        report = err.read().decode()
    code = os.waitstatus_to_exitcode(os.waitpid(middle, 0)[1])
    if report:
        status, _, reason = report.partition(" ")
        print(f"container: {reason}", file=sys.stderr, flush=True)
        return ContainerResult(int(status), stdout)
    return ContainerResult(128 - code if code < 0 else code, stdout)
