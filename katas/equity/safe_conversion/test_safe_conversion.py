"""Tests for SAFE conversion: the YC guide's worked example, the option pool shuffle, and exact properties."""

from __future__ import annotations

import math
from collections.abc import Callable
from fractions import Fraction

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from .safe_conversion import (
    OPTION_POOL,
    OPTIONS_OUTSTANDING,
    PROMISED_OPTIONS,
    Capitalization,
    CapTable,
    Safe,
    company_capitalization,
    conversion_price,
    dilution,
    pool_increase_for,
    price_round,
    safe_ownership,
)

# docs/vectors.md §9.2: YC Post-Money Safe User Guide, Appendix II, Example 1.
EXAMPLE_1_CAP = Capitalization(
    common={"Founders": 9_250_000},
    options_outstanding=300_000,
    promised_options=350_000,
    unissued_pool=100_000,
)
INVESTOR_A = Safe("Investor A", 200_000, post_money_cap=4_000_000)
INVESTOR_B = Safe("Investor B", 800_000, post_money_cap=8_000_000)
EXAMPLE_1_SAFES = [INVESTOR_A, INVESTOR_B]
GUIDE_PRICE = Fraction("1.1144")


def money(x: Fraction | int) -> str:
    """A number as a person reads it: 1,176,470.59 (and the exact fraction when it isn't whole)."""
    x = Fraction(x)
    shown = f"{float(x):,.6f}".rstrip("0").rstrip(".")
    return shown if x.denominator == 1 else f"{shown} (= {x})"


def check(what: str, got: object, expected: object, formula: str) -> None:
    """Assert got == expected; the message names the number and the formula it comes from."""
    if got != expected:
        shown_got = money(got) if isinstance(got, (int, Fraction)) else repr(got)
        shown_expected = money(expected) if isinstance(expected, (int, Fraction)) else repr(expected)
        raise AssertionError(f"{what}: expected {shown_expected}, got {shown_got}.\n  {formula}")


def example_1(**kwargs: object) -> CapTable:
    kwargs.setdefault("pool_increase", 1_695_000)
    return price_round(15_000_000, 5_000_000, EXAMPLE_1_CAP, EXAMPLE_1_SAFES, **kwargs)  # type: ignore[arg-type]


# --- safe_ownership: the post-money cap -------------------------------------------------------


@pytest.mark.stage(1, "stakes and capitalization")
def test_post_money_safe_ownership_is_investment_over_the_cap() -> None:
    cases = [
        (1_000_000, 10_000_000, Fraction(1, 10)),
        (200_000, 4_000_000, Fraction(5, 100)),
        (800_000, 8_000_000, Fraction(10, 100)),
    ]
    for investment, cap, expected in cases:
        got = safe_ownership(investment, cap)
        assert isinstance(got, Fraction), f"safe_ownership must return a Fraction, got {got!r}"
        check(
            f"safe_ownership({investment:,}, {cap:,})",
            got,
            expected,
            "Post-money SAFE ownership = investment / post-money cap (docs/vectors.md §9.1): the cap "
            "already includes the SAFE money. investment / (cap + investment) reads it as a "
            "pre-money cap, which is the old SAFE.",
        )


@pytest.mark.stage(1, "stakes and capitalization")
def test_quick_start_guide_figures() -> None:
    """docs/vectors.md §9.3: the guide rounds these to the precision printed here."""
    cap = 6_700_000  # "$1M at 15% sold gives a cap of $1M / 15% ≈ $6.7M"
    for investment, printed, places in [(500_000, "7.5", 1), (800_000, "12", 0), (1_000_000, "15", 0)]:
        percent = round(float(safe_ownership(investment, cap)) * 100, places)
        shown = f"{percent:.{places}f}"
        check(
            f"${investment:,} on a $6.7M post-money cap, in % to {places} places",
            shown,
            printed,
            "the Quick Start Guide prints ≈7.5%, ≈12%, ≈15%: investment / post-money cap",
        )
    two = safe_ownership(500_000, 5_500_000) + safe_ownership(500_000, 8_300_000)
    check(
        "$500k at $5.5M plus $500k at $8.3M, in whole %",
        round(float(two) * 100),
        15,
        "the guide: ≈9% + ≈6% ≈ 15%; post-money SAFE stakes simply add up",
    )


# --- Example 1: the SAFEs convert -------------------------------------------------------------


@pytest.mark.stage(1, "stakes and capitalization")
def test_example_1_company_capitalization() -> None:
    got = company_capitalization(EXAMPLE_1_CAP.fully_diluted, EXAMPLE_1_SAFES)
    assert isinstance(got, Fraction), f"keep Company Capitalization exact (a Fraction), got {got!r}"
    check(
        "Company Capitalization",
        got,
        Fraction(200_000_000, 17),
        "10,000,000 / (1 - 5% - 10%) = 11,764,705.88 (docs/vectors.md §9.2): it counts the shares BOTH "
        "SAFEs convert into, so each SAFE owns investment/cap of the same number.",
    )


@pytest.mark.stage(2, "pricing the round")
def test_example_1_safes_convert_at_their_safe_price() -> None:
    table = example_1()
    check(
        "Safe Price of Investor A",
        table.safe_prices.get("Investor A"),
        Fraction("0.34"),
        "Safe Price = post-money cap / Company Capitalization = 4,000,000 / 11,764,705.88",
    )
    check(
        "Safe Price of Investor B",
        table.safe_prices.get("Investor B"),
        Fraction("0.68"),
        "Safe Price = post-money cap / Company Capitalization = 8,000,000 / 11,764,705.88",
    )
    for holder, expected in [("Investor A", 588_235), ("Investor B", 1_176_470)]:
        check(
            f"shares of {holder}",
            table.shares.get(holder),
            expected,
            "conversion shares = investment / Safe Price, rounded DOWN to a whole share "
            "(the guide: 588,235 and 1,176,470; rounding to nearest would give B 1,176,471). "
            "Fewer shares? Both SAFEs must convert against ONE Company Capitalization that counts "
            "them all; otherwise each is diluted by the other SAFEs (a pre-money SAFE's flaw).",
        )


@pytest.mark.stage(2, "pricing the round")
def test_example_1_series_a_cap_table() -> None:
    table = example_1()
    check(
        "Series A price per share",
        table.price_per_share,
        GUIDE_PRICE,
        "price = pre-money / (shares after SAFE conversion + pool increase) = 15,000,000 / "
        "(11,764,705 + 1,695,000) = 1.114437..., rounded down to $0.0001 as the guide prints it. "
        "The pool top-up is in the pre-money share count (the option pool shuffle).",
    )
    expected = {
        "Founders": 9_250_000,
        OPTIONS_OUTSTANDING: 300_000,
        PROMISED_OPTIONS: 350_000,
        OPTION_POOL: 100_000 + 1_695_000,
        "Investor A": 588_235,
        "Investor B": 1_176_470,
        "Series A": 4_486_719,
    }
    for holder, shares in expected.items():
        check(
            f"shares of {holder!r}",
            table.shares.get(holder),
            shares,
            "new-money shares = 5,000,000 / $1.1144 (the rounded price), rounded down; the "
            "option pool row is the unissued pool after the round: 100,000 + 1,695,000",
        )
    check("rows of the cap table", sorted(table.shares), sorted(expected), "one row per holder")
    check(
        "post-round fully diluted total",
        table.total,
        17_946_424,
        "the guide's total: 11,764,705 + 1,695,000 + 4,486,719",
    )
    check("pool increase", table.pool_increase, 1_695_000, "pool_increase=1_695_000 was given")


@pytest.mark.stage(2, "pricing the round")
def test_example_1_pool_target_of_ten_percent_is_the_guides_top_up_before_rounding() -> None:
    """docs/vectors.md §9.2: the guide's 1,695,000 is the 10% target rounded to the nearest thousand."""
    got = pool_increase_for(15_000_000, 5_000_000, 11_764_705, 100_000, Fraction(1, 10))
    check(
        "pool increase for a 10% unissued pool after the round",
        got,
        1_694_570,
        "post total T = (11,764,705 - 100,000) / (1 - 25% new money - 10% pool) = 17,945,700; "
        "increase = 10% x T - 100,000 already unissued. The top-up is counted in the pre-money, "
        "so new money stays 5M/20M = 25% of T.",
    )
    table = example_1(pool_increase=None, target_pool_post=Fraction(1, 10))
    check(
        "price_round(target_pool_post=10%).pool_increase",
        table.pool_increase,
        1_694_570,
        "price_round must top the pool up with pool_increase_for(...) on the converted shares",
    )


# --- the option pool shuffle (Venture Hacks) ------------------------------------------------


@pytest.mark.stage(2, "pricing the round")
def test_venture_hacks_option_pool_shuffle() -> None:
    """docs/vectors.md §9.4: $2M on $8M pre-money, the pool 20% of the post, inside the pre-money."""
    cap = Capitalization(common={"founders": 6_000_000})
    table = price_round(8_000_000, 2_000_000, cap, target_pool_post=Fraction(20, 100))
    check(
        "pool increase",
        table.pool_increase,
        2_000_000,
        "total = 6,000,000 / (1 - 20% pool - 20% new money) = 10,000,000; pool = 20% of it",
    )
    check(
        "price per share",
        table.price_per_share,
        Fraction(1),
        "$8M / (6,000,000 + 2,000,000 pool) = $1.00, not the founder's naive $8M / 6M = $1.33: "
        "the pool top-up comes out of the pre-money",
    )
    check("new-money shares", table.shares.get("Series A"), 2_000_000, "$2M / $1.00")
    check("founders' stake after the round", table.ownership("founders"), Fraction(60, 100), "6,000,000 / 10,000,000")
    check(
        "effective pre-money",
        table.effective_pre_money,
        Fraction(6_000_000),
        "6,000,000 shares x $1.00: 'We think your company is worth $6M'",
    )


# --- cap or discount --------------------------------------------------------------------------


@pytest.mark.stage(3, "cap or discount")
def test_a_capped_safe_with_a_discount_converts_at_the_lower_price() -> None:
    discounted = Safe("Investor A", 200_000, post_money_cap=4_000_000, discount_rate=Fraction(80, 100))
    got = conversion_price(discounted, Fraction("0.34"), GUIDE_PRICE)
    check(
        "conversion price, cap $0.34 vs discount 1.1144 x 0.8 = $0.89152",
        got,
        Fraction("0.34"),
        "docs/vectors.md §9.2: the cap governs (588,235 shares against 224,335 at the discount): "
        "'whichever calculation results in a greater number of shares', the lower price",
    )
    high_cap = Safe("Investor C", 200_000, post_money_cap=20_000_000, discount_rate=Fraction(80, 100))
    got = conversion_price(high_cap, Fraction(17, 10), GUIDE_PRICE)
    check(
        "conversion price, cap $1.70 vs discount $0.89152",
        got,
        Fraction("0.89152"),
        "the discount gives more shares here (224,335 against 117,647 at the Safe Price): a "
        "SAFE with a cap and a discount converts at the LOWER of the two prices",
    )


@pytest.mark.stage(3, "cap or discount")
def test_a_safe_without_a_cap_converts_at_its_discount_or_the_round_price() -> None:
    discount_only = Safe("D", 100_000, discount_rate=Fraction(80, 100))
    check(
        "discount-only SAFE",
        conversion_price(discount_only, None, GUIDE_PRICE),
        Fraction("0.89152"),
        "Discount Price = round price x Discount Rate = 1.1144 x 80%",
    )
    mfn = Safe("M", 100_000)
    check(
        "MFN SAFE with no better terms",
        conversion_price(mfn, None, GUIDE_PRICE),
        GUIDE_PRICE,
        "with neither a cap nor a discount the SAFE buys at the round's price",
    )


def refused(what: str, call: Callable[[], object], holder: str | None, why: str) -> None:
    """The call must raise ValueError; a refusal caused by one holder must name it (README)."""
    try:
        got = call()
    except ValueError as exc:
        if holder is not None:
            assert holder in str(exc), (
                f"{what}: ValueError({str(exc)!r}) does not name {holder!r}. A refusal caused by "
                f"one holder names it (README, Refusals): with several SAFEs, the founder must "
                f"know which one to fix"
            )
        return
    shown = f"a CapTable with {got.shares}" if isinstance(got, CapTable) else repr(got)
    raise AssertionError(f"{what}: expected ValueError, got {shown}.\n  {why}")


@pytest.mark.stage(4, "rounds it refuses")
def test_price_round_refuses_a_safe_whose_discount_would_win() -> None:
    """The guide's Investor B with a 50% discount: 1.1144 x 0.5 = $0.5572 < its $0.68 Safe Price."""
    b_discounted = Safe("Investor B", 800_000, post_money_cap=8_000_000, discount_rate=Fraction(1, 2))
    refused(
        "Investor B with a 50% discount in Example 1",
        lambda: price_round(15_000_000, 5_000_000, EXAMPLE_1_CAP, [INVESTOR_A, b_discounted], pool_increase=1_695_000),
        "Investor B",
        "Investor B's Discount Price $0.5572 beats its Safe Price $0.68, so it does not convert at "
        "the cap (its shares would depend on the round's price): refuse, do not take the cap price",
    )


@pytest.mark.stage(4, "rounds it refuses")
def test_price_round_refuses_a_round_priced_below_a_safe_price() -> None:
    """Investor B with a $30M cap in a round worth $20M post: its Safe Price $2.7 > $1.11."""
    b_high = Safe("Investor B", 800_000, post_money_cap=30_000_000)
    refused(
        "Investor B with a $30M cap in a $15M-pre round",
        lambda: price_round(15_000_000, 5_000_000, EXAMPLE_1_CAP, [INVESTOR_A, b_high], pool_increase=1_695_000),
        "Investor B",
        "the round's price is below Investor B's Safe Price (its cap is above what the round values "
        "the company at): it would convert at the round's price, which depends on its own shares",
    )


def at_the_safe_price(pre_money: int) -> CapTable:
    """1,000,000 founder shares and one 10% SAFE: Safe Price = 1,000,000 / (1,000,000 / 0.9) = $0.90.
    After conversion 1,111,111 shares: $1,000,000 pre prices them at $0.90000009 -> $0.9000."""
    cap = Capitalization(common={"founder": 1_000_000})
    return price_round(pre_money, 250_000, cap, [Safe("Sam", 100_000, post_money_cap=1_000_000)])


@pytest.mark.stage(4, "rounds it refuses")
def test_a_round_priced_exactly_at_the_safe_price_is_fine_and_a_tick_below_is_not() -> None:
    table = at_the_safe_price(1_000_000)
    check("price per share", table.price_per_share, Fraction(9, 10), "1,000,000 / 1,111,111, rounded down")
    check("Sam's Safe Price", table.safe_prices.get("Sam"), Fraction(9, 10), "1,000,000 / 1,111,111.11")
    check(
        "Sam's shares", table.shares.get("Sam"), 111_111,
        "a price EQUAL to the Safe Price is not below it: the SAFE converts at its cap, accept it",
    )
    refused(
        "the same round at $999,999 pre-money ($0.8999 < Sam's $0.90 Safe Price)",
        lambda: at_the_safe_price(999_999),
        "Sam",
        "$0.8999 is below the $0.90 Safe Price: refuse, the SAFE would convert at the round's price",
    )
    # A cap of $1,000,050 (Safe Price $0.900045) and $1,000,080 pre: the exact price $0.900072 is
    # above the Safe Price, the round's price $0.9000 (rounded down) is below it.
    cap = Capitalization(common={"founder": 1_000_000})
    refused(
        "a Safe Price of $0.900045 in a round priced at $0.900072, rounded down to $0.9000",
        lambda: price_round(1_000_080, 250_000, cap, [Safe("Sam", 100_005, post_money_cap=1_000_050)]),
        "Sam",
        "compare the Safe Price with the round's price, the ROUNDED one ($0.9000) that the new money "
        "pays and the SAFE would convert at, not with the exact quotient",
    )


@pytest.mark.stage(4, "rounds it refuses")
def test_price_round_refuses_both_pool_arguments() -> None:
    for target, increase in [(Fraction(1, 10), 1_695_000), (Fraction(0), 0)]:
        refused(
            f"target_pool_post={target}, pool_increase={increase}",
            lambda t=target, i=increase: example_1(target_pool_post=t, pool_increase=i),
            None,
            "give the top-up as a target OR as shares: giving both is ambiguous, even as 0 and 0% "
            "(check `is not None`, not truthiness)",
        )


@pytest.mark.stage(4, "rounds it refuses")
@pytest.mark.parametrize(
    ("common", "safe_names", "new_investor", "repeated"),
    [
        ({"Alice": 5_000_000}, ["Alice"], "Series A", "Alice"),  # a founder who also holds a SAFE
        ({"Alice": 5_000_000}, ["Bob", "Bob"], "Series A", "Bob"),  # two SAFEs, one name
        ({"Alice": 5_000_000}, ["Bob"], "Alice", "Alice"),  # the new investor is a founder
        ({"Alice": 5_000_000}, ["Bob"], "Bob", "Bob"),  # the new investor holds a SAFE
        ({"Alice": 5_000_000, "Series A": 1_000}, [], "Series A", "Series A"),
        ({"Alice": 5_000_000, OPTION_POOL: 1_000}, [], "Series A", OPTION_POOL),  # a row's name
        ({"Alice": 5_000_000}, [PROMISED_OPTIONS], "Series A", PROMISED_OPTIONS),
        ({"Alice": 5_000_000}, ["Bob"], OPTIONS_OUTSTANDING, OPTIONS_OUTSTANDING),
    ],
)
def test_price_round_refuses_two_holders_with_one_name(
    common: dict[str, int], safe_names: list[str], new_investor: str, repeated: str
) -> None:
    cap = Capitalization(common=common, unissued_pool=500_000)
    safes = [Safe(name, 100_000, post_money_cap=2_000_000) for name in safe_names]
    refused(
        f"common {sorted(common)}, SAFEs {safe_names}, new investor {new_investor!r}",
        lambda: price_round(20_000_000, 5_000_000, cap, safes, new_investor=new_investor),
        repeated,
        f"{repeated!r} would be two rows of one table: one overwrites the other (a founder's common "
        f"shares vanish under their SAFE's). Refuse repeated names, the option rows' included",
    )


@pytest.mark.stage(4, "rounds it refuses")
def test_price_round_refuses_a_safe_without_a_cap() -> None:
    refused(
        "a discount-only SAFE in price_round",
        lambda: price_round(
            15_000_000, 5_000_000, EXAMPLE_1_CAP,
            [INVESTOR_A, Safe("Dee", 100_000, discount_rate=Fraction(4, 5))], pool_increase=1_695_000,
        ),
        "Dee",
        "price_round takes SAFEs with a post-money cap; an uncapped SAFE converts at a price that "
        "depends on the round's price (circular): refuse it",
    )


@pytest.mark.stage(4, "rounds it refuses")
def test_safes_that_sell_the_whole_company_are_refused() -> None:
    half = [Safe("Ann", 500_000, 1_000_000), Safe("Bea", 1_000_000, 2_000_000)]  # 50% + 50%
    refused("company_capitalization with SAFEs selling exactly 100%",
            lambda: company_capitalization(1_000_000, half), None,
            "sum of investment/cap = 1 leaves K = shares / 0: refuse at >= 1, not only above 1")
    more = [*half, Safe("Cy", 100_000, 1_000_000)]  # 110%
    refused("company_capitalization with SAFEs selling 110%",
            lambda: company_capitalization(1_000_000, more), None,
            "SAFEs cannot sell more than the whole company: K would be negative")
    refused("price_round with SAFEs selling exactly 100%",
            lambda: price_round(10_000_000, 1_000_000, Capitalization({"f": 1_000_000}), half), None,
            "price_round goes through Company Capitalization: same refusal")
    almost = [Safe("Ann", 500_000, 1_000_000), Safe("Bea", 990_000, 2_000_000)]  # 50% + 49.5%
    check("company_capitalization with SAFEs selling 99.5%",
          company_capitalization(1_000_000, almost), Fraction(200_000_000),
          "1,000,000 / (1 - 99.5%): just under 100% is allowed")


@pytest.mark.stage(1, "stakes and capitalization")
def test_company_capitalization_counts_only_the_capped_safes() -> None:
    check("company_capitalization with no SAFEs", company_capitalization(10_000_000, []), Fraction(10_000_000),
          "no SAFE: K is the pre-SAFE shares")
    uncapped = [INVESTOR_A, Safe("Dee", 100_000, discount_rate=Fraction(4, 5)), Safe("Mo", 50_000)]
    check("company_capitalization with a discount-only and an MFN SAFE", company_capitalization(10_000_000, uncapped),
          Fraction(10_000_000) / Fraction(95, 100),
          "only capped SAFEs buy a fixed stake: uncapped ones are not in the sum")


@pytest.mark.stage(4, "rounds it refuses")
@pytest.mark.parametrize(("investment", "cap"), [(0, 10_000_000), (-1, 10_000_000), (10_000_000, 10_000_000),
                                                 (11_000_000, 10_000_000)])
def test_safe_ownership_refuses_nothing_and_everything(investment: int, cap: int) -> None:
    refused(f"safe_ownership({investment:,}, {cap:,})", lambda: safe_ownership(investment, cap), None,
            "a SAFE invests something (> 0) and buys less than the whole company (investment < cap)")


@pytest.mark.stage(1, "stakes and capitalization")
def test_safe_ownership_at_the_edges_it_allows() -> None:
    check("safe_ownership(1, 10,000,000)", safe_ownership(1, 10_000_000), Fraction(1, 10_000_000), "1 / cap")
    check("safe_ownership(cap - 1, cap)", safe_ownership(9_999_999, 10_000_000), Fraction(9_999_999, 10_000_000),
          "just under the cap is allowed")


@pytest.mark.stage(4, "rounds it refuses")
def test_conversion_price_needs_the_safe_price_of_a_capped_safe() -> None:
    refused("conversion_price(Investor A, safe_price=None, ...)",
            lambda: conversion_price(INVESTOR_A, None, GUIDE_PRICE), "Investor A",
            "a capped SAFE converts at min(Safe Price, ...): without its Safe Price there is no answer; "
            "do not fall back to the round's price")
    tie = Safe("T", 100_000, post_money_cap=4_000_000, discount_rate=Fraction(34, 100) / GUIDE_PRICE)
    check("conversion price when the Discount Price equals the Safe Price",
          conversion_price(tie, Fraction("0.34"), GUIDE_PRICE), Fraction("0.34"), "both give $0.34")


@pytest.mark.stage(4, "rounds it refuses")
def test_pool_increase_for_refuses_a_target_that_leaves_nothing() -> None:
    # $5M on $15M pre: the new money is 25%; a 75% pool leaves exactly 0%, 80% less than nothing.
    for target in (Fraction(75, 100), Fraction(80, 100)):
        refused(f"pool_increase_for(target {target})",
                lambda t=target: pool_increase_for(15_000_000, 5_000_000, 11_764_705, 100_000, t), None,
                "new/post + target >= 1 leaves nothing (or less) for the holders: refuse, do not "
                "divide by zero or return 0")
    refused("price_round(target_pool_post=75%) with 25% new money",
            lambda: example_1(pool_increase=None, target_pool_post=Fraction(3, 4)), None,
            "price_round with a target goes through pool_increase_for: same refusal")


@pytest.mark.stage(2, "pricing the round")
def test_pool_increase_for_is_zero_when_the_pool_already_meets_the_target() -> None:
    check("pool_increase_for(target 0)", pool_increase_for(15_000_000, 5_000_000, 11_764_705, 100_000, Fraction(0)),
          0, "a 0% target needs no top-up")
    check("pool_increase_for(target 1%, 1,000,000 unissued of 11,764,705)",
          pool_increase_for(15_000_000, 5_000_000, 11_764_705, 1_000_000, Fraction(1, 100)),
          0, "the unissued pool is already over 1% of the post-round total: no top-up, never a negative one")
    # Venture Hacks' numbers meet 20% exactly at 2,000,000: the smallest x is exactly that.
    check("pool_increase_for meeting the target exactly",
          pool_increase_for(8_000_000, 2_000_000, 6_000_000, 0, Fraction(1, 5)), 2_000_000,
          "(0 + x) >= 20% x (6,000,000 + x) x 10/8 first holds at x = 2,000,000 exactly: round UP, "
          "and an exact answer stays as it is")


@pytest.mark.stage(2, "pricing the round")
def test_ownership_and_dilution_of_someone_not_on_the_table() -> None:
    table = example_1()
    check("ownership of a name not on the table", table.ownership("nobody"), Fraction(0), "no row: 0")
    got = dilution(EXAMPLE_1_CAP, table, "Investor A")
    check("a SAFE holder's dilution.lost", got.lost, Fraction(0),
          "Investor A had nothing before the round: nothing was diluted away (0, not 1 - x/0)")
    check("a SAFE holder's stake after", got.after, Fraction(588_235, 17_946_424), "its shares / the total")


# --- exactness ----------------------------------------------------------------------------


@pytest.mark.stage(2, "pricing the round")
def test_round_numbers_convert_to_round_share_counts() -> None:
    """3% and 7% of 6,000,000 / 0.9 are exactly 200,000 and 466,666.67 shares."""
    cap = Capitalization(common={"founder": 6_000_000})
    safes = [Safe("S1", 300_000, 10_000_000), Safe("S2", 700_000, 10_000_000)]
    table = price_round(20_000_000, 5_000_000, cap, safes)
    check(
        "shares of S1",
        table.shares.get("S1"),
        200_000,
        "300,000 / (10,000,000 / 6,666,666.67) is exactly 200,000. With floats it comes out "
        "199,999.99999999997 and int() makes it 199,999: keep the arithmetic in Fractions "
        "(or integers) and round once, at the end",
    )
    check("shares of S2", table.shares.get("S2"), 466_666, "466,666.67 rounded down")
    check(
        "Company Capitalization",
        table.company_capitalization,
        Fraction(20_000_000, 3),
        "6,000,000 / (1 - 3% - 7%), exact: a float here is already off",
    )
    assert all(isinstance(p, Fraction) for p in table.percentages.values())


@pytest.mark.stage(2, "pricing the round")
def test_dilution_answers_what_do_i_own_after_this_round() -> None:
    table = example_1()
    got = dilution(EXAMPLE_1_CAP, table, "Founders")
    check(
        "founders before",
        got.before,
        Fraction(9_250_000, 10_000_000),
        "before = their shares / fully diluted capitalization before the SAFEs (92.5%)",
    )
    check(
        "founders after",
        got.after,
        Fraction(9_250_000, 17_946_424),
        "after = their shares / the post-round total 17,946,424 (51.5%)",
    )
    check(
        "share of the founders' stake diluted away",
        got.lost,
        1 - Fraction(9_250_000, 17_946_424) / Fraction(37, 40),
        "lost = 1 - after / before",
    )
    got = dilution(EXAMPLE_1_CAP, table, "Investor A")
    check("a SAFE investor before", got.before, Fraction(0), "a SAFE holds no shares before it converts")


# --- properties --------------------------------------------------------------------------------

PERCENT = st.integers(min_value=1, max_value=20)


@st.composite
def rounds(draw: st.DrawFn) -> tuple[int, int, Capitalization, list[Safe], Fraction]:
    """A realistic round. Caps stay below 45% of the pre-money and pools below 35%, so every SAFE
    converts at its cap; prices stay above $0.15, so rounding to $0.0001 moves them < 0.1%."""
    founders = draw(st.integers(1_000_000, 10_000_000))
    options = draw(st.integers(0, founders // 10))
    promised = draw(st.integers(0, founders // 10))
    unissued = draw(st.integers(0, founders // 10))
    cap = Capitalization({"founder": founders}, options, promised, unissued)
    pre_money = draw(st.integers(10, 100)) * 1_000_000
    new_money = draw(st.integers(1, pre_money * 3 // 7 // 250_000)) * 250_000  # <= 30% of post
    safes = []
    for i in range(draw(st.integers(0, 3))):
        safe_cap = draw(st.integers(1_000_000, pre_money * 45 // 100))
        stake = draw(PERCENT)  # % of the company this SAFE buys: 1 to 20
        safes.append(Safe(f"safe {i}", safe_cap * stake // 100, post_money_cap=safe_cap))
    target = Fraction(draw(st.integers(0, 20)), 100)
    return pre_money, new_money, cap, safes, target


def exact_capitalization(cap: Capitalization, safes: list[Safe]) -> Fraction:
    """The oracle: pre-SAFE shares / (1 - sum of investment/cap)."""
    sold = sum((Fraction(s.investment, s.post_money_cap) for s in safes), Fraction(0))
    return cap.fully_diluted / (1 - sold)


@pytest.mark.stage(5, "properties of any round")
@settings(max_examples=100, deadline=None)
@given(rounds())
def test_percentages_sum_to_exactly_one(case: tuple[int, int, Capitalization, list[Safe], Fraction]) -> None:
    pre_money, new_money, cap, safes, target = case
    table = price_round(pre_money, new_money, cap, safes, target_pool_post=target)
    percentages = table.percentages
    floats = [holder for holder, p in percentages.items() if not isinstance(p, Fraction)]
    assert not floats, f"percentages must be Fractions (exact), these are not: {floats}"
    check(
        "sum of all post-money percentages",
        sum(percentages.values()),
        Fraction(1),
        "shares are whole and every percentage is shares / total: exact Fractions sum to 1",
    )
    assert all(isinstance(n, int) and n >= 0 for n in table.shares.values()), (
        f"shares must be whole, non-negative ints: {table.shares}"
    )


@pytest.mark.stage(5, "properties of any round")
@settings(max_examples=100, deadline=None)
@given(rounds())
def test_post_money_safes_are_not_diluted_by_each_other(
    case: tuple[int, int, Capitalization, list[Safe], Fraction],
) -> None:
    pre_money, new_money, cap, safes, target = case
    assume(len(safes) >= 2)
    table = price_round(pre_money, new_money, cap, safes, target_pool_post=target)
    k = exact_capitalization(cap, safes)
    converted = cap.fully_diluted + sum(table.shares[s.holder] for s in safes)
    others = sum((Fraction(s.investment, s.post_money_cap) for s in safes), Fraction(0))
    for safe in safes:
        stake = Fraction(safe.investment, safe.post_money_cap)
        right_after = Fraction(table.shares[safe.holder], converted)
        pre_money_style = stake / (1 + others)
        assert abs(right_after - stake) <= Fraction(len(safes) + 1, converted), (
            f"{safe.holder} owns {float(right_after):.6%} right after conversion (before the new "
            f"money), expected investment/cap = {float(stake):.6%} whatever the other SAFEs are. "
            f"{float(pre_money_style):.6%} would be a pre-money SAFE diluted by the other SAFEs: "
            f"count all SAFEs in one Company Capitalization"
        )
        check(
            f"shares of {safe.holder} (${safe.investment:,} at a ${safe.post_money_cap:,} cap)",
            table.shares[safe.holder],
            math.floor(stake * k),
            f"investment / (cap / Company Capitalization), rounded down, with Company "
            f"Capitalization = {cap.fully_diluted:,} / (1 - sum of investment/cap) = {money(k)}",
        )


@pytest.mark.stage(5, "properties of any round")
@settings(max_examples=100, deadline=None)
@given(rounds(), st.integers(1_000_000, 5_000_000), PERCENT)
def test_more_safe_money_never_increases_a_founders_stake(
    case: tuple[int, int, Capitalization, list[Safe], Fraction],
    extra_cap: int,
    extra_stake: int,
) -> None:
    pre_money, new_money, cap, safes, target = case
    sold = sum((Fraction(s.investment, s.post_money_cap) for s in safes), Fraction(0))
    assume(sold + Fraction(extra_stake, 100) < Fraction(7, 10) and extra_cap <= pre_money * 45 // 100)
    before = price_round(pre_money, new_money, cap, safes, target_pool_post=target)
    more = [*safes, Safe("late SAFE", extra_cap * extra_stake // 100, post_money_cap=extra_cap)]
    after = price_round(pre_money, new_money, cap, more, target_pool_post=target)
    assert after.ownership("founder") < before.ownership("founder"), (
        f"adding a SAFE (${extra_cap * extra_stake // 100:,} at a ${extra_cap:,} cap) moved the "
        f"founder from {float(before.ownership('founder')):.6%} to "
        f"{float(after.ownership('founder')):.6%}: it must go down, SAFE shares come out of the "
        f"existing holders"
    )


@pytest.mark.stage(5, "properties of any round")
@settings(max_examples=100, deadline=None)
@given(rounds())
def test_the_pool_top_up_dilutes_the_old_holders_not_the_new_money(
    case: tuple[int, int, Capitalization, list[Safe], Fraction],
) -> None:
    pre_money, new_money, cap, safes, target = case
    table = price_round(pre_money, new_money, cap, safes, target_pool_post=target)
    bought = Fraction(new_money, pre_money + new_money)
    got = table.ownership("Series A")
    # Rounding (the price down to $0.0001, at least $0.15 here; the shares down to whole ones)
    # moves the new money's stake by less than 0.1%; the pool's by as little.
    assert abs(got - bought) <= bought / 1000, (
        f"the new money owns {float(got):.6%} after the round, expected new money / post-money "
        f"= {float(bought):.6%}: the pool top-up belongs in the pre-money (priced into the share "
        f"count the pre-money valuation is divided by), so it never dilutes the new investors"
    )
    if table.pool_increase:
        pool = table.ownership(OPTION_POOL)
        assert abs(pool - target) <= target / 500, (
            f"the unissued pool is {float(pool):.6%} of the company after the round, the "
            f"investors asked for {float(target):.2%}"
        )


@pytest.mark.stage(5, "properties of any round")
@settings(max_examples=100, deadline=None)
@given(rounds())
def test_pool_increase_is_the_smallest_top_up_that_meets_the_target(
    case: tuple[int, int, Capitalization, list[Safe], Fraction],
) -> None:
    pre_money, new_money, cap, _, target = case
    shares, unissued = cap.fully_diluted, cap.unissued_pool
    post_over_pre = Fraction(pre_money + new_money, pre_money)

    def meets(x: int) -> bool:  # is the pool at least `target` of the exact post-round total?
        return unissued + x >= target * (shares + x) * post_over_pre

    low, high = 0, 10 * shares  # brute force: binary search on the definition, no formula
    while low < high:
        mid = (low + high) // 2
        low, high = (low, mid) if meets(mid) else (mid + 1, high)
    check(
        f"pool_increase_for(target {target}) with {shares:,} shares, {unissued:,} unissued",
        pool_increase_for(pre_money, new_money, shares, unissued, target),
        low,
        "the smallest whole top-up x with (unissued + x) >= target x (shares + x) x post/pre: "
        "the top-up sits in the pre-money, and the post-round total is (shares + x) x post/pre",
    )


@pytest.mark.stage(5, "properties of any round")
@settings(max_examples=100, deadline=None)
@given(rounds(), st.integers(5, 15))
def test_a_bigger_pool_target_lowers_the_effective_pre_money(
    case: tuple[int, int, Capitalization, list[Safe], Fraction],
    more: int,
) -> None:
    pre_money, new_money, cap, safes, target = case
    bigger = target + Fraction(more, 100)
    small = price_round(pre_money, new_money, cap, safes, target_pool_post=target)
    large = price_round(pre_money, new_money, cap, safes, target_pool_post=bigger)
    # a target the existing unissued pool already meets adds nothing: compare real top-ups
    assume(large.pool_increase - small.pool_increase >= (large.total - large.pool_increase) // 100)
    assert large.price_per_share < small.price_per_share, (
        f"raising the pool target from {float(target):.0%} to {float(bigger):.0%} left the price "
        f"at ${float(large.price_per_share)} (was ${float(small.price_per_share)}): the top-up is "
        f"in the pre-money, so more pool means the same pre-money over more shares"
    )
    assert large.effective_pre_money < small.effective_pre_money, (
        f"effective pre-money ${float(large.effective_pre_money):,.0f} with a "
        f"{float(bigger):.0%} pool, ${float(small.effective_pre_money):,.0f} with {float(target):.0%}: "
        f"a bigger pool in the pre-money must lower what the existing shares are worth"
    )


@pytest.mark.stage(5, "properties of any round")
@settings(max_examples=100, deadline=None)
@given(rounds())
def test_the_round_price_and_new_shares_are_rounded_down_as_the_guide_does(
    case: tuple[int, int, Capitalization, list[Safe], Fraction],
) -> None:
    pre_money, new_money, cap, safes, target = case
    table = price_round(pre_money, new_money, cap, safes, target_pool_post=target)
    before_round = table.total - table.new_money_shares  # converted shares + the top-up
    exact = Fraction(pre_money, before_round)
    check(
        f"price per share (pre-money {pre_money:,} / {before_round:,} shares = {float(exact):.8f})",
        table.price_per_share,
        Fraction(math.floor(exact * 10_000), 10_000),
        "the price is rounded DOWN to $0.0001 (the guide: 1.114437... -> $1.1144), not to nearest",
    )
    check(
        f"new-money shares (${new_money:,} at ${table.price_per_share})",
        table.shares.get("Series A"),
        math.floor(new_money / table.price_per_share),
        "new money / the ROUNDED price, rounded down to a whole share (the guide: 4,486,719)",
    )


# --- the whole round against a model written from the README ---------------------------------

ROWS = [OPTIONS_OUTSTANDING, PROMISED_OPTIONS, OPTION_POOL]


class Refused(Exception):
    """The model's verdict: the README refuses this round."""


def model_round(
    pre_money: int, new_money: int, cap: Capitalization, safes: list[Safe],
    target: Fraction | None, increase: int | None, new_investor: str,
) -> dict[str, object]:
    """The README, line by line, in integers where it can: what price_round must return."""
    if target is not None and increase is not None:
        raise Refused("both pool arguments")
    names = [*cap.common, *ROWS, *(s.holder for s in safes), new_investor]
    if len(set(names)) < len(names):
        raise Refused("a repeated name")
    if any(s.post_money_cap is None or not 0 < s.investment < s.post_money_cap for s in safes):
        raise Refused("an uncapped SAFE, or one buying nothing or everything")
    sold = sum((Fraction(s.investment, s.post_money_cap) for s in safes), Fraction(0))  # type: ignore[arg-type]
    if sold >= 1:
        raise Refused("the SAFEs sell the whole company")
    k = cap.fully_diluted / (1 - sold)
    safe_prices = {s.holder: s.post_money_cap / k for s in safes}
    # investment / (cap / K), rounded down: in integers, investment x K.num // (cap x K.den)
    safe_shares = {s.holder: s.investment * k.numerator // (s.post_money_cap * k.denominator) for s in safes}  # type: ignore[operator]
    converted = cap.fully_diluted + sum(safe_shares.values())
    if target is not None:
        if Fraction(new_money, pre_money + new_money) + target >= 1:
            raise Refused("the pool target leaves nothing")

        def meets(x: int) -> bool:
            return cap.unissued_pool + x >= target * (converted + x) * Fraction(pre_money + new_money, pre_money)

        high = 1
        while not meets(high):
            high *= 2
        low = 0
        while low < high:
            mid = (low + high) // 2
            low, high = (low, mid) if meets(mid) else (mid + 1, high)
        increase = low
    increase = increase or 0
    ticks = pre_money * 10_000 // (converted + increase)  # the price in $0.0001, rounded down
    price = Fraction(ticks, 10_000)
    for s in safes:
        sp = safe_prices[s.holder]
        if price < sp or (s.discount_rate is not None and price * s.discount_rate < sp):
            raise Refused(f"{s.holder} would not convert at its Safe Price")
    new_shares = new_money * 10_000 // ticks
    shares = {**cap.common, OPTIONS_OUTSTANDING: cap.options_outstanding, PROMISED_OPTIONS: cap.promised_options,
              OPTION_POOL: cap.unissued_pool + increase, **safe_shares, new_investor: new_shares}
    return {"shares": shares, "price_per_share": price, "company_capitalization": k, "safe_prices": safe_prices,
            "pool_increase": increase, "new_money_shares": new_shares}


@st.composite
def wild_rounds(draw: st.DrawFn) -> tuple[int, int, Capitalization, list[Safe], Fraction | None, int | None, str]:
    """Rounds that go wrong as often as right: high caps, winning discounts, uncapped SAFEs, 100%
    sold, repeated names, pool targets too big, both pool arguments."""
    names = ["Ann", "Bo", "Cy", "Dee", "Eve", "Series A", "Lead", OPTION_POOL]
    founders = draw(st.lists(st.sampled_from(names[:3]), min_size=1, max_size=2, unique=True))
    if draw(st.integers(0, 29)) == 0:
        founders.append(draw(st.sampled_from(names)))  # now and then a name that is taken
    common = {name: draw(st.integers(500_000, 8_000_000)) for name in founders}
    total = sum(common.values())
    cap = Capitalization(common, *(draw(st.integers(0, total // 8)) for _ in range(3)))
    pre_money = draw(st.integers(2, 60)) * 500_000
    new_money = draw(st.integers(0, pre_money // 2 // 100_000)) * 100_000
    safes = []
    for i in range(draw(st.sampled_from([0, 1, 2, 2, 3]))):
        name = draw(st.sampled_from(names)) if draw(st.integers(0, 29)) == 0 else ["Dee", "Eve", "Fay"][i]
        # a cap from a tenth of the pre-money to 1.2 times it (above the round's valuation: refused)
        safe_cap = None if draw(st.integers(0, 14)) == 0 else draw(st.integers(1, 12)) * pre_money // 10
        stake = draw(st.integers(1, 45))  # % bought: two or three SAFEs may sell 100%
        investment = (safe_cap or pre_money) * stake // 100
        discount = None if draw(st.integers(0, 2)) else Fraction(draw(st.integers(50, 95)), 100)
        safes.append(Safe(name, investment, safe_cap, discount))
    target = draw(st.none() | st.integers(0, 80).map(lambda n: Fraction(n, 100)))
    increase = draw(st.none() | st.integers(0, total // 2)) if target is None or draw(st.integers(0, 9)) == 0 else None
    return pre_money, new_money, cap, safes, target, increase, draw(st.sampled_from(["Series A", "Series A", "Lead"]))


@pytest.mark.stage(5, "properties of any round")
@settings(max_examples=150, deadline=None)
@given(wild_rounds())
def test_price_round_matches_the_readme_model_or_refuses_with_it(
    case: tuple[int, int, Capitalization, list[Safe], Fraction | None, int | None, str],
) -> None:
    pre_money, new_money, cap, safes, target, increase, investor = case
    call = f"price_round({pre_money:,}, {new_money:,}, {cap}, {safes}, target_pool_post={target}, " \
           f"pool_increase={increase}, new_investor={investor!r})"
    try:
        expected = model_round(pre_money, new_money, cap, safes, target, increase, investor)
    except Refused as why:
        refused(call, lambda: price_round(pre_money, new_money, cap, safes, target_pool_post=target,
                                          pool_increase=increase, new_investor=investor), None,
                f"the README refuses this round: {why}")
        return
    table = price_round(pre_money, new_money, cap, safes, target_pool_post=target, pool_increase=increase,
                        new_investor=investor)
    for field, value in expected.items():
        check(f"{call}.{field}", getattr(table, field), value,
              "the README's rules in order: K over the capped SAFEs, their shares rounded down, the "
              "top-up (given, or the smallest x meeting the target against the valuation's total), "
              "the price rounded down to $0.0001, then the new shares rounded down; refusals as listed")
