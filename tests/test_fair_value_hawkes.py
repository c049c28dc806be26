"""Self-exciting (Hawkes) arrivals of the fair-value crowd: the intensity core and its wiring."""

from __future__ import annotations

import hashlib
import itertools
import math

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from agents.config import MarketConfig
from agents.sim import SimMarket
from agents.strategies.fair_value import FairValueTrader, HawkesFairValueTrader
from agents.strategies.hawkes import HawkesIntensity, power_law_kernel

NS = 1_000_000_000

kernels = st.builds(
    power_law_kernel,
    norm=st.floats(0.0, 3.0),
    tau_min=st.floats(0.01, 10.0),
    tau_max=st.floats(10.0, 5_000.0),
    scales=st.integers(1, 8),
    exponent=st.floats(0.0, 1.0),
)


# --------------------------------------------------------------------------- the core
@given(
    norm=st.floats(0.0, 3.0),
    tau_min=st.floats(0.01, 10.0),
    span=st.floats(1.0, 1_000.0),
    scales=st.integers(1, 8),
    exponent=st.floats(0.0, 1.0),
)
def test_power_law_kernel_integrates_to_its_norm(
    norm: float, tau_min: float, span: float, scales: int, exponent: float
) -> None:
    alphas, betas = power_law_kernel(norm, tau_min, tau_min * span, scales, exponent)
    assert len(alphas) == len(betas) == scales
    assert math.isclose(sum(a / b for a, b in zip(alphas, betas, strict=True)), norm,
                        rel_tol=1e-9, abs_tol=1e-12)  # fmt: skip
    assert math.isclose(1.0 / betas[0], tau_min)
    if scales > 1:  # one scale sits at tau_min
        assert math.isclose(1.0 / betas[-1], tau_min * span)
    # a power law puts no more mass on a slower scale than on a faster one
    masses = [a / b for a, b in zip(alphas, betas, strict=True)]
    assert all(m1 >= m2 * (1 - 1e-9) - 1e-300 for m1, m2 in itertools.pairwise(masses))


@given(
    kernel=kernels,
    mu=st.floats(0.01, 10.0),
    cap_ratio=st.floats(1.0, 100.0),
    events=st.lists(st.tuples(st.floats(0.0, 50.0), st.floats(0.0, 3.0)), max_size=30),
    probes=st.lists(st.floats(0.0, 20.0), min_size=2, max_size=10),
)
def test_intensity_decays_between_events_stays_capped_and_under_its_bound(
    kernel: tuple[list[float], list[float]],
    mu: float,
    cap_ratio: float,
    events: list[tuple[float, float]],
    probes: list[float],
) -> None:
    alphas, betas = kernel
    hk = HawkesIntensity(mu, alphas, betas, mu * cap_ratio)
    t = 0.0
    for gap, weight in events:
        t += gap
        before = hk.bound
        rise = hk.excite(t, weight)
        assert rise >= 0.0 and math.isclose(hk.bound, before + rise)
        assert mu <= hk.intensity(t) <= hk.bound * (1 + 1e-12) <= hk.cap * (1 + 1e-12)
    # between events: non-increasing, never below mu, never above the cap or the bound
    last = hk.intensity(t)
    for dt in sorted(probes):
        lam = hk.intensity(t + dt)
        assert mu * (1 - 1e-12) <= lam <= last * (1 + 1e-12)
        assert lam <= hk.bound * (1 + 1e-12) and lam <= hk.cap
        last = lam


def simulate_hawkes(hk: HawkesIntensity, horizon: float, rng: np.random.Generator) -> list[float]:
    """A self-exciting process by thinning: each accepted point excites the intensity."""
    t = 0.0
    points: list[float] = []
    while True:
        t += rng.exponential(1.0 / hk.bound)
        if t > horizon:
            return points
        if hk.accept(t, float(rng.random())):
            points.append(t)
            hk.excite(t)


def test_thinning_gives_the_stationary_mean_rate() -> None:
    mu, n = 1.0, 0.5
    alphas, betas = power_law_kernel(n, 0.1, 10.0, 3, 0.15)
    hk = HawkesIntensity(mu, alphas, betas, cap=1e9)
    assert math.isclose(hk.branching, n)
    horizon = 40_000.0
    points = simulate_hawkes(hk, horizon, np.random.default_rng(7))
    burn = 100.0  # the slowest scale is 10 s: past a few of them the process is stationary
    rate = sum(p > burn for p in points) / (horizon - burn)
    # var(count) ~ mu T / (1 - n)^3 for a Hawkes process: 1 sd is about 1% here
    assert abs(rate - mu / (1 - n)) < 0.05 * mu / (1 - n)


def test_the_cap_bounds_a_supercritical_process() -> None:
    mu, cap = 1.0, 5.0
    alphas, betas = power_law_kernel(1.5, 0.1, 10.0, 3, 0.0)  # n = 1.5: explodes uncapped
    hk = HawkesIntensity(mu, alphas, betas, cap)
    horizon = 2_000.0
    points = simulate_hawkes(hk, horizon, np.random.default_rng(3))
    rate = len(points) / horizon
    assert rate <= cap * 1.05
    assert rate > 0.8 * cap  # and it does saturate there


def test_without_events_thinning_is_a_poisson_process_of_rate_mu() -> None:
    mu = 2.0
    alphas, betas = power_law_kernel(0.9, 1.0, 100.0, 4, 0.15)
    hk = HawkesIntensity(mu, alphas, betas, cap=10.0)
    rng = np.random.default_rng(5)
    t, count = 0.0, 0
    while t < 5_000.0:
        t += rng.exponential(1.0 / hk.bound)
        count += hk.accept(t, float(rng.random()))
    assert abs(count / 5_000.0 - mu) < 0.1


# --------------------------------------------------------------------------- the wiring
def crowd(seed: int, hawkes: bool, seconds: float = 600.0) -> MarketConfig:
    params: dict = {
        "rate_per_s": 0.4,
        "lifetime_ns": 2 * NS,
        "sigma_scale": 0.0002,
        "delta_scale": 0.0001,
    }
    if hawkes:
        params |= {"rate_per_s": 0.05, "hawkes_weight": 0.07, "hawkes_cap": 40.0,
                   "hawkes_tau_max_s": 100.0}  # fmt: skip
    return MarketConfig.model_validate(
        {
            "seed": seed,
            "duration_s": seconds,
            "symbols": [{"symbol": "AGR", "reference_price": 10_000}],
            "fundamental": {"process": "gaussian", "scale": 0.0002, "step_s": 0.1},
            "fundamental_interval_s": 0.1,
            "populations": [
                {"name": "fv", "strategy": "fair_value", "count": 20, "params": params}
            ],
        }
    )


def arrivals_per_window(cfg: MarketConfig, seconds: float, window_s: float) -> np.ndarray:
    market = SimMarket.from_config(cfg, seed=cfg.seed)
    names = [ctx.name for ctx in market.agents]
    counts = []
    before = 0
    t = 0.0
    while t < seconds:
        t += window_s
        market.run(until_ns=round(t * NS))
        total = sum(market.agent(name).agent.arrivals for name in names)
        counts.append(total - before)
        before = total
    return np.asarray(counts[6:], dtype=float)  # past the first minute


def test_hawkes_params_build_the_trade_listening_slot() -> None:
    assert type(FairValueTrader({"hawkes_weight": 0.1})) is HawkesFairValueTrader
    assert type(FairValueTrader(FairValueTrader.Params(hawkes_weight=0.1))) is (
        HawkesFairValueTrader
    )
    assert type(FairValueTrader()) is FairValueTrader  # off: no trade tape to pay for
    assert type(FairValueTrader({"rate_per_s": 2.0})) is FairValueTrader


def test_hawkes_arrivals_are_overdispersed_and_poisson_ones_are_not() -> None:
    poisson = arrivals_per_window(crowd(6, hawkes=False), 600.0, 10.0)
    hawkes = arrivals_per_window(crowd(6, hawkes=True), 600.0, 10.0)
    assert poisson.mean() > 50 and hawkes.mean() > 10  # both crowds trade
    # Poisson(λ) counts: variance / mean ~ 1 (activity_feedback is off here)
    assert poisson.var() / poisson.mean() < 2.0
    # self-excited: busy and quiet windows, far more spread than Poisson
    assert hawkes.var() / hawkes.mean() > 3.0


def _trade_hash(cfg: MarketConfig, seconds: float) -> str:
    market = SimMarket.from_config(cfg, seed=cfg.seed)
    market.run(duration_ns=round(seconds * NS))
    t = market.trades
    h = hashlib.sha256()
    for col in ("ts", "price", "qty", "buy_account", "sell_account"):
        h.update(repr(list(t[col])).encode())
    return h.hexdigest()


def test_a_seeded_hawkes_run_is_deterministic() -> None:
    a = _trade_hash(crowd(11, hawkes=True), 200.0)
    assert a == _trade_hash(crowd(11, hawkes=True), 200.0)
    assert a != _trade_hash(crowd(12, hawkes=True), 200.0)
