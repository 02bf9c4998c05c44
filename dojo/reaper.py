"""Nothing a test started outlives it: child processes are killed, stuck threads don't block exit."""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import sys
import threading
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # imported where used: most tests leave no process behind, and need no psutil
    import psutil

# Processes that fixtures start on purpose for longer than one test (servers): never reaped.
_protected: set[int] = set()
_exit_status = 0
PR_SET_CHILD_SUBREAPER = 36
PR_SET_PDEATHSIG = 1
# Set by `kata` for the pytest it starts: the pid whose death, even by SIGKILL, must stop that pytest.
PARENT_ENV = "KATA_PARENT_PID"


def protect(pid: int) -> None:
    """Keep `pid` (and its children) alive across tests: for servers started by fixtures."""
    _protected.add(pid)


def become_subreaper() -> None:
    """Adopt orphaned grandchildren (Linux), so a double-forked process can still be reaped."""
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)


def stop_with_parent() -> None:
    """If `kata` started this pytest, its death (even SIGKILL, which it can't pass on) reaches us
    as a Ctrl-C (Linux): the run's teardown stops servers and removes folders, nothing is orphaned."""
    parent = os.environ.pop(PARENT_ENV, None)  # popped: the tests' own children must not inherit it
    if parent is None or not sys.platform.startswith("linux"):
        return
    if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
        # started from a background job (`kata run &`, a CI runner), SIGINT came ignored and
        # Python set no KeyboardInterrupt handler: kata's own stop signal would be lost
        signal.signal(signal.SIGINT, signal.default_int_handler)
    if str(os.getppid()) == parent:
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGINT, 0, 0, 0)
        if str(os.getppid()) == parent:
            return
    elif alive(int(parent)):
        return  # forked by a helper of kata's (the warm server), which stops us itself
    os.kill(os.getpid(), signal.SIGINT)  # kata died before we could ask to hear of it


def alive(pid: int) -> bool:
    """Whether process `pid` exists (it may be another user's)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _direct_children() -> set[int] | None:
    """Pids of this process's children, read from /proc (Linux); None where that can't be read."""
    pids: set[int] = set()
    try:
        for tid in os.listdir("/proc/self/task"):  # a child belongs to the thread that forked it
            with open(f"/proc/self/task/{tid}/children", encoding="ascii") as listing:
                pids.update(map(int, listing.read().split()))
    except (OSError, ValueError):
        return None
    return pids


def children() -> set[int]:
    """Pids of every descendant of this process that no fixture protects."""
    direct = _direct_children()
    if direct is not None and direct <= _protected:
        return set()  # the common case, answered without walking every process on the machine
    import psutil

    try:
        procs = psutil.Process().children(recursive=True)
    except psutil.Error:
        return set()
    protected = set(_protected)
    for proc in procs:
        if proc.pid in _protected:
            with contextlib.suppress(psutil.Error):
                protected.update(c.pid for c in proc.children(recursive=True))
    return {p.pid for p in procs} - protected


def reap(pids: set[int], timeout: float = 2.0) -> list[str]:
    """Terminate, then kill, the given processes; describe each one that had to be stopped."""
    if not pids:
        return []
    import psutil

    procs: list[psutil.Process] = []
    for pid in pids:
        with contextlib.suppress(psutil.Error):
            procs.append(psutil.Process(pid))
    described = []
    for proc in procs:
        with contextlib.suppress(psutil.Error):
            described.append(f"pid {proc.pid} ({' '.join(proc.cmdline())[:80] or proc.name()})")
            proc.terminate()
    _, survivors = psutil.wait_procs(procs, timeout=timeout)
    for proc in survivors:
        with contextlib.suppress(psutil.Error):
            proc.kill()
    psutil.wait_procs(survivors, timeout=timeout)
    return described


def record_exit_status(status: int) -> None:
    global _exit_status
    _exit_status = status


def _abandon_stuck_threads() -> None:
    """Runs before the interpreter joins non-daemon threads; exits if some can never finish."""
    stuck = [
        t for t in threading.enumerate()
        if t is not threading.main_thread() and not t.daemon and t.is_alive()
    ]
    for thread in stuck:  # a thread that is merely finishing gets a moment
        thread.join(timeout=0.5)
    stuck = [t for t in stuck if t.is_alive()]
    if not stuck:
        return
    names = ", ".join(repr(t.name) for t in stuck[:5])
    sys.stderr.write(
        f"\nkata: {len(stuck)} thread(s) left running by the tests ({names}) would keep Python "
        "alive forever (a deadlock?); exiting without waiting for them.\n"
    )
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(_exit_status)


def guard_interpreter_exit() -> None:
    # threading's own at-exit hooks run before it joins non-daemon threads; atexit runs after.
    register = getattr(threading, "_register_atexit", None)
    if register is not None:
        register(_abandon_stuck_threads)


_HANG_UPS = (signal.SIGHUP, signal.SIGTERM)
_forks_reset = False


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"stopped by {signal.Signals(signum).name}")


def hang_up_as_ctrl_c() -> None:
    """A closed terminal (SIGHUP) or an IDE's stop button (SIGTERM) ends the run as Ctrl-C does:
    teardown runs, servers stop, folders go. By default either would kill pytest on the spot and
    leave them to the next session's sweep. Signals someone already handles are left alone."""
    if threading.current_thread() is not threading.main_thread():
        return
    for signum in _HANG_UPS:
        if signal.getsignal(signum) is signal.SIG_DFL:
            signal.signal(signum, _interrupt)
    global _forks_reset
    if not _forks_reset:  # once per process: register_at_fork hooks can't be removed
        _forks_reset = True
        os.register_at_fork(after_in_child=_default_hang_ups)


def _default_hang_ups() -> None:
    """A forked child (a multiprocessing worker, the learner's own fork) dies of SIGTERM as any
    process does: Process.terminate() must not become a KeyboardInterrupt inside it."""
    for signum in _HANG_UPS:
        with contextlib.suppress(ValueError, OSError):  # not the main thread of the child
            if signal.getsignal(signum) is _interrupt:
                signal.signal(signum, signal.SIG_DFL)
