"""Dataclass drills: frozen and hashable, a shaped sort key, default_factory, validation, kw_only."""

from __future__ import annotations

import datetime
from dataclasses import dataclass

CURRENCY_LETTERS = 3
PRIORITIES = range(5)  # P0 (drop everything) .. P4 (some day)
PORTS = range(1, 65536)


@dataclass  # TODO: immutable (FrozenInstanceError on assignment), hashable, no __dict__ (slots)
class Money:
    """An amount in minor units (cents) of an ISO-4217-style currency; a value, like an int.

    >>> Money(250, "eur")
    Money(amount=250, currency='EUR')
    >>> Money(250, "EUR") in {Money(250, "EUR")}
    True
    """

    amount: int
    currency: str

    def __post_init__(self) -> None:
        """Reject a non-int amount (TypeError; bool is not an amount either) and a currency that
        is not 3 ASCII letters (ValueError); store the currency upper-cased."""
        # TODO: validate, then normalise the currency (mind that the instance is frozen).
        raise NotImplementedError("Money.__post_init__")

    def add(self, other: Money) -> Money:
        """A new Money with the sum; ValueError if the currencies differ. `self` is unchanged."""
        # TODO: build the result from self with dataclasses.replace.
        raise NotImplementedError("Money.add")


@dataclass  # TODO: sortable with <, sorted(); ordered by (priority, due, title) only
class Task:
    """A to-do item. Tasks sort by priority (0 first), then due date, then title; `tags` play
    no part in ordering or equality, and each task gets its own fresh tags list by default.

    >>> sorted([Task(2, datetime.date(2024, 1, 1), "b"), Task(0, datetime.date(2025, 1, 1), "a")])[0].title
    'a'
    """

    priority: int
    due: datetime.date
    title: str
    tags: list[str]  # TODO: default to a new empty list per task, and leave it out of comparisons

    def __post_init__(self) -> None:
        """ValueError unless priority is in PRIORITIES (0..4)."""
        # TODO: validate the priority.
        raise NotImplementedError("Task.__post_init__")


@dataclass  # TODO: immutable, and every argument keyword-only
class Config:
    """Server settings. Only keywords are accepted: `Config(host="db", port=5432)`; `Config("db",
    5432)` is a TypeError. `host` is required, the rest have defaults.

    >>> Config(host="db").with_port(5432).port
    5432
    """

    host: str
    port: int = 8080
    debug: bool = False

    def __post_init__(self) -> None:
        """ValueError unless port is in PORTS (1..65535)."""
        # TODO: validate the port.
        raise NotImplementedError("Config.__post_init__")

    def with_port(self, port: int) -> Config:
        """A copy with another port, validated like a new Config; `self` is unchanged."""
        # TODO: dataclasses.replace (it calls __init__, so __post_init__ runs again).
        raise NotImplementedError("Config.with_port")
