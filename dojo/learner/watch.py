"""`kata watch`: re-run the current kata on every save; keys for hint, next, previous, list, quit."""

from __future__ import annotations

import queue
import signal
import threading
from pathlib import Path
from types import FrameType

import watchfiles
from rich.console import Console

from ..catalogue import KATAS_DIR, Catalogue, Kata
from . import hint, listing
from . import state as state_mod
from .keys import KeyReader
from .prefork import WarmPytest
from .run import Launcher, header, learner_env, run_budget, run_kata, verdict
from .state import RunRecord, State
from .status import fingerprint

KEYS = "h hint · n next · p previous · l list · r re-run · q quit"
# Event = ("change", changed paths) or ("key", key)
Event = tuple[str, object]


class Watch:
    """The watch session: the current kata, a warm pytest, and a queue of saves and keys."""

    def __init__(self, catalogue: Catalogue, state: State, kata: Kata, console: Console,
                 *, poll: bool = False) -> None:
        self.catalogue = catalogue
        self.state = state
        self.kata = kata
        self.console = console
        self.poll = poll
        self.events: queue.Queue[Event] = queue.Queue()
        self.stop = threading.Event()
        # warmed on the first kata's topic: its test modules' imports are what the next runs need
        self.warm = WarmPytest(catalogue.root, learner_env(), [kata.kata_dir.parent])
        self.last_run: str | None = None  # fingerprint the last run saw
        self.keys_work = False  # stdin can send keys (a terminal, or a pipe from a script)

    def _watch_files(self) -> None:
        """Thread: put every batch of saves under katas/ on the queue (watchfiles debounces)."""
        for changes in watchfiles.watch(
            self.catalogue.root / KATAS_DIR, stop_event=self.stop, force_polling=self.poll,
            poll_delay_ms=300, raise_interrupt=False, debounce=400, step=30,
        ):
            self.events.put(("change", {Path(path) for _, path in changes}))

    def _reload(self) -> None:
        """Re-read the state: `kata hint` or `kata run` in another terminal may have changed it."""
        self.state = state_mod.load(self.catalogue.root)

    def run(self) -> RunRecord | None:
        """Run the current kata with the warm pytest, say how it went, warm up the next one."""
        self._reload()
        self.last_run = fingerprint(self.kata)
        header(self.kata, self.console)
        record = run_kata(self.kata, self.state, self._launcher())
        self.warm.ensure()  # if a run brought the server down, the next save finds a new one warm
        self.console.print(verdict(self.kata, record, self.catalogue, self.state, advice=False))
        if record is not None and not (record.error or record.failed or record.skipped):
            upcoming = self._neighbour(+1)
            offer = f"press n for the next kata, {upcoming.name}" if upcoming else "all done here"
            self.console.print(f"[green bold]{self.kata.name} is done![/green bold] {offer}")
        self._legend()
        return record

    def _launcher(self) -> Launcher:
        """The warm server's fork for this kata, or a cold pytest where that is not possible."""
        budget = run_budget(self.kata)

        def launch(args: list[str]) -> int:
            code = self.warm.run(args, timeout=budget)
            if code == -1:
                self.console.print(f"[red]the run took longer than {budget:g} s and was stopped[/red]")
            return code

        return launch

    def _legend(self) -> None:
        self.console.print(
            f"[dim]watching {self.kata.slug} for saves; keys: {KEYS}[/dim]"
            if self.keys_work else f"[dim]watching {self.kata.slug} for saves; Ctrl-C stops[/dim]",
            soft_wrap=True,
        )

    def _neighbour(self, step: int) -> Kata | None:
        katas = list(self.catalogue.katas)
        index = katas.index(self.kata) + step
        return katas[index] if 0 <= index < len(katas) else None

    def _concerns_current(self, paths: object) -> bool:
        folder = self.kata.kata_dir.resolve()
        assert isinstance(paths, set)
        touched = any(folder == p.resolve().parent or folder in p.resolve().parents for p in paths)
        # editors save in several steps and runs touch caches: only real content changes count
        return touched and fingerprint(self.kata) != self.last_run

    def _on_key(self, key: str) -> bool:
        """Act on one key; False means quit."""
        if key == "q":
            return False
        self._reload()
        if key == "h":
            hint.show(self.kata, self.state, self.console, again="press h")
        elif key == "l":
            listing.render(self.catalogue, self.state, self.console)
        elif key == "r":
            self.run()
        elif key in ("n", "p"):
            target = self._neighbour(+1 if key == "n" else -1)
            if target is None:
                self.console.print("[dim]no kata " + ("after" if key == "n" else "before")
                                   + f" {self.kata.name}[/dim]")
            else:
                if target.topic != self.kata.topic:
                    # another topic's tests import other libraries: warm those instead
                    self.warm.restart([target.kata_dir.parent])
                self.kata = target
                self.run()
        else:
            self.console.print(f"[dim]keys: {KEYS}[/dim]")
        return True

    def loop(self) -> int:
        """Run until q (or Ctrl-C, or SIGTERM); the exit code is 0."""
        previous = signal.signal(signal.SIGTERM, _raise_interrupt)
        watcher = threading.Thread(target=self._watch_files, name="kata-watch", daemon=True)
        watcher.start()
        reader = KeyReader(lambda key: self.events.put(("key", key)))
        try:
            with reader:
                self.keys_work = reader.interactive
                self.warm.ensure()  # starts warming while the watcher sets up
                self.run()
                while True:
                    try:
                        kind, payload = self.events.get(timeout=0.5)
                    except queue.Empty:
                        continue
                    if kind == "key":
                        assert isinstance(payload, str)
                        if not self._on_key(payload):
                            break
                    elif self._concerns_current(payload):
                        self.run()
        except KeyboardInterrupt:
            self.console.print()
        finally:
            self.stop.set()
            self.warm.close()
            watcher.join(timeout=5)
            signal.signal(signal.SIGTERM, previous)
        self.console.print("[dim]stopped watching[/dim]")
        return 0


def _raise_interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt
