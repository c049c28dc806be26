"""`SimMarket.run(refresh=False)`: the run is the same; only the agents' views between runs
differ, and `SimContext.refresh` brings one view up to the market's clock.

Why it exists: a driver stepping the market in short slices (the RL `crowd` background) reads
only its own agents between slices, so it need not refresh the whole crowd's views each time.
"""

from __future__ import annotations

from pathlib import Path

from agents.config import load_market
from agents.sim import SimMarket

MARKET = Path(__file__).resolve().parents[1] / "examples" / "market.toml"
SLICE_NS = 100_000_000


def _trade_rows(sim: SimMarket) -> list[tuple]:
    t = sim.trades
    return list(zip(*(t[k] for k in t), strict=True))


def _sliced(refresh: bool, seed: int, slices: int) -> SimMarket:
    sim = SimMarket.from_config(load_market(MARKET), seed=seed)
    for _ in range(slices):
        sim.run(duration_ns=SLICE_NS, refresh=refresh)
    return sim


def test_run_without_refresh_is_the_same_run():
    a = _sliced(True, 3, 40)
    b = _sliced(False, 3, 40)
    rows = _trade_rows(a)
    assert len(rows) > 10
    assert rows == _trade_rows(b)
    assert a.top_of_book() == b.top_of_book()
    assert a.kernel.events_processed == b.kernel.events_processed
    assert a.results() == b.results()


def _views(sim: SimMarket, symbol: str) -> list[tuple]:
    return [(c.quote(symbol), c.last_price(symbol), c.fundamental(symbol)) for c in sim.agents]


def test_refresh_brings_a_view_to_the_clock():
    a = _sliced(True, 4, 30)
    b = _sliced(False, 4, 30)
    symbol = a.symbols[0]
    # without refresh, views stay where each agent's last handler left them: some lag
    assert _views(b, symbol) != _views(a, symbol)
    for ctx in b.agents:
        ctx.refresh()
    assert _views(b, symbol) == _views(a, symbol)
