"""Tests for run_container: hostname, PID 1, a private /proc, only loopback, a memory cgroup."""

from __future__ import annotations

import base64
import contextlib
import ctypes
import errno
import json
import os
import select
import signal
import sys
import tempfile
import time
import traceback
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
import pytest

from .containers import ContainerResult, run_container

PATIENCE = 10.0  # seconds one container run may take (each takes well under one)
HOSTNAME = "kata-box"
MiB = 1 << 20

# The sandbox each test runs your code in (see _sandboxed): new mount and UTS namespaces of its
# own, so that a mistake can never change this machine's hostname or /proc.
_CLONE_NEWNS, _CLONE_NEWUTS, _CLONE_NEWPID, _CLONE_NEWNET = 0x20000, 0x4000000, 0x20000000, 0x40000000
_MS_REC, _MS_PRIVATE, _MS_SHARED = 0x4000, 1 << 18, 1 << 20
_libc = ctypes.CDLL(None, use_errno=True)


def _sys(result: int, what: str) -> None:
    if result != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def _enter_sandbox() -> None:
    _sys(_libc.unshare(_CLONE_NEWNS | _CLONE_NEWUTS), "unshare")
    # Private from the machine, then shared again among our own copies: a mount made by a
    # container that forgot to make its mounts private shows up here, where we can see it.
    _sys(_libc.mount(None, b"/", None, ctypes.c_ulong(_MS_REC | _MS_PRIVATE), None), "private /")
    _sys(_libc.mount(None, b"/", None, ctypes.c_ulong(_MS_REC | _MS_SHARED), None), "shared /")


@pytest.fixture(autouse=True)
def _needs_namespaces() -> None:
    if os.geteuid() != 0:
        pytest.skip("containers needs root (namespaces and cgroups need CAP_SYS_ADMIN): run "
                    "`sudo pytest katas/os/containers`, or use CI, which runs as root")
    pid = os.fork()
    if pid == 0:
        try:
            _libc.unshare(_CLONE_NEWNS | _CLONE_NEWUTS | _CLONE_NEWPID | _CLONE_NEWNET)
            os._exit(0 if ctypes.get_errno() == 0 else 1)
        finally:
            os._exit(1)
    if os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) != 0:
        pytest.skip("root, but this machine does not allow new namespaces (an unprivileged "
                    "container? try `docker run --privileged`): containers cannot run here")


@dataclass
class Run:
    """What happened in the sandbox: your result (or error), and what the caller's side saw."""

    result: ContainerResult | None
    error: str
    hostname_after: str  # the caller's hostname after the run
    proc_is_callers: bool  # whether the caller's /proc still shows the caller
    stderr: str  # what the run wrote to the caller's standard error

    def check(self) -> ContainerResult:
        if self.error:
            raise AssertionError(f"run_container raised:\n{self.error}")
        assert self.hostname_after == os.uname().nodename, (
            f"after the run, the CALLER's hostname is {self.hostname_after!r}: sethostname "
            "changed the namespace run_container was called from (on a real machine, the "
            "host's). Only a process in a new UTS namespace (CLONE_NEWUTS) may set it."
        )
        assert self.proc_is_callers, (
            "after the run, the caller's /proc no longer shows the caller: the container's "
            "/proc mount propagated out of its mount namespace. A new mount namespace is a copy "
            "whose mounts may still be shared with the host's: first make them private, "
            "mount(None, '/', None, MS_REC | MS_PRIVATE), then mount proc."
        )
        assert isinstance(self.result, ContainerResult), f"run_container returned {self.result!r}"
        return self.result


def _sandboxed(call: Callable[[], ContainerResult], setup: Callable[[], None] = lambda: None) -> Run:
    """Run `call` in a forked child with its own mount and UTS namespaces; report back as JSON.

    `setup` runs in the sandbox just before `call` (to drop privileges, say). The child's
    standard error goes to a file, reported as Run.stderr.
    """
    read_end, write_end = os.pipe()
    escapes = tempfile.TemporaryFile()  # noqa: SIM115 (closed below; children inherit it)
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:
        sandbox = os.getpid()
        try:
            os.close(read_end)
            report: dict[str, object] = {"error": ""}
            errors = tempfile.TemporaryFile()  # noqa: SIM115 (this child ends in os._exit)
            try:
                _enter_sandbox()
                os.dup2(errors.fileno(), 2)
                sys.stderr = open(2, "w", closefd=False)  # noqa: SIM115 (pytest had replaced it)
                setup()
                got = call()
                if isinstance(got, ContainerResult):
                    report["status"] = got.status
                    report["stdout"] = base64.b64encode(got.stdout).decode()
                else:
                    report["error"] = f"run_container returned {got!r}, not a ContainerResult"
            except BaseException:
                report["error"] = traceback.format_exc(limit=-4)
            if os.getpid() != sandbox:  # a child forked by run_container came back out of it
                escaped = f"{report['error'] or 'it returned normally'}".splitlines()[-1]
                os.write(escapes.fileno(), f"{os.getpid()}: {escaped}\n".encode())
                os._exit(0)
            sys.stderr.flush()
            errors.seek(0)
            report["stderr"] = errors.read().decode(errors="replace")
            report["hostname"] = os.uname().nodename
            try:
                report["proc_ok"] = os.readlink("/proc/self") == str(os.getpid())
            except OSError:
                report["proc_ok"] = False
            os.write(write_end, json.dumps(report).encode())
        finally:
            os._exit(0)
    os.close(write_end)
    data = b""
    deadline = time.monotonic() + PATIENCE
    try:
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not select.select([read_end], [], [], remaining)[0]:
                raise AssertionError(
                    f"run_container did not return within {PATIENCE:g} s. Is it waiting for a "
                    "process that never ends, reading a pipe whose write end it still holds, or "
                    "waiting for a command that is blocked writing to a full pipe nobody reads?"
                )
            chunk = os.read(read_end, 65536)
            if not chunk:
                break
            data += chunk
    finally:
        os.close(read_end)
        with contextlib.suppress(psutil.Error):
            for proc in psutil.Process(pid).children(recursive=True):
                with contextlib.suppress(psutil.Error):
                    proc.kill()
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        escapes.seek(0)
        escaped = escapes.read().decode(errors="replace")
        escapes.close()
    assert not escaped, (
        "a process forked by run_container returned from it into the CALLER's code (as pid "
        f"{escaped.strip()}); it would go on running the caller's program a second time. Every "
        "forked child must end in os._exit or exec, whatever happens: try/finally: os._exit(...)"
    )
    sent: dict[str, Any] = json.loads(data)
    result: ContainerResult | None = None
    if "status" in sent:
        result = ContainerResult(sent["status"], base64.b64decode(sent["stdout"]))
    return Run(result, sent["error"], sent["hostname"], sent["proc_ok"], sent["stderr"])


def contained(argv: list[str], hostname: str = HOSTNAME, **kwargs: object) -> Run:
    return _sandboxed(lambda: run_container(argv, hostname, **kwargs))  # type: ignore[arg-type]


def contain(argv: list[str], **kwargs: object) -> ContainerResult:
    return contained(argv, **kwargs).check()


# --- namespaces --------------------------------------------------------------------------------


@pytest.mark.stage(1, "running the command")
def test_the_container_has_its_own_hostname() -> None:
    out = contain(["uname", "-n"])
    assert out == ContainerResult(0, f"{HOSTNAME}\n".encode()), (
        f"`uname -n` in the container gave {out}; expected {HOSTNAME!r} and status 0. In the new "
        "UTS namespace, set the name with socket.sethostname (sethostname(2)) before exec."
    )


@pytest.mark.stage(2, "a view of its own")
def test_the_command_is_pid_1() -> None:
    out = contain(["sh", "-c", "echo $$"])
    assert out.stdout == b"1\n", (
        f"`echo $$` in the container printed {out.stdout!r}; expected 1. unshare(CLONE_NEWPID) "
        "does not move the caller: its NEXT child is PID 1 of the new namespace. Fork after "
        "unshare, and exec the command in that child."
    )


@pytest.mark.stage(2, "a view of its own")
def test_proc_shows_only_the_containers_processes() -> None:
    out = contain(["ls", "/proc"])
    pids = sorted(int(name) for name in out.stdout.split() if name.isdigit())
    assert out.status == 0 and pids == [1], (
        f"`ls /proc` in the container lists processes {pids[:20]}{'...' if len(pids) > 20 else ''}; "
        "expected only [1] (ls itself). A proc filesystem shows the pid namespace of whoever "
        "mounted it: mount a new one on /proc from inside (mount('proc', '/proc', 'proc', ...)), "
        "in the container's own mount namespace (CLONE_NEWNS)."
    )


def _mountinfo(text: str) -> list[tuple[str, list[str], list[str], str]]:
    """(mount point, mount options, propagation tags, filesystem type) per /proc/self/mountinfo line."""
    mounts = []
    for line in text.splitlines():
        mine, _, theirs = line.partition(" - ")  # man 5 proc: optional fields end at " - "
        fields = mine.split()
        mounts.append((fields[4], fields[5].split(","), fields[6:], theirs.split()[0]))
    return mounts


@pytest.mark.stage(2, "a view of its own")
def test_proc_is_a_new_proc_mounted_rw_nosuid_nodev_noexec() -> None:
    out = contain(["cat", "/proc/self/mountinfo"])
    procs = [(options, fstype) for point, options, _, fstype in _mountinfo(out.stdout.decode())
             if point == "/proc"]
    assert procs and procs[-1][1] == "proc", f"no proc filesystem mounted on /proc inside: {procs}"
    options = procs[-1][0]
    assert {"rw", "nosuid", "nodev", "noexec"} <= set(options), (
        f"the container's /proc is mounted {','.join(options)}; expected rw,nosuid,nodev,noexec "
        "as runc mounts it: flags MS_NOSUID | MS_NODEV | MS_NOEXEC (2 | 4 | 8), and not MS_RDONLY (1)"
    )


@pytest.mark.stage(2, "a view of its own")
def test_every_mount_inside_is_private() -> None:
    out = contain(["cat", "/proc/self/mountinfo"])
    tagged = [(point, tags) for point, _, tags, _ in _mountinfo(out.stdout.decode()) if tags]
    assert not tagged, (
        f"mounts inside the container with propagation tags: {tagged[:5]}. `shared:N` mounts "
        "propagate out to the host, a `master:N` (slave) one still receives every mount the host "
        "makes later, `unbindable` is more than asked for: make them all private, "
        "mount(None, '/', None, MS_REC | MS_PRIVATE), as `mount --make-rprivate /` does"
    )


LOOPBACK_PROBE = (
    "import socket\n"
    "with socket.create_server(('127.0.0.1', 0)) as server:\n"
    "    with socket.create_connection(server.getsockname(), timeout=2) as client:\n"
    "        conn, _ = server.accept(); client.sendall(b'ping'); print(conn.recv(4).decode())\n"
)


@pytest.mark.stage(2, "a view of its own")
def test_the_only_network_interface_is_loopback_and_it_is_up() -> None:
    out = contain(["cat", "/proc/net/dev"])
    names = [line.split(":")[0].strip() for line in out.stdout.decode().splitlines()[2:]]
    assert names == ["lo"], (
        f"network interfaces in the container: {names}; expected only ['lo']. A new network "
        "namespace (CLONE_NEWNET) starts with nothing but its own loopback."
    )
    talk = contain([sys.executable, "-c", LOOPBACK_PROBE])
    assert talk.status == 0 and talk.stdout.startswith(b"ping"), (
        f"a TCP connection to 127.0.0.1 inside the container gave {talk}. A new namespace's lo "
        "is DOWN: set IFF_UP on it like `ip link set lo up` (ioctl SIOCGIFFLAGS, then "
        "SIOCSIFFLAGS with struct.pack('16sh', b'lo', flags | IFF_UP))."
    )
    assert talk.stdout == b"ping\n", (
        f"the probe printed 'ping\\n', and stdout is {talk.stdout!r}: read the pipe to its end (EOF)"
    )


@pytest.mark.stage(1, "running the command")
def test_the_status_is_the_commands() -> None:
    out = contain(["sh", "-c", "echo before; exit 3"])
    assert (out.status, out.stdout) == (3, b"before\n"), (
        f"`sh -c 'echo before; exit 3'` in the container: status {out.status}, stdout "
        f"{out.stdout!r}; expected 3 and b'before\\n' (the middle process exits with PID 1's "
        "status, 128 + N if signal N killed it, as docker reports it)"
    )


@pytest.mark.stage(2, "a view of its own")
def test_pid_1_survives_a_sigterm_it_has_no_handler_for() -> None:
    """Why containers need an init: the kernel applies no default action to PID 1's signals."""
    out = contain(["sh", "-c", "kill -TERM $$; echo survived"])
    assert (out.status, out.stdout) == (0, b"survived\n"), (
        f"`sh -c 'kill -TERM $$; echo survived'` in the container: status {out.status}, stdout "
        f"{out.stdout!r}. As PID 1 of its namespace, sh must survive a SIGTERM it has no handler "
        "for (that is why `docker stop` waits 10 s for some apps): is the command really PID 1 "
        "of a new pid namespace?"
    )


@pytest.mark.stage(1, "running the command")
def test_a_signal_status_is_128_plus_the_signal() -> None:
    out = contain([sys.executable, "-c", "import ctypes; ctypes.string_at(0)"])
    assert out.status == 128 + signal.SIGSEGV, (
        f"PID 1 died of SIGSEGV (it read address 0): status {out.status}, expected "
        f"{128 + signal.SIGSEGV} (128 + N, as a shell and docker show a signal N): "
        "os.waitstatus_to_exitcode gives -N for it"
    )


@pytest.mark.stage(1, "running the command")
def test_all_of_a_big_output_arrives() -> None:
    size = 1 << 20  # far more than a pipe holds (64 KiB): read while the container runs
    out = contain(["head", "-c", str(size), "/dev/zero"])
    assert out == ContainerResult(0, bytes(size)), (
        f"a command that writes {size} bytes: status {out.status}, {len(out.stdout)} bytes "
        "received. Read the pipe to its end BEFORE waiting for the process: a writer blocks "
        "once the pipe is full."
    )


@pytest.mark.stage(3, "refusals and failures")
def test_a_command_that_cannot_be_run_gives_127_and_says_why() -> None:
    run = contained(["kata-no-such-command"])
    out = run.check()
    assert (out.status, out.stdout) == (127, b""), (
        f"a command that does not exist: status {out.status}, stdout {out.stdout!r}; expected "
        "127 and nothing on stdout (as `docker run` and a shell give it)"
    )
    assert run.stderr.strip(), "the reason the command could not run must be written to stderr"


@pytest.mark.stage(3, "refusals and failures")
def test_a_hostname_the_kernel_refuses_gives_125() -> None:
    """sethostname(2) takes at most 64 bytes (HOST_NAME_MAX): a container that cannot be made."""
    fits = contained(["uname", "-n"], hostname="h" * 64).check()
    assert fits == ContainerResult(0, b"h" * 64 + b"\n"), f"a 64-byte hostname: {fits}"
    run = contained(["echo", "ran"], hostname="h" * 65)
    out = run.check()
    assert (out.status, out.stdout) == (125, b""), (
        f"a 65-byte hostname (sethostname fails with EINVAL): status {out.status}, stdout "
        f"{out.stdout!r}; expected 125 (the container could not be made, as docker says it) "
        "and the command never run"
    )
    assert run.stderr.strip(), "the reason the container could not be made must be written to stderr"


def _become_nobody() -> None:
    os.setgroups([])
    os.setgid(65534)
    os.setuid(65534)


@pytest.mark.stage(3, "refusals and failures")
def test_without_privileges_the_status_is_125_and_stderr_says_why() -> None:
    run = _sandboxed(lambda: run_container(["echo", "ran"], HOSTNAME), setup=_become_nobody)
    out = run.check()
    assert (out.status, out.stdout) == (125, b""), (
        f"run by an unprivileged user (unshare fails with EPERM): status {out.status}, stdout "
        f"{out.stdout!r}; expected 125 and the command never run"
    )
    assert os.strerror(errno.EPERM) in run.stderr, (
        f"stderr was {run.stderr!r}: it should give the system call's error, "
        f"{os.strerror(errno.EPERM)!r}. ctypes keeps errno only with CDLL(..., use_errno=True); "
        "then raise OSError(ctypes.get_errno(), ...)"
    )


# seccomp (man 2 seccomp): a filter that makes mount(2) fail with EPERM, as Docker's default
# profile does. Per architecture: (AUDIT_ARCH_*, __NR_mount).
_MOUNT_SYSCALL = {"x86_64": (0xC000003E, 165), "aarch64": (0xC00000B7, 40)}
_PR_SET_SECCOMP, _SECCOMP_MODE_FILTER = 22, 2
_SECCOMP_RET_ALLOW, _SECCOMP_RET_ERRNO = 0x7FFF0000, 0x00050000


class _SockFilter(ctypes.Structure):
    _fields_ = [("code", ctypes.c_ushort), ("jt", ctypes.c_ubyte), ("jf", ctypes.c_ubyte),
                ("k", ctypes.c_uint)]


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.POINTER(_SockFilter))]


def _refuse_mount() -> None:
    arch, nr_mount = _MOUNT_SYSCALL[os.uname().machine]
    ld_abs, jeq_k, ret_k = 0x20, 0x15, 0x06  # BPF_LD|BPF_W|BPF_ABS, BPF_JMP|BPF_JEQ|BPF_K, BPF_RET
    program = [
        (ld_abs, 0, 0, 4),  # seccomp_data.arch
        (jeq_k, 0, 3, arch),  # another ABI: allow
        (ld_abs, 0, 0, 0),  # seccomp_data.nr
        (jeq_k, 0, 1, nr_mount),
        (ret_k, 0, 0, _SECCOMP_RET_ERRNO | errno.EPERM),
        (ret_k, 0, 0, _SECCOMP_RET_ALLOW),
    ]
    filters = (_SockFilter * len(program))(*(_SockFilter(*insn) for insn in program))
    fprog = _SockFprog(len(program), filters)
    _sys(_libc.prctl(_PR_SET_SECCOMP, _SECCOMP_MODE_FILTER, ctypes.byref(fprog), 0, 0), "seccomp")


@pytest.mark.stage(3, "refusals and failures")
def test_a_mount_the_kernel_refuses_gives_125() -> None:
    if os.uname().machine not in _MOUNT_SYSCALL:
        pytest.skip(f"no seccomp filter for {os.uname().machine} in this test")
    run = _sandboxed(lambda: run_container(["echo", "ran"], HOSTNAME), setup=_refuse_mount)
    out = run.check()
    assert (out.status, out.stdout) == (125, b""), (
        f"with mount(2) refused (EPERM, by a seccomp filter like Docker's default profile): status "
        f"{out.status}, stdout {out.stdout!r}; expected 125 and the command never run. Check "
        "mount's result: a non-zero return is a failure, with the reason in errno."
    )
    assert os.strerror(errno.EPERM) in run.stderr, (
        f"stderr was {run.stderr!r}: it should give mount's error, {os.strerror(errno.EPERM)!r}"
    )


@pytest.mark.stage(3, "refusals and failures")
def test_a_memory_limit_without_a_cgroup_is_refused() -> None:
    run = contained(["true"], memory_limit=64 * MiB)
    assert "ValueError" in run.error, (
        f"run_container(..., memory_limit=..., cgroup=None) must raise ValueError before "
        f"starting anything; it gave {run.result}{run.error}"
    )


# --- the cgroup --------------------------------------------------------------------------------


def _memory_cgroup_parent() -> Path | None:
    """A writable cgroup directory where a child can have a memory limit, or None."""
    for line in Path("/proc/self/cgroup").read_text().splitlines():
        hierarchy, controllers, path = line.split(":", 2)
        if "memory" in controllers.split(","):  # cgroup v1: the memory hierarchy
            root = Path("/sys/fs/cgroup/memory")
        elif hierarchy == "0" and not controllers:  # cgroup v2: one unified tree
            root = Path("/sys/fs/cgroup")
        else:
            continue
        for base in (root / path.lstrip("/"), root):
            if base.is_dir() and os.access(base, os.W_OK):
                return base
    return None


@pytest.fixture
def cgroup() -> Iterator[Path]:
    parent = _memory_cgroup_parent()
    if parent is None:
        pytest.skip("no writable memory cgroup on this machine: the cgroup part cannot run")
    path = parent / f"kata-{uuid.uuid4().hex[:12]}"
    try:
        path.mkdir()
    except OSError as exc:
        pytest.skip(f"cannot create a cgroup under {parent} ({exc}): the cgroup part cannot run")
    try:
        if not ((path / "memory.max").exists() or (path / "memory.limit_in_bytes").exists()):
            pytest.skip(f"the memory controller is not enabled for {parent}: no memory limit here")
        yield path
    finally:
        deadline = time.monotonic() + 3
        while path.exists():
            try:
                path.rmdir()
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)


def _oom_kills(cgroup: Path) -> int:
    for name in ("memory.events", "memory.oom_control"):
        with contextlib.suppress(OSError):
            for line in (cgroup / name).read_text().splitlines():
                key, _, value = line.partition(" ")
                if key == "oom_kill":
                    return int(value)
    return -1


@pytest.mark.stage(4, "the memory cgroup")
def test_a_memory_limit_kills_a_command_that_needs_more(cgroup: Path) -> None:
    limit = 64 * MiB
    small = contain(
        ["sh", "-c", f"cat /proc/self/cgroup; exec {sys.executable} -c \"b'x' * {16 * MiB}\""],
        memory_limit=limit, cgroup=cgroup,
    )
    limit_file = cgroup / ("memory.max" if (cgroup / "memory.max").exists() else "memory.limit_in_bytes")
    written = limit_file.read_text().strip()
    assert written == str(limit), (
        f"{limit_file.name} holds {written!r}; expected {limit} (bytes). cgroup v2 calls the file "
        "memory.max, v1 memory.limit_in_bytes: use whichever the directory has."
    )
    assert small.status == 0, (
        f"a command that needs 16 MiB under a 64 MiB limit ended with status {small.status} "
        f"(output {small.stdout!r}): is the limit in bytes?"
    )
    assert cgroup.name in small.stdout.decode(), (
        f"the command's /proc/self/cgroup does not name {cgroup.name}:\n{small.stdout.decode()}"
        "Write the pid into the cgroup's cgroup.procs BEFORE forking the command: children "
        "start in their parent's cgroup."
    )
    big = contain([sys.executable, "-c", f"b'x' * {256 * MiB}; print('survived')"],
                  memory_limit=limit, cgroup=cgroup)
    assert big.status == 128 + signal.SIGKILL and b"survived" not in big.stdout, (
        f"a command that allocates 256 MiB under a 64 MiB limit ended with status {big.status} "
        f"and output {big.stdout!r}; expected it killed by the OOM killer (SIGKILL, 137). "
        f"oom_kill count of the cgroup: {_oom_kills(cgroup)}."
    )


@pytest.mark.stage(4, "the memory cgroup")
def test_a_cgroup_that_does_not_exist_gives_125(cgroup: Path) -> None:
    run = contained(["echo", "ran"], memory_limit=64 * MiB, cgroup=cgroup / "missing")
    out = run.check()
    assert (out.status, out.stdout) == (125, b""), (
        f"with a cgroup directory that does not exist: status {out.status}, stdout {out.stdout!r}; "
        "expected 125 (the container could not be made) and the command never run"
    )
    assert run.stderr.strip(), "the reason the container could not be made must be written to stderr"
