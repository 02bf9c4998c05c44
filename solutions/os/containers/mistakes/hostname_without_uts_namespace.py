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
COMMAND_NOT_FOUND = 127

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
    enc = [s.encode() if s is not None else None for s in (source, target, fstype, data)]
    _check(
        libc.mount(enc[0], enc[1], enc[2], ctypes.c_ulong(flags), enc[3]), f"mount {target}"
    )


def bring_up_loopback() -> None:
    """Set the IFF_UP flag of `lo` in this network namespace, as `ip link set lo up` does."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        # struct ifreq: a 16-byte interface name, then (here) a short of flags.
        request = struct.pack("16sh", b"lo", 0)
        flags = struct.unpack("16sh", fcntl.ioctl(sock, SIOCGIFFLAGS, request)[:18])[1]
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


def _container_init(argv: Sequence[str], hostname: str, stdout_fd: int) -> None:
    """In PID 1 of the new namespaces: private mounts, a fresh /proc, hostname, lo; then exec."""
    # The new mount namespace starts as a copy whose mounts may still be *shared* with the
    # host's (systemd makes / shared): mounting /proc now would replace the host's /proc too.
    mount(None, "/", None, MS_REC | MS_PRIVATE)
    # A proc filesystem shows the pid namespace of whoever mounts it: ours, with us as 1.
    mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
    socket.sethostname(hostname)  # sethostname(2) changes the UTS namespace's name only
    bring_up_loopback()  # a new network namespace has lo, and it is down
    os.dup2(stdout_fd, 1)
    os.close(stdout_fd)
    os.execvp(argv[0], list(argv))


def run_container(
    argv: Sequence[str],
    hostname: str,
    memory_limit: int | None = None,
    cgroup: Path | None = None,
) -> ContainerResult:
    """Run `argv` in new UTS, PID, mount and network namespaces, and wait for it.

    Inside, the command is PID 1, `uname -n` says `hostname`, /proc shows only the
    container's processes, and the only network interface is `lo`, up. With `memory_limit`
    (bytes) the container runs in `cgroup`, a fresh cgroup directory, limited to that much.
    Needs root (CAP_SYS_ADMIN). Raises OSError if the namespaces cannot be made.

    >>> run_container(["sh", "-c", "echo $$; uname -n"], "box").stdout   # doctest: +SKIP
    b'1\\nbox\\n'
    """
    read_end, write_end = os.pipe()
    sys.stdout.flush()
    sys.stderr.flush()
    # Two forks: unshare(CLONE_NEWPID) does not move the caller (its pid can't change), it
    # makes the caller's NEXT child PID 1 of the new namespace. A middle process keeps the
    # caller itself out of every namespace, and it reports the container's status.
    middle = os.fork()
    if middle == 0:
        status = COMMAND_NOT_FOUND
        try:
            os.close(read_end)
            unshare(CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWNET)  # MISTAKE: no CLONE_NEWUTS
            if memory_limit is not None:
                if cgroup is None:
                    raise ValueError("a memory limit needs a cgroup directory")
                limit_memory(cgroup, memory_limit)
            init = os.fork()
            if init == 0:
                try:
                    _container_init(argv, hostname, write_end)
                except BaseException as exc:
                    os.write(2, f"container: {exc}\n".encode())
                finally:
                    os._exit(COMMAND_NOT_FOUND)
            os.close(write_end)
            code = os.waitstatus_to_exitcode(os.waitpid(init, 0)[1])
            status = 128 - code if code < 0 else code
        except BaseException as exc:
            os.write(2, f"container: {exc}\n".encode())
        finally:
            os._exit(status)
    os.close(write_end)
    chunks = []
    with os.fdopen(read_end, "rb") as output:
        while chunk := output.read(65536):
            chunks.append(chunk)
    code = os.waitstatus_to_exitcode(os.waitpid(middle, 0)[1])
    return ContainerResult(128 - code if code < 0 else code, b"".join(chunks))
