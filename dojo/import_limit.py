"""Importing a learner's module has the kata's time limit: code that never returns fails the tests."""

from __future__ import annotations

import signal
import sys
import threading
import traceback
from collections.abc import Callable, Generator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from . import flight
from .catalogue import Catalogue
from .safe_failures import text_report
from .timelimit import KataTimeout, time_limit

HEADLINE = (
    "importing {file} did not finish in {seconds:g} s: code at module level runs on import "
    "(a demo call? an infinite loop?)"
)

# kata folder -> why its learner module never finished importing (the message and the stack)
_unfinished: dict[Path, str] = {}


class ImportNeverFinished(Exception):
    """A test used a learner module whose import ran out of time."""


class ModuleExited(pytest.Collector.CollectError):
    """A learner module called sys.exit() while being imported: a collection error that says so
    in one line (pytest itself would stop with an INTERNALERROR)."""


class ImportGuard:
    """Runs each learner module's code under its kata's time limit (a switch.ModuleRunner).

    On expiry the module is replaced by a stand-in from which any name can be imported, so the
    test modules still load and every test is collected, then fails with the reason.
    """

    def __init__(self, catalogue: Catalogue) -> None:
        self.root = catalogue.root.resolve()
        self.katas = {module: kata for kata in catalogue.katas for module in kata.module_names()}

    def __call__(self, module: ModuleType, execute: Callable[[], None]) -> None:
        __tracebackhide__ = True  # a failure shows the learner's frames, not this guard's
        kata = self.katas.get(module.__name__)
        if kata is None or not _can_time():
            execute()  # a test importing it lazily is already under its own limit
            return
        file = Path(module.__file__ or kata.kata_dir)
        headline = HEADLINE.format(file=self._shown(file), seconds=kata.time_limit)
        learner_dirs = (file.parent.resolve(), kata.kata_dir.resolve(), kata.solution_dir.resolve())
        try:
            with (flight.during(f"the import of {file.name}", kata.time_limit),
                  time_limit(kata.time_limit, learner_dirs, f"import of {file.name}", headline=headline)):
                execute()
        except KataTimeout as timeout:
            _unfinished[kata.kata_dir.resolve()] = str(timeout)
            sys.modules[module.__name__] = _Unimported(module.__name__, str(timeout))
        except SystemExit as exiting:
            raise ModuleExited(_exit_message(exiting, file)) from None

    def _shown(self, file: Path) -> str:
        resolved = file.resolve()
        return str(resolved.relative_to(self.root)) if resolved.is_relative_to(self.root) else str(file)


def _exit_message(exiting: SystemExit, file: Path) -> str:
    """'sys.exit(3) called from x.py:12 at the import of x.py: ...', from the innermost frame."""
    frames = traceback.extract_tb(exiting.__traceback__)
    where = f" from {Path(frames[-1].filename).name}:{frames[-1].lineno}" if frames else ""
    return (f"sys.exit({exiting.code!r}) called{where} at the import of {file.name}: code at module "
            "level runs on import, and must not end the test process")


def _can_time() -> bool:
    """Only the main thread gets SIGALRM, and a running test's alarm must not be replaced."""
    return (
        threading.current_thread() is threading.main_thread()
        and signal.getitimer(signal.ITIMER_REAL)[0] == 0
    )


class _Unimported(ModuleType):
    """Stands in for a learner module whose import never finished: every name imports."""

    def __init__(self, name: str, reason: str) -> None:
        super().__init__(name, reason)
        self.__reason = reason

    def __getattr__(self, attribute: str) -> Any:
        if attribute.startswith("__"):
            raise AttributeError(attribute)
        return _stand_in(attribute, self.__reason)


def _stand_in(name: str, reason: str) -> type:
    """A class named `name` that refuses to be called: `BoundedQueue[int](1)` says why."""

    def refuse(cls: type, *args: object, **kwargs: object) -> None:
        raise ImportNeverFinished(reason)

    return type(name, (), {
        "__new__": refuse, "__class_getitem__": classmethod(lambda cls, _: cls), "__doc__": reason,
    })


def reason_for(path: Path) -> str | None:
    """Why the learner module of the kata holding test file `path` never finished importing."""
    if not _unfinished:
        return None
    folder = path.resolve().parent
    for kata_dir, reason in _unfinished.items():
        if folder == kata_dir or folder.is_relative_to(kata_dir):
            return reason
    return None


def forget() -> None:
    """A new session starts with no unfinished imports (a warm server's child inherits none)."""
    _unfinished.clear()


def install_for(catalogue: Catalogue) -> ImportGuard:
    forget()
    return ImportGuard(catalogue)


class UnimportedTest(pytest.Item):
    """A test of a kata whose learner module never finished importing: it fails, saying why."""

    def __init__(self, *, reason: str, original: pytest.Item, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.reason = reason
        self._where = original.reportinfo()

    def runtest(self) -> None:
        raise ImportNeverFinished(self.reason)

    def reportinfo(self) -> tuple[Any, int | None, str]:
        path, lineno, domain = self._where
        return path, lineno, domain

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> Any:
        path, lineno, _ = self._where
        return _report(self.reason, str(path), (lineno or 0) + 1)


def _report(reason: str, path: str, lineno: int) -> Any:
    """The reason as pytest shows a failure; its first line sums it up (in -q summaries too)."""
    lines = reason.splitlines()
    return text_report([line + "\n" for line in lines], path, lineno, lines[0])


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    if not _unfinished:
        return
    for index, item in enumerate(items):
        reason = reason_for(item.path)
        if reason is not None and item.parent is not None:
            items[index] = UnimportedTest.from_parent(item.parent, name=item.name, reason=reason, original=item)


@pytest.hookimpl(wrapper=True)
def pytest_make_collect_report(
    collector: pytest.Collector,
) -> Generator[None, pytest.CollectReport, pytest.CollectReport]:
    """A test module that could not even be collected without the learner's objects reports the
    import that never finished, not what the stand-in tripped over."""
    report = yield
    if report.failed and isinstance(collector, pytest.Module):
        reason = reason_for(collector.path)
        if reason is not None:
            report.longrepr = _report(reason, str(collector.path), 0)
    return report

