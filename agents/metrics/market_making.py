"""A market maker's measures: spread captured, fill ratio, markouts, time quoted at the top.

For a fill of side ``s`` (+1 bought, -1 sold) at price ``p`` and time ``t``, with ``m(t)`` the mid
*just before* the fill (the mid it met, not the one it made):

* spread captured = ``s (m(t) - p)`` ticks per lot: half the spread for a passive fill at the
  touch, negative for an aggressive one. Averaged per lot (quantity-weighted) and summed in
  cash units (``x qty x multiplier``).
* markout at horizon h = ``s (m(t + h) - m(t))`` ticks per lot, quantity-weighted: how the mid
  moved for (positive) or against (negative) the fill h later. Negative markouts are adverse
  selection: the counterparty knew better. ``m(t + h)`` is the last mid at or before t + h;
  fills less than h before the end of the watch (by default the mid series' last stamp) do
  not count at that horizon.
  ``spread captured + markout(h)`` is the fill's PnL marked to the mid h later.
* fill ratio = filled quantity / posted quantity (lots): how much of what was offered traded.
* quote time at top = the fraction of time the account's quote was at the best bid or ask,
  from a 0/1 step function (built where the account's orders are known).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from agents.metrics.series import NS, Fills, Series, as_of, dot, time_weights

__all__ = [
    "DEFAULT_MARKOUT_S",
    "SpreadCaptured",
    "fill_ratio",
    "markouts",
    "quote_time_at_top",
    "spread_captured",
]

DEFAULT_MARKOUT_S: tuple[float, ...] = (1.0, 10.0, 60.0)
"""Markout horizons reported in the metrics table (seconds)."""


@dataclass(frozen=True, slots=True)
class SpreadCaptured:
    """`per_lot` ticks (quantity-weighted mean over fills with a mid), `total` cash units, and
    how many fills had a mid to compare with (`fills`)."""

    per_lot: float
    total: float
    fills: int


def spread_captured(
    fills: Fills, mid_before: np.ndarray, multiplier: float = 1.0
) -> SpreadCaptured:
    """Spread captured from `fills` and the mid just before each (NaN: no mid, left out)."""
    ok = np.isfinite(mid_before)
    if not ok.any():
        return SpreadCaptured(math.nan, 0.0, 0)
    edge = fills.side[ok] * (mid_before[ok] - fills.price[ok])
    q = fills.qty[ok]
    total_lots = float(q.sum())
    per_lot = float(dot(edge, q) / total_lots)
    return SpreadCaptured(per_lot, float(dot(edge, q)) * multiplier, int(ok.sum()))


def markouts(
    fills: Fills, mids: Series, horizons_s: Sequence[float] = DEFAULT_MARKOUT_S,
    mid_before: np.ndarray | None = None, mid_after: Mapping[float, np.ndarray] | None = None,
    end_ns: int | None = None,
) -> dict[float, float]:
    """``{h: quantity-weighted mean of s (m(t + h) - m(t))}`` in ticks per lot (NaN where no fill
    has both mids). `mid_before` (the mid just before each fill) and `mid_after` (per horizon,
    the mid h later, NaN where unknown) are looked up when not given; the mids are known up to
    `end_ns` (default: the last mid's stamp)."""
    out: dict[float, float] = {}
    if len(fills) == 0 or len(mids) == 0:
        return {float(h): math.nan for h in horizons_s}
    m0 = as_of(mids, fills.ts, strict=True) if mid_before is None else mid_before
    last = int(mids.ts[-1]) if end_ns is None else max(int(mids.ts[-1]), end_ns)
    for h in horizons_s:
        if mid_after is not None and float(h) in mid_after:
            m1 = mid_after[float(h)]
            ok = np.isfinite(m0) & np.isfinite(m1)
        else:
            at = fills.ts + round(h * NS)
            m1 = as_of(mids, at)
            ok = np.isfinite(m0) & np.isfinite(m1) & (at <= last)
        if not ok.any():
            out[float(h)] = math.nan
            continue
        q = fills.qty[ok]
        out[float(h)] = float(dot(fills.side[ok] * (m1[ok] - m0[ok]), q) / q.sum())
    return out


def fill_ratio(filled_qty: float, posted_qty: float | None) -> float:
    """Filled / posted quantity; NaN when nothing (or an unknown quantity) was posted."""
    if posted_qty is None or not posted_qty > 0:
        return math.nan
    return filled_qty / posted_qty


def quote_time_at_top(at_top: Series, end_ns: int | None = None) -> float:
    """Time-weighted mean of a 0/1 step function (1: the account's quote was at the best bid
    or ask) from its first stamp to `end_ns`; NaN for an empty or instantaneous series."""
    if len(at_top) == 0:
        return math.nan
    w = time_weights(at_top.ts, end_ns)
    total = float(w.sum())
    return float(dot(w, at_top.values != 0) / total) if total > 0 else math.nan
