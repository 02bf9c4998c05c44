"""Tests for the dataclass drills: immutability, hashing, slots, sort keys, defaults, kw_only."""

from __future__ import annotations

import datetime
from collections.abc import Callable
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


def refused(error: type[Exception] | tuple[type[Exception], ...], action: Callable[[], object],
            because: str) -> None:
    """`action()` must raise `error`; else fail, saying `because`."""
    try:
        action()
    except error:
        return
    except Exception as exc:  # any other exception is the wrong answer
        pytest.fail(f"raised {exc!r} instead: {because}")
    pytest.fail(f"accepted: {because}")


# --- Money: a frozen, hashable, slotted value object ---------------------------------------


@pytest.mark.stage(1, "a frozen money value")
@pytest.mark.parametrize(("field", "value"), [("amount", 999), ("currency", "USD")])
def test_money_cannot_be_changed_after_creation(field: str, value: object) -> None:
    price = Money(250, "EUR")
    with pytest.raises(FrozenInstanceError):
        setattr(price, field, value)  # the FrozenInstanceError that frozen=True raises
    assert price == Money(250, "EUR"), (
        f"price.{field} = {value!r} was refused, but the value changed to {price!r}: a refused "
        "assignment must leave the value as it was"
    )


@pytest.mark.stage(1, "a frozen money value")
def test_equal_money_values_hash_alike_and_work_as_dict_keys() -> None:
    a, b = Money(250, "EUR"), Money(250, "EUR")
    try:
        prices = {a: "coffee"}
    except TypeError as exc:
        pytest.fail(
            f"Money is not hashable ({exc}): a dataclass with eq=True and not frozen gets "
            "__hash__ = None; frozen=True makes dataclass generate __hash__ from the fields"
        )
    assert a == b and a is not b, "two Money(250, 'EUR') are equal values, and two objects"
    assert hash(a) == hash(b), "equal values must have equal hashes: hash from the fields"
    assert prices[b] == "coffee", "an equal Money finds the entry another one made in a dict"
    values = {a, b, Money(250, "USD"), Money(251, "EUR")}
    assert len(values) == 3, (
        f"the set {values} should hold 3 values: equality (and the hash) uses both the amount "
        "and the currency"
    )


@pytest.mark.stage(1, "a frozen money value")
def test_money_has_slots_and_no_instance_dict() -> None:
    price = Money(1, "EUR")
    assert not hasattr(price, "__dict__"), (
        "Money instances still have a __dict__: use @dataclass(slots=True), which generates "
        "__slots__ = ('amount', 'currency') (smaller objects, faster attribute access)"
    )
    assert tuple(type(price).__slots__) == ("amount", "currency"), (
        f"__slots__ is {type(price).__slots__!r}: exactly the two fields, in order"
    )


@pytest.mark.stage(1, "a frozen money value")
@pytest.mark.parametrize("given", ["eur", "Eur", "eUR", "EUR"])
def test_money_normalises_the_currency_even_though_it_is_frozen(given: str) -> None:
    price = Money(5, given)
    assert price.currency == "EUR", (
        f"Money(5, {given!r}).currency is {price.currency!r}: upper-case it in __post_init__; a "
        "frozen instance refuses self.x = ..., use object.__setattr__(self, 'currency', ...)"
    )
    assert price == Money(5, "EUR") and hash(price) == hash(Money(5, "EUR")), (
        "the stored, upper-cased currency is what equality and the hash see"
    )


@pytest.mark.stage(1, "a frozen money value")
@pytest.mark.parametrize("amount", [0, -250, 10**30])
def test_any_int_is_an_amount(amount: int) -> None:
    price = Money(amount, "JPY")
    assert (price.amount, price.currency) == (amount, "JPY"), (
        f"Money({amount}, 'JPY') holds {price!r}: zero, a negative amount (a refund) and a huge "
        "one are all ints, and ints are all an amount needs to be"
    )


@pytest.mark.stage(2, "refusing bad money")
@pytest.mark.parametrize(
    ("amount", "currency", "error", "why"),
    [
        (1.5, "EUR", TypeError, "money in floats: 0.1 + 0.2 != 0.3"),
        (100.0, "EUR", TypeError, "a whole float is still a float"),
        (True, "EUR", TypeError, "bool is a subclass of int, and still not an amount: "
                                 "check isinstance(amount, bool) too"),
        ("100", "EUR", TypeError, "a string of digits is not an int"),
        (None, "EUR", TypeError, "None is not an int"),
        (100, "EURO", ValueError, "4 letters"),
        (100, "EU", ValueError, "2 letters"),
        (100, "E1R", ValueError, "a digit is not a letter"),
        (100, "", ValueError, "no letters at all"),
        (100, "ÉUR", ValueError, "É is a letter, but not an ASCII one: str.isalpha() alone "
                                 "accepts it, add str.isascii()"),
        (100, "ßUR", ValueError, "ß is not ASCII either, and 'ß'.upper() is 'SS': 4 letters"),
        (100, "E R", ValueError, "a space is not a letter"),
    ],
)
def test_money_rejects_bad_values_in_post_init(
    amount: object, currency: str, error: type[Exception], why: str
) -> None:
    Money(1, "EUR")  # a good value is accepted
    refused(error, lambda: Money(amount, currency),  # type: ignore[arg-type]
            f"Money({amount!r}, {currency!r}) must raise {error.__name__} in __post_init__: {why}")


@pytest.mark.stage(2, "refusing bad money")
def test_a_currency_that_is_not_a_string_is_refused() -> None:
    assert Money(1, "usd").currency == "USD", "'usd' is stored upper-cased"
    for currency in (None, 978, b"EUR"):
        refused((TypeError, ValueError), lambda c=currency: Money(1, c),  # type: ignore[misc]
                f"Money(1, {currency!r}): a currency must be a string of 3 ASCII letters")


@pytest.mark.stage(2, "refusing bad money")
def test_add_returns_a_new_value_and_replace_validates_again() -> None:
    a, b = Money(250, "EUR"), Money(100, "eur")
    total = a.add(b)
    assert total == Money(350, "EUR"), f"Money(250, 'EUR').add(Money(100, 'eur')) is {total!r}"
    assert a == Money(250, "EUR") and b == Money(100, "EUR"), (
        f"after a.add(b), a is {a!r} and b is {b!r}: add() must change neither operand, it returns "
        "a new Money (dataclasses.replace(self, amount=...))"
    )
    assert a.add(Money(-250, "EUR")) == Money(0, "EUR"), "adding a refund gives zero"
    refused(ValueError, lambda: a.add(Money(1, "USD")),
            "euros and dollars don't add up: add() raises ValueError when the currencies differ")
    assert a == Money(250, "EUR"), "a refused add() changes nothing"
    # replace() goes through __init__, hence through __post_init__: no way to smuggle bad values
    refused(ValueError, lambda: replace(a, currency="dollars"),
            "replace() calls __init__, so __post_init__ must refuse the bad currency again")
    refused(TypeError, lambda: replace(a, amount=2.5),
            "replace() calls __init__, so __post_init__ must refuse the float amount again")
    assert replace(a, currency="usd") == Money(250, "USD"), (
        "replace() runs __post_init__ again: the new currency is upper-cased too"
    )


# --- Task: order=True with a shaped sort key ----------------------------------------------


@pytest.mark.stage(3, "tasks that sort")
@PROPERTY
@given(st.lists(tasks, max_size=12))
def test_sorted_tasks_follow_priority_then_due_then_title(items: list[Task]) -> None:
    got = [key(t) for t in sorted(items)]
    want = sorted(key(t) for t in items)
    assert got == want, (
        "sorted(tasks) must follow the sort key (priority, due, title): order=True compares "
        "the fields as a tuple in declaration order, skipping compare=False fields"
    )


@pytest.mark.stage(3, "tasks that sort")
@PROPERTY
@given(tasks, tasks)
def test_comparisons_agree_with_the_key_and_ignore_tags(a: Task, b: Task) -> None:
    ka, kb = key(a), key(b)
    if ka == kb:
        assert a == b and not a < b and not b < a, (
            f"{a!r} and {b!r} differ only in tags, so they must compare equal: declare tags "
            "with field(default_factory=list, compare=False)"
        )
    for op, check in [("<", lambda x, y: x < y), ("<=", lambda x, y: x <= y),
                      (">", lambda x, y: x > y), (">=", lambda x, y: x >= y),
                      ("==", lambda x, y: x == y), ("!=", lambda x, y: x != y)]:
        assert check(a, b) == check(ka, kb), (
            f"{a!r} {op} {b!r} is {check(a, b)}, but the sort keys {ka} {op} {kb} say "
            f"{check(ka, kb)}: every comparison follows (priority, due, title), and tags take "
            "no part (order=True, tags with compare=False)"
        )


@pytest.mark.stage(3, "tasks that sort")
def test_tasks_that_share_a_key_keep_input_order_when_sorted() -> None:
    """sorted() is stable: equal keys keep their order, which is what makes tags harmless."""
    first = Task(1, DAY, "deploy", ["zzz"])
    second = Task(1, DAY, "deploy", ["aaa"])
    assert sorted([first, second])[0] is first, "tags must not be part of the sort key"
    assert sorted([second, first])[0] is second, "tags must not be part of the sort key"


@pytest.mark.stage(3, "tasks that sort")
def test_each_task_gets_its_own_tags_list() -> None:
    a, b = Task(0, DAY, "a"), Task(0, DAY, "b")
    a.tags.append("urgent")
    assert b.tags == [], (
        f"a new task has tags {b.tags!r} after another task's tags changed: the default list is "
        "shared; use field(default_factory=list) so each task gets a fresh one"
    )
    assert a.tags == ["urgent"], f"a task's own tags are {a.tags!r} after appending 'urgent'"
    assert Task(0, DAY, "c").tags == [], "a task made later starts with no tags either"
    given_tags = ["ops", "bug"]
    assert Task(1, DAY, "d", given_tags).tags == ["ops", "bug"], "tags given are kept"


@pytest.mark.stage(3, "tasks that sort")
def test_a_mutable_task_is_not_hashable() -> None:
    task = Task(3, DAY, "refactor")
    because = ("a Task is mutable, so it must not be hashable: eq=True without frozen sets "
               "__hash__ to None; don't add unsafe_hash=True or frozen=True")
    refused(TypeError, lambda: hash(task), because)
    refused(TypeError, lambda: {task}, because)


@pytest.mark.stage(3, "tasks that sort")
@pytest.mark.parametrize("priority", [0, 4])
def test_priorities_0_to_4_are_accepted(priority: int) -> None:
    task = Task(priority, DAY, "edge")
    assert task.priority == priority, f"priority {priority} is one of 0..4 and must be accepted"


@pytest.mark.stage(3, "tasks that sort")
@pytest.mark.parametrize("priority", [5, -1, 100])
def test_task_rejects_an_unknown_priority(priority: int) -> None:
    Task(2, DAY, "fine")  # a good priority is accepted
    refused(ValueError, lambda: Task(priority, DAY, "out of range"),
            f"priority {priority} is not one of 0..4: __post_init__ raises ValueError")


# --- Config: keyword-only and frozen ------------------------------------------------------


@pytest.mark.stage(4, "a keyword-only config")
def test_config_takes_keywords_only() -> None:
    assert Config(host="db", port=5432) == Config(host="db", port=5432), "equal settings"
    for args in [("db",), ("db", 5432), ("db", 5432, True)]:
        try:
            accepted = Config(*args)  # type: ignore[misc]
        except TypeError:
            continue
        pytest.fail(
            f"Config{args} was accepted as {accepted!r}: arguments must be keywords only, so a "
            "swapped host and port can't slip through; use @dataclass(kw_only=True)"
        )


@pytest.mark.stage(4, "a keyword-only config")
def test_config_requires_host_and_has_defaults() -> None:
    config = Config(host="db")
    assert (config.host, config.port, config.debug) == ("db", 8080, False), (
        f"Config(host='db') is {config!r}: port defaults to 8080 and debug to False"
    )
    assert Config(host="db", debug=True).debug is True, "debug=True is kept"
    refused(TypeError, lambda: Config(),  # type: ignore[call-arg]
            "host has no default: Config() without it is a TypeError")


@pytest.mark.stage(4, "a keyword-only config")
@pytest.mark.parametrize("port", [1, 65535])
def test_the_first_and_last_ports_are_valid(port: int) -> None:
    assert Config(host="db", port=port).port == port, f"port {port} is in 1..65535"
    assert Config(host="db").with_port(port).port == port, f"with_port({port}): in 1..65535"


@pytest.mark.stage(4, "a keyword-only config")
@pytest.mark.parametrize("port", [0, 65536, -1])
def test_a_port_outside_1_to_65535_is_refused(port: int) -> None:
    config = Config(host="db")
    refused(ValueError, lambda: Config(host="db", port=port),
            f"port {port} is outside 1..65535: __post_init__ raises ValueError")
    refused(ValueError, lambda: config.with_port(port),
            f"with_port({port}) must validate like a new Config: replace() runs __post_init__")
    assert config.port == 8080, "a refused with_port() leaves the original alone"


@pytest.mark.stage(4, "a keyword-only config")
def test_with_port_returns_a_validated_copy() -> None:
    config = Config(host="db", debug=True)
    moved = config.with_port(5432)
    assert moved == Config(host="db", port=5432, debug=True), (
        f"with_port(5432) gave {moved!r}: a copy with the new port and every other field kept"
    )
    assert moved is not config and config.port == 8080, "with_port() must not change the original"


@pytest.mark.stage(4, "a keyword-only config")
def test_config_is_frozen_and_hashable() -> None:
    config = Config(host="db")
    with pytest.raises(FrozenInstanceError):
        config.port = 1  # type: ignore[misc]
    assert config.port == 8080, "a refused assignment changes nothing"
    assert len({config, Config(host="db"), Config(host="db", port=81)}) == 2, (
        "equal configs hash alike (frozen=True generates __hash__ from the fields)"
    )
