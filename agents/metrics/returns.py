"""Risk-adjusted return: Sharpe and Sortino ratios, profit factor and turnover.

All of them take the *increments* of a PnL (or equity, or return) series sampled on a regular
grid: ``x[i] = pnl[i + 1] - pnl[i]`` over one sampling interval. On a PnL in cash units the
ratios are the same as on returns over a constant capital (the capital cancels), which is how a
market maker, whose capital is not well defined, is usually judged.

* Sharpe  = mean(x) / std(x) x sqrt(N), std with ddof = 1;
* Sortino = mean(x) / sqrt(mean(min(x, 0)^2)) x sqrt(N) (downside deviation around 0 over every
  interval, the gains counting as 0);

with N the number of sampling intervals per year (`periods_per_year`): the annualisation is the
square-root-of-time rule, exact for independent increments. These are the definitions of
empyrical (Quantopian) with a zero risk-free rate and required return; the tests compare them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = [
    "TRADING_YEAR_S",
    "Moments",
    "moments",
    "periods_per_year",
    "profit_factor",
    "sharpe",
    "sortino",
    "turnover",
]

TRADING_YEAR_S = 252 * 6.5 * 3600
"""A trading year in seconds: 252 sessions of 6.5 hours (a US equity year), 5,896,800 s. A
simulated market trades without breaks, so its seconds are counted as session seconds."""


def periods_per_year(interval_s: float, year_s: float = TRADING_YEAR_S) -> float:
    """How many sampling intervals of `interval_s` seconds make a year of `year_s` seconds."""
    if interval_s <= 0:
        raise ValueError(f"interval must be positive, got {interval_s}")
    return year_s / interval_s


@dataclass(frozen=True, slots=True)
class Moments:
    """What the ratios share about increments `x`, computed once (`moments`) by a caller that
    wants all of them, or for many accounts at once (`agents.metrics.batch`): ``mean(x)``,
    ``std(x, ddof=1)`` (NaN under 2 points), ``sqrt(mean(min(x, 0)^2))`` (the downside
    deviation), the sum of the gains and minus the sum of the losses, and how many (`n`)."""

    n: int
    mean: float
    sd: float
    down: float
    gain: float
    loss: float


def moments(x: np.ndarray) -> Moments:
    """The `Moments` of `x` (NaN for an empty one).

    One pass per quantity, the sums shared: the mean is the one `np.mean` gives and the
    standard deviation the one of ``np.std(x, ddof=1)``, to the last bit. Increments so small
    (or so large) that their squares fall out of the floating-point range (below about
    1e-200: they lose digits, then vanish) are measured scaled to their largest one and scaled
    back: the ratios are scale-free, and a series of tiny but nonzero increments gets the
    deviation it has, not 0 (which would make its Sharpe ratio NaN and its Sortino ratio
    infinite)."""
    a = np.asarray(x, dtype=float)
    if len(a) == 0:
        return Moments(0, math.nan, math.nan, math.nan, 0.0, 0.0)
    m, ss, sq, nonconstant = _moments(a)
    losses_seen = m.loss != 0
    if ((ss < _TINY and nonconstant()) or (sq < _TINY and losses_seen)
            or not math.isfinite(ss + sq)):  # fmt: skip
        scale = float(np.max(np.abs(a)))
        if 0 < scale < math.inf:
            s = _moments(a / scale)[0]
            return Moments(m.n, m.mean, s.sd * scale, s.down * scale, m.gain, m.loss)
    return m


_TINY = 1e-200
"""Below this a sum of squares has lost digits to underflow (the smallest normal double is
2.2e-308, and a sum of many squares near it is worse)."""


def _moments(a: np.ndarray) -> tuple[Moments, float, float, Any]:
    """(`Moments`, sum of squared deviations, sum of squared losses, whether `a` varies)."""
    n = len(a)
    mean = float(np.add.reduce(a)) / n
    dev = a - mean
    losses = np.minimum(a, 0.0)
    loss = -float(np.add.reduce(losses))
    with np.errstate(over="ignore", under="ignore"):  # out of range: `moments` scales
        ss = float(np.add.reduce(np.multiply(dev, dev, out=dev))) if n > 1 else 0.0
        sq = float(np.add.reduce(np.multiply(losses, losses, out=losses)))
    sd = math.sqrt(ss / (n - 1)) if n > 1 else math.nan
    gain = float(np.add.reduce(np.maximum(a, 0.0)))
    return (Moments(n, mean, sd, math.sqrt(sq / n), gain, loss), ss, sq,
            lambda: bool((a != a[0]).any()))  # fmt: skip


def sharpe(x: np.ndarray, periods: float = 1.0, m: Moments | None = None) -> float:
    """mean(x) / std(x, ddof=1) x sqrt(periods); NaN with fewer than 2 points or no variance
    (a steady PnL has no risk to reward: a ratio there would be rounding noise)."""
    m = m if m is not None else moments(x)
    if m.n < 2:
        return math.nan
    sd, mean = m.sd, m.mean
    if not sd > 1e-12 * abs(mean):  # no variance, bar the rounding of a constant series
        return math.nan
    return mean / sd * math.sqrt(periods)


def sortino(x: np.ndarray, periods: float = 1.0, m: Moments | None = None) -> float:
    """mean(x) / sqrt(mean(min(x, 0)^2)) x sqrt(periods): only losses count as risk. NaN
    without points; +inf when nothing was ever lost and the mean is positive."""
    m = m if m is not None else moments(x)
    if m.n == 0:
        return math.nan
    down, mean = m.down, m.mean
    if down == 0:
        return math.inf if mean > 0 else math.nan
    return mean / down * math.sqrt(periods)


def profit_factor(x: np.ndarray, m: Moments | None = None) -> float:
    """Gross profit / gross loss: sum of the positive increments over minus the sum of the
    negative ones. +inf when nothing was lost but something gained, NaN when neither."""
    a = np.asarray(x, dtype=float)
    gain = m.gain if m is not None else float(np.maximum(a, 0.0).sum())
    loss = m.loss if m is not None else -float(np.minimum(a, 0.0).sum())
    if loss == 0:
        return math.inf if gain > 0 else math.nan
    return gain / loss


def turnover(notional: float, capital: float) -> float:
    """Traded notional over capital (e.g. the mean equity): how many times the capital was
    traded. NaN without a positive capital."""
    return notional / capital if capital > 0 else math.nan
