"""The catalogue (katas.toml): every kata in learning order, read into frozen dataclasses."""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from .needs import KNOWN_SERVICES, TOOLS

CATALOGUE_NAME = "katas.toml"
KATAS_DIR = "katas"
SOLUTIONS_DIR = "solutions"
DEFAULT_TIME_LIMIT = 10.0
# 1 warm-up, 2 what an interview asks, 3 deep: the learner's level for `kata next --level`
DIFFICULTIES = {1: "warm-up", 2: "interview", 3: "deep"}
MAX_MINUTES = 240  # a kata longer than an afternoon should be two katas

_Schema = Mapping[str, type | tuple[type, ...]]
_TOPIC_FIELDS: _Schema = {"name": str, "title": str, "stress": bool}
_KATA_FIELDS: _Schema = {
    "name": str,
    "topic": str,
    "title": str,
    "files": list,
    "services": list,
    "time_limit": (int, float),
    "hints": list,
    "support_files": list,
    "tools": list,
    "difficulty": int,
    "minutes": int,
}
_KATA_REQUIRED = ("name", "topic", "files", "hints")
_DEFAULTS_FIELDS: _Schema = {"time_limit": (int, float)}


class CatalogueError(Exception):
    """The catalogue is malformed; the message names the file, the entry and the problem."""


@dataclass(frozen=True)
class Topic:
    """A group of katas, with its own README under katas/<name>/."""

    name: str
    title: str
    stress: bool = False  # the maintainer check runs its solutions under `--stress`


@dataclass(frozen=True)
class Kata:
    """One catalogue entry; paths are derived from the repository root."""

    name: str
    topic: str
    title: str
    files: tuple[str, ...]
    hints: tuple[str, ...]
    services: tuple[str, ...] = ()
    time_limit: float = DEFAULT_TIME_LIMIT
    support_files: tuple[str, ...] = ()
    tools: tuple[str, ...] = ()  # programs the tests run (node, gcc...): see dojo.needs
    difficulty: int = 0  # see DIFFICULTIES; 0: not given (verify says so)
    minutes: int = 0  # a realistic time for a prepared candidate; 0: not given
    root: Path = field(default=Path("."), compare=False, repr=False)

    @property
    def slug(self) -> str:
        return f"{self.topic}/{self.name}"

    @property
    def kata_dir(self) -> Path:
        return self.root / KATAS_DIR / self.topic / self.name

    @property
    def solution_dir(self) -> Path:
        return self.root / SOLUTIONS_DIR / self.topic / self.name

    @property
    def readme(self) -> Path:
        return self.kata_dir / "README.md"

    def learner_files(self) -> list[Path]:
        return [self.kata_dir / name for name in self.files]

    def solution_files(self) -> list[Path]:
        return [self.solution_dir / name for name in self.files]

    def module_names(self) -> dict[str, str]:
        """Dotted module name of each learner .py file, mapped to its file name."""
        return {
            f"{KATAS_DIR}.{self.topic}.{self.name}.{Path(f).stem}": f
            for f in self.files
            if f.endswith(".py") and "/" not in f
        }


@dataclass(frozen=True)
class Catalogue:
    """All topics and katas, in learning order."""

    path: Path
    topics: tuple[Topic, ...]
    katas: tuple[Kata, ...]
    default_time_limit: float = DEFAULT_TIME_LIMIT

    @property
    def root(self) -> Path:
        return self.path.parent

    def by_name(self) -> dict[str, Kata]:
        return {k.name: k for k in self.katas}

    def get(self, name: str) -> Kata:
        """The kata called `name` (or `topic/name`); KeyError if there is none."""
        for kata in self.katas:
            if name in (kata.name, kata.slug):
                return kata
        raise KeyError(name)

    def in_topic(self, topic: str) -> list[Kata]:
        return [k for k in self.katas if k.topic == topic]

    @cached_property
    def _by_folder(self) -> dict[Path, Kata]:
        # resolved once: the plugin asks for every test, and resolving is a syscall per part
        return {
            folder.resolve(): kata
            for kata in self.katas
            for folder in (kata.kata_dir, kata.solution_dir)
        }

    @cached_property
    def _by_path(self) -> dict[Path, Kata | None]:
        return {}  # kata_for_path's answers: each test file is asked about several times per test

    def kata_for_path(self, path: Path) -> Kata | None:
        """The kata whose folder (learner's or solution's) contains `path`."""
        if path not in self._by_path:
            resolved = path.resolve()
            found = (self._by_folder.get(folder) for folder in (resolved, *resolved.parents))
            self._by_path[path] = next((kata for kata in found if kata is not None), None)
        return self._by_path[path]


def find_root(start: Path | None = None) -> Path:
    """The nearest folder at or above `start` that holds a katas.toml."""
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / CATALOGUE_NAME).is_file():
            return folder
    raise CatalogueError(
        f"no {CATALOGUE_NAME} found in {here} or above: run this inside a clone of the kata repository"
    )


def load(path: Path, *, check_files: bool = True) -> Catalogue:
    """Read and validate the catalogue at `path`; raise CatalogueError naming what is wrong."""
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CatalogueError(f"{path}: file not found") from None
    except tomllib.TOMLDecodeError as exc:
        raise CatalogueError(f"{path}: invalid TOML: {exc}") from None
    return _parse(path, raw, check_files=check_files)


def _parse(path: Path, raw: dict[str, object], *, check_files: bool) -> Catalogue:
    unknown = set(raw) - {"defaults", "topic", "kata"}
    if unknown:
        raise CatalogueError(f"{path}: unknown top-level table(s): {', '.join(sorted(unknown))}")
    defaults = raw.get("defaults", {})
    if not isinstance(defaults, dict):
        raise CatalogueError(f"{path}: [defaults] must be a table")
    _check_fields(path, "[defaults]", defaults, _DEFAULTS_FIELDS, required=())
    default_limit = float(defaults.get("time_limit", DEFAULT_TIME_LIMIT))

    topics: list[Topic] = []
    for index, entry in enumerate(_array(path, raw, "topic"), start=1):
        where = f"topic #{index} ({entry.get('name', '?')!r})"
        _check_fields(path, where, entry, _TOPIC_FIELDS, required=("name",))
        if any(t.name == entry["name"] for t in topics):
            raise CatalogueError(f"{path}: {where}: duplicate topic name")
        topic_name = str(entry["name"])
        topics.append(Topic(topic_name, str(entry.get("title", topic_name)), bool(entry.get("stress", False))))
    topic_names = [t.name for t in topics]

    katas: list[Kata] = []
    for index, entry in enumerate(_array(path, raw, "kata"), start=1):
        where = f"kata #{index} ({entry.get('name', '?')!r})"
        _check_fields(path, where, entry, _KATA_FIELDS, required=_KATA_REQUIRED)
        kata = _kata(path, where, entry, default_limit)
        if kata.topic not in topic_names:
            raise CatalogueError(
                f"{path}: {where}: topic {kata.topic!r} is not declared "
                f"(declared: {', '.join(topic_names) or 'none'})"
            )
        if any(k.name == kata.name for k in katas):
            raise CatalogueError(f"{path}: {where}: duplicate kata name {kata.name!r}")
        if check_files:
            _check_kata_files(path, where, kata)
        katas.append(kata)

    # learning order: topics in declared order, katas in file order within a topic
    ordered = sorted(katas, key=lambda k: topic_names.index(k.topic))
    return Catalogue(path, tuple(topics), tuple(ordered), default_limit)


def _array(path: Path, raw: dict[str, object], key: str) -> list[dict[str, object]]:
    value = raw.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise CatalogueError(f"{path}: '{key}' must be an array of tables ([[{key}]])")
    return value


def _check_fields(
    path: Path,
    where: str,
    entry: dict[str, object],
    schema: Mapping[str, type | tuple[type, ...]],
    required: tuple[str, ...],
) -> None:
    for key in entry:
        if key not in schema:
            raise CatalogueError(
                f"{path}: {where}: unknown field {key!r} (known: {', '.join(schema)})"
            )
        expected = schema[key]
        is_bool = isinstance(entry[key], bool)
        if not isinstance(entry[key], expected) or (is_bool and expected is not bool):
            raise CatalogueError(f"{path}: {where}: field {key!r} has the wrong type")
    for key in required:
        if key not in entry:
            raise CatalogueError(f"{path}: {where}: missing field {key!r}")


def _strings(path: Path, where: str, name: str, value: object) -> tuple[str, ...]:
    items = value if isinstance(value, list) else []
    if not all(isinstance(v, str) and v.strip() for v in items):
        raise CatalogueError(f"{path}: {where}: {name!r} must hold non-empty strings")
    return tuple(items)


def _whole(entry: dict[str, object], key: str) -> int:
    """An optional int field (its type already checked), 0 when absent."""
    value = entry.get(key, 0)
    return value if isinstance(value, int) else 0


def _kata(path: Path, where: str, entry: dict[str, object], default_limit: float) -> Kata:
    name = str(entry["name"])
    if not name.isidentifier():
        raise CatalogueError(f"{path}: {where}: name must be a Python identifier (snake_case)")
    files = _strings(path, where, "files", entry["files"])
    if not files:
        raise CatalogueError(f"{path}: {where}: 'files' is empty: name the file(s) the learner edits")
    hints = _strings(path, where, "hints", entry["hints"])
    if not 2 <= len(hints) <= 3:
        raise CatalogueError(f"{path}: {where}: give 2 or 3 progressive hints, not {len(hints)}")
    services = _strings(path, where, "services", entry.get("services", []))
    for service in services:
        if service not in KNOWN_SERVICES:
            raise CatalogueError(
                f"{path}: {where}: unknown service {service!r} "
                f"(known: {', '.join(sorted(KNOWN_SERVICES))})"
            )
    tools = _strings(path, where, "tools", entry.get("tools", []))
    for tool in tools:
        if tool not in TOOLS:
            raise CatalogueError(
                f"{path}: {where}: unknown tool {tool!r} (known: {', '.join(sorted(TOOLS))})"
            )
    time_limit = float(entry.get("time_limit", default_limit))  # type: ignore[arg-type]
    if time_limit <= 0:
        raise CatalogueError(f"{path}: {where}: time_limit must be positive")
    difficulty = _whole(entry, "difficulty")
    if "difficulty" in entry and difficulty not in DIFFICULTIES:
        levels = ", ".join(f"{n} ({word})" for n, word in DIFFICULTIES.items())
        raise CatalogueError(f"{path}: {where}: difficulty must be one of {levels}")
    minutes = _whole(entry, "minutes")
    if "minutes" in entry and not 1 <= minutes <= MAX_MINUTES:
        raise CatalogueError(f"{path}: {where}: minutes must be from 1 to {MAX_MINUTES}")
    return Kata(
        name=name,
        topic=str(entry["topic"]),
        title=str(entry.get("title", name.replace("_", " "))),
        files=files,
        hints=hints,
        services=services,
        time_limit=time_limit,
        support_files=_strings(path, where, "support_files", entry.get("support_files", [])),
        tools=tools,
        difficulty=difficulty,
        minutes=minutes,
        root=path.parent,
    )


def _check_kata_files(path: Path, where: str, kata: Kata) -> None:
    for label, files in (("stub", kata.learner_files()), ("solution", kata.solution_files())):
        for file in files:
            if not file.is_file():
                rel = file.relative_to(kata.root)
                raise CatalogueError(f"{path}: {where}: {label} file {rel} does not exist")
