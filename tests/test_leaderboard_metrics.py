"""The live leaderboard's Sharpe ratio, drawdown and fill ratio (`deploy.leaderboard`)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from rich.console import Console

from agents.metrics import periods_per_year, sharpe
from deploy.leaderboard import PnlHistory, Row, by_strategy, tables, with_metrics

S = 1_000_000_000


def _row(account: str, strategy: str, trading: int | None, pnl: int = 0) -> Row:
    return Row(account=account, strategy=strategy, cash=0, equity=0, pnl=pnl,
               trading_pnl=trading, inventory_pnl=None if trading is None else pnl - trading,
               fees=0, settled_through=1)  # fmt: skip


def _history() -> PnlHistory:
    h = PnlHistory(interval_s=5.0)
    a = [0, 100, 50, 150, 120, 200]  # increments 100, -50, 100, -30, 80; worst fall 50
    b = [0, -10, -20, -30, -40, -50]
    for i, (x, y) in enumerate(zip(a, b, strict=True)):
        # samples arrive a little late at times: the grid takes the last one before each point
        h.add(i * 5 * S + (S // 10 if i % 2 else 0), [_row("mm-0", "MM", x), _row("zi-0", "ZI", y)])
    return h


def test_sharpe_and_drawdown_of_the_sampled_pnl() -> None:
    h = _history()
    ratio, depth = h.measure(["mm-0"])
    x = np.array([100.0, -50, 100, -30, 80])
    assert ratio == pytest.approx(sharpe(x, periods_per_year(5.0)))
    assert depth == 50.0
    ratio_b, depth_b = h.measure(["zi-0"])
    assert ratio_b is None  # a steady loss has no variance: no ratio, not a made-up number
    assert depth_b == 50.0
    # a class: the members' PnL summed, then measured
    _, depth_both = h.measure(["mm-0", "zi-0"])
    assert depth_both == 60.0  # 140 at 15 s down to 80 at 20 s
    assert "every 5 s" in h.note and "6 samples" in h.note
    assert PnlHistory().measure(["mm-0"]) == (None, None)


def test_rows_get_sharpe_drawdown_and_fill_ratio() -> None:
    h = _history()
    rows = [_row("mm-0", "MM", 200), _row("zi-0", "ZI", -50), _row("alice", "other", None, 7)]
    activity = {"mm-0": {"volume": 30, "posted": 120}, "zi-0": {"volume": 5, "posted": None}}
    with_metrics(rows, h, activity)
    assert rows[0].fill_ratio == 0.25 and rows[0].max_drawdown == 50.0
    assert rows[0].sharpe is not None and math.isfinite(rows[0].sharpe)
    assert rows[1].fill_ratio is None  # posted quantity unknown: no ratio
    assert rows[2].sharpe is None and rows[2].fill_ratio is None  # never sampled
    classes = {g["strategy"]: g for g in by_strategy(rows, h, activity)}
    assert classes["MM"]["fill_ratio"] == 0.25 and classes["MM"]["max_drawdown"] == 50.0
    assert classes["ZI"]["fill_ratio"] is None
    console = Console(width=200, record=True)
    for t in tables(rows, market=None, note=h.note):
        console.print(t)
    text = console.export_text()
    assert "Sharpe" in text and "fill ratio" in text and "25.0%" in text and "0.50" in text


def test_without_metrics_the_table_is_unchanged() -> None:
    console = Console(width=200, record=True)
    for t in tables([_row("mm-0", "MM", 200)], market=None):
        console.print(t)
    assert "Sharpe" not in console.export_text()
