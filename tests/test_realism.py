"""The mechanics that make the simulated market realistic: F's Lévy-stable option, the fair-value
crowd's lag and priors, and a market that keeps trading while F drifts far away."""

from __future__ import annotations

import math

import numpy as np
import pytest

from agents.config import MarketConfig
from agents.fundamental.model import FundamentalConfig, FundamentalModel
from agents.sim import SimMarket
from agents.strategies.fair_value import FairValueTrader, TimedHistory, draw_priors

NS = 1_000_000_000


def _steps(process: str, mu: float, n: int, seed: int = 7, scale: float = 1e-4, **kw: object) -> (
    np.ndarray
):
    cfg = FundamentalConfig(symbols={"A": "100"}, process=process, scale=scale,
                            tail_exponent=mu, step_s=1.0, seed=seed, **kw)  # fmt: skip
    return np.diff(np.log(FundamentalModel(cfg).simulate(n)[:, 0]))


def _hill(x: np.ndarray, k: int) -> float:
    s = np.sort(x)[::-1]
    return float(1.0 / np.mean(np.log(s[:k] / s[k])))


@pytest.mark.parametrize("mu", [0.8, 1.2, 1.5])
def test_stable_steps_have_tails_of_index_mu(mu: float) -> None:
    """Hill on the 0.2 % largest of 300,000 steps, each tail: within 0.15 of μ (a tiny scale
    keeps the path's price a float for μ < 1)."""
    r = _steps("stable", mu, 300_000, scale=1e-9)
    k = 600
    for tail in (r, -r):
        assert abs(_hill(tail, k) - mu) < 0.15, (mu, _hill(tail, k))


def test_stable_with_mu_two_is_gaussian_with_variance_two_s_squared() -> None:
    r = _steps("stable", 2.0, 200_000)
    assert abs(np.std(r) / (1e-4 * math.sqrt(2)) - 1) < 0.02
    d = r - r.mean()
    assert abs(np.mean(d**4) / np.mean(d**2) ** 2 - 3) < 0.15  # no excess kurtosis


def test_stable_is_not_the_pareto_flight_and_levy_is_the_pareto_flights_old_name() -> None:
    old = FundamentalConfig(symbols={"A": "100"}, process="levy")
    assert old.process == "pareto"
    assert np.array_equal(_steps("levy", 1.5, 1_000), _steps("pareto", 1.5, 1_000))
    stable = _steps("stable", 1.5, 100_000)
    pareto = _steps("pareto", 1.5, 100_000)
    assert np.min(np.abs(pareto)) >= 1e-4 * (1 - 1e-9)  # Pareto steps are never below s
    assert np.mean(np.abs(stable) < 1e-4) > 0.2  # stable steps often are


def test_stable_step_cap_is_optional_and_applies() -> None:
    capped = _steps("stable", 1.0, 50_000, levy_max_step=0.001)
    assert np.max(np.abs(capped)) <= 0.001 + 1e-12
    assert np.max(np.abs(_steps("stable", 1.0, 50_000))) > 0.01


def test_stable_paths_are_deterministic_and_chunking_free() -> None:
    cfg = FundamentalConfig(symbols={"A": "100"}, process="stable", scale=1e-3, step_s=0.1)
    one, many = FundamentalModel(cfg), FundamentalModel(cfg)
    one.step(10.0)
    for _ in range(100):
        many.step(0.1)
    assert one.values == many.values


# --------------------------------------------------------------------------- fair-value crowd
def test_priors_are_selectable() -> None:
    rng = np.random.default_rng(1)
    p = FairValueTrader.Params(w_prior="lognormal", w_mu=3.0, w_sigma=0.1, a_prior="beta",
                               a_beta_a=50.0, a_beta_b=50.0)  # fmt: skip
    draws = [draw_priors(rng, p) for _ in range(2_000)]
    assert abs(np.median([d.w for d in draws]) - math.exp(3.0)) < 1.0
    assert abs(np.mean([d.a for d in draws]) - 0.5) < 0.01
    pareto = [draw_priors(rng, FairValueTrader.Params()).w for _ in range(2_000)]
    assert min(pareto) >= 5.0  # the default: Pareto from w_min


def test_timed_history_reads_the_value_as_it_was() -> None:
    h = TimedHistory(4)
    assert h.at(5) is None
    for ts, v in [(10, 1.0), (20, 2.0), (30, 3.0)]:
        h.record(ts, v)
    assert (h.at(9), h.at(10), h.at(25), h.at(99)) == (1.0, 1.0, 2.0, 3.0)
    for ts in range(40, 200, 10):
        h.record(ts, float(ts))
    assert len(h) <= 8 and h.at(10_000) == 190.0


def _crowd_lags(lag: str) -> list[float]:
    """The information lags (in s) the fair-value agents of a short run actually used."""
    cfg = MarketConfig.model_validate({
        "seed": 5, "symbols": [{"symbol": "AGR"}],
        "fundamental": {"scale": 0.001},
        "populations": [{"name": "fv", "strategy": "fair_value", "count": 5,
                         "params": {"rate_per_s": 2.0, "lag": lag, "d_mu": -1.0}}],
    })  # fmt: skip
    market = SimMarket.from_config(cfg)
    lags = []
    for _ in range(40):
        market.run(duration_ns=NS // 2)
        d = market.agent("fv-0").agent.last_draw
        if d is not None:
            lags.append(d.d)
    return lags


def test_continuous_lag_reads_fundamentals_between_bars() -> None:
    """With D continuous the agent reads F as of t - D even within a bar: its estimate with
    alpha = 1 and no noise is the F sampled at t - D, not the F at a whole bar."""
    cfg = MarketConfig.model_validate({
        "seed": 2, "symbols": [{"symbol": "AGR"}],
        "fundamental": {"scale": 0.002, "step_s": 0.1}, "fundamental_interval_s": 0.1,
        "populations": [{"name": "fv", "strategy": "fair_value", "count": 1,
                         "params": {"rate_per_s": 1.0, "alpha_a": 1e6, "alpha_b": 1e-6,
                                    "sigma_scale": 0.0, "d_mu": math.log(0.35),
                                    "d_sigma": 0.0}}],
    })  # fmt: skip
    market = SimMarket.from_config(cfg)
    ctx = market.agent("fv-0")
    seen = []
    for _ in range(60):
        market.run(duration_ns=NS // 2)
        agent = ctx.agent
        if agent.last_estimate is not None and agent.last_estimate not in seen:
            seen.append(agent.last_estimate)
    assert len(seen) > 10
    history = set(agent.f_timed.values)
    bar_values = set(agent.f_history.values)
    # every estimate is one of the sampled F values, and most are not a whole bar's close
    assert all(any(abs(e - v) < 1e-6 for v in history) for e in seen)
    assert sum(all(abs(e - v) > 1e-9 for v in bar_values) for e in seen) > len(seen) / 2


# --------------------------------------------------------------------------- a market that lives
def _drifting_market(fixed: bool) -> MarketConfig:
    """F falls about 0.05 % a second (-14 % in 300 s); 5 lots each, no shorts and a static band
    as the old default market had, or the fixes."""
    return MarketConfig.model_validate({
        "seed": 4,
        "symbols": [{"symbol": "AGR", "reference_price": 10_000, "band_bps": 1_000,
                     "band_reference": "last" if fixed else "static", "halt_move_bps": 500}],
        "fundamental": {"process": "gaussian", "scale": 0.0002, "step_s": 0.1,
                        "jumps": {"rate": 10.0, "scale": 1e-9, "mean": -0.00005}},
        "clearing": {"starting_cash": 10_000_000, "starting_positions": {"AGR": 5},
                     "short_limit": 1_000 if fixed else 0, "leverage": 2.0 if fixed else 1.0},
        "populations": [
            {"name": "fv", "strategy": "fair_value", "count": 20,
             "params": {"rate_per_s": 1.0, "lifetime_ns": 2 * NS}},
            {"name": "mm", "strategy": "fixed_spread_mm", "count": 1, "positions": {"AGR": 100},
             "params": {"anchor": "fundamental", "max_inventory": 200, "half_spread_ticks": 3,
                        "skew_ticks_per_lot": 0.25, "neutral": "start" if fixed else "zero"}},
        ],
    })  # fmt: skip


def _last_minute(fixed: bool) -> tuple[float, float]:
    """(share of fair-value slots trading in the last 60 s, |P - F| / F at the end)."""
    cfg = _drifting_market(fixed)
    market = SimMarket.from_config(cfg)
    market.run(duration_ns=300 * NS)
    tr = market.trades
    cut = 240 * NS
    active = {a for ts, b, s in zip(tr["ts"], tr["buy_account"], tr["sell_account"], strict=True)
              if ts >= cut for a in (b, s)}  # fmt: skip
    fv = [ctx.account for ctx in market.agents if ctx.name.startswith("fv-")]
    f = market.agent("fv-0").fundamental("AGR") or 0.0
    last = market.last_price("AGR") or 0
    return sum(a in active for a in fv) / len(fv), abs(last * 0.01 - f) / f


def test_agents_keep_trading_while_f_drifts_far_with_shorts_and_a_moving_band() -> None:
    share, gap = _last_minute(fixed=True)
    assert share >= 0.5 and gap <= 0.02, (share, gap)


def test_the_old_market_starves_on_the_same_drift() -> None:
    """The failure the fix is for: no shorts, a few lots each and a static band pin the price
    at the band's edge while F leaves it (the agents can still buy, so trades go on)."""
    share, gap = _last_minute(fixed=False)
    assert share < 0.5 or gap > 0.02, (share, gap)


def _options_run(params: dict) -> list:
    cfg = MarketConfig.model_validate({
        "seed": 9, "symbols": [{"symbol": "AGR"}],
        "fundamental": {"scale": 0.0005, "step_s": 0.1}, "fundamental_interval_s": 0.1,
        "clearing": {"short_limit": 1_000, "leverage": 2.0},
        "populations": [{"name": "fv", "strategy": "fair_value", "count": 10,
                         "params": {"rate_per_s": 2.0, "lifetime_ns": 2 * NS, **params}}],
    })  # fmt: skip
    market = SimMarket.from_config(cfg)
    market.run(duration_ns=60 * NS)
    return list(zip(market.trades["ts"], market.trades["price"], market.trades["qty"],
                    strict=True))  # fmt: skip


def test_feedback_switching_and_wealth_options_are_deterministic_and_change_the_run() -> None:
    options = {"vol_feedback": 1.0, "activity_feedback": 1.0, "switching": 0.5,
               "wealth_sizes": True, "vol_ref_bars": 20.0}  # fmt: skip
    first = _options_run(options)
    assert first and first == _options_run(options)
    assert first != _options_run({})
