"""Post-money SAFEs converting in a priced round, with the option pool shuffle, in exact arithmetic."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import NamedTuple

# Cap-table rows that are not people.
OPTIONS_OUTSTANDING = "options outstanding"
PROMISED_OPTIONS = "promised options"
OPTION_POOL = "option pool"  # the unissued pool after the round: what was left plus the top-up

# The round's price per share is rounded DOWN to a hundredth of a cent, as the YC guide prints it
# ($1.114437... -> $1.1144). Share counts are whole and rounded down (588,235.29 -> 588,235).
PRICE_TICK = Fraction(1, 10_000)


@dataclass(frozen=True)
class Safe:
    """A post-money SAFE: `investment` dollars, converting at the next priced round.

    `post_money_cap` is the Post-Money Valuation Cap in dollars (None: no cap);
    `discount_rate` is what the investor pays per dollar of the round's price, e.g.
    Fraction(80, 100) for a "20% discount" (None: no discount).
    """

    holder: str
    investment: int
    post_money_cap: int | None = None
    discount_rate: Fraction | None = None


@dataclass(frozen=True)
class Capitalization:
    """The company before the SAFEs convert: who holds common stock, and the option numbers."""

    common: dict[str, int]
    options_outstanding: int = 0
    promised_options: int = 0
    unissued_pool: int = 0

    @property
    def fully_diluted(self) -> int:
        """Every share that exists or is promised: common, options granted or promised, the pool."""
        return sum(self.common.values()) + self.options_outstanding + self.promised_options + self.unissued_pool

    def shares_of(self, holder: str) -> int:
        """The shares `holder` has before the round (0 for someone new, e.g. a SAFE investor)."""
        rows = {
            **self.common,
            OPTIONS_OUTSTANDING: self.options_outstanding,
            PROMISED_OPTIONS: self.promised_options,
            OPTION_POOL: self.unissued_pool,
        }
        return rows.get(holder, 0)


@dataclass(frozen=True)
class CapTable:
    """The fully diluted cap table right after the priced round."""

    shares: dict[str, int]  # holder -> whole shares
    price_per_share: Fraction  # the round's price, rounded down to $0.0001
    company_capitalization: Fraction  # the SAFE form's Company Capitalization (exact)
    safe_prices: dict[str, Fraction]  # SAFE holder -> Safe Price (exact)
    pool_increase: int  # shares added to the pool in the round (the shuffle)
    new_money_shares: int  # shares bought by the new money

    @property
    def total(self) -> int:
        return sum(self.shares.values())

    def ownership(self, holder: str) -> Fraction:
        """`holder`'s fraction of the company after the round, exactly (0 if not on the table)."""
        return Fraction(self.shares.get(holder, 0), self.total)

    @property
    def percentages(self) -> dict[str, Fraction]:
        """Every holder's post-money fraction; they sum to exactly 1."""
        return {holder: self.ownership(holder) for holder in self.shares}

    @property
    def effective_pre_money(self) -> Fraction:
        """What the company was really valued at: the price times the shares that existed before
        the round (the pool top-up excluded). Lower than the headline pre-money when the pool
        top-up is counted in the pre-money (the option pool shuffle)."""
        return self.price_per_share * (self.total - self.pool_increase - self.new_money_shares)


class Dilution(NamedTuple):
    """A holder's fraction of the fully diluted company before and after the round."""

    before: Fraction
    after: Fraction

    @property
    def lost(self) -> Fraction:
        """The share of the stake that was diluted away: 1 - after/before (0 if before is 0)."""
        return 1 - self.after / self.before if self.before else Fraction(0)


# The same rules in integer arithmetic: every rounding is one floor or ceiling division of two
# integers (a spreadsheet's formulas, rearranged so nothing is divided until the end), and a
# Fraction appears only where the CapTable asks for one.


def _floor_div(a: int, b: int) -> int:
    return a // b


def _ceil_div(a: int, b: int) -> int:
    return -(-a // b)


def safe_ownership(investment: int, post_money_cap: int) -> Fraction:
    """The fraction of the company a post-money SAFE converts into at its cap, before new money."""
    if not 0 < investment < post_money_cap:
        raise ValueError(f"a SAFE invests more than 0 and less than its cap: {investment} on {post_money_cap}")
    return Fraction(investment, post_money_cap)


def _sold(safes: Sequence[Safe]) -> tuple[int, int]:
    """The stake the capped SAFEs buy together, as (numerator, denominator) over the caps' product."""
    numerator, denominator = 0, 1
    for safe in safes:
        if safe.post_money_cap is None:
            continue
        safe_ownership(safe.investment, safe.post_money_cap)  # the refusals
        numerator = numerator * safe.post_money_cap + safe.investment * denominator
        denominator *= safe.post_money_cap
    return numerator, denominator


def company_capitalization(pre_safe_shares: int, safes: Sequence[Safe]) -> Fraction:
    """K = pre_safe_shares / (1 - sold), with sold = n/d: K = pre_safe_shares x d / (d - n)."""
    numerator, denominator = _sold(safes)
    if numerator >= denominator:
        raise ValueError("the capped SAFEs together buy the whole company or more")
    return Fraction(pre_safe_shares * denominator, denominator - numerator)


def conversion_price(safe: Safe, safe_price: Fraction | None, round_price: Fraction) -> Fraction:
    """The lower of the Safe Price and the Discount Price; the round price with neither."""
    if safe.post_money_cap is not None and safe_price is None:
        raise ValueError(f"{safe.holder} has a cap: give its Safe Price")
    if safe.discount_rate is None:
        return round_price if safe_price is None else safe_price
    discount_price = round_price * safe.discount_rate
    return discount_price if safe_price is None else min(safe_price, discount_price)


def pool_increase_for(
    pre_money: int,
    new_money: int,
    pre_round_shares: int,
    unissued_pool: int,
    target_pool_post: Fraction,
) -> int:
    """Smallest x with u + x >= t (S + x) (pre + new) / pre, t = tn/td: in integers,
    x (td pre - tn post) >= tn S post - u td pre."""
    tn, td = target_pool_post.numerator, target_pool_post.denominator
    post = pre_money + new_money
    room = td * pre_money - tn * post
    if room <= 0:
        raise ValueError("the new money and the pool target leave nothing for the holders")
    return max(0, _ceil_div(tn * pre_round_shares * post - unissued_pool * td * pre_money, room))


def price_round(
    pre_money: int,
    new_money: int,
    capitalization: Capitalization,
    safes: Sequence[Safe] = (),
    *,
    target_pool_post: Fraction | None = None,
    pool_increase: int | None = None,
    new_investor: str = "Series A",
) -> CapTable:
    """The cap table after a priced round in which the post-money SAFEs convert."""
    if target_pool_post is not None and pool_increase is not None:
        raise ValueError("the pool top-up is a target or a number of shares, not both")
    names = Counter([*capitalization.common, OPTIONS_OUTSTANDING, PROMISED_OPTIONS, OPTION_POOL,
                     *(safe.holder for safe in safes), new_investor])
    if twice := [name for name, count in names.items() if count > 1]:
        raise ValueError(f"one row per name: {', '.join(twice)} appear more than once")
    if uncapped := [safe.holder for safe in safes if safe.post_money_cap is None]:
        raise ValueError(f"price_round converts capped SAFEs only: {', '.join(uncapped)} has no cap")

    k = company_capitalization(capitalization.fully_diluted, safes)
    # investment / (cap / K), rounded down, without dividing twice
    safe_shares = {s.holder: _floor_div(s.investment * k.numerator, s.post_money_cap * k.denominator)  # type: ignore[operator]
                   for s in safes}
    converted = capitalization.fully_diluted + sum(safe_shares.values())
    if target_pool_post is not None:
        pool_increase = pool_increase_for(
            pre_money, new_money, converted, capitalization.unissued_pool, target_pool_post
        )
    increase = pool_increase if pool_increase is not None else 0

    ticks = _floor_div(pre_money * 10_000, converted + increase)  # the price in $0.0001, down
    price = Fraction(ticks, 10_000)
    safe_prices = {s.holder: Fraction(s.post_money_cap, 1) / k for s in safes}  # type: ignore[arg-type]
    for s in safes:
        if conversion_price(s, safe_prices[s.holder], price) < safe_prices[s.holder]:
            raise ValueError(f"{s.holder} would convert at its Discount Price, below its Safe Price")
        if price < safe_prices[s.holder]:
            raise ValueError(f"{s.holder}'s cap is above the round's valuation (price {price})")
    new_shares = _floor_div(new_money * 10_000, ticks)

    shares = dict(capitalization.common)
    shares[OPTIONS_OUTSTANDING] = capitalization.options_outstanding
    shares[PROMISED_OPTIONS] = capitalization.promised_options
    shares[OPTION_POOL] = capitalization.unissued_pool + increase
    shares.update(safe_shares)
    shares[new_investor] = new_shares
    return CapTable(shares, price, k, safe_prices, increase, new_shares)


def dilution(capitalization: Capitalization, table: CapTable, holder: str) -> Dilution:
    """`holder`'s fully diluted stake before the SAFEs and the round, and after the round."""
    return Dilution(Fraction(capitalization.shares_of(holder), capitalization.fully_diluted), table.ownership(holder))
