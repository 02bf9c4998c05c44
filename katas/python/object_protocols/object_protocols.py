"""Object drills: a validating descriptor, __slots__, the __eq__/__hash__ contract, cooperative super()."""

from __future__ import annotations

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
        self.name = ""  # TODO: learn the attribute's name when the owner class is created

    # TODO: __set_name__(self, owner, name)

    def __get__(self, instance: object | None, owner: type | None = None) -> Any:
        # TODO: the descriptor itself when read on the class; else this instance's value.
        raise NotImplementedError("Typed.__get__")

    def __set__(self, instance: object, value: Any) -> None:
        # TODO: validate, then store per instance (not on the descriptor: it is shared).
        raise NotImplementedError("Typed.__set__")


class Product:
    """Uses Typed: name is a non-empty str, price a non-negative int (cents)."""

    # TODO: name = Typed(...), price = Typed(...)

    def __init__(self, name: str, price: int) -> None:
        # TODO: assign through the descriptors.
        raise NotImplementedError("Product.__init__")


class Point:
    """An immutable-by-convention 2-D point with slots and value semantics: equal when x and y
    are; hash consistent with ==; no __dict__. Comparing with anything else is NotImplemented.

    >>> Point(1, 2) == Point(1, 2), len({Point(1, 2), Point(1, 2)})
    (True, 1)
    """

    # TODO: __slots__

    def __init__(self, x: int, y: int) -> None:
        # TODO
        raise NotImplementedError("Point.__init__")

    def __eq__(self, other: object) -> bool:
        # TODO: equal to another Point with the same x and y; NotImplemented for other types.
        raise NotImplementedError("Point.__eq__")

    # TODO: __hash__ (defining __eq__ alone sets __hash__ to None)

    def __repr__(self) -> str:
        return f"Point({self.x}, {self.y})"


# --- cooperative multiple inheritance ------------------------------------------------------


class Handler:
    """The root of a cooperative chain. Each layer's __init__ takes its own keyword arguments and
    passes the rest along with super(); whatever reaches Handler is a TypeError that names each
    leftover keyword (a typo in App(..., colour=...) must be findable). handle() returns
    the names of the layers that saw the request, in MRO order, ending with "Handler"."""

    def __init__(self, **kwargs: Any) -> None:
        # TODO: the end of the chain: leftovers are a TypeError naming them.
        raise NotImplementedError("Handler.__init__")

    def handle(self, request: str) -> list[str]:
        # TODO
        raise NotImplementedError("Handler.handle")


class Auth(Handler):
    """Keeps `token`; handle() adds "Auth" and passes the request on."""

    def __init__(self, *, token: str, **kwargs: Any) -> None:
        # TODO
        raise NotImplementedError("Auth.__init__")

    def handle(self, request: str) -> list[str]:
        # TODO
        raise NotImplementedError("Auth.handle")


class Logging(Handler):
    """Keeps `prefix`; handle() adds "Logging" and passes the request on."""

    def __init__(self, *, prefix: str, **kwargs: Any) -> None:
        # TODO
        raise NotImplementedError("Logging.__init__")

    def handle(self, request: str) -> list[str]:
        # TODO
        raise NotImplementedError("Logging.handle")


class Cache(Handler):
    """Keeps `size`; handle() adds "Cache" and passes the request on."""

    def __init__(self, *, size: int, **kwargs: Any) -> None:
        # TODO
        raise NotImplementedError("Cache.__init__")

    def handle(self, request: str) -> list[str]:
        # TODO
        raise NotImplementedError("Cache.handle")


class App(Auth, Logging, Cache):
    """A diamond: three layers over one Handler. App(token=..., prefix=..., size=...) must run
    every __init__ exactly once, and handle() must visit every layer exactly once."""
