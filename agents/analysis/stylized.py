"""Stylized facts of a price series: the checks a market model is judged by (numpy only).

A simulated market is credible when its returns look like real ones in the ways that are
robust across assets and periods (R. Cont, "Empirical properties of asset returns: stylized
facts and statistical issues", Quantitative Finance 1(2), 2001):

* heavy tails: positive excess kurtosis, a tail index (Hill, each tail) typically between 2
  and 5;
* no linear autocorrelation of returns (beyond the shortest lags, where bid-ask bounce lives);
* volatility clustering: the autocorrelation of |returns| is positive and decays slowly;
* aggregational Gaussianity: the kurtosis falls toward 0 as returns are summed over longer
  intervals.

Everything here is a pure function of arrays, so the same code measures a simulated history,
a real series (`agents.analysis.real`) and synthetic data with known answers (the tests).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

__all__ = [
    "DEFAULT_ABS_LAGS",
    "DEFAULT_SCALES",
    "DEFAULT_TAIL_FRACTION",
    "MIN_TAIL_K",
    "TailIndex",
    "acf",
    "aggregate",
    "facts_table",
    "hill",
    "hill_tail_index",
    "kurtosis",
    "log_returns",
    "regular_closes",
    "tail_indices",
    "tail_k",
]

DEFAULT_SCALES: tuple[int, ...] = (1, 5, 20)
"""Aggregation scales, in bars (daily data: a day, a week, a month)."""
DEFAULT_ABS_LAGS: tuple[int, ...] = (1, 2, 5, 10, 20, 50)
"""Lags at which the |return| autocorrelation is reported (its slow decay is the fact)."""


def log_returns(prices: Sequence[float] | np.ndarray) -> np.ndarray:
    """log p(t) - log p(t-1); non-positive or non-finite prices are an error (log undefined)."""
    p = np.asarray(prices, dtype=float)
    if p.ndim != 1:
        raise ValueError("prices must be one-dimensional")
    if np.any(~np.isfinite(p)) or np.any(p <= 0):
        raise ValueError("prices must be positive and finite")
    return np.diff(np.log(p))


def aggregate(returns: Sequence[float] | np.ndarray, scale: int) -> np.ndarray:
    """Sums of `scale` consecutive log returns (non-overlapping blocks; a partial tail is
    dropped): the return over `scale` bars, since log returns add up."""
    if scale < 1:
        raise ValueError(f"scale must be >= 1, got {scale}")
    r = np.asarray(returns, dtype=float)
    n = len(r) // scale
    return r[: n * scale].reshape(n, scale).sum(axis=1)


def kurtosis(x: Sequence[float] | np.ndarray) -> float:
    """Excess kurtosis m4/m2² - 3 (0 for a Gaussian); NaN with fewer than 4 points or no
    variance (a series that never moves has no tail to speak of)."""
    a = np.asarray(x, dtype=float)
    if len(a) < 4:
        return float("nan")
    d = a - a.mean()
    m2 = float(np.mean(d * d))
    if m2 <= 0:
        return float("nan")
    return float(np.mean(d**4) / (m2 * m2) - 3.0)


DEFAULT_TAIL_FRACTION = 0.05
"""Hill's k as a share of all returns, per tail: the top 5% of the sample."""
MIN_TAIL_K = 10
"""Fewer order statistics than this say nothing about a tail: the estimate is NaN."""


def tail_k(n: int, tail_fraction: float = DEFAULT_TAIL_FRACTION) -> int:
    """The number of order statistics Hill uses for one tail of `n` returns: the top
    `tail_fraction` of the whole sample (zeros and the other tail included, since they are part
    of the sample the fraction is taken of), ``floor(tail_fraction * n)``."""
    if not 0 < tail_fraction < 1:
        raise ValueError(f"tail_fraction must be in (0, 1), got {tail_fraction}")
    return int(tail_fraction * n)


def hill(x: Sequence[float] | np.ndarray, k: int) -> float:
    """Hill's estimator of the upper tail of `x` from its `k` largest values.

    For P(X > u) ~ u^-alpha it returns alpha = 1 / mean(log(x_(i) / x_(k+1))), i = 1..k, with
    x_(1) the largest (B. M. Hill, "A simple general approach to inference about the tail of a
    distribution", Annals of Statistics 3(5), 1975). The threshold x_(k+1) must be positive: a
    tail that reaches into zero or below has fewer than k + 1 points and no estimate (NaN),
    as does a degenerate one (all k values equal to the threshold) or `k` below `MIN_TAIL_K`.
    """
    a = np.asarray(x, dtype=float)
    a = a[np.isfinite(a)]
    if k < MIN_TAIL_K or len(a) < k + 1:
        return float("nan")
    top = -np.sort(-np.partition(a, len(a) - k - 1)[len(a) - k - 1 :])  # k + 1 largest, desc
    threshold = top[k]
    if threshold <= 0:
        return float("nan")
    mean = float(np.log(top[:k] / threshold).mean())
    return float("nan") if mean <= 0 else 1.0 / mean


def hill_tail_index(
    x: Sequence[float] | np.ndarray,
    tail_fraction: float = DEFAULT_TAIL_FRACTION,
    k: int | None = None,
    tail: Literal["upper", "lower"] = "upper",
) -> float:
    """Hill's tail index of one tail of `x`: the upper (gains) or the lower (losses, as -x).

    k is `tail_k` of all the finite points unless given. The two tails are measured apart and
    zeros stay in the sample: pooling both tails into |x| with k a share of the pooled count
    takes only about half that share from each tail, and dropping zeros (flat bars) shrinks k
    further; both push the threshold deeper into the tail, where a series with a Student-like
    body reads a larger index (thinner tails: 2.9 pooled against 2.5 and 2.7 per tail on the
    shipped S&P 500 at 5%).
    """
    a = np.asarray(x, dtype=float)
    a = a[np.isfinite(a)]
    if tail == "lower":
        a = -a
    elif tail != "upper":
        raise ValueError(f"tail must be 'upper' or 'lower', got {tail!r}")
    return hill(a, tail_k(len(a), tail_fraction) if k is None else k)


@dataclass(frozen=True)
class TailIndex:
    """Hill's index of each tail of a return series and the k it used (per tail)."""

    upper: float
    lower: float
    k: int
    n: int


def tail_indices(
    returns: Sequence[float] | np.ndarray,
    tail_fraction: float = DEFAULT_TAIL_FRACTION,
    k: int | None = None,
) -> TailIndex:
    """Hill's index of the gains and of the losses of `returns`, each from its own k largest
    values (k = `tail_k` of all the returns unless given)."""
    r = np.asarray(returns, dtype=float)
    r = r[np.isfinite(r)]
    kk = tail_k(len(r), tail_fraction) if k is None else k
    return TailIndex(hill(r, kk), hill(-r, kk), kk, len(r))


def acf(x: Sequence[float] | np.ndarray, max_lag: int) -> np.ndarray:
    """Sample autocorrelations at lags 1..max_lag (index 0 is lag 1).

    The usual biased estimator (one variance, sums over n - lag terms divided by n), so the
    values are those of a positive-definite sequence; NaN for a constant series.
    """
    a = np.asarray(x, dtype=float)
    n = len(a)
    out = np.full(max_lag, np.nan)
    if n < 2:
        return out
    d = a - a.mean()
    var = float(np.dot(d, d))
    if var <= 0:
        return out
    for lag in range(1, min(max_lag, n - 1) + 1):
        out[lag - 1] = float(np.dot(d[:-lag], d[lag:])) / var
    return out


def regular_closes(
    ts: Sequence[int] | np.ndarray, prices: Sequence[float] | np.ndarray, bar: int
) -> np.ndarray:
    """The last price of each bar of length `bar` (same units as `ts`), from the first bar with
    a price to the last, carrying the previous close through bars without one.

    A regular grid is what makes returns at different times comparable; an empty bar is a zero
    return (nothing traded), which is what a real minute bar without trades shows too.
    """
    t = np.asarray(ts, dtype=np.int64)
    p = np.asarray(prices, dtype=float)
    if len(t) == 0:
        return np.empty(0)
    if len(t) != len(p):
        raise ValueError("ts and prices differ in length")
    order = np.argsort(t, kind="stable")
    t, p = t[order], p[order]
    idx = t // bar
    idx -= idx[0]
    closes = np.full(int(idx[-1]) + 1, np.nan)
    closes[idx] = p  # later prices of a bar overwrite earlier ones: the close
    filled = ~np.isnan(closes)
    positions = np.where(filled, np.arange(len(closes)), 0)
    np.maximum.accumulate(positions, out=positions)
    return closes[positions]


def facts_table(
    prices: Sequence[float] | np.ndarray,
    scales: Sequence[int] = DEFAULT_SCALES,
    max_lag: int = 10,
    abs_lags: Sequence[int] = DEFAULT_ABS_LAGS,
    tail_fraction: float = DEFAULT_TAIL_FRACTION,
) -> dict[str, float]:
    """The stylized facts of a price series as an ordered ``{fact: value}`` mapping.

    Rows: number of returns; excess kurtosis at each scale (aggregational Gaussianity: it
    should fall with the scale); Hill's index of each tail of the scale-1 returns; the ACF of
    returns at lags 1..`max_lag` (should be ~0); the ACF of |returns| at `abs_lags` (volatility
    clustering: positive, slowly decaying). Rows are named identically for any series so two
    tables can be printed side by side.
    """
    r = log_returns(prices)
    rows: dict[str, float] = {"returns": float(len(r))}
    rows["std of returns"] = float(np.std(r)) if len(r) else float("nan")
    for s in scales:
        rows[f"kurtosis (scale {s})"] = kurtosis(aggregate(r, s))
    tails = tail_indices(r, tail_fraction)
    rows[f"Hill upper tail (top {tail_fraction:.0%})"] = tails.upper
    rows[f"Hill lower tail (top {tail_fraction:.0%})"] = tails.lower
    ac = acf(r, max_lag)
    for lag in range(1, max_lag + 1):
        rows[f"ACF r lag {lag}"] = float(ac[lag - 1])
    lags = list(abs_lags)
    ac_abs = acf(np.abs(r), max(lags)) if lags else np.empty(0)
    for lag in lags:
        rows[f"ACF |r| lag {lag}"] = float(ac_abs[lag - 1])
    return rows
