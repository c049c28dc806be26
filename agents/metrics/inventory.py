"""Inventory: how much an account held over time, and how long it sat at its position limit.

The position is a step function (it changes at fills), so every statistic is time-weighted:
each value counts for as long as it was held, from its time stamp to the next (the last one up
to `end_ns`). Quantities in lots.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from agents.metrics.series import Series, dot, time_weights

__all__ = ["InventoryStats", "inventory_stats"]


@dataclass(frozen=True, slots=True)
class InventoryStats:
    """Time-weighted `mean` and `std` of the position, its `min`, `max` and largest absolute
    value `max_abs` (lots), its `final` value, and the fraction of the time at or beyond the
    position limit, `time_at_limit` (NaN without a limit)."""

    mean: float
    std: float
    min: float
    max: float
    max_abs: float
    final: float
    time_at_limit: float


def inventory_stats(
    position: Series, end_ns: int | None = None, limit: float | None = None,
    weights: np.ndarray | None = None,
) -> InventoryStats:
    """Statistics of the step function `position` from its first stamp to `end_ns` (default:
    its last stamp, which then weighs nothing). `limit` is the absolute position limit (lots):
    the time at limit is the time with ``|position| >= limit`` over the whole span. `weights`:
    ``time_weights(position.ts, end_ns)`` when the caller holds them already (one grid shared
    by many accounts)."""
    v = position.values
    if len(v) == 0:
        return InventoryStats(*(math.nan,) * 7)
    w = time_weights(position.ts, end_ns) if weights is None else weights
    total = float(np.add.reduce(w))
    if total > 0:
        mean = float(dot(w, v) / total)
        std = math.sqrt(max(0.0, float(dot(w, (v - mean) ** 2) / total)))
    else:  # a single instant: the plain statistics of what there is
        mean, std = float(v.mean()), float(v.std())
    at_limit = math.nan
    if limit is not None and limit > 0:
        hit = np.abs(v) >= limit
        at_limit = float(w[hit].sum() / total) if total > 0 else float(hit.mean())
    lo, hi = float(np.minimum.reduce(v)), float(np.maximum.reduce(v))
    return InventoryStats(mean, std, lo, hi, max(abs(lo), abs(hi)), float(v[-1]), at_limit)
