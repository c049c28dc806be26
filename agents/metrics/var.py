"""Value-at-Risk and Conditional VaR (expected shortfall), historical and parametric.

Losses are positive numbers: VaR_alpha is the loss over one horizon that is exceeded with
probability 1 - alpha (alpha = 0.95 or 0.99), CVaR_alpha the mean loss in that tail,
``E[loss | loss >= VaR_alpha]``. Units are those of the input (cash units for PnL increments).

* Historical, from observed outcomes ``x`` (PnL increments or returns, gains positive):
  ``VaR = -quantile(x, 1 - alpha)`` (numpy's linear interpolation) and CVaR the mean of the
  worst ``floor((n - 1)(1 - alpha)) + 1`` outcomes, negated. These are empyrical's
  ``value_at_risk`` and ``conditional_value_at_risk`` with ``cutoff = 1 - alpha`` (the tests
  compare them).
* Parametric (normal, zero mean) for a position of ``q`` lots at price ``S`` (cash units per lot)
  whose returns have standard deviation ``sigma`` per unit of time, over ``T`` units:
  ``VaR = |q| S Phi^-1(alpha) sigma sqrt(T)`` and
  ``CVaR = |q| S sigma sqrt(T) phi(Phi^-1(alpha)) / (1 - alpha)``, the normal tail mean.
  Phi^-1 and phi come from the standard library (`statistics.NormalDist`).
"""

from __future__ import annotations

import math
from functools import lru_cache
from statistics import NormalDist

import numpy as np

__all__ = [
    "historical_cvar",
    "historical_var",
    "historical_var_cvar",
    "parametric_cvar",
    "parametric_var",
]

_N = NormalDist()


@lru_cache(maxsize=16)
def _z(alpha: float) -> float:
    """Phi^-1(alpha), once per confidence (every account of a market asks for the same)."""
    return _N.inv_cdf(alpha)


@lru_cache(maxsize=16)
def _density_at_z(alpha: float) -> float:
    """phi(Phi^-1(alpha)), once per confidence."""
    return _N.pdf(_N.inv_cdf(alpha))


def _check(alpha: float) -> None:
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")


def historical_var_cvar(x: np.ndarray, alpha: float = 0.95) -> tuple[float, float]:
    """(`historical_var`, `historical_cvar`) from one selection of the worst outcomes."""
    _check(alpha)
    a = np.asarray(x, dtype=float)
    if len(a) == 0:
        return math.nan, math.nan
    h = (len(a) - 1) * (1.0 - alpha)
    lo = math.floor(h)
    hi = min(lo + 1, len(a) - 1)
    k = int((len(a) - 1) * (1.0 - alpha))
    part = _worst(a, max(hi, k))
    part = part.copy() if part is a else part  # a selection is ours to reorder
    part.partition(sorted({lo, hi, k}))
    var = -float(part[lo] + (h - lo) * (part[hi] - part[lo]))
    return var, -float(np.add.reduce(part[: k + 1]) / (k + 1))  # np.mean's sum and division


def _worst(a: np.ndarray, j: int) -> np.ndarray:
    """The outcomes of `a` at or below a threshold that leaves at least its `j + 1` smallest:
    the tail is a small part of a long series, so partitioning only these finds the same order
    statistics for a fraction of the work. The threshold is an order statistic of every 16th
    outcome, taken a little beyond the tail's share so it seldom falls short (then all of `a`).
    The tail's mean may then add its outcomes in another order (the last bit may differ)."""
    n = len(a)
    if n < 4096 or j + 1 > n // 8:
        return a
    sample = a[::16].copy()  # ours to reorder (what np.partition copies, without its wrapper)
    cut = min(len(sample) - 1, (2 * (j + 1) * len(sample)) // n + 8)
    sample.partition(cut)
    tail = a[(a <= sample[cut]).nonzero()[0]]  # by index: a mask would branch on each outcome
    return tail if len(tail) > j else a


def historical_var(x: np.ndarray, alpha: float = 0.95) -> float:
    """``-quantile(x, 1 - alpha)``: the loss exceeded in a fraction 1 - alpha of the
    observations (NaN without any)."""
    _check(alpha)
    a = np.asarray(x, dtype=float)
    if len(a) == 0:
        return math.nan
    # numpy's linear percentile from two order statistics: O(n) partitions instead of a sort
    h = (len(a) - 1) * (1.0 - alpha)
    lo = math.floor(h)
    hi = min(lo + 1, len(a) - 1)
    part = np.partition(a, (lo, hi))
    return -float(part[lo] + (h - lo) * (part[hi] - part[lo]))


def historical_cvar(x: np.ndarray, alpha: float = 0.95) -> float:
    """Minus the mean of the worst ``floor((n - 1)(1 - alpha)) + 1`` observations: the mean loss
    at or beyond the historical VaR (NaN without observations)."""
    _check(alpha)
    a = np.asarray(x, dtype=float)
    if len(a) == 0:
        return math.nan
    k = int((len(a) - 1) * (1.0 - alpha))
    return -float(np.mean(np.partition(a, k)[: k + 1]))


def parametric_var(q: float, s: float, sigma: float, t: float = 1.0, alpha: float = 0.95) -> float:
    """``|q| S Phi^-1(alpha) sigma sqrt(T)`` (normal returns, zero mean)."""
    _check(alpha)
    return abs(q) * s * _z(alpha) * sigma * math.sqrt(t)


def parametric_cvar(
    q: float, s: float, sigma: float, t: float = 1.0, alpha: float = 0.95
) -> float:
    """``|q| S sigma sqrt(T) phi(Phi^-1(alpha)) / (1 - alpha)``: E[loss | loss > VaR_alpha] for
    normal returns with zero mean."""
    _check(alpha)
    return abs(q) * s * sigma * math.sqrt(t) * _density_at_z(alpha) / (1.0 - alpha)
