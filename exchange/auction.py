"""Call-auction price determination (the uncross).

Given the collected buy and sell interest, the auction price is the single price that

1. maximises executable volume  min(demand(p), supply(p)),
2. then minimises the surplus    |demand(p) - supply(p)|,
3. then is closest to the reference price (last trade, or the symbol's reference),
4. then, if two prices are equally close, the lower one (a fixed rule, so runs are reproducible).

demand(p) = market buys + limit buys priced >= p;  supply(p) = market sells + limit sells <= p.

Both are step functions that change only at limit prices, so the candidates are the limit
prices themselves plus, for each open range between or beyond them (where demand and supply are
constant, so rule 3 alone decides), the integer in that range nearest the reference.
This is the rule set of the major European call auctions (Xetra, Euronext) up to their
market-pressure step, which issue 2 deliberately leaves out.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from itertools import accumulate, pairwise
from typing import NamedTuple

__all__ = ["AuctionResult", "clearing_price"]


class AuctionResult(NamedTuple):
    price: int
    volume: int
    surplus: int  # demand - supply at the price (> 0: buyers left over)


def clearing_price(
    bids: list[tuple[int, int]],
    asks: list[tuple[int, int]],
    market_buy_qty: int,
    market_sell_qty: int,
    reference: int,
) -> AuctionResult | None:
    """The uncross price for `bids`/`asks` as (price, qty) pairs in any order; None if no trade."""
    bid_px = sorted({p for p, _ in bids})
    ask_px = sorted({p for p, _ in asks})
    bid_qty = dict.fromkeys(bid_px, 0)
    for p, q in bids:
        bid_qty[p] += q
    ask_qty = dict.fromkeys(ask_px, 0)
    for p, q in asks:
        ask_qty[p] += q

    # demand(p): buys with price >= p -> suffix sums over ascending bid prices.
    bid_cum = list(accumulate(bid_qty[p] for p in reversed(bid_px)))[::-1]
    # supply(p): sells with price <= p -> prefix sums over ascending ask prices.
    ask_cum = list(accumulate(ask_qty[p] for p in ask_px))

    def demand(p: int) -> int:
        i = bisect_left(bid_px, p)
        return market_buy_qty + (bid_cum[i] if i < len(bid_px) else 0)

    def supply(p: int) -> int:
        i = bisect_right(ask_px, p)
        return market_sell_qty + (ask_cum[i - 1] if i else 0)

    limits = sorted(set(bid_px) | set(ask_px))
    candidates = set(limits)
    for lo, hi in pairwise(limits):
        if hi - lo >= 2:
            candidates.add(min(max(reference, lo + 1), hi - 1))
    # Beyond the outermost limits only market orders meet; the reference decides there too.
    if not limits:
        candidates.add(reference)
    else:
        candidates.add(max(reference, limits[-1] + 1))
        if limits[0] > 1:
            candidates.add(max(1, min(reference, limits[0] - 1)))

    best: tuple[int, int, int, int] | None = None  # sort key: (-volume, |surplus|, distance, price)
    result: AuctionResult | None = None
    for p in candidates:
        d, s = demand(p), supply(p)
        volume = min(d, s)
        if volume <= 0:
            continue
        key = (-volume, abs(d - s), abs(p - reference), p)
        if best is None or key < best:
            best, result = key, AuctionResult(p, volume, d - s)
    return result
