"""Our Sharpe, Sortino, maximum drawdown, VaR and CVaR against empyrical on the same series.

empyrical-reloaded (the maintained fork of Quantopian's empyrical) is in the ``test`` extra; it
defines these measures exactly as `agents.metrics` does (zero risk-free rate and required
return), so the numbers must agree to rounding.
"""

from __future__ import annotations

import numpy as np
import pytest

from agents.metrics import (
    NS,
    historical_cvar,
    historical_var,
    max_drawdown,
    periods_per_year,
    sharpe,
    sortino,
)

empyrical = pytest.importorskip(
    "empyrical", reason="the reference library is missing: pip install empyrical-reloaded"
)
pd = pytest.importorskip("pandas")


def _series(seed: int, n: int = 2_000) -> np.ndarray:
    rng = np.random.default_rng(seed)
    # heavy-tailed returns with a drift and volatility clusters, like a strategy's PnL
    vol = 0.01 * np.exp(np.convolve(rng.normal(0, 0.3, n), np.ones(20) / 20, mode="same"))
    return 0.0003 + vol * rng.standard_t(4, n)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_sharpe_and_sortino_match_empyrical(seed: int) -> None:
    r = _series(seed)
    ppy = periods_per_year(60.0)  # one-minute increments
    assert sharpe(r, ppy) == pytest.approx(
        empyrical.sharpe_ratio(pd.Series(r), annualization=ppy), rel=1e-9)  # fmt: skip
    assert sortino(r, ppy) == pytest.approx(
        empyrical.sortino_ratio(pd.Series(r), annualization=ppy), rel=1e-9)  # fmt: skip


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_max_drawdown_matches_empyrical(seed: int) -> None:
    r = _series(seed)
    equity = 100.0 * np.concatenate(([1.0], np.cumprod(1.0 + r)))
    ours = max_drawdown(np.arange(len(equity)) * NS, equity, relative=True)
    assert ours.relative == pytest.approx(-empyrical.max_drawdown(pd.Series(r)), rel=1e-9)


@pytest.mark.parametrize("alpha", [0.95, 0.99])
@pytest.mark.parametrize("seed", [1, 2])
def test_var_and_cvar_match_empyrical(seed: int, alpha: float) -> None:
    r = _series(seed)
    cutoff = 1.0 - alpha
    assert historical_var(r, alpha) == pytest.approx(
        -empyrical.value_at_risk(pd.Series(r), cutoff=cutoff), rel=1e-9)  # fmt: skip
    assert historical_cvar(r, alpha) == pytest.approx(
        -empyrical.conditional_value_at_risk(pd.Series(r), cutoff=cutoff), rel=1e-9)  # fmt: skip
