"""Saves to the scratch folder and keypresses, as one queue a drill waits on (the live source)."""

from __future__ import annotations

import queue
import signal
import threading
from pathlib import Path
from types import FrameType, TracebackType

import watchfiles

from ..learner.keys import KeyReader
from .session import Event


class Events:
    """While the `with` lasts: a thread watching `folder` (watchfiles debounces an editor's
    several writes into one batch), keys from stdin, and SIGTERM turned into Ctrl-C."""

    def __init__(self, folder: Path, *, poll: bool = False) -> None:
        self.folder = folder
        self.poll = poll
        self.queue: queue.Queue[Event] = queue.Queue()
        self.stop = threading.Event()
        self.keys = KeyReader(lambda key: self.queue.put(("key", key)))
        self._watcher = threading.Thread(target=self._watch, name="kata-drill-watch", daemon=True)
        self._previous: object = None

    def _watch(self) -> None:
        for changes in watchfiles.watch(
            self.folder, stop_event=self.stop, force_polling=self.poll, poll_delay_ms=300,
            raise_interrupt=False, debounce=400, step=30,
        ):
            self.queue.put(("change", {Path(path) for _, path in changes}))

    def wait(self, timeout: float) -> Event | None:
        try:
            return self.queue.get(timeout=max(timeout, 0.0))
        except queue.Empty:
            return None

    @property
    def interactive(self) -> bool:
        """Whether keys can arrive (a terminal or a pipe on stdin)."""
        return self.keys.interactive

    def __enter__(self) -> Events:
        self._previous = signal.signal(signal.SIGTERM, _raise_interrupt)
        self._watcher.start()
        self.keys.__enter__()
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.keys.__exit__(kind, value, traceback)
        self.stop.set()
        self._watcher.join(timeout=5)
        signal.signal(signal.SIGTERM, self._previous)  # type: ignore[arg-type]


def _raise_interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt
