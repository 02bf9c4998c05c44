"""Object drills: a validating descriptor, __slots__, the __eq__/__hash__ contract, cooperative super()."""

from __future__ import annotations

import weakref
from collections.abc import Callable
from typing import Any


class Typed:
    """A data descriptor: an attribute that only accepts instances of `kind`, and values that
    `check` (if given) accepts. Wrong type: TypeError; rejected value: ValueError; both name the
    attribute; the type is checked first. Reading an attribute never set: AttributeError naming
    it. Read on the class: the descriptor.

    >>> class Product:
    ...     price = Typed(int, check=lambda v: v >= 0)
    >>> p = Product(); p.price = 5; p.price
    5
    """

    def __init__(self, kind: type, check: Callable[[Any], bool] | None = None) -> None:
        self.kind = kind
        self.check = check
        self.name = ""  # set by __set_name__ when the owner class body finishes
        # The values live on the descriptor, keyed by instance, held weakly: an instance that
        # goes away takes its value with it. (Needs hashable instances that allow weak refs.)
        self._values: weakref.WeakKeyDictionary[object, Any] = weakref.WeakKeyDictionary()

    def __set_name__(self, owner: type, name: str) -> None:
        # Called once per attribute by type.__new__ (3.6+): no need to repeat the name.
        self.name = name

    def __get__(self, instance: object | None, owner: type | None = None) -> Any:
        if instance is None:
            return self  # Product.price: the descriptor itself, so tools can inspect it
        try:
            return self._values[instance]
        except KeyError:
            raise AttributeError(f"{type(instance).__name__!r} object has no attribute "
                                 f"{self.name!r} yet") from None

    def __set__(self, instance: object, value: Any) -> None:
        if not isinstance(value, self.kind):
            raise TypeError(f"{self.name} must be {self.kind.__name__}, got {type(value).__name__}")
        if self.check is not None and not self.check(value):
            raise ValueError(f"{self.name}: {value!r} is not allowed")
        # One descriptor object serves every instance, so the value goes into the instance's own
        # __dict__. Under the same name is fine: a data descriptor (it has __set__) takes
        # precedence over the instance dict on lookup, so reads still come through __get__.
        self._values[instance] = value


class Product:
    """Uses Typed: name is a non-empty str, price a non-negative int (cents)."""

    name = Typed(str, check=lambda s: len(s) > 0)
    price = Typed(int, check=lambda n: n >= 0)

    def __init__(self, name: str, price: int) -> None:
        self.name = name  # goes through Typed.__set__: validation on construction too
        self.price = price


class Point:
    """An immutable-by-convention 2-D point with slots and value semantics: equal when x and y
    are; hash consistent with ==; no __dict__. Comparing with anything else is NotImplemented.

    >>> Point(1, 2) == Point(1, 2), len({Point(1, 2), Point(1, 2)})
    (True, 1)
    """

    # Fixed attribute storage: no per-instance __dict__ (less memory) and no typo'd attributes.
    __slots__ = ("x", "y")

    def __init__(self, x: int, y: int) -> None:
        self.x = x
        self.y = y

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Point):
            return self.x == other.x and self.y == other.y
        return NotImplemented

    def __hash__(self) -> int:
        # Defining __eq__ sets __hash__ to None; the contract is a == b implies hash(a) == hash(b),
        # so hash exactly the fields that == compares.
        return hash((Point, self.x, self.y))  # any hash of what == compares will do

    def __repr__(self) -> str:
        return f"Point({self.x}, {self.y})"


# --- cooperative multiple inheritance ------------------------------------------------------


class Handler:
    """The root of a cooperative chain. Each layer's __init__ takes its own keyword arguments and
    passes the rest along with super(); whatever reaches Handler is a TypeError that names each
    leftover keyword (a typo in App(..., colour=...) must be findable). handle() returns
    the names of the layers that saw the request, in MRO order, ending with "Handler"."""

    def __init__(self, **kwargs: Any) -> None:
        if kwargs:
            raise TypeError(f"unexpected keyword arguments: {', '.join(sorted(kwargs))}")
        super().__init__()  # object.__init__ takes no arguments: the chain ends here

    def handle(self, request: str) -> list[str]:
        return ["Handler"]


class Auth(Handler):
    """Keeps `token`; handle() adds "Auth" and passes the request on."""

    def __init__(self, *, token: str, **kwargs: Any) -> None:
        # super() is "the next class in the MRO of type(self)", not "my base class": in App it is
        # Logging, not Handler. Calling Handler.__init__(self) here would skip Logging and Cache.
        super().__init__(**kwargs)
        self.token = token

    def handle(self, request: str) -> list[str]:
        return ["Auth", *super().handle(request)]


class Logging(Handler):
    """Keeps `prefix`; handle() adds "Logging" and passes the request on."""

    def __init__(self, *, prefix: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.prefix = prefix

    def handle(self, request: str) -> list[str]:
        return ["Logging", *super().handle(request)]


class Cache(Handler):
    """Keeps `size`; handle() adds "Cache" and passes the request on."""

    def __init__(self, *, size: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.size = size

    def handle(self, request: str) -> list[str]:
        return ["Cache", *super().handle(request)]


class App(Auth, Logging, Cache):
    """A diamond: three layers over one Handler. App(token=..., prefix=..., size=...) must run
    every __init__ exactly once, and handle() must visit every layer exactly once."""
