"""The stylized-facts verdict on series whose answers are known: real index returns pass,
a Gaussian random walk fails, Hill's estimator recovers a Pareto tail per side."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agents.analysis.real import load_real
from agents.analysis.stylized import hill, log_returns, tail_indices, tail_k
from agents.analysis.verdict import FACT_KEYS, FactBands, facts_verdict, facts_verdict_of_prices

SHARED_SP500 = Path("/work/shared/data/sp500_daily.csv")


def signed_pareto(n: int, upper: float, lower: float, zeros: float, seed: int) -> np.ndarray:
    """Returns whose gains follow P(X > u) = p u^-upper and losses P(-X > u) = q u^-lower
    (u >= 1), with a share `zeros` of flat bars: each tail's index is known exactly."""
    g = np.random.default_rng(seed)
    side = g.choice(3, size=n, p=[(1 - zeros) / 2, (1 - zeros) / 2, zeros])
    x = np.zeros(n)
    up, down = side == 0, side == 1
    x[up] = 1.0 + g.pareto(upper, up.sum())
    x[down] = -(1.0 + g.pareto(lower, down.sum()))
    return x


def test_hill_recovers_each_tail_of_a_pareto_sample_with_zeros() -> None:
    x = signed_pareto(400_000, upper=2.5, lower=4.0, zeros=0.4, seed=1)
    t = tail_indices(x)
    assert t.k == tail_k(len(x)) == 20_000 and t.n == len(x)  # k from all points, zeros too
    assert t.upper == pytest.approx(2.5, rel=0.04)  # sd of Hill is alpha / sqrt(k): 0.7%
    assert t.lower == pytest.approx(4.0, rel=0.04)


def test_pooling_tails_and_dropping_zeros_reads_thinner_on_the_sp500() -> None:
    # the old estimator: |r| of the non-zero returns, k = 5% of those
    r = log_returns(load_real("sp500")[1])
    a = np.abs(r[r != 0])
    pooled = hill(a, int(0.05 * len(a)))
    t = tail_indices(r)
    assert 2.4 < t.upper < 2.8 and 2.5 < t.lower < 2.8  # the figures an index shows
    assert pooled > max(t.upper, t.lower) + 0.2


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    scale=st.floats(1e-4, 1e4),
    extra_zeros=st.integers(0, 500),
)
def test_hill_ignores_units_and_points_below_its_threshold(
    seed: int, scale: float, extra_zeros: int
) -> None:
    x = signed_pareto(2_000, upper=3.0, lower=3.0, zeros=0.2, seed=seed)
    k = 50
    assert hill(x * scale, k) == pytest.approx(hill(x, k), rel=1e-9)
    assert hill(np.concatenate([x, np.zeros(extra_zeros)]), k) == hill(x, k)


def test_the_shipped_sp500_passes_every_fact() -> None:
    v = facts_verdict_of_prices(load_real("sp500")[1])
    assert [f.key for f in v.facts] == list(FACT_KEYS)
    assert v.all_passed and v.passed == v.total == len(FACT_KEYS), [
        f.detail for f in v.facts if not f.passed
    ]
    assert v.fact("kurtosis").value == pytest.approx(8.2, abs=0.1)
    assert v.tails.k == 251
    assert dict(v.kurtosis_by_scale)[1] > dict(v.kurtosis_by_scale)[20] > 0


@pytest.mark.skipif(not SHARED_SP500.is_file(), reason=f"{SHARED_SP500} is not on this machine")
def test_the_shared_sp500_copy_passes_too() -> None:
    closes = [float(line.split(",")[1]) for line in SHARED_SP500.read_text().split()[1:]]
    assert facts_verdict_of_prices(closes).all_passed


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_a_gaussian_random_walk_fails_tails_and_clustering(seed: int) -> None:
    prices = 100 * np.exp(np.cumsum(np.random.default_rng(seed).normal(0, 0.001, 5_000)))
    v = facts_verdict_of_prices(prices)
    for key in ("kurtosis", "clustering", "slow_decay", "aggregation"):
        assert not v.fact(key).passed, v.fact(key).detail
    assert v.fact("no_linear_memory").passed  # independent steps have no memory
    assert v.passed <= 4


def test_a_garch_like_series_passes_clustering_and_memory() -> None:
    g = np.random.default_rng(9)
    n = 20_000
    log_vol = np.zeros(n)
    for i in range(1, n):
        log_vol[i] = 0.99 * log_vol[i - 1] + 0.07 * g.standard_normal()
    r = np.exp(log_vol) * g.standard_normal(n) * 0.01
    v = facts_verdict(r)
    for key in ("kurtosis", "no_linear_memory", "clustering", "slow_decay"):
        assert v.fact(key).passed, v.fact(key).detail


def test_trending_returns_fail_the_memory_fact() -> None:
    e = np.random.default_rng(3).standard_normal(5_000)
    r = e.copy()
    for i in range(1, len(r)):
        r[i] += 0.4 * r[i - 1]  # ACF(r, 1) = 0.4: a smoothed copy of a random walk
    f = facts_verdict(r).fact("no_linear_memory")
    assert not f.passed and f.value == pytest.approx(0.4, abs=0.05)
    assert "lag 1: +0.4" in f.detail


def test_too_short_a_series_fails_and_says_why() -> None:
    v = facts_verdict([0.01, -0.02, 0.0])
    assert v.passed == 0
    assert all("cannot be measured" in f.detail and f.value is None for f in v.facts)
    data = json.loads(json.dumps(v.to_dict(), allow_nan=False))  # NaN became None
    assert data["passed"] == 0 and data["hill"]["upper"] is None


def test_verdict_as_data_and_its_bands() -> None:
    r = log_returns(load_real("wti")[1])
    v = facts_verdict(r, FactBands(min_kurtosis=20.0, scales=(1, 5)))
    assert not v.fact("kurtosis").passed and v.fact("kurtosis").band == ">= 20"
    d = v.to_dict()
    assert d["total"] == 7 and d["passed"] == v.passed == 6
    assert d["bands"]["scales"] == [1, 5] and len(d["acf_abs"]) == 50
    assert [s for s, _ in d["kurtosis_by_scale"]] == [1, 5]
    assert math.isclose(d["noise_band"], 1.96 / math.sqrt(len(r)))
    with pytest.raises(KeyError):
        v.fact("nope")
    with pytest.raises(ValueError):
        FactBands(scales=(5, 1))


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), scale=st.floats(1e-3, 1e3))
def test_the_verdict_has_no_units_and_a_mirror_swaps_the_tails(seed: int, scale: float) -> None:
    r = signed_pareto(3_000, upper=2.5, lower=3.5, zeros=0.3, seed=seed) * 0.001
    v, scaled, mirrored = facts_verdict(r), facts_verdict(r * scale), facts_verdict(-r)
    assert [f.passed for f in scaled.facts] == [f.passed for f in v.facts]
    assert scaled.tails.upper == pytest.approx(v.tails.upper, rel=1e-9)
    assert (mirrored.tails.upper, mirrored.tails.lower) == (v.tails.lower, v.tails.upper)
    assert mirrored.fact("kurtosis").value == pytest.approx(v.fact("kurtosis").value)
