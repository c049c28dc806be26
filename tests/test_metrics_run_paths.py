"""`run_metrics.measure` finds each account's metrics with shared work (the legs sorted by
account once, the mids around every trade looked up once, the grid slots counted once); the
same account measured alone by `compute`, from its own fills, must give the very same figures."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from agents.analysis.run_metrics import measure, read_run
from agents.metrics import Fills, MarketContext, Series, as_of, compute, pnl_curve
from agents.metrics.series import cumulative_on_grid

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")
S = 1_000_000_000


@pytest.fixture
def random_run(tmp_path: Path) -> Path:
    rng = np.random.default_rng(11)
    n, names = 400, np.array(["mm-0", "mm-1", "zi-0", "zi-1", "zi-2"])
    ts = np.sort(rng.choice(120 * S, n, replace=False)).astype(np.int64)
    price = 10_000 + np.cumsum(rng.choice([-1, 0, 1], n))
    qty = rng.integers(1, 6, n)
    buyer = rng.integers(0, 5, n)
    seller = (buyer + rng.integers(1, 5, n)) % 5
    spread = rng.integers(1, 4, n)
    pq.write_table(pa.table({
        "ts": ts, "trade_id": np.arange(n), "symbol": ["AGR"] * n, "price": price, "qty": qty,
        "aggressor": rng.choice(["buy", "sell"], n), "buy_account": names[buyer],
        "sell_account": names[seller]}), tmp_path / "trades.parquet")  # fmt: skip
    pq.write_table(pa.table({
        "ts": ts + 1, "symbol": ["AGR"] * n, "bid": price - spread, "bid_qty": qty,
        "ask": price + spread, "ask_qty": qty}), tmp_path / "top_of_book.parquet")  # fmt: skip
    net = np.bincount(buyer, qty, 5) - np.bincount(seller, qty, 5)
    paid = np.bincount(buyer, qty * price, 5) - np.bincount(seller, qty * price, 5)
    pq.write_table(pa.table({
        "name": names, "account": names,
        "strategy": ["FixedSpreadMarketMaker"] * 2 + ["ZeroIntelligence"] * 3,
        "cash": (1_000_000 - paid).astype(np.int64), "fees": [30, 0, 5, 0, 12],
        "position_AGR": (100 + net).astype(np.int64)}), tmp_path / "agents.parquet")  # fmt: skip
    (tmp_path / "summary.json").write_text(json.dumps({"until_s": 130}))
    (tmp_path / "market.json").write_text(json.dumps({
        "symbols": [{"symbol": "AGR", "tick_size": "0.01", "reference_price": 10_000}]}))
    return tmp_path


def test_each_account_as_compute_finds_it_alone(random_run: Path) -> None:
    run = read_run(random_run)
    rm = measure(run)
    t = run.tables["trades"].to_pydict()
    ag = run.tables["agents"].to_pydict()
    t_ts, t_px, t_q = (np.array(t[c]) for c in ("ts", "price", "qty"))
    b = run.tables["top_of_book"].to_pydict()
    mids = Series.of(b["ts"], (np.array(b["bid"]) + np.array(b["ask"])) / 2.0)
    market = MarketContext(mids, t_ts, t_px, t_q, end_ns=130 * S)  # no shared trade index
    grid = rm.grid
    for r, name in enumerate(ag["name"]):
        buy, sell = np.array(t["buy_account"]) == name, np.array(t["sell_account"]) == name
        mine = buy | sell
        side = np.where(buy, 1, -1)[mine]
        px, q = t_px[mine].astype(float), t_q[mine].astype(float)
        fee = px * q * (ag["fees"][r] / float((px * q).sum()))
        fills = Fills.of(t_ts[mine], side, px, q, fee)
        q0 = ag["position_AGR"][r] - float((side * q).sum())
        pnl = pnl_curve(fills, market.last_trades, grid, 0.0, 10_000.0)
        pos = q0 + cumulative_on_grid(fills.ts, fills.signed_qty, grid)
        marks = np.nan_to_num(as_of(market.last_trades, grid), nan=10_000.0)
        cash0 = ag["cash"][r] + float((px * side * q).sum()) + ag["fees"][r]
        alone = compute(
            fills, market, Series(grid, pnl), Series(grid, pos), equity=Series(
                grid, cash0 + q0 * marks + pnl), start_position=q0, start_mark=10_000.0,
            mark=float(t_px[-1]), start_ns=0, end_ns=130 * S,
        )  # fmt: skip
        shared = rm.agents[name]
        assert len(fills) > 0
        # the same figures to the last bit (repr: NaN equal to NaN), bar what only a run
        # directory knows (posted quantity, time at the top)
        for part in ("profitability", "risk", "inventory", "execution", "sampling"):
            assert repr(getattr(shared, part)) == repr(getattr(alone, part)), (name, part)
        mm, mm_alone = shared.market_making, alone.market_making
        assert (mm.fills, mm.spread_captured, mm.spread_captured_total, mm.markouts) == (
            mm_alone.fills, mm_alone.spread_captured, mm_alone.spread_captured_total,
            mm_alone.markouts)  # fmt: skip
