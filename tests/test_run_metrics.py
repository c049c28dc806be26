"""Metrics of a run directory (`agents.analysis.run_metrics`) on a tiny hand-made run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agents.analysis.run_metrics import NotARun, read_run, run_metrics

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")
S = 1_000_000_000


def _write(d: Path, name: str, cols: dict) -> None:
    pq.write_table(pa.table(cols), d / f"{name}.parquet")


@pytest.fixture
def run(tmp_path: Path) -> Path:
    """a (a market maker) and b (a zero-intelligence trader), each handed 10 AGR at 100 and
    10,000 cash units: a buys 2 at 100, sells 1 at 102, buys 1 at 101; b is the other side."""
    _write(tmp_path, "trades", {
        "ts": [1 * S, 2 * S, 3 * S], "trade_id": [1, 2, 3], "symbol": ["AGR"] * 3,
        "price": [100, 102, 101], "qty": [2, 1, 1], "aggressor": ["buy", "sell", "buy"],
        "buy_account": ["a", "b", "a"], "sell_account": ["b", "a", "b"],
    })  # fmt: skip
    _write(tmp_path, "top_of_book", {
        "ts": [0, 1_500_000_000, 2_500_000_000, 3_500_000_000], "symbol": ["AGR"] * 4,
        "bid": [99, 101, 100, 100], "bid_qty": [1] * 4, "ask": [101, 103, 102, 102],
        "ask_qty": [1] * 4,
    })  # fmt: skip
    _write(tmp_path, "agents", {
        "name": ["a", "b"], "account": ["a", "b"],
        "strategy": ["FixedSpreadMarketMaker", "ZeroIntelligence"], "cash": [9_801, 10_199],
        "trading_pnl": [3.0, -3.0], "inventory_pnl": [10.0, 10.0], "pnl": [13.0, 7.0],
        "fees": [0, 0], "volume": [4, 4], "fills": [3, 3], "orders_sent": [2, 1],
        "open_orders": [0, 0], "position_AGR": [12, 8],
    })  # fmt: skip
    _write(tmp_path, "orders", {
        "ts": [0, S, 2 * S, 0], "account": ["a", "a", "a", "b"], "symbol": ["AGR"] * 4,
        "action": ["new", "replace", "cancel", "new"], "side": ["buy", "buy", "buy", "sell"],
        "price": [100, 100, 100, 100], "qty": [5, 3, 5, 4], "clid": ["a.1", "a.1", "a.1", "b.1"],
    })  # fmt: skip
    (tmp_path / "summary.json").write_text(json.dumps({"name": "hand", "until_s": 10}))
    (tmp_path / "market.json").write_text(json.dumps({
        "symbols": [{"symbol": "AGR", "tick_size": "0.01", "reference_price": 100}],
        "populations": [{"name": "a", "strategy": "fixed_spread_mm",
                         "params": {"max_inventory": 12}}],
    }))  # fmt: skip
    return tmp_path


def test_run_metrics_by_hand(run: Path) -> None:
    rm = run_metrics(run)
    a, b = rm.agents["a"], rm.agents["b"]
    assert (a.profitability.total, a.profitability.trading, a.profitability.inventory) == (
        13.0, 3.0, 10.0)  # fmt: skip
    assert (b.profitability.total, b.profitability.trading) == (7.0, -3.0)
    assert a.market_making.fill_ratio == 0.5  # 4 lots filled of 5 + 3 posted
    assert b.market_making.fill_ratio == 1.0
    # every fill at the mid it met; the mid then moved its way: +2 x 2, +1, 0 over 4 lots
    assert a.market_making.spread_captured == 0.0
    assert a.market_making.markouts[1.0] == pytest.approx(1.25)
    assert b.market_making.markouts[1.0] == pytest.approx(-1.25)
    assert rm.markout_curves["FixedSpreadMarketMaker"][1.0] == pytest.approx(1.25)
    # a holds 12 (its population's max_inventory) from 1 s to 2 s and from 3 s: 8 s of 10
    assert a.inventory.final == 12 and a.inventory.time_at_limit == pytest.approx(0.8)
    assert rm.pnl["FixedSpreadMarketMaker"][-1] == 3.0  # the class curve: trading PnL
    assert rm.market.profitability.trading == 0.0  # what one gains the other loses
    assert rm.notes == []
    d = rm.as_dict()
    assert d["agents"]["a"]["market_making"]["fill_ratio"] == 0.5
    json.dumps(d, allow_nan=False)


def test_older_runs_say_what_is_missing(run: Path) -> None:
    (run / "orders.parquet").unlink()
    (run / "market.json").unlink()
    rm = run_metrics(run)
    notes = " ".join(rm.notes)
    assert "no orders table" in notes and "no market file" in notes
    assert rm.agents["a"].market_making.fill_ratio != rm.agents["a"].market_making.fill_ratio
    assert rm.agents["a"].profitability.total == 13.0  # reference price from inventory PnL


def test_settings_in_the_summary_stand_in_for_the_market_file(run: Path) -> None:
    market = json.loads((run / "market.json").read_text())
    (run / "market.json").unlink()
    (run / "summary.json").write_text(json.dumps({"until_s": 10, "settings": market}))
    assert read_run(run).market == market
    assert "no market file" not in " ".join(run_metrics(run).notes)


def test_not_a_run(tmp_path: Path) -> None:
    with pytest.raises(NotARun, match="not a run directory"):
        read_run(tmp_path)
