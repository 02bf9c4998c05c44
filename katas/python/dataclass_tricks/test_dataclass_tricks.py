"""Tests for the dataclass drills: immutability, hashing, slots, sort keys, defaults, kw_only."""

from __future__ import annotations

import datetime
from dataclasses import FrozenInstanceError, replace

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from .dataclass_tricks import Config, Money, Task

# deadline=None and no too_slow health check: a loaded machine must not turn slowness into a failure.
PROPERTY = settings(
    max_examples=150, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow]
)

# Few distinct values, so that ties on priority, due and title happen often.
tasks = st.builds(
    Task,
    priority=st.integers(0, 4),
    due=st.dates(datetime.date(2024, 1, 1), datetime.date(2024, 1, 3)),
    title=st.sampled_from(["alpha", "beta", "gamma"]),
    tags=st.lists(st.sampled_from(["ops", "bug", "idea"]), max_size=3),
)


def key(task: Task) -> tuple[int, datetime.date, str]:
    """The intended sort key."""
    return (task.priority, task.due, task.title)


DAY = datetime.date(2024, 5, 1)


# --- Money: a frozen, hashable, slotted value object ---------------------------------------


def test_money_cannot_be_changed_after_creation() -> None:
    price = Money(250, "EUR")
    with pytest.raises(FrozenInstanceError):
        price.amount = 999  # type: ignore[misc]
    assert price.amount == 250, "a refused assignment must leave the value as it was"


def test_equal_money_values_hash_alike_and_work_as_dict_keys() -> None:
    a, b = Money(250, "EUR"), Money(250, "EUR")
    try:
        prices = {a: "coffee"}
    except TypeError as exc:
        pytest.fail(
            f"Money is not hashable ({exc}): a dataclass with eq=True and not frozen gets "
            "__hash__ = None; frozen=True makes dataclass generate __hash__ from the fields"
        )
    assert a == b and a is not b
    assert hash(a) == hash(b), "equal values must have equal hashes"
    assert prices[b] == "coffee"
    assert len({a, b, Money(250, "USD")}) == 2


def test_money_has_slots_and_no_instance_dict() -> None:
    price = Money(1, "EUR")
    assert not hasattr(price, "__dict__"), (
        "Money instances still have a __dict__: use @dataclass(slots=True), which generates "
        "__slots__ = ('amount', 'currency') (smaller objects, faster attribute access)"
    )
    assert tuple(type(price).__slots__) == ("amount", "currency")


def test_money_normalises_the_currency_even_though_it_is_frozen() -> None:
    price = Money(5, "eur")
    assert price.currency == "EUR", (
        f"got currency {price.currency!r}: upper-case it in __post_init__; a frozen instance "
        "refuses self.x = ..., use object.__setattr__(self, 'currency', ...)"
    )
    assert price == Money(5, "EUR")


@pytest.mark.parametrize(
    ("amount", "currency", "error"),
    [
        (1.5, "EUR", TypeError),  # money in floats: 0.1 + 0.2 != 0.3
        (True, "EUR", TypeError),  # bool is a subclass of int, and still not an amount
        ("100", "EUR", TypeError),
        (100, "EURO", ValueError),
        (100, "E1R", ValueError),
        (100, "", ValueError),
        (100, "ÉUR", ValueError),
    ],
)
def test_money_rejects_bad_values_in_post_init(amount: object, currency: str, error: type) -> None:
    with pytest.raises(error):
        Money(amount, currency)  # type: ignore[arg-type]


def test_add_returns_a_new_value_and_replace_validates_again() -> None:
    a = Money(250, "EUR")
    total = a.add(Money(100, "eur"))
    assert total == Money(350, "EUR")
    assert a == Money(250, "EUR"), "add() must not change self"
    with pytest.raises(ValueError, match=r"(?i)usd|eur|currenc"):
        a.add(Money(1, "USD"))
    # replace() goes through __init__, hence through __post_init__: no way to smuggle bad values
    with pytest.raises(ValueError):
        replace(a, currency="dollars")


# --- Task: order=True with a shaped sort key ----------------------------------------------


@PROPERTY
@given(st.lists(tasks, max_size=12))
def test_sorted_tasks_follow_priority_then_due_then_title(items: list[Task]) -> None:
    got = [key(t) for t in sorted(items)]
    want = sorted(key(t) for t in items)
    assert got == want, (
        "sorted(tasks) must follow the sort key (priority, due, title): order=True compares "
        "the fields as a tuple in declaration order, skipping compare=False fields"
    )


@PROPERTY
@given(tasks, tasks)
def test_comparisons_agree_with_the_key_and_ignore_tags(a: Task, b: Task) -> None:
    ka, kb = key(a), key(b)
    if ka == kb:
        assert a == b and not a < b and not b < a, (
            f"{a!r} and {b!r} differ only in tags, so they must compare equal: declare tags "
            "with field(default_factory=list, compare=False)"
        )
    assert (a < b) == (ka < kb), f"{a!r} < {b!r} disagrees with the sort key (priority, due, title)"
    assert (a <= b) == (ka <= kb), f"{a!r} <= {b!r} disagrees with the sort key"
    assert (a == b) == (ka == kb), f"{a!r} == {b!r} disagrees with the sort key"


def test_tasks_that_share_a_key_keep_input_order_when_sorted() -> None:
    """sorted() is stable: equal keys keep their order, which is what makes tags harmless."""
    first = Task(1, DAY, "deploy", ["zzz"])
    second = Task(1, DAY, "deploy", ["aaa"])
    assert sorted([first, second])[0] is first, "tags must not be part of the sort key"


def test_each_task_gets_its_own_tags_list() -> None:
    a, b = Task(0, DAY, "a"), Task(0, DAY, "b")
    a.tags.append("urgent")
    assert b.tags == [], (
        f"a new task has tags {b.tags!r} after another task's tags changed: the default list is "
        "shared; use field(default_factory=list) so each task gets a fresh one"
    )
    assert isinstance(a.tags, list)


def test_a_mutable_task_is_not_hashable() -> None:
    task = Task(3, DAY, "refactor")
    with pytest.raises(TypeError, match="unhashable"):
        hash(task)  # eq=True without frozen: __hash__ is None, as it should be


def test_task_rejects_an_unknown_priority() -> None:
    with pytest.raises(ValueError):
        Task(5, DAY, "too important")
    with pytest.raises(ValueError):
        Task(-1, DAY, "negative")


# --- Config: keyword-only and frozen ------------------------------------------------------


def test_config_takes_keywords_only() -> None:
    assert Config(host="db", port=5432) == Config(host="db", port=5432)
    try:
        accepted = Config("db", 5432)  # type: ignore[misc]
    except TypeError as exc:
        assert "positional" in str(exc), (
            f"expected a TypeError about positional arguments, got {exc!r}: "
            "@dataclass(kw_only=True) makes every field keyword-only"
        )
    else:
        pytest.fail(
            f"Config('db', 5432) was accepted as {accepted!r}: arguments must be keywords only, "
            "so a swapped host and port can't slip through; use @dataclass(kw_only=True)"
        )


def test_config_requires_host_and_has_defaults() -> None:
    config = Config(host="db")
    assert (config.port, config.debug) == (8080, False)
    with pytest.raises(TypeError):
        Config()  # type: ignore[call-arg]


def test_with_port_returns_a_validated_copy() -> None:
    config = Config(host="db", debug=True)
    moved = config.with_port(5432)
    assert moved == Config(host="db", port=5432, debug=True)
    assert config.port == 8080, "with_port() must not change the original"
    with pytest.raises(ValueError):
        config.with_port(0)
    with pytest.raises(ValueError):
        Config(host="db", port=70000)


def test_config_is_frozen_and_hashable() -> None:
    config = Config(host="db")
    with pytest.raises(FrozenInstanceError):
        config.port = 1  # type: ignore[misc]
    assert len({config, Config(host="db")}) == 1
