"""Post-money SAFEs converting in a priced round, with the option pool shuffle, in exact arithmetic."""

from __future__ import annotations

import math
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


def safe_ownership(investment: int, post_money_cap: int) -> Fraction:
    """The fraction of the company a post-money SAFE converts into at its cap, before new money.
    ValueError unless 0 < investment < post_money_cap.

    >>> safe_ownership(1_000_000, 10_000_000)
    Fraction(1, 10)
    """
    if investment <= 0 or post_money_cap <= investment:
        raise ValueError(f"need 0 < investment < cap, got {investment} and {post_money_cap}")
    # The cap is a POST-money valuation: it already includes this SAFE's money, so the investor
    # owns investment/cap. (Reading it as a pre-money cap gives investment/(cap + investment).)
    return Fraction(investment, post_money_cap)


def company_capitalization(pre_safe_shares: int, safes: Sequence[Safe]) -> Fraction:
    """The SAFE form's Company Capitalization: every share just before the round, counting the
    shares all the capped SAFEs convert into (but not the round's pool increase). Exact.
    SAFEs without a cap are left out; capped SAFEs buying 100% or more together: ValueError.

    >>> company_capitalization(9_000_000, [Safe("A", 1_000_000, 10_000_000)])
    Fraction(10000000, 1)
    """
    capped = [safe for safe in safes if safe.post_money_cap is not None]
    # Each SAFE ends up owning investment/cap of this number, and the rest (the holders before
    # the SAFEs) stays pre_safe_shares: solve pre_safe_shares = K * (1 - sum of ownerships).
    # All SAFEs are in K together, which is why they do not dilute each other.
    sold = sum((safe_ownership(s.investment, s.post_money_cap) for s in capped), Fraction(0))  # type: ignore[arg-type]
    if sold >= 1:
        raise ValueError(f"the SAFEs sell {sold} of the company: more than all of it")
    return Fraction(pre_safe_shares) / (1 - sold)


def conversion_price(safe: Safe, safe_price: Fraction | None, round_price: Fraction) -> Fraction:
    """The price per share `safe` converts at: whichever of its Safe Price (cap) and Discount
    Price (round price x discount rate) gives the investor MORE shares, i.e. the lower price.
    With neither a cap nor a discount (an MFN SAFE with no better terms) it is the round price.
    A capped SAFE needs its Safe Price: `safe_price=None` for one is a ValueError naming it.

    >>> conversion_price(Safe("A", 200_000, 4_000_000, Fraction(4, 5)), Fraction(34, 100), Fraction("1.1144"))
    Fraction(17, 50)
    """
    candidates = []
    if safe.post_money_cap is not None:
        if safe_price is None:
            raise ValueError(f"{safe.holder}'s SAFE has a cap: its Safe Price is needed")
        candidates.append(safe_price)
    if safe.discount_rate is not None:
        candidates.append(round_price * safe.discount_rate)
    # "whichever calculation results in a greater number of shares": the lower price.
    return min(candidates) if candidates else round_price


def pool_increase_for(
    pre_money: int,
    new_money: int,
    pre_round_shares: int,
    unissued_pool: int,
    target_pool_post: Fraction,
) -> int:
    """Shares to add to the option pool so the unissued pool is `target_pool_post` of the
    company after the round, with the top-up counted in the PRE-money (the option pool shuffle).

    `pre_round_shares` is everything before the round, SAFEs converted, the unissued pool
    included. The post-round total is the valuation's, T = (pre_round_shares + x) x (pre + new)
    / pre, before the price is rounded: the result is the smallest whole x with
    unissued_pool + x >= target_pool_post x T (0 if the pool already meets it). ValueError if
    new / (pre + new) + target_pool_post >= 1: nothing would be left for the holders.

    >>> pool_increase_for(8_000_000, 2_000_000, 6_000_000, 0, Fraction(20, 100))  # Venture Hacks
    2000000
    """
    new_money_part = Fraction(new_money, pre_money + new_money)
    rest = 1 - new_money_part - target_pool_post
    if rest <= 0:
        raise ValueError("the new money and the pool target leave nothing for the holders")
    # After the round: total T = (everyone but the pool) + pool + new money. The holders before
    # the round (pre_round_shares - unissued_pool) must be the `rest` fraction of T, and the
    # pool (unissued_pool + increase) the target fraction: solve for T, then the increase.
    total_after = (pre_round_shares - unissued_pool) / rest
    return max(0, math.ceil(target_pool_post * total_after - unissued_pool))


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
    """The cap table after a priced round in which the post-money SAFEs convert.

    Give the option pool top-up either as `target_pool_post` (the unissued pool's fraction of
    the company after the round, which the investors want inside the pre-money) or as an
    explicit `pool_increase` in shares (the guide's Example 1 uses 1,695,000); neither: none.

    Every SAFE here needs a post-money cap and must convert at its Safe Price: if its Discount
    Price would be lower, or the round's price is below its Safe Price, its share count would
    depend on the round's price (a circular calculation this kata leaves out): ValueError.
    Also ValueError: both pool arguments given (even 0 and 0%), two holders with one name
    (common holders, SAFE holders, the new investor and the three option rows are all rows of
    one table). A refusal caused by one holder names it in the message.
    """
    if target_pool_post is not None and pool_increase is not None:
        raise ValueError("give the pool top-up as target_pool_post or as pool_increase, not both")
    # Every name is a row of one table: a founder who also holds a SAFE under the same name would
    # have one row overwrite the other (and the common shares vanish from the table).
    holders = [*capitalization.common, OPTIONS_OUTSTANDING, PROMISED_OPTIONS, OPTION_POOL]
    holders += [safe.holder for safe in safes] + [new_investor]
    repeated = sorted({holder for holder in holders if holders.count(holder) > 1})
    if repeated:
        raise ValueError(f"each holder needs a name of its own: {repeated} used more than once")
    for safe in safes:
        if safe.post_money_cap is None:
            raise ValueError(f"{safe.holder}'s SAFE has no cap: price_round needs capped SAFEs")

    # 1. The SAFEs convert, all against the same Company Capitalization, kept exact (the guide
    #    prints 11,764,705.88); each SAFE's shares are rounded down to a whole share.
    capitalization_k = company_capitalization(capitalization.fully_diluted, safes)
    safe_prices: dict[str, Fraction] = {}
    safe_shares: dict[str, int] = {}
    for safe in safes:
        price = Fraction(safe.post_money_cap) / capitalization_k  # type: ignore[arg-type]
        safe_prices[safe.holder] = price
        safe_shares[safe.holder] = math.floor(safe.investment / price)
    pre_round_shares = capitalization.fully_diluted + sum(safe_shares.values())

    # 2. The pool top-up is part of the pre-money: it is in the share count the pre-money
    #    valuation is divided by, so it dilutes the holders before the round, not the new money.
    if target_pool_post is not None:
        pool_increase = pool_increase_for(
            pre_money, new_money, pre_round_shares, capitalization.unissued_pool, target_pool_post
        )
    pool_increase = pool_increase or 0

    # 3. The round's price, rounded down to $0.0001 before the new shares are counted, as the
    #    guide does ($1.1144 -> 4,486,719 shares).
    exact_price = Fraction(pre_money) / (pre_round_shares + pool_increase)
    price = math.floor(exact_price / PRICE_TICK) * PRICE_TICK
    for safe in safes:
        if conversion_price(safe, safe_prices[safe.holder], price) != safe_prices[safe.holder]:
            raise ValueError(
                f"{safe.holder}'s Discount Price {price * safe.discount_rate} is below its Safe "  # type: ignore[operator]
                f"Price {safe_prices[safe.holder]}: it would convert at the discount"
            )
        if price < safe_prices[safe.holder]:
            raise ValueError(
                f"the round's price {price} is below {safe.holder}'s Safe Price "
                f"{safe_prices[safe.holder]}: its cap is above the round's valuation"
            )
    new_money_shares = math.floor(new_money / price)

    shares = {
        **capitalization.common,
        OPTIONS_OUTSTANDING: capitalization.options_outstanding,
        PROMISED_OPTIONS: capitalization.promised_options,
        OPTION_POOL: capitalization.unissued_pool + pool_increase,
        **safe_shares,
        new_investor: new_money_shares,
    }
    return CapTable(
        shares=shares,
        price_per_share=price,
        company_capitalization=capitalization_k,
        safe_prices=safe_prices,
        pool_increase=pool_increase,
        new_money_shares=new_money_shares,
    )


def dilution(capitalization: Capitalization, table: CapTable, holder: str) -> Dilution:
    """`holder`'s fully diluted stake before the SAFEs and the round, and after the round.

    >>> cap = Capitalization({"founders": 6_000_000})
    >>> dilution(cap, price_round(8_000_000, 2_000_000, cap, target_pool_post=Fraction(1, 5)), "founders")
    Dilution(before=Fraction(1, 1), after=Fraction(3, 5))
    """
    before = Fraction(capitalization.shares_of(holder), capitalization.fully_diluted)
    return Dilution(before=before, after=table.ownership(holder))
