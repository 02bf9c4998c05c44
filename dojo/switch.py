"""The stub/solution switch: learner modules are imported from katas/, solutions/ or an override."""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import importlib.util
import sys
from collections.abc import Sequence
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


class FromSourceLoader(importlib.machinery.SourceFileLoader):
    """Compiles the file on every import and never reads or writes a .pyc.

    A .pyc is trusted by its source's whole-second mtime and its size, so a learner who changes
    `a + b` to `a - b` within a second of the last run would run the old code. Learner files are
    small: compiling them costs less than a millisecond.
    """

    def path_stats(self, path: str) -> dict[str, float]:
        raise OSError("learner modules are always compiled from source")  # get_code: no cache


class RedirectFinder(importlib.abc.MetaPathFinder):
    """Loads `katas.<topic>.<kata>.<module>` from the file the run chose (the learner's, the
    solution or an override), always from source, so tests import it unchanged."""

    def __init__(self, mapping: dict[str, Path]) -> None:
        self.mapping = mapping

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
            fullname, file, loader=FromSourceLoader(fullname, str(file))
        )


def install(mapping: dict[str, Path]) -> RedirectFinder | None:
    if not mapping:
        return None
    finder = RedirectFinder(mapping)
    sys.meta_path.insert(0, finder)
    return finder


def uninstall(finder: RedirectFinder | None) -> None:
    if finder is not None and finder in sys.meta_path:
        sys.meta_path.remove(finder)
