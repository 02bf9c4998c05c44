"""`kata watch`: re-run the current kata on every save; keys for hint, next, previous, list, quit."""

from __future__ import annotations

import threading
from collections.abc import Callable, Set
from pathlib import Path

from rich.console import Console

from ..catalogue import KATAS_DIR, Catalogue, Kata
from ..running.launch import Launcher, learner_env, run_budget
from ..running.warm import RunCancelled
from ..running.warm_client import WarmPytest
from . import hint, listing
from . import state as state_mod
from .events import Change, EventSource, Key
from .run import header, run_kata, verdict
from .state import RunRecord, State
from .status import fingerprint

KEYS = "h hint · n next · p previous · l list · r re-run · q quit"
CANCEL_PATIENCE = 10.0  # seconds for a stopped run's pytest to be killed and its thread to end


class Watch:
    """The watch session: the current kata, a warm pytest, and a queue of saves and keys."""

    def __init__(self, catalogue: Catalogue, state: State, kata: Kata, console: Console,
                 *, poll: bool = False) -> None:
        self.catalogue = catalogue
        self.state = state
        self.kata = kata
        self.console = console
        self.poll = poll
        # saves under katas/, keys, and runs that ended (BackgroundRun)
        self.events = EventSource[BackgroundRun](catalogue.root / KATAS_DIR, poll=poll)
        # warmed on the first kata's topic: its test modules' imports are what the next runs need
        self.warm = WarmPytest(catalogue.root, learner_env(), [kata.kata_dir.parent])
        self.last_run: str | None = None  # fingerprint the last run saw
        self.keys_work = False  # stdin can send keys (a terminal, or a pipe from a script)
        self.active: BackgroundRun | None = None  # the run in progress, if any
        self.held_keys: list[str] = []  # keys that write the state wait for the run to end

    def _reload(self) -> None:
        """Re-read the state: `kata hint` or `kata run` in another terminal may have changed it."""
        self.state = state_mod.load(self.catalogue.root)

    def run(self, why: str = "running it again") -> None:
        """Start a run of the current kata in the background (stopping one still going, `why`):
        saves and keys keep being handled meanwhile; the verdict comes when it ends."""
        self._stop_run(why)
        self._reload()
        self.last_run = fingerprint(self.kata)
        header(self.kata, self.console)
        self.active = BackgroundRun(self.kata, self.state, self._launcher,
                                    self.events.put)

    def _stop_run(self, why: str) -> None:
        """Stop the run in progress, if any: its pytest is killed and nothing is recorded."""
        active, self.active = self.active, None
        if active is not None and active.cancel():
            self.console.print(f"\n[yellow]{active.kata.name}: run stopped, {why}[/yellow]")

    def _finished(self, done: BackgroundRun) -> RunRecord | None:
        """Say how the run went and warm up the next one; a stopped run's end is ignored."""
        if done is not self.active:
            return None
        self.active = None
        if done.error is not None:
            raise done.error  # the run's own failure (an unwritable state file...) is ours
        record = done.record
        self.warm.ensure()  # if a run brought the server down, the next save finds a new one warm
        self.console.print(verdict(done.kata, record, self.catalogue, self.state, advice=False))
        if record is not None and record.green:
            upcoming = self._neighbour(+1)
            offer = f"press n for the next kata, {upcoming.name}" if upcoming else "all done here"
            self.console.print(f"[green bold]{done.kata.name} is done![/green bold] {offer}")
        self._legend()
        held, self.held_keys = self.held_keys, []
        for key in held:
            self._on_key(key)
        return record

    def _launcher(self, cancelled: threading.Event) -> Launcher:
        """The warm server's fork for this kata, or a cold pytest where that is not possible;
        setting `cancelled` kills it."""
        budget = run_budget(self.kata)

        def launch(args: list[str]) -> int:
            code = self.warm.run(args, timeout=budget, cancelled=cancelled)
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

    def _concerns_current(self, paths: Set[Path]) -> bool:
        folder = self.kata.kata_dir.resolve()
        touched = any(folder == p.resolve().parent or folder in p.resolve().parents for p in paths)
        # editors save in several steps and runs touch caches: only real content changes count
        return touched and fingerprint(self.kata) != self.last_run

    def _on_key(self, key: str) -> bool:
        """Act on one key; False means quit. A run in progress is stopped by q, r, n and p, and
        h waits for it to end (both would write the learner's state)."""
        if key == "q":
            self._stop_run("quitting")
            return False
        if key == "h" and self.active is not None:
            self.held_keys.append(key)
            return True
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
                self._stop_run(f"moving to {target.name}")  # before a restart kills its server
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
        with self.events:  # SIGTERM now stops us as Ctrl-C does
            try:
                self.keys_work = self.events.interactive
                self.warm.ensure()  # starts warming while the watcher sets up
                self.run()
                while True:
                    match self.events.wait(0.5):
                        case Key(key):
                            if not self._on_key(key):
                                break
                        case BackgroundRun() as done:
                            self._finished(done)
                        case Change(paths) if self._concerns_current(paths):
                            self.run("the file changed")  # a run still going tests stale code
            except KeyboardInterrupt:
                self.console.print()
            finally:
                self._stop_run("stopping")
                self.warm.close()
        self.console.print("[dim]stopped watching[/dim]")
        return 0


class BackgroundRun:
    """One run of a kata in a thread, so the watcher stays responsive; `cancel` kills it.

    `on_end` is called from that thread when the run is over, however it ended.
    """

    def __init__(self, kata: Kata, state: State, launcher: Callable[[threading.Event], Launcher],
                 on_end: Callable[[BackgroundRun], None]) -> None:
        self.kata = kata
        self.cancelled = threading.Event()
        self.record: RunRecord | None = None
        self.error: BaseException | None = None
        self._thread = threading.Thread(
            target=self._run, args=(state, launcher(self.cancelled), on_end), name="kata-run", daemon=True
        )
        self._thread.start()

    def _run(self, state: State, launch: Launcher, on_end: Callable[[BackgroundRun], None]) -> None:
        try:
            self.record = run_kata(self.kata, state, launch)
        except RunCancelled:
            pass  # stopped on purpose: nothing to record
        except Exception as exc:  # raised again in the watcher's own thread
            self.error = exc
        finally:
            on_end(self)

    def cancel(self) -> bool:
        """Kill the run and wait for its thread; True if it was still going."""
        running = self._thread.is_alive()
        self.cancelled.set()
        self._thread.join(timeout=CANCEL_PATIENCE)
        return running

