"""Dataclass drills: frozen and hashable, a shaped sort key, default_factory, validation, kw_only."""

from __future__ import annotations

import datetime
from dataclasses import KW_ONLY, dataclass, field, replace

CURRENCY_LETTERS = 3
PRIORITIES = range(5)  # P0 (drop everything) .. P4 (some day)
PORTS = range(1, 65536)


# frozen=True makes assignment raise FrozenInstanceError, and together with eq=True (the default)
# makes dataclass generate __hash__ from the fields; slots=True drops the per-instance __dict__.
@dataclass(frozen=True, slots=True)
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
        # bool is a subclass of int, so it needs its own check.
        if not isinstance(self.amount, int) or isinstance(self.amount, bool):
            raise TypeError(f"amount must be an int of minor units, got {self.amount!r}")
        code = self.currency
        if not (isinstance(code, str) and len(code) == CURRENCY_LETTERS
                and code.isascii() and code.isalpha()):
            raise ValueError(f"currency must be 3 ASCII letters, got {code!r}")
        # self.currency = ... would raise FrozenInstanceError: the generated __setattr__ refuses
        # every assignment. object.__setattr__ is the documented way round it inside __post_init__.
        object.__setattr__(self, "currency", code.upper())

    def add(self, other: Money) -> Money:
        """A new Money with the sum; ValueError if the currencies differ. `self` is unchanged."""
        if other.currency != self.currency:
            raise ValueError(f"cannot add {other.currency} to {self.currency}")
        # A new instance through the constructor: __post_init__ validates the sum as well.
        return Money(self.amount + other.amount, self.currency)


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

    # The sort key as a computed first field; every other field is left out of comparisons, so
    # `<` and `==` see (priority, due, title) and nothing else, whatever the declaration order.
    sort_index: tuple[int, datetime.date, str] = field(init=False, repr=False)
    priority: int = field(compare=False)
    due: datetime.date = field(compare=False)
    title: str = field(compare=False)
    tags: list[str] = field(default_factory=list, compare=False)

    def __post_init__(self) -> None:
        """ValueError unless priority is in PRIORITIES (0..4)."""
        if self.priority not in PRIORITIES:
            raise ValueError(f"priority must be 0..4, got {self.priority!r}")
        self.sort_index = (self.priority, self.due, self.title)


# kw_only=True makes every field keyword-only in __init__ (and lets a required field follow one
# with a default); frozen so that "changing" a Config means replace(), which re-validates.
@dataclass(frozen=True)
class Config:
    """Server settings. Only keywords are accepted: `Config(host="db", port=5432)`; `Config("db",
    5432)` is a TypeError. `host` is required, the rest have defaults.

    >>> Config(host="db").with_port(5432).port
    5432
    """

    _: KW_ONLY  # every field after the marker is keyword-only
    host: str
    port: int = 8080
    debug: bool = False

    def __post_init__(self) -> None:
        """ValueError unless port is in PORTS (1..65535)."""
        if self.port not in PORTS:
            raise ValueError(f"port must be 1..65535, got {self.port!r}")

    def with_port(self, port: int) -> Config:
        """A copy with another port, validated like a new Config; `self` is unchanged."""
        return replace(self, port=port)
