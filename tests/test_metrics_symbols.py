"""A two-symbol run measured per symbol (hand-computed): what belongs to one symbol splits
(inventory, markouts, spread captured, fills), the PnL sums to the clearing house's."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agents.analysis.run_metrics import measure, read_run

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")
S = 1_000_000_000


def _write(d: Path, name: str, cols: dict) -> None:
    pq.write_table(pa.table(cols), d / f"{name}.parquet")


@pytest.fixture
def two(tmp_path: Path) -> Path:
    """a and b each hold 10 AGR (reference 100) and 10 BGR (reference 50). AGR: a buys 2 at
    100 at 1 s, sells 1 at 101 at 3 s; BGR: a sells 3 at 51 at 2 s, buys 1 at 52 at 4 s; b is
    the other side. AGR's mid: 100, then 101 from 1.5 s; BGR's: 50, then 52 from 2.5 s."""
    _write(tmp_path, "trades", {
        "ts": [1 * S, 2 * S, 3 * S, 4 * S], "trade_id": [1, 2, 3, 4],
        "symbol": ["AGR", "BGR", "AGR", "BGR"], "price": [100, 51, 101, 52], "qty": [2, 3, 1, 1],
        "aggressor": ["buy", "buy", "buy", "buy"], "buy_account": ["a", "b", "b", "a"],
        "sell_account": ["b", "a", "a", "b"],
    })  # fmt: skip
    _write(tmp_path, "top_of_book", {
        "ts": [0, 0, 1_500_000_000, 2_500_000_000], "symbol": ["AGR", "BGR", "AGR", "BGR"],
        "bid": [99, 49, 100, 51], "bid_qty": [1] * 4, "ask": [101, 51, 102, 53],
        "ask_qty": [1] * 4,
    })  # fmt: skip
    # marked to the last trades (AGR 101, BGR 52): a makes 2 + 10 on AGR and -3 + 20 on BGR
    _write(tmp_path, "agents", {
        "name": ["a", "b"], "account": ["a", "b"], "strategy": ["MM", "ZI"],
        "cash": [10_002, 9_998], "trading_pnl": [-1.0, 1.0], "inventory_pnl": [30.0, 30.0],
        "pnl": [29.0, 31.0], "fees": [0, 0], "volume": [7, 7], "fills": [4, 4],
        "orders_sent": [2, 2], "open_orders": [0, 0], "position_AGR": [11, 9],
        "position_BGR": [8, 12],
    })  # fmt: skip
    (tmp_path / "summary.json").write_text(json.dumps({"name": "two", "until_s": 10}))
    (tmp_path / "market.json").write_text(json.dumps({"symbols": [
        {"symbol": "AGR", "tick_size": "0.01", "reference_price": 100},
        {"symbol": "BGR", "tick_size": "0.01", "reference_price": 50}]}))  # fmt: skip
    return tmp_path


def test_two_symbols_split_and_sum(two: Path) -> None:
    run = read_run(two)
    agr, bgr = measure(run, symbol="AGR"), measure(run, symbol="BGR")
    assert measure(run).symbol == "AGR"  # the first traded by default
    assert any("measured on BGR only" in n for n in bgr.notes)
    a_agr, a_bgr = agr.agents["a"], bgr.agents["a"]
    # split: each symbol's own position, fills, spread and markouts (against its own mid)
    assert (a_agr.inventory.final, a_bgr.inventory.final) == (11, 8)
    assert (a_agr.market_making.fills, a_bgr.market_making.fills) == (2, 2)
    assert a_agr.market_making.spread_captured == pytest.approx(0.0)
    assert a_bgr.market_making.spread_captured == pytest.approx(0.75)  # sold 3 a tick up
    assert a_agr.market_making.markouts[1.0] == pytest.approx(2 / 3)  # mid 100 -> 101 on 2
    assert a_bgr.market_making.markouts[1.0] == pytest.approx(-1.5)  # mid 50 -> 52 on -3
    assert (a_agr.profitability.trading, a_agr.profitability.inventory) == (2.0, 10.0)
    assert (a_bgr.profitability.trading, a_bgr.profitability.inventory) == (-3.0, 20.0)
    # sum: the symbols' PnL adds up to the clearing house's per account and for the market
    for name, pnl in (("a", 29.0), ("b", 31.0)):
        total = agr.agents[name].profitability.total + bgr.agents[name].profitability.total
        assert total == pnl
    assert agr.market.profitability.total + bgr.market.profitability.total == 60.0
    assert agr.pnl["MM"][-1] + bgr.pnl["MM"][-1] == -1.0  # the class curves: trading PnL
