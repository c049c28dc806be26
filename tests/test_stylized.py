"""The stylized-facts statistics on synthetic data whose answers are known in closed form."""

from __future__ import annotations

import math

import numpy as np
import pytest

from agents.analysis.real import REAL_SERIES, load_real
from agents.analysis.stylized import (
    acf,
    aggregate,
    facts_table,
    hill_tail_index,
    kurtosis,
    log_returns,
    regular_closes,
)
from agents.sim.output import bars


def rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


def test_log_returns_and_aggregation_add_up() -> None:
    prices = np.exp(np.cumsum(rng().normal(0, 0.01, 101)))
    r = log_returns(prices)
    assert len(r) == 100
    assert np.allclose(r, np.diff(np.log(prices)))
    weekly = aggregate(r, 5)
    assert len(weekly) == 20
    assert math.isclose(weekly.sum(), r.sum())
    assert math.isclose(weekly[0], math.log(prices[5] / prices[0]))
    assert len(aggregate(r, 7)) == 14  # the partial block is dropped
    with pytest.raises(ValueError):
        log_returns([1.0, 0.0, 2.0])
    with pytest.raises(ValueError):
        aggregate(r, 0)


def test_gaussian_excess_kurtosis_is_near_zero() -> None:
    # the sd of the sample excess kurtosis of n normals is about sqrt(24/n) = 0.011 here
    assert abs(kurtosis(rng(1).standard_normal(200_000))) < 0.06


def test_uniform_and_laplace_kurtosis_match_theory() -> None:
    assert kurtosis(rng(2).uniform(-1, 1, 200_000)) == pytest.approx(-1.2, abs=0.03)
    assert kurtosis(rng(3).laplace(0, 1, 400_000)) == pytest.approx(3.0, abs=0.25)


def test_student_t_has_heavy_tails() -> None:
    # t with 5 degrees of freedom: excess kurtosis 6 / (nu - 4) = 6, tail index 5
    x = rng(4).standard_t(5, 400_000)
    assert kurtosis(x) > 3.0
    assert hill_tail_index(x, 0.01) == pytest.approx(5.0, rel=0.3)
    # a t(3) tail is heavier than a t(5) tail
    assert hill_tail_index(rng(5).standard_t(3, 400_000), 0.01) < hill_tail_index(x, 0.01)


@pytest.mark.parametrize("alpha", [1.5, 3.0])
def test_hill_index_of_a_pareto_sample_is_its_exponent(alpha: float) -> None:
    x = 1.0 + rng(6).pareto(alpha, 200_000)  # Pareto type I: P(X > u) = u^-alpha, u >= 1
    assert hill_tail_index(x, 0.05) == pytest.approx(alpha, rel=0.05)
    assert hill_tail_index(-x, k=2_000, tail="lower") == pytest.approx(alpha, rel=0.08)
    assert math.isnan(hill_tail_index(-x, k=2_000))  # the upper tail of -x is all negative


def test_hill_and_kurtosis_are_nan_on_degenerate_input() -> None:
    assert math.isnan(kurtosis([1.0, 1.0, 1.0, 1.0]))
    assert math.isnan(kurtosis([1.0, 2.0]))
    assert math.isnan(hill_tail_index([0.0, 0.0, 0.0]))
    assert math.isnan(hill_tail_index([1.0] * 500))
    assert math.isnan(hill_tail_index(np.arange(1.0, 100.0), k=5))  # k below MIN_TAIL_K


def test_acf_of_an_ar1_is_phi_to_the_lag() -> None:
    phi = 0.6
    e = rng(7).standard_normal(200_000)
    x = np.empty_like(e)
    x[0] = e[0]
    for i in range(1, len(e)):
        x[i] = phi * x[i - 1] + e[i]
    ac = acf(x, 5)
    assert ac == pytest.approx([phi**lag for lag in range(1, 6)], abs=0.01)


def test_acf_of_white_noise_is_near_zero_and_of_a_constant_nan() -> None:
    ac = acf(rng(8).standard_normal(100_000), 20)
    assert np.all(np.abs(ac) < 0.015)
    assert np.all(np.isnan(acf(np.ones(50), 3)))


def test_regular_closes_carry_the_last_price_through_quiet_bars() -> None:
    ts = [5, 7, 25, 41, 48]
    px = [100.0, 101.0, 99.0, 103.0, 104.0]
    assert regular_closes(ts, px, 10).tolist() == [101.0, 101.0, 99.0, 99.0, 104.0]
    assert len(regular_closes([], [], 10)) == 0


def test_bars_are_ohlcv_on_a_regular_grid() -> None:
    trades = {"ts": [0, 10, 20, 2_500, 2_600], "symbol": ["A"] * 5,
              "price": [100, 103, 99, 101, 102], "qty": [1, 2, 3, 4, 4]}  # fmt: skip
    b = bars(trades, 1_000)
    assert b["ts"] == [0, 1_000, 2_000]
    assert (b["open"], b["high"], b["low"], b["close"]) == (
        [100, 99, 101], [103, 99, 102], [99, 99, 101], [99, 99, 102]
    )  # fmt: skip
    assert b["volume"] == [6, 0, 8] and b["count"] == [3, 0, 2]
    assert b["vwap"][0] == pytest.approx((100 + 206 + 297) / 6)
    assert bars(trades, 1_000, fill=False)["ts"] == [0, 2_000]


def test_facts_table_of_a_garch_like_series_shows_the_facts() -> None:
    # returns with persistent volatility regimes: heavy tails that fade with aggregation, no
    # linear memory, positive |r| autocorrelation
    g = rng(9)
    n = 50_000
    log_vol = np.zeros(n)
    for i in range(1, n):
        log_vol[i] = 0.98 * log_vol[i - 1] + 0.2 * g.standard_normal()
    r = np.exp(log_vol) * g.standard_normal(n) * 0.01
    prices = 100 * np.exp(np.concatenate([[0.0], np.cumsum(r)]))
    t = facts_table(prices, scales=(1, 20, 100))
    assert t["returns"] == n
    assert t["kurtosis (scale 1)"] > 1.0
    assert t["kurtosis (scale 100)"] < t["kurtosis (scale 1)"]
    assert abs(t["ACF r lag 1"]) < 0.03
    assert t["ACF |r| lag 1"] > 0.1 and t["ACF |r| lag 10"] > 0.05


@pytest.mark.parametrize("name", sorted(REAL_SERIES))
def test_packaged_real_series_show_heavy_tails(name: str) -> None:
    dates, closes = load_real(name)
    assert len(dates) == len(closes) > 4_000
    assert dates == sorted(dates)
    t = facts_table(closes)
    assert t["kurtosis (scale 1)"] > 3
    assert 2 < t["Hill upper tail (top 5%)"] < 5
    assert 2 < t["Hill lower tail (top 5%)"] < 5
    assert t["ACF |r| lag 1"] > 0.1


def test_unknown_real_series_is_an_error() -> None:
    with pytest.raises(ValueError, match="unknown real series"):
        load_real("gold")
