"""An agent's view read outside a handler (between `SimMarket.run` calls) is current.

Code that drives the simulated market step by step (an RL environment, a notebook) reads the
agent's `ctx.quote()` between runs; it must see the market as of the clock, as a handler
starting then would, without calling anything undocumented.
"""

from __future__ import annotations

from agents.agent import Agent
from agents.config import LatencyConfig, MarketConfig, Population
from agents.sim import SimMarket

MS = 1_000_000
S = 1_000_000_000


class Silent(Agent):
    """Never runs a handler that reads the market: its view is only ever read from outside."""


def _market() -> SimMarket:
    config = MarketConfig(seed=7, populations=[Population(name="zi", strategy="zi", count=30)])
    market = SimMarket.from_config(config)
    market.add_agent(Silent(), "watcher", latency=LatencyConfig(kind="fixed", network_us=500.0))
    return market


def test_quote_outside_a_handler_is_the_view_as_of_the_clock() -> None:
    market = _market()
    ctx = market.agent("watcher")
    symbol = ctx.symbols[0]
    seen = 0
    for step in range(1, 21):
        market.run(until_ns=step * 500 * MS)
        q = ctx.quote(symbol)
        bids, asks = market.depth_at(symbol, market.now - 500_000, 1)
        if not bids and not asks:
            continue
        assert q is not None, f"no quote at step {step} though the book has orders"
        assert (q.bid, q.ask) == (bids[0][0] if bids else None, asks[0][0] if asks else None)
        seen += 1
    assert seen > 0


def test_reading_between_runs_changes_nothing_in_the_run() -> None:
    a, b = _market(), _market()
    a.run(until_ns=10 * S)
    for step in range(1, 21):
        b.run(until_ns=step * 500 * MS)
        b.agent("watcher").quote(b.agent("watcher").symbols[0])
    assert a.trades["ts"] == b.trades["ts"] and a.trades["price"] == b.trades["price"]
