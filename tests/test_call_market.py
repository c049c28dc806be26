"""The fair-value model's period-based process: an empty book each period, one call auction,
one price per period (examples/call_market.toml)."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

from agents.config import load_market
from agents.sim import SimMarket

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "call_market.toml"


def test_one_price_per_period_and_an_empty_book_between() -> None:
    sim = SimMarket.from_config(load_market(EXAMPLE))
    sim.run(until_ns=30 * 10**9 + 500_000_000)  # half a period past the 30th uncross
    prices: dict[int, set[int]] = defaultdict(set)
    for ts, price in zip(sim.trades["ts"], sim.trades["price"], strict=True):
        assert ts % 10**9 == 0  # trades happen only at the uncross, on the period boundary
        prices[ts // 10**9].add(price)
    assert len(prices) >= 25  # nearly every period has a price
    assert all(len(p) == 1 for p in prices.values())  # one price per period
    assert len({next(iter(p)) for p in prices.values()}) > 5  # and it moves
    assert sim.engine.phase("AGR") == "auction"  # collecting the next period's orders
    resting = list(sim.engine._orders.values())
    assert resting, "orders of the current period"
    assert all(o.ts > 30 * 10**9 for o in resting)  # nothing survived the last uncross
