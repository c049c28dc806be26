"""Execution quality: implementation shortfall against the arrival price, VWAP and TWAP.

For fills of sides ``s_i`` (+1 bought, -1 sold), prices ``p_i`` (ticks) and quantities ``q_i``:

* implementation shortfall = ``sum s_i q_i (p_i - P0)`` ticks x lots (x multiplier for cash), with
  ``P0`` the arrival price (the mid when the execution started): what trading cost against
  trading everything at once at arrival. Positive is a cost. In basis points:
  ``1e4 x shortfall / (P0 x sum q_i)``.
* slippage against a benchmark B (the market's VWAP or the mid's TWAP over the execution
  window) = ``sum s_i q_i (p_i - B) / sum q_i`` ticks per lot, positive a cost.
* VWAP = ``sum p_j q_j / sum q_j`` over the market's trades; TWAP = the time-weighted mean of a
  price step function over a window.
"""

from __future__ import annotations

import math

import numpy as np

from agents.metrics.series import Fills, Series, dot

__all__ = ["implementation_shortfall", "slippage", "twap", "vwap"]


def implementation_shortfall(
    fills: Fills, arrival: float, *, signed_qty: np.ndarray | None = None,
    qty_total: float | None = None,
) -> tuple[float, float]:
    """(shortfall in ticks x lots, shortfall in bps of the arrival notional); NaNs without fills
    or arrival price. `signed_qty` (``fills.signed_qty``) and `qty_total` (the sum of
    ``fills.qty``) when the caller has them already."""
    if len(fills) == 0 or not math.isfinite(arrival) or arrival <= 0:
        return math.nan, math.nan
    sq = fills.signed_qty if signed_qty is None else signed_qty
    total = float(np.add.reduce(fills.qty)) if qty_total is None else qty_total
    cost = float(dot(sq, fills.price - arrival))
    return cost, 1e4 * cost / (arrival * total)


def slippage(
    fills: Fills, benchmark: float, *, signed_qty: np.ndarray | None = None,
    qty_total: float | None = None,
) -> float:
    """``sum s q (p - B) / sum q`` ticks per lot (positive: worse than the benchmark).
    `signed_qty` and `qty_total` as for `implementation_shortfall`."""
    if len(fills) == 0 or not math.isfinite(benchmark):
        return math.nan
    sq = fills.signed_qty if signed_qty is None else signed_qty
    total = float(np.add.reduce(fills.qty)) if qty_total is None else qty_total
    return float(dot(sq, fills.price - benchmark) / total)


def vwap(price: np.ndarray, qty: np.ndarray) -> float:
    """Volume-weighted average price (NaN without volume)."""
    q = np.asarray(qty, dtype=float)
    total = float(q.sum())
    return float(dot(np.asarray(price, dtype=float), q) / total) if total > 0 else math.nan


def twap(prices: Series, start_ns: int, end_ns: int) -> float:
    """Time-weighted mean of the step function `prices` over [start_ns, end_ns]; the value in
    force at `start_ns` counts from there. NaN where no price is known; the price at start
    when the window is an instant."""
    if len(prices) == 0 or end_ns < start_ns:
        return math.nan
    i0 = int(np.searchsorted(prices.ts, start_ns, side="right")) - 1
    i1 = int(np.searchsorted(prices.ts, end_ns, side="right"))
    lo = max(i0, 0)
    ts = prices.ts[lo:i1].astype(np.int64).copy()
    v = prices.values[lo:i1]
    if len(ts) == 0:
        return math.nan
    ts[0] = max(int(ts[0]), start_ns)
    if end_ns == start_ns:
        return float(v[0]) if i0 >= 0 else math.nan
    w = np.diff(np.append(ts, end_ns)).astype(float)
    ok = np.isfinite(v)
    total = float(w[ok].sum())
    return float(dot(w[ok], v[ok]) / total) if total > 0 else math.nan
