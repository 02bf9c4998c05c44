"""The stub/solution switch: learner modules are imported from katas/, solutions/ or an override."""

from __future__ import annotations

import functools
import importlib.abc
import importlib.machinery
import importlib.util
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from types import ModuleType

from .catalogue import Catalogue, Kata
from .settings import Settings


def source_file(kata: Kata, name: str, settings: Settings) -> Path:
    """The file the tests should read for `name` of `kata`: override, solution or learner's."""
    override = settings.overrides.get(f"{kata.slug}/{name}")
    if override is not None:
        return override
    tree = kata.solution_dir if settings.solutions else kata.kata_dir
    return tree / name


def redirects(catalogue: Catalogue, settings: Settings) -> dict[str, Path]:
    """Dotted module name -> the file to load it from, for every learner module."""
    return {
        module: source_file(kata, name, settings)
        for kata in catalogue.katas
        for module, name in kata.module_names().items()
    }


# Runs a learner module's code: (the module, a call that executes it). The engine passes one that
# puts a time limit on it (dojo.import_limit).
ModuleRunner = Callable[[ModuleType, Callable[[], None]], None]


class FromSourceLoader(importlib.machinery.SourceFileLoader):
    """Compiles the file on every import and never reads or writes a .pyc.

    A .pyc is trusted by its source's whole-second mtime and its size, so a learner who changes
    `a + b` to `a - b` within a second of the last run would run the old code. Learner files are
    small: compiling them costs less than a millisecond.
    """

    def __init__(self, fullname: str, path: str, runner: ModuleRunner | None = None) -> None:
        super().__init__(fullname, path)
        self.runner = runner

    def path_stats(self, path: str) -> dict[str, float]:
        raise OSError("learner modules are always compiled from source")  # get_code: no cache

    def exec_module(self, module: ModuleType) -> None:
        execute = functools.partial(importlib.machinery.SourceFileLoader.exec_module, self, module)
        if self.runner is None:
            execute()
        else:
            self.runner(module, execute)


class RedirectFinder(importlib.abc.MetaPathFinder):
    """Loads `katas.<topic>.<kata>.<module>` from the file the run chose (the learner's, the
    solution or an override), always from source, so tests import it unchanged."""

    def __init__(self, mapping: dict[str, Path], runner: ModuleRunner | None = None) -> None:
        self.mapping = mapping
        self.runner = runner

    def find_spec(
        self,
        fullname: str,
        path: Sequence[str] | None,
        target: ModuleType | None = None,
    ) -> importlib.machinery.ModuleSpec | None:
        file = self.mapping.get(fullname)
        if file is None:
            return None
        return importlib.util.spec_from_file_location(
            fullname, file, loader=FromSourceLoader(fullname, str(file), self.runner)
        )


def install(mapping: dict[str, Path], runner: ModuleRunner | None = None) -> RedirectFinder | None:
    if not mapping:
        return None
    finder = RedirectFinder(mapping, runner)
    sys.meta_path.insert(0, finder)
    return finder


def uninstall(finder: RedirectFinder | None) -> None:
    if finder is not None and finder in sys.meta_path:
        sys.meta_path.remove(finder)
