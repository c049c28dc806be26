"""The mood's "shift" form (`mood_form = "shift"`): every view moves by the mood, counted once.

In the default "split" form the fundamentalist reads F + m and the chartist L + θ·m, where L
runs over closes that already carry the mood once the price has taken it in. In the shift
form the chartist level is taken on the mood-free closes (close - the mood in effect at that
close) and the current mood is added to every view:

    est = alpha·(F + m) + (1-alpha)·(ema_k(close - mood) + m) + sigma·z.

These tests check by hand that a market whose price already carries the mood (P = F + m) gets
estimates of exactly F + m from every agent, whatever its alpha and k (the split form with
θ = 1 counts the mood twice there); that a change of the mood moves every estimate by that
change; that the default form is unchanged; that a seeded run is deterministic; and that the
mood's ratio can be capped and averaged over two windows.
"""

from __future__ import annotations

import math

import pytest
from agent_helpers import FakeContext
from hypothesis import given
from hypothesis import strategies as st
from test_fair_value_mood import _trades as mood_market_trades

from agents.strategies.fair_value import (
    FairValueDraw,
    FairValueTrader,
    ema_close,
    fair_estimate,
    mood_shift_estimate,
)

NS = 1_000_000_000
S = NS

logs = st.floats(min_value=-1.0, max_value=1.0, allow_nan=False)
alphas = st.floats(min_value=0.01, max_value=0.99, allow_nan=False)
ks = st.floats(min_value=1.0, max_value=50.0, allow_nan=False)


# --------------------------------------------------------------------------- the pure estimate
@given(alphas, ks, logs, st.lists(logs, min_size=1, max_size=30), logs, logs)
def test_a_change_of_the_mood_now_moves_the_estimate_by_that_change(
    alpha: float, k: float, f: float, closes: list[float], mood: float, change: float
) -> None:
    moods = [mood] * len(closes)
    before = mood_shift_estimate(alpha, f, closes, moods, k, mood, 0.0, 0.0)
    after = mood_shift_estimate(alpha, f, closes, moods, k, mood + change, 0.0, 0.0)
    assert after - before == pytest.approx(change, abs=1e-12)


@given(alphas, ks, logs, st.lists(logs, min_size=1, max_size=30), logs, logs)
def test_a_mood_already_in_the_closes_is_not_counted_again(
    alpha: float, k: float, f: float, closes: list[float], mood: float, carried: float
) -> None:
    """Closes that carry `carried` more of the mood, with the mood history saying so, give the
    same estimate: the chartist sees the mood-free price."""
    moods = [mood] * len(closes)
    plain = mood_shift_estimate(alpha, f, closes, moods, k, mood, 0.0, 0.0)
    shifted = mood_shift_estimate(
        alpha, f, [c + carried for c in closes], [m + carried for m in moods], k, mood, 0.0, 0.0
    )
    assert shifted == pytest.approx(plain, abs=1e-12)


def test_the_shift_form_by_hand() -> None:
    """alpha 0.25, k 2, closes (0.0, 0.1) with moods (0.0, 0.1), F 0.05, mood now 0.2, noise
    0.01 x 1: mood-free closes are (0, 0); est = 0.25·(0.05 + 0.2) + 0.75·(0 + 0.2) + 0.01."""
    est = mood_shift_estimate(0.25, 0.05, [0.0, 0.1], [0.0, 0.1], 2.0, 0.2, 0.01, 1.0)
    assert est == pytest.approx(0.25 * 0.25 + 0.75 * 0.2 + 0.01, abs=1e-15)
    # without any mood it is the model's formula
    assert mood_shift_estimate(0.25, 0.05, [0.0, 0.1], [0.0, 0.0], 2.0, 0.0, 0.01, 1.0) == (
        pytest.approx(fair_estimate(0.25, 0.05, ema_close([0.0, 0.1], 2.0), 0.01, 1.0))
    )


# --------------------------------------------------------------------------- one agent
def _steady_agent(params: dict) -> tuple[FairValueTrader, float]:
    """An agent after 60 bars in which F went from 100 to 110 at bar 10, the mood (gain 1,
    no fading, no volatility feedback) took in log 1.1, and the price followed as F·e^m:
    100 before the news, 110·1.1 = 121 after, so log P = log F + m exactly."""
    ctx = FakeContext(seed=3)
    agent = ctx.attach(FairValueTrader({
        "rate_per_s": 1e-6, "mood_gain": 1.0, "mood_feedback": 0.0,
        "mood_memory_bars": 1e12, **params,
    }))  # fmt: skip
    assert isinstance(agent, FairValueTrader)
    for bar in range(60):
        ctx.clock = bar * S
        f = 100.0 if bar < 10 else 110.0
        ctx.push_fundamental("X", f)
        ctx.push_trade("X", round(f * math.exp(agent.mood) * 100))  # ticks of 0.01
    ctx.clock = 60 * S
    return agent, math.log(1.1)


def _draw(alpha: float, k: float) -> FairValueDraw:
    return FairValueDraw(alpha=alpha, k=k, sigma=0.0, w=1.0, d=0.2, a=0.5, delta=0.0)


@pytest.mark.parametrize("k", [1.0, 5.0])
def test_with_the_price_at_f_plus_m_every_agent_estimates_f_plus_m(k: float) -> None:
    agent, mood = _steady_agent({"mood_form": "shift"})
    assert agent.mood == pytest.approx(mood, rel=1e-9)
    target = math.log(110.0) + mood  # = log 121, the price
    for alpha in (0.05, 0.3, 0.5, 0.7, 0.95):
        assert agent.estimate(_draw(alpha, k), 0.0) == pytest.approx(target, abs=1e-9)


@pytest.mark.parametrize("k", [1.0, 5.0])
def test_the_split_form_counts_the_mood_twice_on_the_same_history(k: float) -> None:
    """θ = 1: the chartist adds m to an L that already carries it, est = log 121 + (1-alpha)·m."""
    agent, mood = _steady_agent({"mood_chartists": 1.0})
    target = math.log(110.0) + mood
    for alpha in (0.05, 0.5, 0.95):
        est = agent.estimate(_draw(alpha, k), 0.0)
        assert est == pytest.approx(target + (1.0 - alpha) * mood, abs=1e-9)


def test_a_mood_swing_moves_every_estimate_by_the_swing() -> None:
    agent, _ = _steady_agent({"mood_form": "shift"})
    draws = [_draw(alpha, k) for alpha in (0.1, 0.5, 0.9) for k in (1.0, 3.0, 20.0)]
    before = [agent.estimate(d, 0.0) for d in draws]
    agent.mood += 0.03
    after = [agent.estimate(d, 0.0) for d in draws]
    for b, a in zip(before, after, strict=True):
        assert a - b == pytest.approx(0.03, abs=1e-12)


def test_the_default_form_is_split_and_keeps_no_mood_free_closes() -> None:
    assert FairValueTrader.Params().mood_form == "split"
    agent, _ = _steady_agent({})
    assert not hasattr(agent, "free_history")


def test_with_a_book_lag_a_close_carries_the_mood_of_that_long_before() -> None:
    """`mood_book_ns` 1 s: the close sampled half a second after the news is paired with the
    mood before it (the quotes it traded against were older), the one 1.5 s after with the new
    mood; without the lag both carry the new mood."""

    def carried(book_ns: int) -> tuple[float, float, float]:
        ctx = FakeContext(seed=3)
        agent = ctx.attach(FairValueTrader({
            "rate_per_s": 1e-6, "mood_gain": 1.0, "mood_feedback": 0.0,
            "mood_memory_bars": 1e12, "mood_form": "shift", "mood_book_ns": book_ns,
        }))  # fmt: skip
        assert isinstance(agent, FairValueTrader)
        for bar in range(11):
            ctx.clock = bar * S
            ctx.push_fundamental("X", 100.0 if bar < 10 else 110.0)
        seen = []
        for t in (10.5, 11.5):
            ctx.clock = round(t * S)
            ctx.push_fundamental("X", 110.0)  # no news: a sample only
            # the mood this close carries: the close less its mood-free value
            seen.append(agent.close_timed.at(ctx.clock) - agent.free_timed.at(ctx.clock))
        return agent.mood, seen[0], seen[1]

    mood, half, later = carried(NS)
    assert mood == pytest.approx(math.log(1.1), rel=1e-9)
    assert half == 0.0
    assert later == pytest.approx(mood, rel=1e-9)
    mood, half, later = carried(0)
    assert half == pytest.approx(mood, rel=1e-9) and later == pytest.approx(mood, rel=1e-9)


def test_the_fast_part_of_the_mood_fades_over_its_own_time() -> None:
    """gain 1 (no fading), fast gain 0.5 fading over 2 bars: news of log 1.1 moves the mood by
    1.5·log 1.1 at once, and n bars later it is log 1.1·(1 + 0.5·e^(-n/2))."""
    ctx = FakeContext(seed=3)
    agent = ctx.attach(FairValueTrader({
        "rate_per_s": 1e-6, "mood_gain": 1.0, "mood_feedback": 0.0, "mood_memory_bars": 1e12,
        "mood_fast_gain": 0.5, "mood_fast_bars": 2.0,
    }))  # fmt: skip
    assert isinstance(agent, FairValueTrader)
    news = math.log(1.1)
    for bar in range(16):
        ctx.clock = bar * S
        ctx.push_fundamental("X", 100.0 if bar < 10 else 110.0)
        if bar >= 10:
            expected = news * (1.0 + 0.5 * math.exp(-(bar - 10) / 2.0))
            assert agent.mood == pytest.approx(expected, rel=1e-9)


def test_the_mood_ratio_can_be_capped() -> None:
    """After a burst of volatility, a cap of 1 on the mood's ratio leaves the news' move at
    gain·news, where the uncapped ratio (feedback 2) moves it several times more."""

    def move_after_burst(params: dict) -> float:
        ctx = FakeContext(seed=3)
        agent = ctx.attach(FairValueTrader({
            "rate_per_s": 1e-6, "mood_gain": 1.0, "mood_feedback": 2.0, "mood_vol_bars": 5,
            "vol_ref_bars": 200.0, "mood_memory_bars": 1e12, **params,
        }))  # fmt: skip
        assert isinstance(agent, FairValueTrader)
        bar = 0
        for i in range(106):  # calm, then a burst of 2 % swings
            bar += 1
            ctx.clock = bar * S
            ctx.push_trade("X", 10_000 + (i % 2) if i < 100 else 10_000 + (200 if i % 2 else -200))
            ctx.push_fundamental("X", 100.0)
        bar += 1
        ctx.clock = bar * S
        ctx.push_trade("X", 10_001)
        before = agent.mood
        ctx.push_fundamental("X", 100.1)
        return agent.mood - before

    news = math.log(100.1 / 100.0)
    uncapped = move_after_burst({})
    capped = move_after_burst({"mood_ratio_cap": 1.0})
    assert uncapped > 5.0 * news
    assert capped == pytest.approx(news, rel=1e-9)
    # a long window that saw mostly calm bars halves the burst's weight in the ratio
    both = move_after_burst({"mood_vol_bars_long": 100})
    assert news < both < uncapped


# --------------------------------------------------------------------------- a market
def _trades(params: dict) -> list:
    """The mood test's small market, with the mood on (gain 2) and `params` on top."""
    return mood_market_trades({"mood_gain": 2.0, **params})


def test_a_seeded_run_with_the_shift_form_is_deterministic_and_differs_from_split() -> None:
    first = _trades({"mood_form": "shift"})
    assert first and first == _trades({"mood_form": "shift"})
    assert first != _trades({})


def test_the_fair_value_example_runs_the_shift_form_with_valid_params() -> None:
    from pathlib import Path

    from agents.config import load_market

    config = load_market(Path(__file__).resolve().parent.parent / "examples" / "fair_value.toml")
    fv = [p for p in config.populations if p.strategy == "fair_value"]
    assert fv
    params = FairValueTrader.Params.model_validate(fv[0].params)
    assert params.mood_form == "shift" and params.mood_gain > 0 and params.mood_fast_gain > 0
    assert 0 < params.mood_vol_bars < params.mood_vol_bars_long <= params.history_bars
