"""Drawdown: how far a PnL or equity curve fell from its running peak, and for how long.

On a curve ``v`` (cash units) sampled at times ``ts``: ``drawdown[i] = max(v[:i+1]) - v[i]``
(cash units, >= 0). The maximum drawdown is its largest value; its *duration* runs from the
peak before that trough until the curve is back at the peak (or to the end of the series when
it never is, `recovered` False). On an equity curve the relative drawdown divides by the peak:
``1 - v[i] / max(v[:i+1])`` (a fraction; what empyrical's ``max_drawdown`` returns, negated).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

__all__ = ["Drawdown", "drawdown_curve", "max_drawdown", "max_relative_drawdown"]


@dataclass(frozen=True, slots=True)
class Drawdown:
    """The worst fall: `depth` (same units as the curve), `relative` (fraction of the peak,
    NaN unless asked for), `peak_ns`/`trough_ns`, `duration_ns` (peak to recovery, or to the
    end), whether it `recovered`, and `longest_ns`, the longest time spent below a peak."""

    depth: float
    relative: float
    peak_ns: int | None
    trough_ns: int | None
    duration_ns: int
    recovered: bool
    longest_ns: int


def drawdown_curve(values: np.ndarray) -> np.ndarray:
    """``running max - value`` at each point (>= 0)."""
    v = np.asarray(values, dtype=float)
    return np.maximum.accumulate(v) - v if len(v) else np.empty(0)


def _longest_under(ts: np.ndarray, under: np.ndarray) -> int:
    """Longest stretch of time below a peak: from a point at its peak to the next one (or the
    end), counting only the stretches with a point below in between. The stretches are the
    runs of `under`, found where it changes: the first point is always at its own peak, so
    the changes alternate, a run below starting (from the point before it, at the peak) and
    ending (at the first point back at a peak), the last one perhaps lasting until the end."""
    edge = (under[1:] != under[:-1]).nonzero()[0]
    k = len(edge)
    if k == 0:
        return 0
    peaks = edge[0::2]  # the point at the peak before each run below it
    back = edge[1::2]
    back += 1  # the first point back at a peak after each run
    longest = int(np.maximum.reduce(ts[back] - ts[peaks[: len(back)]])) if len(back) else 0
    if k % 2:  # the last run lasts until the end
        longest = max(longest, int(ts[-1] - ts[edge[-1]]))
    return longest


def max_drawdown(
    ts: np.ndarray, values: np.ndarray, relative: bool = False, longest: bool = True
) -> Drawdown:
    """The maximum drawdown of the curve `values` at times `ts` (see the module docstring).

    With `relative`, the worst fall is the largest fraction of the peak (the curve must then be
    a positive equity); otherwise the largest absolute fall. An empty curve has none. Without
    `longest`, the longest time under a peak is not looked for (reported as 0)."""
    t = np.asarray(ts, dtype=np.int64)
    v = np.asarray(values, dtype=float)
    if len(v) == 0:
        return Drawdown(0.0, math.nan, None, None, 0, True, 0)
    peak = np.maximum.accumulate(v)
    dd = peak - v
    if relative:
        if peak[0] <= 0:  # the running peak never falls: positive from its first value on
            raise ValueError("a relative drawdown needs a positive curve (equity)")
        rel = dd / peak
        trough = int(rel.argmax())
        rel_depth = float(rel[trough])
    else:
        trough = int(dd.argmax())
        rel_depth = math.nan
    depth = float(dd[trough])
    longest_ns = _longest_under(t, dd > 0) if longest else 0
    if depth == 0:
        return Drawdown(0.0, 0.0 if relative else math.nan, None, None, 0, True, longest_ns)
    # the peak: the last point at it up to the trough; the recovery: the first back at it
    start = trough - int((v[trough::-1] == peak[trough]).argmax())
    back = v[trough:] >= peak[trough]
    first = int(back.argmax())
    recovered = bool(back[first])
    end = trough + first if recovered else len(v) - 1
    return Drawdown(depth, rel_depth, int(t[start]), int(t[trough]), int(t[end] - t[start]),
                    recovered, longest_ns)  # fmt: skip


def max_relative_drawdown(values: np.ndarray) -> float:
    """``max_drawdown(ts, values, relative=True).relative`` alone: the largest fall as a
    fraction of the peak before it (0 without a fall, NaN where the curve is), without looking
    for when the fall began or ended. The curve must be a positive equity."""
    v = np.asarray(values, dtype=float)
    if len(v) == 0:
        return math.nan
    peak = np.maximum.accumulate(v)
    if peak[0] <= 0:
        raise ValueError("a relative drawdown needs a positive curve (equity)")
    rel = peak - v
    rel /= peak
    return float(rel[rel.argmax()])
