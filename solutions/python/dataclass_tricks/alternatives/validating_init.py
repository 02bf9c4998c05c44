"""Dataclass drills: frozen and hashable, a shaped sort key, default_factory, validation, kw_only."""

from __future__ import annotations

import datetime
import string
from dataclasses import dataclass, field, replace

CURRENCY_LETTERS = 3
PRIORITIES = range(5)  # P0 (drop everything) .. P4 (some day)
PORTS = range(1, 65536)


# frozen=True makes assignment raise FrozenInstanceError, and together with eq=True (the default)
# makes dataclass generate __hash__ from the fields; slots=True drops the per-instance __dict__.
@dataclass(frozen=True, slots=True, init=False)
class Money:
    """An amount in minor units (cents) of an ISO-4217-style currency; a value, like an int.

    >>> Money(250, "eur")
    Money(amount=250, currency='EUR')
    >>> Money(250, "EUR") in {Money(250, "EUR")}
    True
    """

    amount: int
    currency: str

    def __init__(self, amount: int, currency: str) -> None:
        """Validate first, then set: a TypeError for a non-int amount (bool included), a
        ValueError for a currency that is not 3 ASCII letters; the currency upper-cased."""
        if isinstance(amount, bool) or not isinstance(amount, int):
            raise TypeError(f"amount must be an int of minor units, got {amount!r}")
        if not isinstance(currency, str) or len(currency) != CURRENCY_LETTERS:
            raise ValueError(f"currency must be 3 ASCII letters, got {currency!r}")
        if not all(c in string.ascii_letters for c in currency):
            raise ValueError(f"currency must be 3 ASCII letters, got {currency!r}")
        # frozen: the generated __setattr__ refuses; object.__setattr__ is the way in.
        object.__setattr__(self, "amount", amount)
        object.__setattr__(self, "currency", currency.upper())

    def add(self, other: Money) -> Money:
        """A new Money with the sum; ValueError if the currencies differ. `self` is unchanged."""
        if other.currency != self.currency:
            raise ValueError(f"cannot add {other.currency} to {self.currency}")
        # replace() builds a new instance through __init__, so validation runs on the result too.
        return replace(self, amount=self.amount + other.amount)


# order=True generates <, <=, >, >= comparing the fields as a tuple, in declaration order, skipping
# fields with compare=False (which also leave __eq__). Not frozen + eq=True sets __hash__ to None:
# a mutable object must not be hashable, or it could get lost in a set after a change.
@dataclass(order=True)
class Task:
    """A to-do item. Tasks sort by priority (0 first), then due date, then title; `tags` play
    no part in ordering or equality, and each task gets its own fresh tags list by default.

    >>> sorted([Task(2, datetime.date(2024, 1, 1), "b"), Task(0, datetime.date(2025, 1, 1), "a")])[0].title
    'a'
    """

    priority: int
    due: datetime.date
    title: str
    # `tags: list[str] = []` is refused by dataclass (ValueError: mutable default): a default is
    # evaluated once, so every task would share one list. default_factory calls list() per task.
    tags: list[str] = field(default_factory=list, compare=False)

    def __post_init__(self) -> None:
        """ValueError unless priority is in PRIORITIES (0..4)."""
        if not 0 <= self.priority <= 4:
            raise ValueError(f"priority must be 0..4, got {self.priority!r}")


# kw_only=True makes every field keyword-only in __init__ (and lets a required field follow one
# with a default); frozen so that "changing" a Config means replace(), which re-validates.
@dataclass(frozen=True, init=False)
class Config:
    """Server settings. Only keywords are accepted: `Config(host="db", port=5432)`; `Config("db",
    5432)` is a TypeError. `host` is required, the rest have defaults.

    >>> Config(host="db").with_port(5432).port
    5432
    """

    host: str
    port: int = 8080
    debug: bool = False

    def __init__(self, *, host: str, port: int = 8080, debug: bool = False) -> None:
        """The bare `*` makes every parameter keyword-only; the port is checked before it is set."""
        if not 1 <= port <= 65535:
            raise ValueError(f"port must be 1..65535, got {port!r}")
        object.__setattr__(self, "host", host)
        object.__setattr__(self, "port", port)
        object.__setattr__(self, "debug", debug)

    def with_port(self, port: int) -> Config:
        """A copy with another port, validated like a new Config; `self` is unchanged."""
        return replace(self, port=port)
