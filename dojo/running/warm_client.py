"""The watcher's warm pytest: starts and stops the warm server (running/warm.py), runs saves through it.

Importing pytest, its plugins and the services' client libraries costs more than a pure kata's
tests; the warm server pays that once per `kata watch` and forks a fresh child for every run.
It is a separate process rather than forks of the watcher itself: the watcher has threads (file
events, keys), and a fork taken while another thread holds a lock inherits that lock held forever.
Being a server on .kata/warm.sock, it also serves `kata run` from another terminal.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import subprocess
import sys
import threading
from pathlib import Path

from . import launch, warm

READY_PATIENCE = 120.0  # seconds for the warm-up on a loaded machine; after that, runs go cold
LOG_NAME = "warm.log"


class WarmPytest:
    """One warm server for the watch session; `run` falls back to a cold pytest if it is gone."""

    def __init__(self, root: Path, env: dict[str, str], warm_paths: list[Path] | None = None,
                 sock_path: Path | None = None) -> None:
        self.root = root
        self.env = env
        self.warm_paths = warm_paths or []
        # `kata run` finds the default one; tests and benchmarks pass their own, so that they
        # never take over the socket of a learner's `kata watch` in the same repository
        self.sock_path = sock_path or warm.socket_path(root)
        self._proc: subprocess.Popen[bytes] | None = None
        self._ready = False

    @property
    def active(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def ensure(self) -> None:
        """Start the server unless one is running (or fork is unsuitable here)."""
        if not warm.can_fork() or self.active:
            return
        log_dir = self.root / ".kata"
        log_dir.mkdir(exist_ok=True)
        with open(log_dir / LOG_NAME, "ab") as log:
            self._proc = subprocess.Popen(
                [sys.executable, "-m", "dojo.running.warm", str(self.root), str(self.sock_path),
                 *map(str, self.warm_paths)],
                cwd=self.root, env=self.env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                stderr=log,
                # its own session: the terminal's Ctrl-C reaches the watcher, which stops it
                start_new_session=True,
            )
        self._ready = False

    def restart(self, warm_paths: list[Path]) -> None:
        """A new server warmed on other paths (the learner moved to another topic)."""
        self.close()
        self.warm_paths = warm_paths
        self.ensure()

    def wait_ready(self, timeout: float = READY_PATIENCE) -> bool:
        """True once the server listens; False if it died or took longer than `timeout`."""
        if self._ready:
            return self.active
        proc = self._proc
        if proc is None or proc.stdout is None:
            return False
        ready, _, _ = select.select([proc.stdout], [], [], timeout)
        if ready and proc.stdout.readline().strip() == warm.READY.encode():
            self._ready = True
        return self._ready and self.active

    def run(self, args: list[str], timeout: float | None = None,
            cancelled: threading.Event | None = None) -> int:
        """pytest's exit code (-1 if it overran `timeout`): run warm, else cold in a subprocess.
        Setting `cancelled` stops the run and raises warm.RunCancelled."""
        code = self.try_warm(args, timeout, cancelled)
        if code is None and cancelled is not None:
            code = self._cold_cancellable(args, cancelled)
        if code is None:
            code = launch.cold_launcher(self.root, self.env)(args)
        return code

    def _cold_cancellable(self, args: list[str], cancelled: threading.Event) -> int | None:
        """A cold pytest on our stdout that `cancelled` kills; None if stdout is not a real file."""
        try:
            sys.stdout.fileno()
        except (AttributeError, OSError, ValueError):
            return None
        sys.stdout.flush()
        # its own process group, so that a cancel stops whatever its tests started too
        proc = subprocess.Popen([sys.executable, "-m", "pytest", *args], cwd=self.root, env=self.env,
                                process_group=0)
        try:
            while True:
                try:
                    return proc.wait(timeout=warm.CANCEL_CHECK)
                except subprocess.TimeoutExpired:
                    if cancelled.is_set():
                        raise warm.RunCancelled from None
        finally:
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()

    def try_warm(self, args: list[str], timeout: float | None = None,
                 cancelled: threading.Event | None = None) -> int | None:
        """pytest's exit code, run warm; None if no warm server can run it (run it cold then)."""
        self.ensure()
        if not self.wait_ready():
            return None
        try:
            out, err = sys.stdout.fileno(), sys.stderr.fileno()
        except (AttributeError, OSError, ValueError):
            return None  # no real file to hand over (a test's captured output)
        sys.stdout.flush()
        sys.stderr.flush()
        return warm.run(self.sock_path, args, cwd=self.root, env=self.env, timeout=timeout,
                        stdout=out, stderr=err, cancelled=cancelled)

    def close(self) -> None:
        """Stop the server (it kills a run still going) and wait for it."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        with contextlib.suppress(ProcessLookupError):
            proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()

