"""The stylized-facts verdict: PASS or FAIL per fact, against stated bands (numpy only).

One pure function, `facts_verdict`, turns a series of log returns into a `FactsVerdict`: every
fact with its measured value, the band it was held to and whether it passed. `agora facts`
prints it, `agora sweep` ranks parameter sets by the number of facts they pass, benchmarks and
reports quote it: the same bands everywhere, changed in one place (`FactBands`).

The facts and their default bands (R. Cont, "Empirical properties of asset returns: stylized
facts and statistical issues", Quantitative Finance 1(2), 2001, for the facts; the bands are
what daily index returns show, and the shipped S&P 500 passes every one):

* ``kurtosis``: heavy tails, excess kurtosis >= 3.
* ``hill_upper``, ``hill_lower``: Hill's tail index of the gains and of the losses, each from
  its own k largest values, k = 5% of all the returns (`agents.analysis.stylized.tail_k`),
  between 2 and 5. On its own this does not tell a Gaussian apart: Hill at 5% reads about 4.7
  on normal returns (the estimator assumes a power law beyond the threshold); kurtosis does.
* ``no_linear_memory``: |ACF(r, k)| inside the 95% noise band of an independent series,
  ±1.96/√n, at most lags 1-20 (more than half of them), and never above 0.1. "Most", not all:
  under volatility clustering the sample ACF of returns varies more than 1/√n (the band
  assumes independence), and the S&P 500 leaves it at 8 of 20 lags with ACF(r, 1) = -0.07.
  The detail also counts the lags inside a heteroskedasticity-robust band, for information.
* ``clustering``: volatility clustering, ACF(|r|, 10) >= 0.1.
* ``slow_decay``: the clustering lasts, ACF(|r|, 50) >= 0.05, and decays:
  ACF(|r|, 50) <= ACF(|r|, 10).
* ``aggregation``: aggregational Gaussianity, the excess kurtosis of returns summed over 1, 2,
  6, 12 and 20 bars (5, 10, 30, 60 and 100 s on 5 s bars) stays positive at every scale and
  falls: it ends below where it starts and its least-squares trend against log(scale) is
  downward. Not step by step: the sample kurtosis of a few hundred heavy-tailed sums has a
  large error (the S&P 500 reads 8.2, 3.7, 2.7, 4.2, 4.1 at 1, 2, 6, 12, 20 days).

A fact that cannot be measured (too few returns, a series that never moves) FAILS, and its
detail says why.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from agents.analysis.stylized import (
    DEFAULT_TAIL_FRACTION,
    TailIndex,
    acf,
    aggregate,
    kurtosis,
    log_returns,
    tail_indices,
)

__all__ = [
    "FACT_KEYS",
    "FactBands",
    "FactResult",
    "FactsVerdict",
    "facts_verdict",
    "facts_verdict_of_prices",
]

FACT_KEYS: tuple[str, ...] = (
    "kurtosis",
    "hill_upper",
    "hill_lower",
    "no_linear_memory",
    "clustering",
    "slow_decay",
    "aggregation",
)
"""Every fact's key, in the order a verdict lists them (stable: machines read them)."""


@dataclass(frozen=True)
class FactBands:
    """The bands each fact is held to (the defaults are the module docstring's)."""

    min_kurtosis: float = 3.0
    hill_min: float = 2.0
    hill_max: float = 5.0
    tail_fraction: float = DEFAULT_TAIL_FRACTION
    acf_lags: int = 20
    acf_z: float = 1.96
    acf_inside_share: float = 0.5  # "most lags": strictly more than this share inside the band
    acf_max: float = 0.1
    clustering_lag: int = 10
    min_clustering: float = 0.1
    decay_lag: int = 50
    min_decay: float = 0.05
    scales: tuple[int, ...] = (1, 2, 6, 12, 20)  # bars; 5, 10, 30, 60, 100 s on 5 s bars

    def __post_init__(self) -> None:
        if (
            not self.scales
            or any(s < 1 for s in self.scales)
            or list(self.scales) != sorted(set(self.scales))
        ):
            raise ValueError(f"scales must be increasing positive bar counts, got {self.scales}")
        if self.clustering_lag >= self.decay_lag:
            raise ValueError("clustering_lag must be below decay_lag")


@dataclass(frozen=True)
class FactResult:
    """One fact: its measured `value` (None when it cannot be measured), the `band` it was
    held to in words, whether it `passed`, and a `detail` line with the numbers behind it."""

    key: str
    title: str
    value: float | None
    band: str
    passed: bool
    detail: str

    @property
    def mark(self) -> str:
        return "PASS" if self.passed else "FAIL"


@dataclass(frozen=True)
class FactsVerdict:
    """Every fact of one return series, and the measurements the facts were judged on."""

    n: int  # returns
    facts: tuple[FactResult, ...]
    bands: FactBands
    tails: TailIndex
    noise_band: float  # 1.96 / sqrt(n)
    acf_r: tuple[float, ...]  # lags 1..bands.acf_lags
    acf_abs: tuple[float, ...]  # lags 1..bands.decay_lag
    kurtosis_by_scale: tuple[tuple[int, float], ...] = field(default_factory=tuple)

    @property
    def passed(self) -> int:
        """How many facts passed (what a sweep ranks parameter sets by)."""
        return sum(f.passed for f in self.facts)

    @property
    def total(self) -> int:
        return len(self.facts)

    @property
    def all_passed(self) -> bool:
        return self.passed == self.total

    def fact(self, key: str) -> FactResult:
        for f in self.facts:
            if f.key == key:
                return f
        raise KeyError(f"no fact {key!r}: one of {FACT_KEYS}")

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready data: NaN becomes None (JSON has no NaN)."""
        return {
            "n": self.n,
            "passed": self.passed,
            "total": self.total,
            "all_passed": self.all_passed,
            "facts": [
                {
                    "key": f.key,
                    "title": f.title,
                    "value": _clean(f.value),
                    "band": f.band,
                    "passed": f.passed,
                    "detail": f.detail,
                }
                for f in self.facts
            ],
            "bands": {
                k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self.bands).items()
            },
            "hill": {
                "upper": _clean(self.tails.upper),
                "lower": _clean(self.tails.lower),
                "k": self.tails.k,
                "n": self.tails.n,
            },
            "noise_band": _clean(self.noise_band),
            "acf_r": [_clean(x) for x in self.acf_r],
            "acf_abs": [_clean(x) for x in self.acf_abs],
            "kurtosis_by_scale": [[s, _clean(k)] for s, k in self.kurtosis_by_scale],
        }


def _clean(x: float | None) -> float | None:
    return None if x is None or not math.isfinite(x) else float(x)


def _num(x: float) -> str:
    return "n/a" if not math.isfinite(x) else f"{x:.3g}"


def _result(key: str, title: str, value: float, band: str, ok: bool, detail: str) -> FactResult:
    if not math.isfinite(value):
        return FactResult(key, title, None, band, False, f"cannot be measured: {detail}")
    return FactResult(key, title, float(value), band, bool(ok), detail)


def _robust_se(r: np.ndarray, lags: int) -> np.ndarray:
    """Standard errors of ACF(r, 1..lags) that allow for volatility clustering:
    sqrt(sum d_t² d_(t+k)²) / sum d_t² (S. J. Taylor, "Modelling Financial Time Series", 1986;
    it is 1/√n for independent returns). Reported beside the plain band, not judged on."""
    d = r - r.mean()
    d2 = d * d
    total = float(d2.sum())
    if total <= 0:
        return np.full(lags, np.nan)
    return np.array([math.sqrt(float(np.dot(d2[:-k], d2[k:]))) / total for k in range(1, lags + 1)])


def facts_verdict(
    returns: Sequence[float] | np.ndarray, bands: FactBands | None = None
) -> FactsVerdict:
    """Judge a series of log returns (one per bar, a regular grid) on every fact of `bands`."""
    b = bands or FactBands()
    r = np.asarray(returns, dtype=float)
    if r.ndim != 1:
        raise ValueError("returns must be one-dimensional")
    r = r[np.isfinite(r)]
    n = len(r)
    facts: list[FactResult] = []

    k = kurtosis(r)
    facts.append(_result(
        "kurtosis", "heavy tails: excess kurtosis", k, f">= {b.min_kurtosis:g}",
        k >= b.min_kurtosis, f"excess kurtosis {_num(k)} of {n} returns",
    ))  # fmt: skip

    tails = tail_indices(r, b.tail_fraction)
    hill_band = f"{b.hill_min:g} to {b.hill_max:g}"
    for key, side, alpha in (("hill_upper", "gains", tails.upper),
                             ("hill_lower", "losses", tails.lower)):  # fmt: skip
        facts.append(_result(
            key, f"tail index of the {side} (Hill)", alpha, hill_band,
            b.hill_min <= alpha <= b.hill_max,
            f"Hill {_num(alpha)} from the k = {tails.k} largest {side} "
            f"(top {b.tail_fraction:.0%} of {n} returns)",
        ))  # fmt: skip

    noise = b.acf_z / math.sqrt(n) if n else float("nan")
    ac = acf(r, b.acf_lags)
    measured = ac[np.isfinite(ac)]
    if len(measured) == b.acf_lags:
        inside = int(np.sum(np.abs(ac) <= noise))
        robust = int(np.sum(np.abs(ac) <= b.acf_z * _robust_se(r, b.acf_lags)))
        worst = float(np.max(np.abs(ac)))
        ok = inside > b.acf_inside_share * b.acf_lags and worst <= b.acf_max
    else:
        inside, robust, worst, ok = 0, 0, float("nan"), False
    facts.append(_result(
        "no_linear_memory", "no memory: largest |ACF(r, lag)|", worst,
        f"within ±{b.acf_z:g}/√n at > {b.acf_inside_share * b.acf_lags:g} of lags "
        f"1-{b.acf_lags}, all <= {b.acf_max:g}",
        ok,
        f"{inside} of {b.acf_lags} lags within ±{_num(noise)} ({robust} within the "
        f"heteroskedasticity-robust band), largest |ACF| {_num(worst)}"
        + (f" (lag 1: {ac[0]:+.3f})" if math.isfinite(ac[0]) else ""),
    ))  # fmt: skip

    ac_abs = acf(np.abs(r), b.decay_lag)
    c = float(ac_abs[b.clustering_lag - 1])
    facts.append(_result(
        "clustering", f"volatility clustering: ACF(|r|, {b.clustering_lag})", c,
        f">= {b.min_clustering:g}", c >= b.min_clustering,
        f"ACF(|r|, {b.clustering_lag}) = {_num(c)}",
    ))  # fmt: skip
    d = float(ac_abs[b.decay_lag - 1])
    facts.append(_result(
        "slow_decay", f"slow decay: ACF(|r|, {b.decay_lag})", d,
        f">= {b.min_decay:g}, <= ACF(|r|, {b.clustering_lag})",
        d >= b.min_decay and d <= c,
        f"ACF(|r|, {b.decay_lag}) = {_num(d)} against {_num(c)} at lag {b.clustering_lag}",
    ))  # fmt: skip

    by_scale = tuple((s, kurtosis(aggregate(r, s))) for s in b.scales)
    ks = np.array([k for _, k in by_scale])
    if len(ks) >= 2 and np.all(np.isfinite(ks)):
        slope = float(np.polyfit(np.log(np.array(b.scales, dtype=float)), ks, 1)[0])
        ok = bool(np.all(ks > 0)) and ks[-1] < ks[0] and slope < 0
        last = float(ks[-1])
    else:
        slope, ok, last = float("nan"), False, float("nan")
    facts.append(_result(
        "aggregation", f"aggregation: kurtosis of {b.scales[-1]} bars", last,
        f"> 0 at {', '.join(map(str, b.scales))} bars, falling",
        ok,
        "kurtosis " + ", ".join(f"{_num(k)} ({s})" for s, k in by_scale)
        + f"; trend {_num(slope)} per unit of log scale",
    ))  # fmt: skip

    return FactsVerdict(
        n=n, facts=tuple(facts), bands=b, tails=tails, noise_band=noise,
        acf_r=tuple(float(x) for x in ac), acf_abs=tuple(float(x) for x in ac_abs),
        kurtosis_by_scale=by_scale,
    )  # fmt: skip


def facts_verdict_of_prices(
    prices: Sequence[float] | np.ndarray, bands: FactBands | None = None
) -> FactsVerdict:
    """`facts_verdict` of the log returns of a regular series of positive prices (closes)."""
    return facts_verdict(log_returns(prices), bands)
