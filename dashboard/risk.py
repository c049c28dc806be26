"""Risk figures for the leaderboard, from each account's equity as the dashboard samples it.

The dashboard reads every account's equity (cash units, marked to the last trade) from the
clearing house every `poll_s`; the figures are the metrics module's (`agents.metrics`) over
that sampled curve: the maximum drawdown, and the 95% historical VaR and the Sharpe ratio of
the equity change over one sampling interval (not annualised: a live market has no trading
year). Money is shown as money.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from agents.metrics import historical_var, max_drawdown, sharpe
from agents.units import money

__all__ = ["risk_figures"]

MIN_POINTS = 3  # fewer samples than this say nothing yet


def risk_figures(equity: list[tuple[int, int]], interval_s: float) -> dict[str, Any]:
    """{label: text} for one account; empty until it has `MIN_POINTS` samples."""
    if len(equity) < MIN_POINTS:
        return {}
    ts = np.fromiter((t for t, _ in equity), dtype=np.int64, count=len(equity))
    values = np.fromiter((v for _, v in equity), dtype=float, count=len(equity))
    changes = np.diff(values)
    every = f"{interval_s:g} s"
    var = historical_var(changes, 0.95)
    ratio = sharpe(changes)
    return {
        "max drawdown": money(max_drawdown(ts, values).depth),
        f"VaR 95% / {every}": money(var) if math.isfinite(var) else "-",
        f"Sharpe / {every}": f"{ratio:.2f}" if math.isfinite(ratio) else "-",
    }
