"""Tests for the object drills: descriptor, slots, eq/hash contract, cooperative multiple inheritance."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from .object_protocols import App, Auth, Cache, Handler, Logging, Point, Product, Typed

PROPERTY = settings(
    max_examples=150, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow]
)


def refused(error: type[Exception], action: Callable[[], object], naming: str, because: str) -> None:
    """`action()` must raise `error` with `naming` in its message; else fail, saying `because`."""
    try:
        action()
    except error as exc:
        assert naming in str(exc), f"{exc!r} doesn't name {naming!r}: {because}"
    except Exception as exc:  # any other exception is the wrong answer
        pytest.fail(f"raised {exc!r}, not a {error.__name__}: {because}")
    else:
        pytest.fail(f"no {error.__name__} was raised: {because}")


# --- the descriptor ------------------------------------------------------------------------


@pytest.mark.stage(1, "the descriptor")
def test_each_instance_keeps_its_own_value() -> None:
    tea = Product("tea", 250)
    assert (tea.name, tea.price) == ("tea", 250), (
        f"got name={tea.name!r}, price={tea.price!r}: each Typed needs its own storage key; "
        "learn the attribute name in __set_name__"
    )
    cake = Product("cake", 400)
    assert (tea.name, tea.price) == ("tea", 250), (
        f"creating a second Product changed the first one to {(tea.name, tea.price)}: the value "
        "is stored on the descriptor, which is one object shared by every instance; store it in "
        "instance.__dict__"
    )
    assert (cake.name, cake.price) == ("cake", 400), f"the second product reads {(cake.name, cake.price)}"


@pytest.mark.stage(1, "the descriptor")
def test_the_smallest_legal_values_are_accepted() -> None:
    item = Product("x", 0)
    assert (item.name, item.price) == ("x", 0), (
        f"Product('x', 0) reads {(item.name, item.price)}: a one-letter name is non-empty and a "
        "price of 0 is >= 0; check the boundaries of the checks (len(s) > 0, n >= 0)"
    )


@pytest.mark.stage(1, "the descriptor")
def test_without_a_check_only_the_type_is_checked() -> None:
    class Meter(int):
        """An int subclass: isinstance(Meter(3), int) holds."""

    class Room:
        width = Typed(int)

    room = Room()
    room.width = -7  # no check: any int will do
    assert room.width == -7, f"Typed(int) without a check refused or lost -7: read {room.width!r}"
    room.width = Meter(3)
    assert room.width == 3, "an instance of a subclass of kind is an instance of kind (isinstance)"
    refused(TypeError, lambda: setattr(room, "width", "3"), "width",
            "a str is not an int: __set__ raises TypeError naming the attribute")


@pytest.mark.stage(1, "the descriptor")
def test_reading_on_the_class_gives_the_descriptor_itself() -> None:
    try:
        attribute = Product.price
    except AttributeError as exc:
        pytest.fail(f"Product.price raised {exc!r}: when instance is None, return the descriptor itself")
    assert isinstance(attribute, Typed), (
        f"Product.price is {attribute!r}: on the class, __get__ gets instance=None and should "
        "return the descriptor itself"
    )
    assert attribute.name == "price", "__set_name__ tells the descriptor its attribute name"


@pytest.mark.stage(2, "refusing bad values")
def test_wrong_types_and_values_are_refused_with_the_attribute_name() -> None:
    item = Product("tea", 250)
    refused(TypeError, lambda: setattr(item, "price", 2.5), "price",
            "price = 2.5: not an int, so a TypeError that names the attribute (self.name, "
            "learned in __set_name__)")
    refused(ValueError, lambda: setattr(item, "price", -1), "price",
            "price = -1: an int the check refuses, so a ValueError that names the attribute")
    refused(ValueError, lambda: Product("", 1), "name",
            "Product('', 1): an empty name is refused by its check, a ValueError naming it; "
            "__init__ must assign through the descriptors")
    refused(TypeError, lambda: Product(42, 1), "name",  # type: ignore[arg-type]
            "Product(42, 1): a name that is not a str is a TypeError naming it")
    refused(ValueError, lambda: setattr(item, "name", ""), "name",
            "name = '': refused by the check on assignment too, not only in __init__")
    assert (item.name, item.price) == ("tea", 250), (
        f"after refused assignments the product reads {(item.name, item.price)}: validate first, "
        "store only a value that passed"
    )


@pytest.mark.stage(2, "refusing bad values")
def test_the_type_is_checked_before_the_value() -> None:
    item = Product("tea", 250)
    try:
        item.price = "5"  # type: ignore[assignment]
    except TypeError as exc:
        assert "price" in str(exc), (
            f"price = '5' raised {exc!r}, which doesn't name the attribute: check the type "
            "first; the check n >= 0 on a string fails with Python's own TypeError, which doesn't"
        )
    else:
        pytest.fail("price = '5' was accepted: a str is not an int, a TypeError naming price")
    assert item.price == 250, "a refused assignment must keep the old value"


@pytest.mark.stage(2, "refusing bad values")
def test_an_attribute_that_was_never_set_is_an_attribute_error() -> None:
    class Order:
        quantity = Typed(int)

    order = Order()
    unset = ("reading an attribute that was never set is an AttributeError naming it, as for any "
             "missing attribute: turn the KeyError of the missing entry into one, don't return None")
    refused(AttributeError, lambda: order.quantity, "quantity", unset)
    refused(TypeError, lambda: setattr(order, "quantity", "three"), "quantity",
            "quantity = 'three' is not an int")
    refused(AttributeError, lambda: order.quantity, "quantity",
            "a refused first assignment must leave the attribute unset; " + unset)
    order.quantity = 3
    assert order.quantity == 3, f"after quantity = 3 it reads {order.quantity!r}"
    refused(AttributeError, lambda: Order().quantity, "quantity",
            "another Order never had its quantity set: values belong to instances; " + unset)


# --- slots and the eq/hash contract -------------------------------------------------------------


@pytest.mark.stage(3, "slots, eq and hash")
def test_points_are_slotted() -> None:
    p = Point(1, 2)
    assert not hasattr(p, "__dict__"), "Point instances still have a __dict__: declare __slots__"
    with pytest.raises(AttributeError):
        p.z = 3  # type: ignore[attr-defined]
    assert (p.x, p.y) == (1, 2), f"Point(1, 2) reads x={p.x!r}, y={p.y!r}"
    assert repr(p) == "Point(1, 2)", f"repr is {repr(p)!r}: keep the stub's __repr__"


@pytest.mark.stage(3, "slots, eq and hash")
def test_equal_points_hash_alike() -> None:
    a, b = Point(3, 4), Point(3, 4)
    assert a == b and not (a != b) and a != Point(4, 3), (  # noqa: SIM202 - != is checked too
        "Point(3, 4) equals Point(3, 4) and no other point: == compares (x, y)"
    )
    try:
        seen = {a, b}
    except TypeError as exc:
        pytest.fail(
            f"Point is unhashable ({exc}): defining __eq__ sets __hash__ to None; define "
            "__hash__ as hash((self.x, self.y))"
        )
    assert len(seen) == 1, "equal points must land in one set slot: a == b implies hash(a) == hash(b)"
    assert {a: "here"}[b] == "here", "an equal point finds the entry another one made in a dict"


@pytest.mark.stage(3, "slots, eq and hash")
def test_comparing_with_another_type_is_not_implemented() -> None:
    p = Point(1, 2)
    got = p.__eq__((1, 2))
    assert got is NotImplemented, (
        f"Point.__eq__((1, 2)) returned {got!r}: return NotImplemented for other types, so "
        "Python can ask the other operand (and == falls back to identity)"
    )
    assert p != (1, 2) and (1, 2) != p and p in [None, "x", Point(1, 2)], (  # noqa: SIM300
        "a Point is not equal to a tuple either way round, and `in` a mixed list still finds it"
    )

    class Wildcard:
        """Equal to everything: it only gets asked if Point.__eq__ returns NotImplemented."""

        def __eq__(self, other: object) -> bool:
            return True

        __hash__ = object.__hash__

    assert p == Wildcard(), (
        "Point(1, 2) == Wildcard() is False, but Wildcard.__eq__ says True: returning False "
        "(instead of NotImplemented) for a non-Point stops Python from asking the other operand"
    )


@pytest.mark.stage(3, "slots, eq and hash")
@PROPERTY
@given(st.integers(-3, 3), st.integers(-3, 3), st.integers(-3, 3), st.integers(-3, 3))
def test_eq_and_hash_agree_with_the_coordinates(x1: int, y1: int, x2: int, y2: int) -> None:
    a, b = Point(x1, y1), Point(x2, y2)
    assert (a == b) == ((x1, y1) == (x2, y2)), f"{a!r} == {b!r} should be {(x1, y1) == (x2, y2)}"
    if a == b:
        assert hash(a) == hash(b), f"{a!r} == {b!r} but their hashes differ"


# --- cooperative multiple inheritance --------------------------------------------------------------


@pytest.mark.stage(4, "cooperative inheritance")
def test_every_layer_initialises_exactly_once() -> None:
    try:
        app = App(token="t0k3n", prefix="[app]", size=128)
    except TypeError as exc:
        pytest.fail(
            f"App(token=..., prefix=..., size=...) raised {exc!r}: each __init__ takes its own "
            "keyword and passes **kwargs on with super().__init__(**kwargs)"
        )
    missing = [a for a in ("token", "prefix", "size") if not hasattr(app, a)]
    assert not missing, (
        f"App has no {missing}: some __init__ never ran. super() means the next class in the MRO "
        f"of type(self) ({' -> '.join(c.__name__ for c in App.__mro__)}), not the base class: "
        "calling Handler.__init__(self) directly skips the layers in between"
    )
    assert (app.token, app.prefix, app.size) == ("t0k3n", "[app]", 128), (
        f"App(token='t0k3n', prefix='[app]', size=128) holds {(app.token, app.prefix, app.size)}: "
        "each layer keeps its own keyword"
    )


@pytest.mark.stage(4, "cooperative inheritance")
def test_the_shared_root_runs_once_in_the_diamond(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[dict[str, Any]] = []
    original = Handler.__init__

    def counting_init(self: Handler, **kwargs: Any) -> None:  # observes, then runs the real one
        calls.append(kwargs)
        original(self, **kwargs)

    monkeypatch.setattr(Handler, "__init__", counting_init)
    App(token="t", prefix="p", size=1)
    assert calls == [{}], (
        f"Handler.__init__ ran {len(calls)} times (with {calls}) for one App: each layer calls "
        "super().__init__ once, and the MRO visits every class once. Calling each base's "
        "__init__ by name runs the shared root again for every branch"
    )


@pytest.mark.stage(4, "cooperative inheritance")
def test_handle_visits_every_layer_once_in_mro_order() -> None:
    app = App(token="t", prefix="p", size=1)
    assert [c.__name__ for c in App.__mro__] == ["App", "Auth", "Logging", "Cache", "Handler", "object"]
    got = app.handle("GET /")
    assert got == ["Auth", "Logging", "Cache", "Handler"], (
        f"got {got}: each handle() adds its name and calls super().handle(request), which follows "
        "the MRO; Handler.handle(self, ...) by name skips the layers in between"
    )
    got = Logging(prefix="p").handle("x")
    assert got == ["Logging", "Handler"], f"a Logging alone handles as {got}: itself, then the root"
    assert Handler().handle("x") == ["Handler"], "the root alone answers ['Handler']"


@pytest.mark.stage(4, "cooperative inheritance")
def test_any_order_of_the_layers_is_followed() -> None:
    class Reversed(Cache, Logging, Auth):
        """Another diamond over the same layers: nothing may assume App's order."""

    app = Reversed(size=2, prefix="p", token="t")
    assert (app.token, app.prefix, app.size) == ("t", "p", 2), (
        "Reversed(Cache, Logging, Auth) lost a keyword: each layer takes only its own and "
        "passes **kwargs on with super().__init__(**kwargs)"
    )
    got = app.handle("GET /")
    assert got == ["Cache", "Logging", "Auth", "Handler"], (
        f"Reversed(Cache, Logging, Auth).handle() gave {got}: super() follows the MRO of "
        "type(self), so no layer may name the class that comes next"
    )
    only_auth = Auth(token="t")
    assert (only_auth.token, only_auth.handle("x")) == ("t", ["Auth", "Handler"]), (
        "an Auth alone keeps its token and handles as ['Auth', 'Handler']"
    )


@pytest.mark.stage(4, "cooperative inheritance")
def test_unknown_or_missing_keywords_are_type_errors() -> None:
    App(token="t", prefix="p", size=1)  # the right keywords are accepted
    with pytest.raises(TypeError):
        App(token="t", prefix="p")  # type: ignore[call-arg]
    cases: list[tuple[Callable[[], object], list[str]]] = [
        (lambda: App(token="t", prefix="p", size=1, colour="red"), ["colour"]),
        (lambda: App(token="t", prefix="p", size=1, colour="red", shape="round"), ["colour", "shape"]),
        (lambda: Handler(oops=1), ["oops"]),
        (lambda: Logging(prefix="p", token="t"), ["token"]),  # not a Logging keyword
    ]
    for make, names in cases:
        with pytest.raises(TypeError) as caught:
            make()
        missing = [name for name in names if name not in str(caught.value)]
        assert not missing, (
            f"the TypeError {caught.value!r} doesn't name {missing}: the root refuses the "
            "leftover keywords by name (if kwargs: raise TypeError(...names...)); letting "
            "object.__init__ refuse them says only that it takes no arguments"
        )
