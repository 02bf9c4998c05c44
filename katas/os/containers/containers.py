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
    # TODO: libc.unshare(flags); a non-zero result means failure: raise OSError(errno).
    raise NotImplementedError("unshare")


def mount(source: str | None, target: str, fstype: str | None, flags: int, data: str | None = None) -> None:
    """mount(2): attach a filesystem (or change a mount's propagation, with source None)."""
    # TODO: libc.mount(source, target, fstype, flags, data) with the strings encoded (None
    # stays None, a NULL pointer) and flags as ctypes.c_ulong; raise OSError on failure.
    raise NotImplementedError("mount")


def bring_up_loopback() -> None:
    """Set the IFF_UP flag of `lo` in this network namespace, as `ip link set lo up` does."""
    # TODO: on any AF_INET socket: fcntl.ioctl SIOCGIFFLAGS with struct.pack("16sh", b"lo", 0)
    # to read the flags, then SIOCSIFFLAGS with the IFF_UP bit added.
    raise NotImplementedError("bring_up_loopback")


def limit_memory(cgroup: Path, limit_bytes: int) -> None:
    """Set the memory limit of `cgroup` (a cgroup directory) and move this process into it.

    cgroup v2 calls the file memory.max, cgroup v1 memory.limit_in_bytes; both take bytes.
    """
    # TODO: write the limit into memory.max (v2) or memory.limit_in_bytes (v1), whichever
    # exists, then this process's pid into cgroup.procs.
    raise NotImplementedError("limit_memory")


def _container_init(argv: Sequence[str], hostname: str, stdout_fd: int) -> None:
    """In PID 1 of the new namespaces: private mounts, a fresh /proc, hostname, lo; then exec."""
    # TODO: make every mount private (mount(None, "/", None, MS_REC | MS_PRIVATE)) BEFORE
    # mounting anything, mount a new proc on /proc, set the hostname, bring lo up, put
    # stdout_fd on fd 1, exec.
    raise NotImplementedError("_container_init")


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
    Needs root (CAP_SYS_ADMIN). If the container cannot be made (namespaces, cgroup, mounts)
    the status is 125, if the command cannot be executed 127, with the reason on stderr.
    A memory limit without a cgroup raises ValueError.

    >>> run_container(["sh", "-c", "echo $$; uname -n"], "box").stdout   # doctest: +SKIP
    b'1\\nbox\\n'
    """
    # TODO: a pipe for the command's stdout. Fork a middle process that unshares the four
    # namespaces, joins the cgroup (if memory_limit), forks PID 1 (which runs _container_init)
    # and exits with its status as a shell shows it. Every forked child ends with os._exit or
    # exec, whatever happens (try/finally): an exception must never carry it back to the caller.
    # TODO: in the caller: close the write end, read the output to EOF, wait for the middle.
    raise NotImplementedError("run_container")
