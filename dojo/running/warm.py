"""A warm pytest server: plugins and heavy imports loaded once, a fresh forked child for every run.

`python -m dojo.running.warm ROOT SOCKET [WARM_PATH...]` imports pytest, runs one collection of WARM_PATH
(the current kata's topic) with the learner's modules blocked, so every plugin, conftest and
third-party module the tests import is loaded the way pytest loads it (assertion-rewritten where
pytest wants that, so children see no "already imported" warnings and rewrite nothing again).
Then it forgets every module of katas/ and solutions/ and serves runs on a Unix socket: a client
sends pytest's arguments, environment, folder and its own stdout/stderr (SCM_RIGHTS), and each
end first checks that the other runs as the same user (SO_PEERCRED; see warm_socket); a child is
forked, imports the learner's code fresh, runs pytest straight onto the client's terminal and
exits. The server is single-threaded (fork and threads do not mix) and outlives any child: a
crash, `os._exit`, hang (killed at the client's timeout) or a client that goes away only ends that
child and its process group. Where fork is unsuitable (`can_fork()` is False) nobody starts one.
To see where a warm run's time goes, set KATA_WARM_PROFILE=FILE: the child dumps cProfile stats.
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import importlib
import json
import os
import select
import signal
import socket
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from .warm_socket import MAX_SOCKET_PATH as MAX_SOCKET_PATH
from .warm_socket import SOCKET_NAME as SOCKET_NAME
from .warm_socket import peer_uid, same_user
from .warm_socket import socket_path as socket_path

MAX_REQUEST = 1 << 20
READY = "ready"
PR_SET_CHILD_SUBREAPER = 36
PARENT_CHECK = 1.0  # seconds between checks that whoever started the server is still there
CANCEL_CHECK = 0.05  # seconds between a client's checks that its run was cancelled


def can_fork() -> bool:
    """Fork (and fd passing) is dependable on Linux and macOS only; elsewhere runs stay cold."""
    return hasattr(os, "fork") and hasattr(socket, "send_fds") and sys.platform in ("linux", "darwin")


# --- the client ---------------------------------------------------------------------------


class RunCancelled(Exception):
    """The caller stopped a run before it ended (a newer save, a key): its pytest was killed."""


def run(sock_path: Path, args: list[str], *, cwd: Path, env: dict[str, str],
        timeout: float | None, stdout: int = 1, stderr: int = 2,
        cancelled: threading.Event | None = None) -> int | None:
    """pytest's exit code for `args`, run by the warm server; -1 if it overran `timeout`, None if
    no server answers (run cold then). Output goes straight to the fds `stdout` and `stderr`.
    Setting `cancelled` stops the run (the server kills it) and raises RunCancelled."""
    client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        try:
            client.connect(os.fspath(sock_path))
        except OSError:
            return None
        if not same_user(client):  # never hand our environment and terminal to another user
            os.write(stderr, f"kata: not using the warm server at {sock_path}: it runs as uid "
                             f"{peer_uid(client)}, not as you (uid {os.geteuid()}); running cold\n"
                     .encode())
            return None
        request = {"args": args, "cwd": os.fspath(cwd), "env": env, "timeout": timeout}
        socket.send_fds(client, [json.dumps(request).encode() + b"\n"], [stdout, stderr])
        # Ctrl-C or a cancel here closes the socket: the server kills the child
        reply = _read_line(client, cancelled)
        if reply is None:
            return None  # the server died mid-run: the caller runs the tests cold
        answer = json.loads(reply)
        return -1 if answer.get("timed_out") else int(answer["exit"])
    finally:
        client.close()


def _read_line(conn: socket.socket, cancelled: threading.Event | None = None) -> bytes | None:
    data = b""
    while not data.endswith(b"\n"):
        while cancelled is not None and not select.select([conn], [], [], CANCEL_CHECK)[0]:
            if cancelled.is_set():
                raise RunCancelled
        chunk = conn.recv(65536)
        if not chunk:
            return None
        data += chunk
    return data


# --- the server ---------------------------------------------------------------------------


@dataclass
class Child:
    """One run: the forked pid, the client waiting for its exit code, and its deadline."""

    pid: int
    conn: socket.socket
    deadline: float | None
    timed_out: bool = False


class Server:
    """Listens on `sock_path`; every request becomes a forked child running pytest.main."""

    def __init__(self, root: Path, sock_path: Path) -> None:
        self.root = root
        self.sock_path = sock_path
        self.children: dict[int, Child] = {}
        self.parent = os.getppid()
        self.stopping = False
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.wake_r, self.wake_w = os.pipe()

    def listen(self) -> None:
        self.sock_path.parent.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(FileNotFoundError):
            self.sock_path.unlink()  # a server that died left it; a live one is replaced
        self.listener.bind(os.fspath(self.sock_path))
        self.listener.listen(16)
        self.inode = self.sock_path.stat().st_ino
        for fd in (self.wake_r, self.wake_w):
            os.set_blocking(fd, False)
        # SIGCHLD (and SIGTERM) wake select through this pipe: no polling delay on a child's exit
        signal.set_wakeup_fd(self.wake_w)
        signal.signal(signal.SIGCHLD, lambda *_: None)
        signal.signal(signal.SIGTERM, self._stop)
        signal.signal(signal.SIGINT, self._stop)

    def _stop(self, signum: int, frame: object) -> None:
        self.stopping = True

    def serve(self) -> None:
        """Until SIGTERM/SIGINT or the parent goes: accept runs, reap children, enforce deadlines."""
        try:
            while not self.stopping and os.getppid() == self.parent:
                watched: list[socket.socket | int] = [self.listener, self.wake_r]
                watched += [c.conn for c in self.children.values()]
                readable, _, _ = select.select(watched, [], [], self._next_timeout())
                if self.wake_r in readable:
                    with contextlib.suppress(BlockingIOError):
                        os.read(self.wake_r, 4096)
                if self.listener in readable:
                    self._accept()
                for child in list(self.children.values()):
                    if child.conn in readable:
                        self._kill(child)  # the client went away (Ctrl-C, quit): stop its run
                self._check_deadlines()
                self._reap()
        finally:
            for child in list(self.children.values()):
                self._kill(child)
            self._reap(block=True)
            self.listener.close()
            with contextlib.suppress(OSError):
                if self.sock_path.stat().st_ino == self.inode:  # not a newer server's socket
                    self.sock_path.unlink()

    def _next_timeout(self) -> float:
        deadlines = [c.deadline for c in self.children.values() if c.deadline and not c.timed_out]
        soonest = min(deadlines, default=time.monotonic() + PARENT_CHECK)
        return max(0.0, min(PARENT_CHECK, soonest - time.monotonic()))

    def _accept(self) -> None:
        conn, _ = self.listener.accept()
        if not same_user(conn):  # another user must not run code as us, nor reach our terminal
            print(f"dojo.warm: refused a client running as uid {peer_uid(conn)}", file=sys.stderr,
                  flush=True)
            conn.close()
            return
        conn.settimeout(5)  # a request is one short message: never let a client stall the server
        try:
            data, fds, _, _ = socket.recv_fds(conn, MAX_REQUEST, 2)
            while not data.endswith(b"\n") and data:
                more = conn.recv(MAX_REQUEST)
                if not more:
                    break
                data += more
            request = json.loads(data)
            if len(fds) != 2:
                raise ValueError("a request passes stdout and stderr")
        except (OSError, ValueError):
            conn.close()
            return
        try:
            pid = self._fork(request, fds, conn)
        finally:
            for fd in fds:
                os.close(fd)
        timeout = request.get("timeout")
        deadline = time.monotonic() + float(timeout) if timeout else None
        self.children[pid] = Child(pid, conn, deadline)

    def _fork(self, request: dict[str, object], fds: list[int], conn: socket.socket) -> int:
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:
            try:
                conn.close()  # the server's end: if the server dies, its client must see EOF
                self._become_child(fds)
                os._exit(run_child(request))
            finally:
                os._exit(70)  # anything that escaped: never return into the server loop
        return pid

    def _become_child(self, fds: list[int]) -> None:
        """Shed everything of the server: signals, the listener, other clients' connections."""
        signal.set_wakeup_fd(-1)
        for signum in (signal.SIGCHLD, signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, signal.SIG_DFL if signum != signal.SIGINT else signal.default_int_handler)
        os.setpgid(0, 0)  # its own group: a timeout or a lost client kills it with all it started
        self.listener.close()
        for child in self.children.values():
            child.conn.close()
        os.close(self.wake_r)
        os.close(self.wake_w)
        devnull = os.open(os.devnull, os.O_RDONLY)
        os.dup2(devnull, 0)  # tests never read the client's terminal
        os.close(devnull)
        os.dup2(fds[0], 1)
        os.dup2(fds[1], 2)

    def _check_deadlines(self) -> None:
        now = time.monotonic()
        for child in self.children.values():
            if child.deadline is not None and now > child.deadline and not child.timed_out:
                child.timed_out = True
                self._kill(child)

    def _kill(self, child: Child) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(child.pid, signal.SIGKILL)

    def _reap(self, block: bool = False) -> None:
        """Collect exited children, answer their clients, and stop whatever they left behind."""
        ended = False
        while self.children:
            try:
                pid, status = os.waitpid(-1, 0 if block else os.WNOHANG)
            except ChildProcessError:
                break
            if pid == 0:
                break
            child = self.children.pop(pid, None)
            if child is None:
                continue  # an orphan adopted as subreaper: just collected
            ended = True
            # the group outlives its leader if the tests left processes running: end them too
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, signal.SIGKILL)
            answer = {"exit": os.waitstatus_to_exitcode(status), "timed_out": child.timed_out}
            with contextlib.suppress(OSError):
                child.conn.sendall(json.dumps(answer).encode() + b"\n")
            child.conn.close()
        if ended:  # orphans reach us only when the run that was their subreaper has ended
            self._sweep_orphans()

    def _sweep_orphans(self) -> None:
        """Processes that escaped a child's group (setsid, double fork) are re-parented here."""
        try:
            import psutil

            strays = [p for p in psutil.Process().children() if p.pid not in self.children]
        except Exception:
            return
        for proc in strays:
            with contextlib.suppress(Exception):
                for descendant in [*proc.children(recursive=True), proc]:
                    descendant.kill()
                proc.wait(timeout=5)


def run_child(request: dict[str, object]) -> int:
    """In the forked child: pytest.main as a fresh interpreter would run it, then a normal exit."""
    import atexit
    import threading
    import traceback

    atexit._clear()  # the server's exit handlers are not this run's
    sys.stdout.reconfigure(line_buffering=os.isatty(1))  # type: ignore[union-attr]
    sys.stderr.reconfigure(line_buffering=True)  # type: ignore[union-attr]
    code = 3
    try:
        os.chdir(str(request["cwd"]))
        env = request["env"]
        assert isinstance(env, dict)
        os.environ.clear()
        os.environ.update(env)
        args = request["args"]
        assert isinstance(args, list)
        importlib.invalidate_caches()  # the learner may have added a module since the warm-up
        sys.argv = ["pytest", *args]
        import pytest

        profile = os.environ.get("KATA_WARM_PROFILE")  # a file for cProfile's stats of this run
        if profile:
            import cProfile

            with cProfile.Profile() as profiler:
                code = int(pytest.main(args))
            profiler.dump_stats(profile)
        else:
            code = int(pytest.main(args))
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    except BaseException:  # a crash is reported like a crashed interpreter's, the server lives on
        traceback.print_exc()
    finally:
        # what Py_Finalize would do: threading's exit hooks (the engine's guard against stuck
        # threads) and joining threads, then atexit handlers the run registered, then flush
        with contextlib.suppress(BaseException):
            threading._shutdown()  # type: ignore[attr-defined]
        with contextlib.suppress(BaseException):
            atexit._run_exitfuncs()
        with contextlib.suppress(BaseException):
            sys.stdout.flush()
            sys.stderr.flush()
    return code


# --- warming up ---------------------------------------------------------------------------


class _BlockLearnerModules:
    """A meta path finder that refuses the learner's modules during the warm-up collection."""

    def __init__(self, names: set[str]) -> None:
        self.names = names

    def find_spec(self, fullname: str, path: object = None, target: object = None) -> None:
        if fullname in self.names:
            raise ImportError(f"{fullname} is imported fresh in each run, not in the warm server")


def learner_module_names(root: Path) -> set[str]:
    """Dotted names of every file a learner edits, from the catalogue (nothing if unreadable)."""
    try:
        from ..catalogue import load

        catalogue = load(root / "katas.toml", check_files=False)
    except Exception:
        return set()
    return {name for kata in catalogue.katas for name in kata.module_names()}


def warm_up(root: Path, paths: list[str]) -> None:
    """One quiet collection of `paths` (learner modules blocked), then forget the repo's modules."""
    import pytest

    blocker = _BlockLearnerModules(learner_module_names(root))
    sys.meta_path.insert(0, blocker)

    class KeepBlockerFirst:
        @pytest.hookimpl(trylast=True)
        def pytest_configure(self) -> None:
            """The engine's configure puts its own finder first: the blocker goes back ahead."""
            sys.meta_path.remove(blocker)
            sys.meta_path.insert(0, blocker)

    saved = os.dup(1), os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 1)
        os.dup2(devnull, 2)
        with contextlib.suppress(BaseException):
            pytest.main([*paths, "--collect-only", "-q", "-p", "no:cacheprovider"], plugins=[KeepBlockerFirst()])
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for fd in (*saved, devnull):
            os.close(fd)
        sys.meta_path.remove(blocker)
    forget_repo_modules(root)  # (the services plugin drops its daemon connection in each child itself)
    # Everything so far lives as long as the server: keep it out of the children's collections.
    # pytest calls gc.collect() a few times per session (unraisable-exception checks), and a
    # full collection over the warm heap cost a quarter of a warm run; frozen objects are
    # skipped (and not written to, so the fork's copy-on-write pages stay shared).
    gc.collect()
    gc.freeze()


def forget_repo_modules(root: Path) -> list[str]:
    """Drop from sys.modules every module of katas/, solutions/ and every conftest, so each child
    imports the tests, their conftests and the learner's code from the files as they are now."""
    fresh = [root.resolve() / "katas", root.resolve() / "solutions"]
    dropped = []
    for name, module in list(sys.modules.items()):
        file = getattr(module, "__file__", None)
        top = name.partition(".")[0]
        in_repo = isinstance(file, str) and any(Path(file).resolve().is_relative_to(d) for d in fresh)
        if in_repo or top in ("katas", "solutions", "conftest") or name.endswith(".conftest"):
            del sys.modules[name]
            dropped.append(name)
    return dropped


def become_subreaper() -> None:
    """Adopt the runs' orphans (Linux), so processes that escape a child's group are still ended."""
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)


def main(argv: list[str]) -> int:
    """Entry point: python -m dojo.running.warm ROOT SOCKET [WARM_PATH...]; prints `ready` when serving."""
    root, sock_path, warm_paths = Path(argv[0]).resolve(), Path(argv[1]), argv[2:]
    os.chdir(root)
    become_subreaper()
    server = Server(root, sock_path)
    started = time.perf_counter()
    warm_up(root, warm_paths or [str(root / "katas")])
    import threading

    # the log says what a learner's runs start from: forking copies only the calling thread
    print(f"dojo.warm: pid {os.getpid()} warmed {' '.join(warm_paths) or 'katas'} in "
          f"{time.perf_counter() - started:.2f} s; {len(sys.modules)} modules; threads: "
          f"{', '.join(t.name for t in threading.enumerate())}", file=sys.stderr, flush=True)
    server.listen()
    print(READY, flush=True)
    server.serve()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
