"""Saves and keypresses as one queue of typed events: what `kata watch` and a drill wait on."""

from __future__ import annotations

import queue
import signal
import threading
from dataclasses import dataclass
from pathlib import Path
from types import FrameType, TracebackType
from typing import Generic, TypeVar

import watchfiles

from .keys import KeyReader

E = TypeVar("E")


@dataclass(frozen=True)
class Change:
    """A batch of saved files (watchfiles debounces an editor's several writes into one)."""

    paths: frozenset[Path]


@dataclass(frozen=True)
class Key:
    """One key pressed (or piped in on stdin)."""

    key: str


class EventSource(Generic[E]):
    """While the `with` lasts: a thread watching `folder`, keys from stdin, and SIGTERM turned
    into Ctrl-C. Its owner may `put` events of its own (E: a run that ended, say) on the queue."""

    def __init__(self, folder: Path, *, poll: bool = False) -> None:
        self.folder = folder
        self.poll = poll
        self._queue: queue.Queue[Change | Key | E] = queue.Queue()
        self._stop = threading.Event()
        self._keys = KeyReader(lambda key: self._queue.put(Key(key)))
        self._watcher = threading.Thread(target=self._watch, name="kata-watch-files", daemon=True)
        self._previous: object = None

    def _watch(self) -> None:
        for changes in watchfiles.watch(
            self.folder, stop_event=self._stop, force_polling=self.poll, poll_delay_ms=300,
            raise_interrupt=False, debounce=400, step=30,
        ):
            self._queue.put(Change(frozenset(Path(path) for _, path in changes)))

    def put(self, event: E) -> None:
        self._queue.put(event)

    def wait(self, timeout: float) -> Change | Key | E | None:
        """The next event, or None after `timeout` seconds."""
        try:
            return self._queue.get(timeout=max(timeout, 0.0))
        except queue.Empty:
            return None

    @property
    def interactive(self) -> bool:
        """Whether keys can arrive (a terminal or a pipe on stdin)."""
        return self._keys.interactive

    def __enter__(self) -> EventSource[E]:
        self._previous = signal.signal(signal.SIGTERM, _raise_interrupt)
        try:
            self._watcher.start()
            self._keys.__enter__()
        except BaseException:
            self._stop.set()
            signal.signal(signal.SIGTERM, self._previous)
            raise
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 traceback: TracebackType | None) -> None:
        try:
            self._keys.__exit__(kind, value, traceback)
        finally:
            self._stop.set()
            self._watcher.join(timeout=5)
            signal.signal(signal.SIGTERM, self._previous)  # type: ignore[arg-type]


def _raise_interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt
