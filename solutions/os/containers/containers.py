"""A container from scratch: new UTS, PID, mount and network namespaces, a private /proc, a cgroup."""

from __future__ import annotations

import ctypes
import fcntl
import os
import socket
import struct
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
# From <linux/sockios.h> and <net/if.h>: the ioctl `ip link set lo up` uses.
SIOCSIFFLAGS = 0x8914
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
        # struct ifreq: a 16-byte interface name, then (here) a short of flags. A new
        # namespace's lo has no flag a caller may change set (IFF_LOOPBACK is the device's
        # own), so there is nothing to read first: IFF_UP alone is the whole new set.
        fcntl.ioctl(sock, SIOCSIFFLAGS, struct.pack("16sh", b"lo", IFF_UP))


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
    # The pipe's own fd is close-on-exec (PEP 446): after exec only fd 1 holds it.
    os.dup2(stdout_fd, 1)
    try:
        os.execvp(argv[0], list(argv))
    except OSError as exc:
        os.write(2, f"container: cannot run {argv[0]!r}: {exc.strerror}\n".encode())
        os._exit(COMMAND_NOT_FOUND)


def _shell_status(wait_status: int) -> int:
    """A waitpid status as a shell shows it: the exit code, or 128 + N for signal N."""
    code = os.waitstatus_to_exitcode(wait_status)
    return 128 - code if code < 0 else code


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
    if memory_limit is not None and cgroup is None:
        raise ValueError("a memory limit needs a cgroup directory")
    read_end, write_end = os.pipe()
    # Two forks: unshare(CLONE_NEWPID) does not move the caller (its pid can't change), it
    # makes the caller's NEXT child PID 1 of the new namespace. A middle process keeps the
    # caller itself out of every namespace, and it reports the container's status.
    middle = os.fork()
    if middle == 0:
        status = SETUP_FAILED  # unless PID 1 runs and ends
        try:
            unshare(CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWPID | CLONE_NEWNET)
            if memory_limit is not None:
                assert cgroup is not None  # checked above, before forking
                limit_memory(cgroup, memory_limit)
            init = os.fork()
            if init == 0:
                # PID 1: execs, or exits 127, or raises into the handler below (125)
                _container_init(argv, hostname, write_end)
            os.close(write_end)  # only the container's processes write to the pipe
            status = _shell_status(os.waitpid(init, 0)[1])
        except Exception as exc:
            os.write(2, f"container: {exc}\n".encode())
        finally:
            os._exit(status)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as output:
        stdout = output.read()  # to EOF: every process that could write has exited
    return ContainerResult(_shell_status(os.waitpid(middle, 0)[1]), stdout)
