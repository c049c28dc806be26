"""The crowd's mood of the fair-value traders (`mood_gain`): a persistent common noise term.

The mood biases the crowd's views (est = alpha·(F + m) + (1-alpha)·(L + θ·m) + sigma·z). It
takes in each change of log F, scaled by c·(recent volatility / its slow average)^g, and
fades over `mood_memory_bars` (`mood_step`). These tests check the pure step, that the option
is off by default, that a seeded run with it is deterministic and differs from one without
it, and that in a run the mood is what the docstring says: it biases every estimate by
alpha·m + (1-alpha)·θ·m, is common to the slots and is bigger when the market is turbulent.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from agent_helpers import FakeContext
from hypothesis import given
from hypothesis import strategies as st

from agents.config import MarketConfig, load_market
from agents.sim import SimMarket
from agents.strategies.fair_value import FairValueDraw, FairValueTrader, mood_step

NS = 1_000_000_000
S = NS

finite = st.floats(min_value=-1.0, max_value=1.0, allow_nan=False)
positive = st.floats(min_value=0.01, max_value=100.0, allow_nan=False)
dt = st.floats(min_value=0.0, max_value=1e4, allow_nan=False)


# --------------------------------------------------------------------------- the pure step
@given(finite, dt, positive, positive, positive, positive)
def test_without_news_the_mood_only_fades(
    mood: float, dt_bars: float, ratio: float, gain: float, g: float, tau: float
) -> None:
    after = mood_step(mood, 0.0, dt_bars, ratio, gain, g, tau)
    assert after == pytest.approx(mood * math.exp(-dt_bars / tau))
    assert abs(after) <= abs(mood)


@given(finite, finite, dt, positive, positive, positive)
def test_without_gain_the_news_is_ignored(
    mood: float, news: float, dt_bars: float, ratio: float, g: float, tau: float
) -> None:
    assert mood_step(mood, news, dt_bars, ratio, 0.0, g, tau) == mood_step(
        mood, 0.0, dt_bars, ratio, 1.0, g, tau
    )


@given(finite, finite, positive, positive, st.floats(min_value=0.0, max_value=3.0))
def test_news_moves_the_mood_by_gain_times_ratio_to_the_g(
    mood: float, news: float, ratio: float, gain: float, g: float
) -> None:
    moved = mood_step(mood, news, 0.0, ratio, gain, g, 100.0) - mood
    assert moved == pytest.approx(gain * ratio**g * news, abs=1e-12)


@given(finite, st.floats(min_value=1e-4, max_value=1.0), positive, st.floats(0.1, 3.0))
def test_a_turbulent_market_moves_the_mood_more(
    news: float, ratio: float, gain: float, g: float
) -> None:
    calm = abs(mood_step(0.0, news, 0.0, ratio, gain, g, 100.0))
    turbulent = abs(mood_step(0.0, news, 0.0, 2.0 * ratio, gain, g, 100.0))
    assert turbulent >= calm
    if news != 0.0:
        assert turbulent > calm


# --------------------------------------------------------------------------- one agent
def _estimate_after_news(params: dict) -> tuple[float, float]:
    """(mood, estimate) of one agent after F moved from 100 to 110 at bar 10 of 20."""
    draw = FairValueDraw(alpha=0.5, k=1.0, sigma=0.0, w=1.0, d=0.2, a=0.5, delta=0.0)
    ctx = FakeContext(seed=3)
    agent = ctx.attach(FairValueTrader({"rate_per_s": 1e-6, **params}))
    assert isinstance(agent, FairValueTrader)
    for bar in range(20):
        ctx.clock = bar * S
        ctx.push_fundamental("X", 100.0 if bar < 10 else 110.0)
    ctx.clock = 20 * S
    return agent.mood, agent.estimate(draw, 0.0)


def test_the_mood_is_off_by_default_and_biases_the_views_when_on() -> None:
    """Same history, same draw: the estimate with the mood is alpha·m + (1-alpha)·θ·m above
    the one without (θ = `mood_chartists`)."""
    mood_off, est_off = _estimate_after_news({})
    assert mood_off == 0.0
    for theta in (0.0, 0.4, 1.0):
        mood, est = _estimate_after_news({"mood_gain": 2.0, "mood_chartists": theta})
        # one piece of news of log(1.1) at bar 10, no volatility yet (ratio 1), then the
        # fading up to the last news taken in (bar 19: unchanged F, zero news)
        assert mood == pytest.approx(2.0 * math.log(1.1) * math.exp(-9.0 / 3_000.0), rel=1e-6)
        assert est - est_off == pytest.approx((0.5 + 0.5 * theta) * mood, rel=1e-9)


# --------------------------------------------------------------------------- a market
def _config(params: dict, seed: int = 9) -> MarketConfig:
    return MarketConfig.model_validate({
        "seed": seed, "symbols": [{"symbol": "AGR", "reference_price": 10_000}],
        "fundamental": {"process": "gaussian", "scale": 0.0005, "step_s": 0.1},
        "fundamental_interval_s": 0.1,
        "clearing": {"short_limit": 1_000, "leverage": 2.0},
        "populations": [{"name": "fv", "strategy": "fair_value", "count": 10,
                         "params": {"rate_per_s": 2.0, "lifetime_ns": 2 * NS,
                                    "vol_ref_bars": 60.0, "mood_vol_bars": 10, **params}}],
    })  # fmt: skip


def _trades(params: dict) -> list:
    market = SimMarket.from_config(_config(params))
    market.run(duration_ns=60 * NS)
    return list(zip(market.trades["ts"], market.trades["price"], market.trades["qty"],
                    strict=True))  # fmt: skip


def test_a_seeded_run_with_the_mood_is_deterministic_and_differs_from_one_without() -> None:
    first = _trades({"mood_gain": 2.0})
    assert first and first == _trades({"mood_gain": 2.0})
    assert first != _trades({})


def test_the_slots_share_nearly_one_mood_and_it_follows_the_news() -> None:
    """Every slot takes in the same news, so the moods agree to a small fraction of their
    size; and with gain c, no fading and no volatility feedback the mood is c·Δlog F."""
    gain = 3.0
    market = SimMarket.from_config(
        _config({"mood_gain": gain, "mood_feedback": 0.0, "mood_memory_bars": 1e12})
    )
    market.run(duration_ns=120 * NS)
    agents = [market.agent(f"fv-{i}").agent for i in range(10)]
    moods = [a.mood for a in agents]
    assert max(abs(m) for m in moods) > 0.001  # the news moved it
    spread = max(moods) - min(moods)
    assert spread < 0.05 * max(abs(m) for m in moods), moods
    a = agents[0]
    f_first = a.f_timed.values[0]  # the first F seen: where the mood started from
    assert a.mood == pytest.approx(gain * (a._mood_f - f_first), rel=1e-6, abs=1e-9)


def test_the_mood_reacts_more_to_news_in_a_turbulent_market() -> None:
    """With the volatility feedback on, the same news moves the mood more after a burst of
    volatility than in a calm stretch (the ratio of recent to slow volatility is above 1)."""
    ctx = FakeContext(seed=3)
    params = {"rate_per_s": 1e-6, "mood_gain": 1.0, "mood_feedback": 2.0,
              "mood_vol_bars": 5, "vol_ref_bars": 200.0, "mood_memory_bars": 1e12}  # fmt: skip
    agent = ctx.attach(FairValueTrader(params))
    assert isinstance(agent, FairValueTrader)
    bar = 0

    def step(px: int, f: float) -> float:
        nonlocal bar
        bar += 1
        ctx.clock = bar * S
        ctx.push_trade("X", px)
        before = agent.mood
        ctx.push_fundamental("X", f)
        return agent.mood - before

    calm_moves = []
    for i in range(100):  # a calm market: the close wiggles by one tick
        px = 10_000 + (i % 2)
        calm_moves.append(step(px, 100.0 * (1.001 if i % 2 else 1.0)))
    calm = abs(calm_moves[-1])
    for i in range(6):  # a burst: the close swings by 2 %
        step(10_000 + (200 if i % 2 else -200), 100.0 * (1.0 if i % 2 else 1.001))
    turbulent = abs(step(10_000 + 1, 100.0 * 1.001))
    assert calm > 0.0
    assert turbulent > 5.0 * calm, (calm, turbulent)


def test_the_example_file_turns_the_mood_on_with_valid_params() -> None:
    config = load_market(
        Path(__file__).resolve().parent.parent / "examples" / "fair_value_vol.toml"
    )
    fv = [p for p in config.populations if p.strategy == "fair_value"]
    assert fv
    params = FairValueTrader.Params.model_validate(fv[0].params)
    assert params.mood_gain > 0 and 0 < params.mood_chartists < 1
