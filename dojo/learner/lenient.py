"""Records read from JSON that this or a newer version wrote: unknown keys ignored, each known one type-checked."""

from __future__ import annotations

import dataclasses
import typing
from typing import Any, TypeVar

T = TypeVar("T")
SHOWN = 60  # characters of a bad value quoted in a note
KINDS = {int: "a whole number", float: "a number", str: "a string"}


def shown(value: object) -> str:
    text = repr(value)
    return text if len(text) <= SHOWN else text[: SHOWN - 1] + "…"


def _checked(name: str, value: object, expected: Any) -> object:
    """`value` if it is of the `expected` type (an int may stand for a float); else ValueError."""
    if expected is float and isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if expected is int and isinstance(value, int) and not isinstance(value, bool):
        return value
    if expected is str and isinstance(value, str):
        return value
    raise ValueError(f"{name} is {shown(value)}, not {KINDS.get(expected, expected)}")


def record_from(cls: type[T], raw: object) -> T:
    """An instance of dataclass `cls` from a JSON object; ValueError says what is wrong with it.

    Keys it does not know are ignored (what a newer version adds); missing keys take their
    defaults; a missing key without one, or a value of the wrong type, is an error.
    """
    if not isinstance(raw, dict):
        raise ValueError(f"{shown(raw)} is not an object")
    types = typing.get_type_hints(cls)
    values: dict[str, Any] = {}
    for field in dataclasses.fields(cls):  # type: ignore[arg-type]
        if field.name in raw:
            values[field.name] = _checked(field.name, raw[field.name], types[field.name])
        elif field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING:
            raise ValueError(f"{field.name} is missing")
    return cls(**values)
