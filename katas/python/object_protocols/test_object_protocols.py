"""Tests for the object drills: descriptor, slots, eq/hash contract, cooperative multiple inheritance."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from .object_protocols import App, Handler, Logging, Point, Product, Typed

PROPERTY = settings(
    max_examples=150, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow]
)


# --- the descriptor ------------------------------------------------------------------------


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
    assert (cake.name, cake.price) == ("cake", 400)


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


def test_wrong_types_and_values_are_refused_with_the_attribute_name() -> None:
    item = Product("tea", 250)
    with pytest.raises(TypeError, match="price"):
        item.price = 2.5
    with pytest.raises(ValueError, match="price"):
        item.price = -1
    with pytest.raises(ValueError, match="name"):
        Product("", 1)
    with pytest.raises(TypeError, match="name"):
        Product(42, 1)  # type: ignore[arg-type]
    assert item.price == 250, "a refused assignment must keep the old value"


def test_an_attribute_that_was_never_set_is_an_attribute_error() -> None:
    class Order:
        quantity = Typed(int)

    order = Order()
    with pytest.raises(AttributeError, match="quantity"):
        order.quantity  # noqa: B018
    order.quantity = 3
    assert order.quantity == 3 and Order().__dict__ == {}


# --- slots and the eq/hash contract -------------------------------------------------------------


def test_points_are_slotted() -> None:
    p = Point(1, 2)
    assert not hasattr(p, "__dict__"), "Point instances still have a __dict__: declare __slots__"
    with pytest.raises(AttributeError):
        p.z = 3  # type: ignore[attr-defined]
    assert (p.x, p.y) == (1, 2)


def test_equal_points_hash_alike() -> None:
    a, b = Point(3, 4), Point(3, 4)
    assert a == b and not (a != b) and a != Point(4, 3)  # noqa: SIM202 - != is checked too
    try:
        seen = {a, b}
    except TypeError as exc:
        pytest.fail(
            f"Point is unhashable ({exc}): defining __eq__ sets __hash__ to None; define "
            "__hash__ as hash((self.x, self.y))"
        )
    assert len(seen) == 1, "equal points must land in one set slot: a == b implies hash(a) == hash(b)"
    assert {a: "here"}[b] == "here"


def test_comparing_with_another_type_is_not_implemented() -> None:
    p = Point(1, 2)
    got = p.__eq__((1, 2))
    assert got is NotImplemented, (
        f"Point.__eq__((1, 2)) returned {got!r}: return NotImplemented for other types, so "
        "Python can ask the other operand (and == falls back to identity)"
    )
    assert p != (1, 2) and p in [None, "x", Point(1, 2)]


@PROPERTY
@given(st.integers(-3, 3), st.integers(-3, 3), st.integers(-3, 3), st.integers(-3, 3))
def test_eq_and_hash_agree_with_the_coordinates(x1: int, y1: int, x2: int, y2: int) -> None:
    a, b = Point(x1, y1), Point(x2, y2)
    assert (a == b) == ((x1, y1) == (x2, y2)), f"{a!r} == {b!r} should be {(x1, y1) == (x2, y2)}"
    if a == b:
        assert hash(a) == hash(b), f"{a!r} == {b!r} but their hashes differ"


# --- cooperative multiple inheritance --------------------------------------------------------------


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
    assert (app.token, app.prefix, app.size) == ("t0k3n", "[app]", 128)


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


def test_handle_visits_every_layer_once_in_mro_order() -> None:
    app = App(token="t", prefix="p", size=1)
    assert [c.__name__ for c in App.__mro__] == ["App", "Auth", "Logging", "Cache", "Handler", "object"]
    got = app.handle("GET /")
    assert got == ["Auth", "Logging", "Cache", "Handler"], (
        f"got {got}: each handle() adds its name and calls super().handle(request), which follows "
        "the MRO; Handler.handle(self, ...) by name skips the layers in between"
    )
    assert Logging(prefix="p").handle("x") == ["Logging", "Handler"]


def test_unknown_or_missing_keywords_are_type_errors() -> None:
    with pytest.raises(TypeError, match="colour"):
        App(token="t", prefix="p", size=1, colour="red")
    with pytest.raises(TypeError):
        App(token="t", prefix="p")  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="oops"):
        Handler(oops=1)
