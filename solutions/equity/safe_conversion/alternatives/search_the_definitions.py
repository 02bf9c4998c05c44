"""Post-money SAFEs converting in a priced round, with the option pool shuffle, in exact arithmetic."""

from __future__ import annotations

from collections.abc import Callable, Sequence
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


# No closed forms: each number is found from its definition. The top-up is the smallest whole x
# whose pool meets the target (found by doubling, then bisecting); a SAFE's shares are the most
# whole shares its money buys at its Safe Price; the round's price is the largest $0.0001 tick
# the pre-money pays for every pre-round share. Checks come first, then a plan, then the table.


def safe_ownership(investment: int, post_money_cap: int) -> Fraction:
    """The fraction of the company a post-money SAFE converts into at its cap, before new money."""
    if investment <= 0:
        raise ValueError(f"a SAFE of {investment} buys nothing")
    if investment >= post_money_cap:
        raise ValueError(f"a SAFE of {investment} on a {post_money_cap} cap buys the whole company")
    return Fraction(investment) / post_money_cap


def company_capitalization(pre_safe_shares: int, safes: Sequence[Safe]) -> Fraction:
    """The K with pre_safe_shares = K x (1 - sum of investment/cap over the capped SAFEs)."""
    left = Fraction(1)
    for safe in safes:
        if safe.post_money_cap is not None:
            left -= safe_ownership(safe.investment, safe.post_money_cap)
    if left <= 0:
        raise ValueError("the SAFEs leave nothing of the company to anyone else")
    return pre_safe_shares / left


def conversion_price(safe: Safe, safe_price: Fraction | None, round_price: Fraction) -> Fraction:
    """The price that buys the investor the most shares among the terms the SAFE has."""
    prices = []
    if safe.post_money_cap is not None:
        if safe_price is None:
            raise ValueError(f"the Safe Price of {safe.holder} is missing")
        prices.append(safe_price)
    if safe.discount_rate is not None:
        prices.append(safe.discount_rate * round_price)
    return min(prices, default=round_price)


def _smallest(meets: Callable[[int], bool]) -> int:
    """The smallest x >= 0 with meets(x), for a monotone meets."""
    if meets(0):
        return 0
    low, high = 0, 1
    while not meets(high):
        low, high = high, high * 2
    while high - low > 1:  # meets(high), not meets(low)
        middle = (low + high) // 2
        low, high = (low, middle) if meets(middle) else (middle, high)
    return high


def pool_increase_for(
    pre_money: int,
    new_money: int,
    pre_round_shares: int,
    unissued_pool: int,
    target_pool_post: Fraction,
) -> int:
    """The smallest whole top-up x with unissued + x >= target x (shares + x) x post / pre."""
    growth = Fraction(pre_money + new_money, pre_money)  # post-round total / pre-round total
    if target_pool_post * growth >= 1:
        raise ValueError("with the new money's part, that pool target leaves nothing for the holders")
    return _smallest(lambda x: unissued_pool + x >= target_pool_post * (pre_round_shares + x) * growth)


def _check(capitalization: Capitalization, safes: Sequence[Safe], new_investor: str) -> None:
    seen: set[str] = set()
    for name in [*capitalization.common, OPTIONS_OUTSTANDING, PROMISED_OPTIONS, OPTION_POOL,
                 *(safe.holder for safe in safes), new_investor]:
        if name in seen:
            raise ValueError(f"the name {name!r} is taken: every holder is its own row")
        seen.add(name)
    for safe in safes:
        if safe.post_money_cap is None:
            raise ValueError(f"{safe.holder}: a SAFE without a post-money cap does not convert here")


def _most_shares(money: int, price: Fraction) -> int:
    """The most whole shares `money` buys at `price`."""
    return (money / price).__floor__()


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
    if None not in (target_pool_post, pool_increase):
        raise ValueError("target_pool_post and pool_increase: one or the other")
    _check(capitalization, safes, new_investor)
    k = company_capitalization(capitalization.fully_diluted, safes)
    safe_prices = {safe.holder: safe.post_money_cap / k for safe in safes}  # type: ignore[operator]
    safe_shares = {safe.holder: _most_shares(safe.investment, safe_prices[safe.holder]) for safe in safes}
    before_pool = capitalization.fully_diluted + sum(safe_shares.values())
    increase = (pool_increase_for(pre_money, new_money, before_pool, capitalization.unissued_pool, target_pool_post)
                if target_pool_post is not None else pool_increase or 0)
    pre_round = before_pool + increase
    # the largest tick t with t x pre_round <= pre-money x 10,000
    price = Fraction(pre_money * 10_000 // pre_round, 10_000)
    for safe in safes:
        at = conversion_price(safe, safe_prices[safe.holder], price)
        if at != safe_prices[safe.holder] or price < at:
            raise ValueError(f"{safe.holder} does not convert at its Safe Price in this round (price {price})")
    new_shares = _most_shares(new_money, price)
    rows = {**capitalization.common, OPTIONS_OUTSTANDING: capitalization.options_outstanding,
            PROMISED_OPTIONS: capitalization.promised_options, OPTION_POOL: capitalization.unissued_pool + increase}
    return CapTable({**rows, **safe_shares, new_investor: new_shares}, price, k, safe_prices, increase, new_shares)


def dilution(capitalization: Capitalization, table: CapTable, holder: str) -> Dilution:
    """`holder`'s fully diluted stake before the SAFEs and the round, and after the round."""
    before = Fraction(capitalization.shares_of(holder)) / capitalization.fully_diluted
    return Dilution(before, table.ownership(holder))
