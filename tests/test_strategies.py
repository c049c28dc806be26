"""Unit tests of the strategy zoo on synthetic event sequences (agents/strategies)."""

from __future__ import annotations

import itertools
import math
from pathlib import Path

import numpy as np
import pytest
from agent_helpers import FakeContext
from pydantic import BaseModel, ValidationError

from agents.agent import Agent, dispatch_report
from agents.strategies import STRATEGIES, load_strategy
from agents.strategies._common import RollingWindow, reference_ticks
from agents.strategies.execution import (
    AlmgrenChrissExecutor,
    TWAPExecutor,
    almgren_chriss_holdings,
    almgren_chriss_kappa,
    almgren_chriss_schedule,
    twap_schedule,
)
from agents.strategies.fair_value import (
    BarHistory,
    FairValueDraw,
    FairValueTrader,
    draw_priors,
    ema_close,
    fair_estimate,
    l_step,
    order_size,
    quote_prices,
)
from agents.strategies.hft import ImbalanceTaker
from agents.strategies.market_maker import (
    AvellanedaStoikov,
    FixedSpreadMarketMaker,
    optimal_spread,
    reservation_price,
)
from agents.strategies.mean_reversion import MeanReversion, zscore
from agents.strategies.noise import NoiseTrader, pareto_size
from agents.strategies.pairs import PairsTrader, RollingOLS, ols
from agents.strategies.trend import TrendFollower
from agents.strategies.zero_intelligence import ZeroIntelligence

S = 1_000_000_000  # one second in ns


# =========================================================================== registry
EXPECTED = {
    "zi", "noise", "fair_value", "trend", "mean_reversion", "pairs", "avellaneda_stoikov",
    "fixed_spread_mm", "twap", "almgren_chriss", "imbalance",
}  # fmt: skip


def test_registry_names_and_classes() -> None:
    assert set(STRATEGIES) == EXPECTED
    for name, cls in STRATEGIES.items():
        assert issubclass(cls, Agent), name
        assert cls.__doc__ and "Source" in cls.__doc__, f"{name}: docstring needs its source"
        assert issubclass(cls.Params, BaseModel)
        params = cls.Params()  # every parameter has a default
        assert cls(params).params is params
        with pytest.raises(ValidationError):
            cls.Params(definitely_not_a_param=1)
        for field_name, field in cls.Params.model_fields.items():
            assert field.description, f"{name}.{field_name} has no description"


@pytest.mark.parametrize(
    ("cls", "bad"),
    [
        (ZeroIntelligence, {"min_size": 5, "max_size": 2}),
        (ZeroIntelligence, {"min_offset_ticks": 5, "max_offset_ticks": 2}),
        (TrendFollower, {"fast_window": 10, "slow_window": 10}),
        (MeanReversion, {"z_entry": 1.0, "z_exit": 1.0}),
        (PairsTrader, {"z_entry": 1.0, "z_exit": 2.0}),
        (ImbalanceTaker, {"threshold": 1.0}),
        (TWAPExecutor, {"slices": 0}),
        (AlmgrenChrissExecutor, {"eta": 0.0}),
    ],
)
def test_inconsistent_params_are_rejected(cls: type[Agent], bad: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        cls.Params(**bad)


def test_agent_accepts_mapping_params() -> None:
    agent = ZeroIntelligence({"market_prob": 0.5})
    assert agent.params.market_prob == 0.5
    with pytest.raises(ValidationError):
        ZeroIntelligence({"market_prob": 2.0})


def test_load_strategy_by_name_module_and_path(tmp_path: Path) -> None:
    assert load_strategy("zi") is ZeroIntelligence
    assert load_strategy("agents.strategies.noise:NoiseTrader") is NoiseTrader
    f = tmp_path / "my_strategy.py"
    f.write_text(
        "from agents.agent import Agent\n\nclass Mine(Agent):\n    pass\n\nNOT_AN_AGENT = 3\n"
    )
    cls = load_strategy(f"{f}:Mine")
    assert issubclass(cls, Agent) and cls.__name__ == "Mine"
    assert load_strategy(f"{f}:Mine") is cls  # loaded once
    with pytest.raises(TypeError):
        load_strategy(f"{f}:NOT_AN_AGENT")
    with pytest.raises(ValueError):
        load_strategy(f"{f}:Missing")
    with pytest.raises(ValueError):
        load_strategy("no_such_strategy")
    with pytest.raises(ValueError):
        load_strategy(f"{tmp_path / 'absent.py'}:X")
    with pytest.raises(ModuleNotFoundError):
        load_strategy("no_such_module_xyz:Thing")


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_every_strategy_runs_on_a_synthetic_market(name: str) -> None:
    """Smoke: default parameters, two symbols, a wandering market, fills of everything."""
    ctx = FakeContext(("A", "B"), seed=7)
    agent = ctx.attach(STRATEGIES[name]())
    rng = np.random.default_rng(1)
    pa, pb = 10_000, 5_000
    for _ in range(200):
        pa += int(rng.integers(-3, 4))
        pb += int(rng.integers(-2, 3))
        ctx.push_fundamental("A", pa / 100)
        ctx.push_trade("A", pa)
        ctx.push_trade("B", pb)
        ctx.push_quote("A", pa - 1, pa + 1, int(rng.integers(1, 50)), int(rng.integers(1, 50)))
        ctx.push_quote("B", pb - 1, pb + 1)
        ctx.advance(S // 2)
        for clid in list(ctx.portfolio.orders):
            if ctx.order(clid).cancel_pending:
                ctx.cancel_ack(clid)
            elif rng.random() < 0.3:
                ctx.fill(clid)
        for clid, _, _ in ctx.replaces:
            if clid in ctx.portfolio.orders:
                ctx.replace_ack(clid)
        ctx.replaces.clear()
    agent.on_stop()
    for o in ctx.sent:
        assert o.qty >= 1
        assert o.price is None or o.price >= 1
        assert o.side in ("buy", "sell")


# =========================================================================== common helpers
def test_rolling_window_matches_numpy() -> None:
    rng = np.random.default_rng(3)
    values = 10_000 + rng.normal(0, 2, 100)
    w = RollingWindow(20)
    for i, v in enumerate(values):
        w.push(float(v))
        tail = values[max(0, i - 19) : i + 1]
        assert w.mean == pytest.approx(tail.mean(), abs=1e-9)
        if len(tail) > 1:
            assert w.std == pytest.approx(tail.std(), rel=1e-6)


def test_reference_price_fallbacks() -> None:
    ctx = FakeContext()
    ctx.attach(Agent(), start=False)
    assert reference_ticks(ctx, "X") == 10_000  # the spec's reference price
    ctx.push_fundamental("X", 101.0)
    assert reference_ticks(ctx, "X") == pytest.approx(10_100)
    ctx.push_quote("X", 9_990, 10_000)
    assert reference_ticks(ctx, "X") == 9_995
    ctx.push_trade("X", 9_980)
    assert reference_ticks(ctx, "X") == 9_980
    assert reference_ticks(ctx, "X", ("mid",)) == 9_995
    assert reference_ticks(ctx, "X", ("reference",)) == 10_000


# =========================================================================== zero intelligence
def _run_zi(seed: int, **params: object) -> FakeContext:
    ctx = FakeContext(seed=seed)
    ctx.attach(ZeroIntelligence(params))
    ctx.push_quote("X", 9_990, 10_010)
    ctx.advance(100 * S)
    return ctx


def test_zi_is_deterministic_for_a_seed() -> None:
    a, b, c = _run_zi(1), _run_zi(1), _run_zi(2)
    assert len(a.sent) > 50
    assert a.sent == b.sent
    assert a.cancels == b.cancels
    assert a.sent != c.sent


def test_zi_orders_within_parameters() -> None:
    ctx = _run_zi(5, market_prob=0.0, max_offset_ticks=7, min_size=2, max_size=4, lifetime_ns=0)
    assert ctx.sent and not ctx.market_orders()
    for o in ctx.sent:
        assert 2 <= o.qty <= 4
        assert o.price is not None
        if o.side == "buy":
            assert 10_000 - 7 <= o.price <= 10_000
        else:
            assert 10_000 <= o.price <= 10_000 + 7
    assert {o.side for o in ctx.sent} == {"buy", "sell"}
    assert not ctx.cancels  # lifetime 0: orders rest


def test_zi_market_probability_one_sends_only_market_orders() -> None:
    ctx = _run_zi(5, market_prob=1.0)
    assert ctx.sent and len(ctx.market_orders()) == len(ctx.sent)


def test_zi_poisson_and_fixed_timing() -> None:
    fixed = FakeContext()
    fixed.attach(ZeroIntelligence({"mean_interval_ns": S, "poisson": False}))
    fixed.advance(10 * S)
    assert len(fixed.sent) == 10
    poisson = _run_zi(9, mean_interval_ns=S)
    gaps = [t[1] for t in poisson.timer_calls if t[0] == "zi.arrive"]
    assert len(set(gaps)) > 10  # exponential jitter
    assert 0.7 * S < float(np.mean(gaps)) < 1.3 * S


def test_zi_cancels_resting_orders_after_their_lifetime() -> None:
    ctx = FakeContext(seed=4)
    ctx.attach(ZeroIntelligence({"mean_interval_ns": S, "poisson": False, "market_prob": 0.0,
                                 "lifetime_ns": 5 * S}))  # fmt: skip
    ctx.advance(S)  # first order at t=1s
    first = ctx.sent[0].client_order_id
    ctx.advance(S)  # second order at t=2s
    second = ctx.sent[1].client_order_id
    ctx.fill(second)  # done: must not be cancelled later
    ctx.advance(4 * S - 1)
    assert first not in ctx.cancels
    ctx.advance(1)  # t = 6s: the first order is 5 s old
    assert ctx.cancels == [first]
    ctx.advance(2 * S)
    assert second not in ctx.cancels
    assert ctx.cancels[:2] == [first, ctx.sent[2].client_order_id]


# =========================================================================== noise
def test_pareto_size_inversion_and_cap() -> None:
    assert pareto_size(0.0, 3.0, 1.5, 100) == 3
    assert pareto_size(0.999999, 1.0, 1.5, 100) == 100
    # P(S > s) = (x_min/s)^tail: the u giving s = 8 with x_min = 1, tail = 1 is 1 - 1/8
    assert pareto_size(1 - 1 / 8 + 1e-12, 1.0, 1.0, 100) == 8


def test_pareto_size_tail_matches_exponent() -> None:
    rng = np.random.default_rng(0)
    sizes = np.array([pareto_size(rng.random(), 1.0, 1.5, 10**9) for _ in range(40_000)])
    assert sizes.min() == 1
    for s in (10, 100):
        expected = s**-1.5
        assert np.mean(sizes >= s) == pytest.approx(expected, rel=0.2)


def test_noise_trader_sends_market_orders_of_pareto_sizes() -> None:
    ctx = FakeContext(seed=11)
    ctx.attach(NoiseTrader({"mean_interval_ns": S, "max_size": 50, "buy_prob": 0.5}))
    ctx.advance(500 * S)
    assert len(ctx.sent) > 300
    assert all(o.price is None for o in ctx.sent)
    assert all(1 <= o.qty <= 50 for o in ctx.sent)
    buys = len(ctx.market_orders("buy")) / len(ctx.sent)
    assert 0.4 < buys < 0.6
    assert max(o.qty for o in ctx.sent) > 10  # heavy tail


def test_noise_trader_buy_prob_one() -> None:
    ctx = FakeContext(seed=11)
    ctx.attach(NoiseTrader({"buy_prob": 1.0}))
    ctx.advance(50 * S)
    assert ctx.sent and all(o.side == "buy" for o in ctx.sent)


# =========================================================================== fair value maths
def test_l_recursion() -> None:
    assert l_step(prev=1.0, close=2.0, k=4.0) == pytest.approx(2.0 / 4 + 3.0 / 4 * 1.0)
    closes = [0.0, 1.0, 3.0, 2.0, 5.0]
    level = closes[0]
    for c in closes[1:]:
        level = c / 3.0 + 2.0 / 3.0 * level
    assert ema_close(closes, 3.0) == pytest.approx(level)
    assert ema_close(closes, 1.0) == 5.0  # k = 1: the last close
    assert ema_close([4.2] * 50, 7.5) == pytest.approx(4.2)
    with pytest.raises(ValueError):
        ema_close([], 2.0)


def test_fair_estimate_limits() -> None:
    f, level = math.log(101.0), math.log(99.0)
    assert fair_estimate(1.0, f, level, 0.0, z=1.7) == f  # alpha = 1, sigma = 0: F itself
    assert fair_estimate(0.0, f, level, 0.0, z=1.7) == level
    assert fair_estimate(0.25, f, level, 0.1, z=2.0) == pytest.approx(0.25 * f + 0.75 * level + 0.2)
    bid, ask = quote_prices(math.log(100.0), 0.01)
    assert bid == pytest.approx(100 * math.exp(-0.01))
    assert ask == pytest.approx(100 * math.exp(0.01))
    assert order_size(10.0, 0.26, 100) == 3
    assert order_size(1.0, 0.1, 100) == 1
    assert order_size(1e6, 0.9, 100) == 100


def test_prior_draws_are_deterministic_and_in_support() -> None:
    p = FairValueTrader.Params()
    a = [draw_priors(np.random.default_rng(42), p) for _ in range(2)]
    assert a[0] == a[1]
    assert draw_priors(np.random.default_rng(43), p) != a[0]
    rng = np.random.default_rng(0)
    draws = [draw_priors(rng, p) for _ in range(2_000)]
    for d in draws:
        assert 0.0 < d.alpha < 1.0
        assert d.k >= 1.0
        assert d.sigma >= 0.0
        assert d.w >= p.w_min
        assert d.d > 0.0
        assert 0.0 < d.a < 1.0
        assert d.delta >= 0.0
    alphas = np.array([d.alpha for d in draws])
    assert alphas.mean() == pytest.approx(0.5, abs=0.03)  # Beta(2, 2)
    odds = np.array([d.a / (1 - d.a) for d in draws])
    assert np.log(odds).mean() == pytest.approx(p.a_mu, abs=0.05)
    zero = FairValueTrader.Params(sigma_scale=0.0, delta_scale=0.0)
    d0 = draw_priors(np.random.default_rng(1), zero)
    assert d0.sigma == 0.0 and d0.delta == 0.0


def test_bar_history_forward_fills_and_clips() -> None:
    h = BarHistory(maxlen=10)
    h.record(5, 1.0)
    h.record(5, 1.5)  # same bar: the latest is the close
    h.record(8, 2.0)  # bars 6 and 7 carry 1.5
    assert h.values == [1.5, 1.5, 1.5, 2.0]
    assert h.at(8) == 2.0 and h.at(7) == 1.5 and h.at(6) == 1.5
    assert h.at(0) == 1.5  # before the history: the oldest
    assert h.at(20) == 2.0  # after: the latest
    assert h.window(7, 2) == [1.5, 1.5]
    assert h.window(8, 100) == [1.5, 1.5, 1.5, 2.0]
    for bar in range(9, 200):
        h.record(bar, float(bar))
    assert 10 <= len(h) <= 20
    assert h.at(199) == 199.0 and h.at(195) == 195.0


# =========================================================================== fair value agent
DEGENERATE = {  # alpha -> 1, sigma = 0, D -> 0, delta = 0: the estimate is F itself
    "alpha_a": 1e9, "alpha_b": 1e-3, "sigma_scale": 0.0, "d_mu": -30.0, "d_sigma": 0.0,
    "delta_scale": 0.0, "rate_per_s": 1.0, "lifetime_ns": 0,
}  # fmt: skip


def test_fair_value_agent_quotes_around_f_when_alpha_one() -> None:
    ctx = FakeContext(seed=3)
    agent = ctx.attach(FairValueTrader(DEGENERATE))
    assert isinstance(agent, FairValueTrader)
    ctx.push_trade("X", 9_000)  # a stale last price the estimate must ignore (alpha = 1)
    ctx.push_fundamental("X", 100.0)
    ctx.advance(20 * S)
    assert len(ctx.sent) >= 4
    assert agent.last_estimate == pytest.approx(math.log(100.0), abs=1e-6)
    for o in ctx.sent:
        assert o.price is not None
        if o.side == "buy":
            assert 9_999 <= o.price <= 10_000
        else:
            assert 10_000 <= o.price <= 10_001
    assert len(ctx.limit_orders("buy")) == len(ctx.limit_orders("sell"))
    draw = agent.last_draw
    assert draw is not None
    last_buy, last_sell = ctx.sent[-2], ctx.sent[-1]
    assert last_buy.qty == last_sell.qty == order_size(draw.w, draw.a, 1_000)


def test_fair_value_estimate_uses_the_lagged_fundamental() -> None:
    ctx = FakeContext(seed=3)
    agent = ctx.attach(FairValueTrader({"rate_per_s": 1e-6}))  # no arrival during the test
    assert isinstance(agent, FairValueTrader)
    for bar in range(20):
        ctx.clock = bar * S
        ctx.push_fundamental("X", 100.0 if bar < 10 else 110.0)
    ctx.clock = 12 * S
    pure_f = FairValueDraw(alpha=1.0, k=1.0, sigma=0.0, w=1.0, d=5.0, a=0.5, delta=0.0)
    assert agent.estimate(pure_f, 0.0) == pytest.approx(math.log(100.0))  # F(12 - 5)
    now_f = FairValueDraw(alpha=1.0, k=1.0, sigma=0.0, w=1.0, d=0.2, a=0.5, delta=0.0)
    assert agent.estimate(now_f, 0.0) == pytest.approx(math.log(110.0))
    noisy = FairValueDraw(alpha=1.0, k=1.0, sigma=0.01, w=1.0, d=0.2, a=0.5, delta=0.0)
    assert agent.estimate(noisy, -2.0) == pytest.approx(math.log(110.0) - 0.02)


def test_fair_value_chartist_component_is_the_ema_of_closes() -> None:
    ctx = FakeContext(seed=3)
    agent = ctx.attach(FairValueTrader({"rate_per_s": 1e-6}))
    assert isinstance(agent, FairValueTrader)
    closes = [10_000, 10_100, 10_300, 10_200, 10_500, 10_400]
    for bar, px in enumerate(closes):
        ctx.clock = bar * S
        ctx.push_trade("X", px)
        ctx.push_fundamental("X", 100.0)  # samples the close of the bar
    chartist = FairValueDraw(alpha=0.0, k=2.0, sigma=0.0, w=1.0, d=1.0, a=0.5, delta=0.0)
    logs = [math.log(px / 100) for px in closes]
    assert agent.estimate(chartist, 0.0) == pytest.approx(ema_close(logs[:-1], 2.0))  # t - 1


def test_fair_value_falls_back_to_last_trade_without_fundamental() -> None:
    ctx = FakeContext(seed=3)
    agent = ctx.attach(FairValueTrader({"rate_per_s": 1e-6}))
    assert isinstance(agent, FairValueTrader)
    pure_f = FairValueDraw(alpha=1.0, k=1.0, sigma=0.0, w=1.0, d=0.1, a=0.5, delta=0.0)
    assert agent.estimate(pure_f, 0.0) == pytest.approx(math.log(100.0))  # spec reference
    ctx.push_trade("X", 10_500)
    assert agent.estimate(pure_f, 0.0) == pytest.approx(math.log(105.0))


def test_fair_value_orders_expire_after_lifetime() -> None:
    ctx = FakeContext(seed=8)
    params = dict(DEGENERATE, lifetime_ns=3 * S, rate_per_s=1.0)
    ctx.attach(FairValueTrader(params))
    ctx.push_fundamental("X", 100.0)
    ctx.advance(30 * S)
    assert len(ctx.sent) > 20
    for o in ctx.sent:
        if o.ts <= ctx.clock - 3 * S:  # old enough: cancelled exactly at its lifetime
            assert ctx.cancel_times[o.client_order_id] == o.ts + 3 * S
        else:
            assert o.client_order_id not in ctx.cancel_times


def test_fair_value_determinism() -> None:
    def run(seed: int) -> list:
        ctx = FakeContext(seed=seed)
        ctx.attach(FairValueTrader())
        ctx.push_fundamental("X", 100.0)
        ctx.advance(30 * S)
        return ctx.sent

    assert run(1) == run(1)
    assert run(1) != run(2)


# =========================================================================== trend
def _feed(ctx: FakeContext, prices: list[int], step: int = S, symbol: str = "X") -> None:
    for px in prices:
        ctx.push_trade(symbol, px)
        ctx.advance(step)


def test_trend_follower_sells_after_a_down_cross_and_buys_after_an_up_cross() -> None:
    ctx = FakeContext()
    agent = ctx.attach(
        TrendFollower({"fast_window": 3, "slow_window": 6, "order_size": 2, "max_position": 4})
    )
    assert isinstance(agent, TrendFollower)
    # rising: the first full window only establishes the regime; no cross, no trade
    _feed(ctx, [10_000, 10_010, 10_020, 10_030, 10_040, 10_050, 10_060, 10_070, 10_000])
    assert agent.regime == 1 and not ctx.sent
    _feed(ctx, [9_950])  # the fast average crosses below the slow one
    assert agent.regime == -1 and agent.target == -4
    assert [(o.side, o.qty, o.price) for o in ctx.sent] == [("sell", 2, None)]
    # working orders count toward the limit: two more lots, then nothing while they work
    _feed(ctx, [9_900, 9_850])
    assert [o.qty for o in ctx.market_orders("sell")] == [2, 2]
    ctx.fill_all()
    assert ctx.position("X") == -4
    _feed(ctx, [10_000])
    assert not ctx.market_orders("buy")
    _feed(ctx, [10_100])  # up-cross: buy, 2 lots a sample, toward +4
    assert agent.regime == 1 and agent.target == 4
    assert [o.qty for o in ctx.market_orders("buy")] == [2]
    _feed(ctx, [10_200, 10_300, 10_400, 10_500])
    assert sum(o.qty for o in ctx.market_orders("buy")) == 8  # from -4 to +4, not beyond


def test_trend_follower_aggressive_limits() -> None:
    ctx = FakeContext()
    ctx.attach(TrendFollower({"fast_window": 2, "slow_window": 4, "market": False,
                              "aggressive_ticks": 2}))  # fmt: skip
    ctx.push_quote("X", 9_999, 10_001)
    _feed(ctx, [10_000, 10_010, 10_020, 10_030])
    assert not ctx.sent
    _feed(ctx, [9_950])
    assert [(o.side, o.price, o.tif) for o in ctx.sent] == [("sell", 9_997, "IOC")]


def test_trend_follower_samples_nothing_without_prices() -> None:
    ctx = FakeContext()
    ctx.attach(TrendFollower())
    ctx.advance(100 * S)
    assert not ctx.sent


# =========================================================================== mean reversion
def test_zscore() -> None:
    assert zscore(12.0, 10.0, 1.0) == 2.0
    assert zscore(1.0, 1.0, 0.0) is None


def test_mean_reversion_sells_high_z_and_exits_near_the_mean() -> None:
    ctx = FakeContext()
    agent = ctx.attach(MeanReversion({"window": 10, "z_entry": 2.0, "z_exit": 0.5,
                                      "order_size": 3, "max_position": 3}))  # fmt: skip
    assert isinstance(agent, MeanReversion)
    _feed(ctx, [10_000, 10_002] * 5)  # oscillation: |z| = 1
    assert not ctx.sent
    _feed(ctx, [10_030])  # spike up: z > 2
    assert agent.z is not None and agent.z > 2.0
    sells = ctx.market_orders("sell")
    assert [o.qty for o in sells] == [3]
    ctx.fill_all()
    assert ctx.position("X") == -3
    _feed(ctx, [10_030])  # still high: at the limit, nothing more
    assert len(ctx.sent) == 1
    _feed(ctx, [10_001] * 30)  # the window forgets the spike: z -> 0, flatten
    buys = ctx.market_orders("buy")
    assert [o.qty for o in buys] == [3]
    assert agent.target == 0


def test_mean_reversion_buys_low_z() -> None:
    ctx = FakeContext()
    agent = ctx.attach(MeanReversion({"window": 10, "max_position": 5, "order_size": 5}))
    _feed(ctx, [10_000, 10_002] * 5 + [9_970])
    assert [(o.side, o.qty) for o in ctx.sent] == [("buy", 5)]
    assert isinstance(agent, MeanReversion) and agent.target == 5


# =========================================================================== pairs
def test_ols_and_rolling_ols() -> None:
    xs = [float(i) for i in range(10)]
    ys = [3.0 + 2.0 * x for x in xs]
    a, b, e = ols(xs, ys)
    assert (a, b) == (pytest.approx(3.0), pytest.approx(2.0)) and e == pytest.approx(0, abs=1e-9)
    rng = np.random.default_rng(2)
    x = 50 + np.cumsum(rng.normal(0, 1, 200))
    y = 10 + 1.5 * x + rng.normal(0, 0.5, 200)
    r = RollingOLS(30)
    for i in range(200):
        r.push(float(x[i]), float(y[i]))
        if i >= 2:
            lo = max(0, i - 29)
            fit = r.fit()
            assert fit is not None
            want = ols(list(x[lo : i + 1]), list(y[lo : i + 1]))
            assert fit == pytest.approx(want, rel=1e-6, abs=1e-6)
    flat = RollingOLS(5)
    for _ in range(5):
        flat.push(1.0, 2.0)
    assert flat.fit() is None


def test_pairs_trader_enters_on_a_wide_spread_and_exits() -> None:
    ctx = FakeContext(("A", "B"))
    agent = ctx.attach(PairsTrader({"window": 20, "order_size": 10, "max_position": 10}))
    assert isinstance(agent, PairsTrader)
    for i in range(20):  # A = 2 B + small wiggle
        b = 5_000 + 10 * i
        ctx.push_trade("B", b)
        ctx.push_trade("A", 2 * b + (2 if i % 2 else -2))
        ctx.advance(S)
    assert not ctx.sent
    assert agent.beta == pytest.approx(2.0, rel=0.01)
    ctx.push_trade("B", 5_200)
    ctx.push_trade("A", 10_500)  # A rich by 100 ticks
    ctx.advance(S)
    assert agent.z is not None and agent.z > 2.0
    assert agent.beta is not None
    hedge = round(agent.beta * 10)
    assert 18 <= hedge <= 22  # the fit includes the outlier: beta is near 2, not exactly
    sent = {(o.symbol, o.side): o.qty for o in ctx.sent}
    assert sent == {("A", "sell"): 10, ("B", "buy"): hedge}
    ctx.fill_all()
    assert ctx.position("A") == -10 and ctx.position("B") == hedge
    n = len(ctx.sent)
    for i in range(40):  # the spread closes and the window forgets the outlier
        b = 5_200 + 10 * i
        ctx.push_trade("B", b)
        ctx.push_trade("A", 2 * b + (2 if i % 2 else -2))
        ctx.advance(S)
    later = ctx.sent[n:]
    assert ("A", "buy") in {(o.symbol, o.side) for o in later}
    assert ("B", "sell") in {(o.symbol, o.side) for o in later}
    assert agent.target_a == 0


def test_pairs_needs_two_symbols() -> None:
    with pytest.raises(ValueError):
        FakeContext(("A",)).attach(PairsTrader())


# =========================================================================== market makers
def test_as_formulas() -> None:
    assert reservation_price(100.0, 0, 0.1, 4.0, 1.0) == 100.0
    assert reservation_price(100.0, 5, 0.1, 4.0, 1.0) == pytest.approx(98.0)
    assert reservation_price(100.0, -5, 0.1, 4.0, 1.0) == pytest.approx(102.0)
    spread = optimal_spread(0.1, 4.0, 2.0, 0.5)
    assert spread == pytest.approx(0.1 * 4 * 2 + 20 * math.log(1.2))
    assert optimal_spread(0.1, 4.0, 0.0, 0.5) < spread  # narrows toward the horizon


def _as_quotes(position: int, **params: object) -> tuple[FakeContext, AvellanedaStoikov]:
    ctx = FakeContext(positions={"X": position} if position else None)
    base = {"estimate_sigma": False, "sigma_init": 2.0, "gamma": 0.1, "k": 0.5, "size": 5,
            "max_inventory": 50, "passive": False}  # fmt: skip
    base.update(params)
    agent = ctx.attach(AvellanedaStoikov(base))
    assert isinstance(agent, AvellanedaStoikov)
    ctx.push_quote("X", 9_990, 10_010)
    ctx.advance(S // 2)
    return ctx, agent


def _prices(ctx: FakeContext) -> tuple[int | None, int | None]:
    bid = next((o.price for o in reversed(ctx.sent) if o.side == "buy"), None)
    ask = next((o.price for o in reversed(ctx.sent) if o.side == "sell"), None)
    return bid, ask


def test_as_reservation_price_moves_against_inventory() -> None:
    flat_ctx, flat = _as_quotes(0)
    long_ctx, long_ = _as_quotes(10)
    short_ctx, short = _as_quotes(-10)
    assert flat.reservation == pytest.approx(10_000)
    assert long_.reservation == pytest.approx(10_000 - 10 * 0.1 * 4.0 * 1.0)
    assert short.reservation == pytest.approx(10_000 + 4.0)
    fb, fa = _prices(flat_ctx)
    lb, la = _prices(long_ctx)
    sb, sa = _prices(short_ctx)
    assert None not in (fb, fa, lb, la, sb, sa)
    assert lb < fb < sb and la < fa < sa  # type: ignore[operator]
    assert fa - fb == math.ceil(10_000 + flat.spread / 2) - math.floor(10_000 - flat.spread / 2)  # type: ignore[operator]


def test_as_stops_quoting_the_side_beyond_its_inventory_limit() -> None:
    ctx, _ = _as_quotes(50, max_inventory=50)
    assert not ctx.limit_orders("buy") and len(ctx.limit_orders("sell")) == 1
    ctx, _ = _as_quotes(-50, max_inventory=50)
    assert not ctx.limit_orders("sell") and len(ctx.limit_orders("buy")) == 1
    ctx, _ = _as_quotes(48, max_inventory=50)  # only 2 more lots may be bought
    assert [o.qty for o in ctx.limit_orders("buy")] == [2]
    assert [o.qty for o in ctx.limit_orders("sell")] == [5]


def test_as_cancels_a_quote_when_a_fill_reaches_the_limit() -> None:
    ctx, agent = _as_quotes(0, max_inventory=5)
    ctx.ack_all()
    bid = agent.bid_id
    assert bid is not None
    ctx.fill(bid)  # long 5: at the limit
    ctx.advance(S // 2)
    assert agent.bid_id is None
    assert all(o.side == "sell" for o in ctx.working())
    ask = agent.ask_id
    assert ask is not None
    assert ctx.replaces and ctx.replaces[-1][0] == ask  # the ask moved down (long inventory)


def test_as_requotes_with_replace_or_cancel_new() -> None:
    ctx, agent = _as_quotes(0)
    ctx.ack_all()
    n_sent = len(ctx.sent)
    ctx.advance(S // 2)  # nothing changed: nothing sent
    assert len(ctx.sent) == n_sent and not ctx.replaces
    ctx.push_quote("X", 10_090, 10_110)
    ctx.advance(S // 2)
    assert len(ctx.sent) == n_sent  # amended in place
    assert {r[0] for r in ctx.replaces} == {agent.bid_id, agent.ask_id}
    assert all(r[1] == 5 for r in ctx.replaces)
    for clid, _, _ in list(ctx.replaces):
        ctx.replace_ack(clid)
    bid = ctx.order(agent.bid_id)  # type: ignore[arg-type]
    assert 10_080 < bid.price < 10_100  # type: ignore[operator]

    ctx2, agent2 = _as_quotes(0, use_replace=False)
    ctx2.ack_all()
    old = {agent2.bid_id, agent2.ask_id}
    ctx2.push_quote("X", 10_090, 10_110)
    ctx2.advance(S // 2)
    assert set(ctx2.cancels) == old and not ctx2.replaces
    assert len(ctx2.sent) == 4 and {agent2.bid_id, agent2.ask_id}.isdisjoint(old)


def test_as_asks_again_after_a_refused_replace() -> None:
    ctx, agent = _as_quotes(0)
    ctx.ack_all()
    ctx.push_quote("X", 10_090, 10_110)
    ctx.advance(S // 2)
    assert agent.bid_id is not None
    n = len(ctx.replaces)
    dispatch_report(  # the exchange refuses the replace: the bid stays where it was
        agent,
        {"type": "cancel_reject", "orig_client_order_id": agent.bid_id, "order_id": 1,
         "symbol": "X", "reject_reason": "too_late", "response_to": "replace"},
    )  # fmt: skip
    ctx.advance(S // 2)
    assert [r[0] for r in ctx.replaces[n:]] == [agent.bid_id]


def test_as_requote_on_book_and_passive_clip() -> None:
    ctx = FakeContext(positions={"X": -40})
    agent = ctx.attach(AvellanedaStoikov({"requote_on_book": True, "estimate_sigma": False,
                                          "sigma_init": 3.0, "requote_interval_ns": 10**15,
                                          "max_inventory": 50}))  # fmt: skip
    assert isinstance(agent, AvellanedaStoikov)
    ctx.push_quote("X", 9_999, 10_001)
    # short 40: the reservation price is far above the ask; passive clipping keeps the bid
    # below the ask
    assert agent.reservation is not None and agent.reservation > 10_001
    bid, ask = _prices(ctx)
    assert bid == 10_000 and ask is not None and ask > bid


def test_as_sigma_estimate_grows_with_mid_moves() -> None:
    ctx = FakeContext()
    agent = ctx.attach(AvellanedaStoikov({"sigma_init": 0.5, "sigma_ewma": 0.5}))
    assert isinstance(agent, AvellanedaStoikov)
    for i in range(20):
        mid = 10_000 + (20 if i % 2 else -20)
        ctx.push_quote("X", mid - 1, mid + 1)
        ctx.advance(S // 2)
    assert agent.sigma2 > 100  # (40 ticks)^2 per 0.5 s >> 0.25


def test_as_horizon_shrinks_the_spread() -> None:
    ctx, agent = _as_quotes(0, horizon_ns=10 * S, rolling=False)
    early = agent.spread
    ctx.advance(9 * S)
    late = agent.spread
    assert early is not None and late is not None and late < early
    assert agent.tau() == pytest.approx(0.5)
    ctx.advance(5 * S)
    assert agent.tau() == 0.0


def test_fixed_spread_mm_quotes_skews_and_limits() -> None:
    ctx = FakeContext()
    ctx.attach(FixedSpreadMarketMaker({"half_spread_ticks": 3, "size": 4}))
    ctx.push_quote("X", 9_990, 10_010)
    ctx.advance(S)
    assert _prices(ctx) == (9_997, 10_003)
    assert {o.qty for o in ctx.sent} == {4}

    ctx = FakeContext(positions={"X": 10})
    ctx.attach(FixedSpreadMarketMaker({"half_spread_ticks": 3, "skew_ticks_per_lot": 0.5}))
    ctx.push_quote("X", 9_990, 10_010)
    ctx.advance(S)
    assert _prices(ctx) == (9_992, 9_998)

    ctx = FakeContext(positions={"X": -7})
    ctx.attach(FixedSpreadMarketMaker({"max_inventory": 7}))
    ctx.push_quote("X", 9_990, 10_010)
    ctx.advance(S)
    assert ctx.limit_orders("buy") and not ctx.limit_orders("sell")


# =========================================================================== execution
def test_twap_schedule() -> None:
    assert twap_schedule(100, 10) == [10] * 10
    s = twap_schedule(7, 4)
    assert sum(s) == 7 and max(s) - min(s) <= 1
    assert sum(twap_schedule(0, 3)) == 0
    with pytest.raises(ValueError):
        twap_schedule(10, 0)


def test_almgren_chriss_schedule_properties() -> None:
    x = almgren_chriss_holdings(1_000, 10, 60.0, 1e-3, 1.0, 0.1)
    assert x[0] == pytest.approx(1_000) and x[-1] == pytest.approx(0, abs=1e-9)
    assert all(a > b for a, b in itertools.pairwise(x))
    for total, slices in [(1_000, 10), (7, 4), (12_345, 37), (1, 5)]:
        sched = almgren_chriss_schedule(total, slices, 60.0, 1e-3, 1.0, 0.1)
        assert len(sched) == slices and sum(sched) == total and min(sched) >= 0
    sched = almgren_chriss_schedule(1_000, 10, 60.0, 1e-3, 1.0, 0.1)
    assert sched[0] > sched[-1]  # front-loaded
    assert all(a >= b for a, b in itertools.pairwise(sched))
    # more risk aversion: more up front
    steeper = almgren_chriss_schedule(1_000, 10, 60.0, 1e-2, 1.0, 0.1)
    assert steeper[0] > sched[0]
    # risk neutral limit: TWAP
    for total, slices in [(1_000, 10), (10, 4), (7, 4), (12_345, 37)]:
        assert almgren_chriss_schedule(total, slices, 60.0, 1e-14, 1.0, 0.1) == twap_schedule(
            total, slices
        )
        assert almgren_chriss_schedule(total, slices, 60.0, 0.0, 1.0, 0.1) == twap_schedule(
            total, slices
        )
    # huge urgency does not overflow
    assert sum(almgren_chriss_schedule(100, 10, 60.0, 1e6, 10.0, 1e-3)) == 100


def test_almgren_chriss_kappa_discrete_and_continuous() -> None:
    lam, sigma, eta, horizon = 1e-3, 1.0, 0.1, 60.0
    continuous = math.sqrt(lam * sigma**2 / eta)
    assert almgren_chriss_kappa(lam, sigma, eta, horizon, 100_000) == pytest.approx(
        continuous, rel=1e-6
    )
    k = almgren_chriss_kappa(lam, sigma, eta, horizon, 10)
    tau = horizon / 10
    assert 2 / tau**2 * (math.cosh(k * tau) - 1) == pytest.approx(lam * sigma**2 / eta)


def _run_executor(cls: type[Agent], **params: object) -> tuple[FakeContext, Agent]:
    ctx = FakeContext()
    agent = ctx.attach(cls({"horizon_ns": 10 * S, "slices": 5, "total_qty": 50, **params}))
    ctx.push_quote("X", 9_999, 10_001)
    ctx.push_trade("X", 10_000)
    return ctx, agent


def test_twap_executor_slices_and_shortfall() -> None:
    ctx, agent = _run_executor(TWAPExecutor)
    assert isinstance(agent, TWAPExecutor)
    ctx.advance(1)  # the start: arrival price and first slice
    assert agent.arrival_price == 10_000
    assert [o.qty for o in ctx.sent] == [10]
    ctx.fill(ctx.sent[0].client_order_id, price=10_001)
    for j in range(1, 5):
        ctx.advance(2 * S)
        assert len(ctx.sent) == j + 1
        ctx.fill(ctx.sent[-1].client_order_id, price=10_001 + j)
    ctx.advance(10 * S)
    assert len(ctx.sent) == 5 and "exec.slice" in ctx.cancelled_timers
    assert all(o.side == "buy" and o.price is None for o in ctx.sent)
    assert agent.done and agent.remaining == 0
    # average fill 10_003 vs arrival 10_000: 3 ticks per lot of cost
    assert agent.shortfall == pytest.approx(3.0)
    assert agent.shortfall_bps == pytest.approx(3.0)
    assert agent.shortfall_cash == pytest.approx(150.0)


def test_executor_catches_up_partial_fills_and_sells() -> None:
    ctx, agent = _run_executor(TWAPExecutor, side="sell")
    assert isinstance(agent, TWAPExecutor)
    ctx.advance(1)
    first = ctx.sent[0]
    assert first.side == "sell" and first.qty == 10
    ctx.fill(first.client_order_id, qty=4, price=9_995)
    ctx.cancel_ack(first.client_order_id)  # the market order's rest expired
    ctx.advance(2 * S)
    assert ctx.sent[1].qty == 16  # 20 due, 4 done
    ctx.fill(ctx.sent[1].client_order_id, price=9_995)
    assert agent.shortfall == pytest.approx(5.0)  # sold 5 ticks under the arrival price
    assert agent.shortfall_bps == pytest.approx(5.0)


def test_executor_does_not_double_count_working_orders() -> None:
    ctx, _ = _run_executor(TWAPExecutor, market=False, aggressive_ticks=1)
    ctx.advance(1)
    assert ctx.sent[0].price == 10_002 and ctx.sent[0].tif == "IOC"
    ctx.advance(2 * S)  # the first child still working (no report): only the new 10 lots
    assert [o.qty for o in ctx.sent] == [10, 10]


def test_almgren_chriss_executor_follows_its_schedule() -> None:
    params = {"risk_aversion": 1e-2, "sigma": 1.0, "eta": 0.05, "total_qty": 100}
    ctx, agent = _run_executor(AlmgrenChrissExecutor, **params)
    assert isinstance(agent, AlmgrenChrissExecutor)
    want = almgren_chriss_schedule(100, 5, 10.0, 1e-2, 1.0, 0.05)
    assert agent.schedule == want and want[0] > want[-1]
    ctx.advance(1)
    for _ in range(5):
        ctx.fill(ctx.sent[-1].client_order_id, price=10_000)
        ctx.advance(2 * S)
    assert [o.qty for o in ctx.sent] == want
    assert agent.shortfall == pytest.approx(0.0)


# =========================================================================== imbalance taker
def test_imbalance_taker_buys_on_bid_pressure_with_cooldown_and_limit() -> None:
    ctx = FakeContext(positions={"X": 0})
    ctx.attach(ImbalanceTaker({"threshold": 0.5, "order_size": 2, "max_position": 4,
                               "cooldown_ns": S}))  # fmt: skip
    ctx.push_quote("X", 9_999, 10_001, bid_qty=50, ask_qty=50)
    assert not ctx.sent  # balanced
    ctx.push_quote("X", 9_999, 10_001, bid_qty=90, ask_qty=10)  # imbalance 0.8
    assert [(o.side, o.qty, o.price, o.tif) for o in ctx.sent] == [("buy", 2, 10_001, "IOC")]
    ctx.push_quote("X", 9_999, 10_001, bid_qty=95, ask_qty=5)
    assert len(ctx.sent) == 1  # cooling down
    ctx.fill(ctx.sent[0].client_order_id)
    ctx.advance(S)
    ctx.push_quote("X", 10_000, 10_002, bid_qty=95, ask_qty=5)
    assert len(ctx.sent) == 2
    ctx.fill(ctx.sent[1].client_order_id)
    assert ctx.position("X") == 4
    ctx.advance(S)
    ctx.push_quote("X", 10_001, 10_003, bid_qty=95, ask_qty=5)
    assert len(ctx.sent) == 2  # at the position limit
    ctx.push_quote("X", 10_001, 10_003, bid_qty=5, ask_qty=95)  # ask pressure: sell
    assert ctx.sent[-1].side == "sell" and ctx.sent[-1].price == 10_001


def test_imbalance_taker_ignores_other_symbols_and_thin_books() -> None:
    ctx = FakeContext(("X", "Y"))
    ctx.attach(ImbalanceTaker({"min_depth": 20, "cooldown_ns": 0}))
    ctx.push_quote("Y", 9_999, 10_001, bid_qty=90, ask_qty=1)
    ctx.push_quote("X", 9_999, 10_001, bid_qty=9, ask_qty=1)
    assert not ctx.sent
    ctx.push_quote("X", 9_999, None, bid_qty=90)
    assert not ctx.sent  # no ask to lift
    ctx.push_quote("X", 9_999, 10_001, bid_qty=90, ask_qty=1)
    assert len(ctx.sent) == 1
