"""The metrics package on hand-computed series, and its invariants as properties."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agents.metrics import (
    NS,
    Fills,
    MarketContext,
    MetricsConfig,
    Series,
    average_cost,
    breakdown,
    compute,
    fill_ratio,
    historical_cvar,
    historical_var,
    implementation_shortfall,
    inventory_stats,
    markouts,
    max_drawdown,
    merge_fills,
    parametric_cvar,
    parametric_var,
    periods_per_year,
    pnl_curve,
    profit_factor,
    quote_time_at_top,
    sharpe,
    slippage,
    sortino,
    spread_captured,
    sum_on_grid,
    turnover,
    twap,
    vwap,
)

S = NS


# ------------------------------------------------------------------ hand-computed
def test_sharpe_by_hand() -> None:
    # mean 2, sample std 1, four periods a year: 2 / 1 x sqrt(4)
    assert sharpe(np.array([1.0, 2.0, 3.0]), periods=4) == pytest.approx(4.0)
    assert math.isnan(sharpe(np.array([5.0, 5.0])))  # no variance: no ratio
    assert math.isnan(sharpe(np.array([1.0])))


def test_sortino_by_hand() -> None:
    x = np.array([2.0, -1.0, 3.0, -2.0])  # mean 0.5, downside sqrt((1 + 4) / 4)
    assert sortino(x) == pytest.approx(0.5 / math.sqrt(1.25))
    assert sortino(x, periods=9) == pytest.approx(3 * 0.5 / math.sqrt(1.25))
    assert sortino(np.array([1.0, 2.0])) == math.inf


def test_profit_factor_and_turnover_by_hand() -> None:
    assert profit_factor(np.array([2.0, -1.0, 3.0, -2.0])) == pytest.approx(5 / 3)
    assert profit_factor(np.array([1.0, 0.0])) == math.inf
    assert math.isnan(profit_factor(np.array([0.0])))
    assert turnover(1000.0, 500.0) == 2.0
    assert math.isnan(turnover(1000.0, 0.0))


def test_periods_per_year() -> None:
    assert periods_per_year(1.0) == 252 * 6.5 * 3600
    assert periods_per_year(60.0, year_s=3600.0) == 60.0
    with pytest.raises(ValueError):
        periods_per_year(0)


def test_max_drawdown_by_hand() -> None:
    ts = np.arange(7) * S
    v = np.array([0.0, 10, 4, 8, 12, 3, 5])
    dd = max_drawdown(ts, v)
    assert dd.depth == 9.0  # 12 -> 3
    assert (dd.peak_ns, dd.trough_ns) == (4 * S, 5 * S)
    assert not dd.recovered and dd.duration_ns == 2 * S  # peak at 4 s, still under at 6 s
    assert dd.longest_ns == 3 * S  # under the peak of 1 s until 4 s


def test_max_drawdown_recovery_and_relative() -> None:
    ts = np.arange(5) * S
    eq = np.array([100.0, 110, 99, 121, 108.9])
    dd = max_drawdown(ts, eq, relative=True)
    assert dd.relative == pytest.approx(0.1)  # 110 -> 99 (the first of two 10% falls)
    assert dd.recovered and dd.duration_ns == 2 * S  # 110 at 1 s, back above at 3 s
    assert max_drawdown(ts, np.arange(5.0)).depth == 0.0
    with pytest.raises(ValueError):
        max_drawdown(ts, eq - 200, relative=True)


def test_historical_var_cvar_by_hand() -> None:
    x = np.array([-5.0, -3, -1, 0, 1, 2, 3, 4, 5, 6])
    # 10th percentile, linear: -5 + 0.9 x 2 = -3.2; the worst floor(9 x 0.1) + 1 = 1 outcome
    assert historical_var(x, 0.9) == pytest.approx(3.2)
    assert historical_cvar(x, 0.9) == pytest.approx(5.0)
    # alpha 0.75: 25th percentile at index 2.25 -> -1 + 0.25 = -0.75; worst 3: mean -3
    assert historical_var(x, 0.75) == pytest.approx(0.75)
    assert historical_cvar(x, 0.75) == pytest.approx(3.0)
    with pytest.raises(ValueError):
        historical_var(x, 1.0)


def test_parametric_var_cvar_by_hand() -> None:
    # q S Phi^-1(0.95) sigma sqrt(T) = 10 x 100 x 1.6448536 x 0.02 x 2
    assert parametric_var(10, 100, 0.02, 4, 0.95) == pytest.approx(65.794145, rel=1e-6)
    # q S sigma sqrt(T) phi(1.6448536) / 0.05 = 40 x 0.10313564 / 0.05
    assert parametric_cvar(10, 100, 0.02, 4, 0.95) == pytest.approx(82.508512, rel=1e-6)
    assert parametric_var(-10, 100, 0.02, 4, 0.95) == parametric_var(10, 100, 0.02, 4, 0.95)


def test_inventory_by_hand() -> None:
    pos = Series.of([0, 2 * S, 3 * S], [0, 10, -5])  # held 2 s, 1 s and (to 5 s) 2 s
    inv = inventory_stats(pos, end_ns=5 * S, limit=10)
    assert inv.mean == pytest.approx(0.0)  # (0 x 2 + 10 x 1 - 5 x 2) / 5
    assert inv.std == pytest.approx(math.sqrt(30.0))  # (100 + 25 x 2) / 5
    assert (inv.min, inv.max, inv.max_abs, inv.final) == (-5, 10, 10, -5)
    assert inv.time_at_limit == pytest.approx(0.2)  # 1 s of 5 at |10|
    assert math.isnan(inventory_stats(pos, end_ns=5 * S).time_at_limit)


def test_spread_captured_by_hand() -> None:
    fills = Fills.of([1, 2], [1, -1], [99, 101.5], [2, 1])
    sc = spread_captured(fills, np.array([100.0, 101.0]), multiplier=3)
    assert sc.per_lot == pytest.approx(2.5 / 3)  # +1 tick on 2 lots, +0.5 on 1 lot
    assert sc.total == pytest.approx(7.5) and sc.fills == 2


def test_markouts_by_hand() -> None:
    mids = Series.of([0, 1 * S, 2 * S, 3 * S], [100, 102, 101, 101])
    fills = Fills.of([S // 2, 1_200_000_000], [1, -1], [100, 102], [1, 3])
    # buy met 100, mid 102 a second later: +2; sell met 102, mid 101 later: +1 (3 lots)
    out = markouts(fills, mids, (1.0, 2.5))
    assert out[1.0] == pytest.approx((2 * 1 + 1 * 3) / 4)
    assert out[2.5] == pytest.approx(1.0)  # only the buy has a mid 2.5 s later (101 - 100)


def test_fill_ratio_and_quote_time() -> None:
    assert fill_ratio(5, 20) == 0.25
    assert math.isnan(fill_ratio(5, 0)) and math.isnan(fill_ratio(5, None))
    at_top = Series.of([0, S, 3 * S], [1, 0, 1])
    assert quote_time_at_top(at_top, end_ns=4 * S) == pytest.approx(0.5)


def test_execution_by_hand() -> None:
    fills = Fills.of([1, 2], [1, 1], [101, 103], [10, 10])
    cost, bps = implementation_shortfall(fills, 100.0)
    assert cost == 40.0 and bps == pytest.approx(200.0)  # 1e4 x 40 / (100 x 20)
    assert vwap(np.array([100.0, 102]), np.array([1.0, 3])) == pytest.approx(101.5)
    assert twap(Series.of([0, 10 * S], [100, 110]), 5 * S, 15 * S) == pytest.approx(105.0)
    assert slippage(fills, 100.0) == pytest.approx(2.0)
    sells = Fills.of([1], [-1], [99], [5])
    assert slippage(sells, 100.0) == pytest.approx(1.0)  # sold a tick under: a cost


def test_average_cost_realised_unrealised_by_hand() -> None:
    # buy 10 @100, buy 10 @110 (avg 105), sell 5 @120 (+75), sell 20 @90 (-225, flips to -5 @90)
    fills = Fills.of([1, 2, 3, 4], [1, 1, -1, -1], [100, 110, 120, 90], [10, 10, 5, 20],
                     fee=[1, 1, -2, 3])  # fmt: skip
    pos, cost = average_cost(fills.signed_qty, fills.price)
    assert (pos, cost) == (-5.0, -450.0)
    b = breakdown(fills, mark=95)
    assert b.realised == pytest.approx(-150.0)
    assert b.unrealised == pytest.approx(-25.0)  # short 5 from 90, marked at 95
    assert (b.fees, b.fees_paid, b.rebates) == (3.0, 5.0, 2.0)
    assert b.total == pytest.approx(-150 - 25 - 3)
    assert b.trading == b.total and b.inventory == 0


def test_breakdown_with_a_starting_position() -> None:
    # handed 10 at 100; sells 4 at 104; mark 103: inventory 10 x 3, trading (103 - 104) x -4
    fills = Fills.of([1], [-1], [104], [4])
    b = breakdown(fills, mark=103, start_position=10, start_mark=100, multiplier=2)
    assert b.inventory == 60.0 and b.trading == 8.0 and b.total == 68.0
    assert b.realised == 32.0  # 4 x (104 - 100) x 2
    assert b.unrealised == 36.0  # 6 x (103 - 100) x 2


def test_pnl_curve_by_hand() -> None:
    marks = Series.of([0, 2 * S], [100, 104])
    fills = Fills.of([S], [1], [101], [2], fee=[1])
    curve = pnl_curve(fills, marks, np.array([0, S, 2 * S]), start_position=1, start_mark=100)
    # 0 s: nothing; 1 s: bought 2 at 101 marked 100 = -2, fee 1; 2 s: 3 x 104 - 100 - 202 - 1
    assert curve.tolist() == [0.0, -3.0, 9.0]


def test_compute_end_to_end() -> None:
    mids = Series.of(np.arange(11) * S, [100.5, 101.5, 100.5, 99.5, 100.5, 101.5, 102.5, 101.5,
                                         100.5, 101.5, 102.5])  # fmt: skip
    market = MarketContext(mids, trade_ts=np.arange(11) * S + 1,
                           trade_price=[100, 101, 100, 99, 100, 101, 102, 101, 100, 101, 102],
                           trade_qty=np.ones(11), config=MetricsConfig(markout_s=(1.0,)))
    fills = Fills.of([1, 3 * S + 1], [1, -1], [100, 99], [2, 2])
    m = compute(fills, market, posted_qty=8, position_limit=2)
    assert m.market_making.fill_ratio == 0.5
    assert m.market_making.spread_captured == pytest.approx(0.0)  # +0.5 and -0.5 ticks
    assert m.market_making.markouts[1.0] == pytest.approx(0.0)  # +1, then -1 (mid rose)
    assert m.profitability.total == pytest.approx(-2.0)  # bought 2 @100, sold 2 @99
    assert m.profitability.realised == pytest.approx(-2.0)
    assert m.inventory.time_at_limit == pytest.approx(0.3)  # 3 s of 10 at 2 lots
    assert m.sampling.interval_s == 1.0 and m.sampling.periods == 10
    assert m.execution.arrival == 100.5
    d = m.as_dict()
    json.dumps(d, allow_nan=False)  # JSON-ready: no NaN
    assert "sqrt" in d["sampling"]["note"] and d["market_making"]["markouts"]["1s"] == 0.0
    assert "quotes at top" in d["missing"]


def test_compute_with_nothing_is_all_unknown() -> None:
    m = compute()
    assert m.market_making.fills == 0 and "pnl" in m.missing
    json.dumps(m.as_dict(), allow_nan=False)


def test_groups() -> None:
    a = Fills.of([1, 5], [1, 1], [100, 100], [1, 1])
    b = Fills.of([3], [-1], [101], [2])
    assert merge_fills([a, b]).ts.tolist() == [1, 3, 5]
    assert len(merge_fills([])) == 0
    total = sum_on_grid([Series.of([0, 2], [1, 3]), Series.of([1], [10])], np.arange(4))
    assert total.values.tolist() == [1, 11, 13, 13]


def test_bad_inputs_are_refused() -> None:
    with pytest.raises(ValueError, match="side"):
        Fills.of([1], [0], [100], [1])
    with pytest.raises(ValueError, match="positive"):
        Fills.of([1], [1], [100], [0])
    with pytest.raises(ValueError, match="ascending"):
        Series.of([2, 1], [0, 0])


# ------------------------------------------------------------------ properties
def _avg_cost_loop(dq: list[int], px: list[int], q0: int, p0: int) -> tuple[float, float]:
    pos, cost = float(q0), float(q0 * p0)
    for q, p in zip(dq, px, strict=True):
        new = pos + q
        if pos == 0 or (pos > 0) == (q > 0):
            cost += p * q
        elif new * pos < 0:
            cost = p * new
        else:
            cost = cost * new / pos
        pos = new
    return pos, cost


fills_st = st.lists(
    st.tuples(st.sampled_from([1, -1]), st.integers(9_900, 10_100), st.integers(1, 50),
              st.integers(-3, 5)),
    max_size=60,
)


@settings(max_examples=150, deadline=None)
@given(rows=fills_st, q0=st.integers(-100, 100), p0=st.integers(9_900, 10_100),
       mark=st.integers(9_900, 10_100), mult=st.integers(1, 3))  # fmt: skip
def test_pnl_parts_add_up(rows: list, q0: int, p0: int, mark: int, mult: int) -> None:
    """realised + unrealised - fees = trading + inventory = the PnL curve's last point."""
    fills = Fills.of(list(range(len(rows))), [r[0] for r in rows], [r[1] for r in rows],
                     [r[2] for r in rows], [r[3] for r in rows])  # fmt: skip
    b = breakdown(fills, mark, q0, p0, mult)
    assert b.realised + b.unrealised - b.fees == pytest.approx(b.total, abs=1e-6)
    assert b.trading + b.inventory == b.total
    end = len(rows) + 1
    curve = pnl_curve(fills, Series.of([0], [mark]), np.array([end]), q0, p0, mult)
    assert curve[-1] == pytest.approx(b.total, abs=1e-6)
    pos, cost = average_cost(fills.signed_qty, fills.price, q0, p0)
    ref_pos, ref_cost = _avg_cost_loop(list(fills.signed_qty), list(fills.price), q0, p0)
    assert pos == ref_pos and cost == pytest.approx(ref_cost, rel=1e-9, abs=1e-6)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.floats(-1e6, 1e6, allow_nan=False), min_size=1, max_size=40))
def test_max_drawdown_is_the_worst_fall(values: list[float]) -> None:
    v = np.array(values)
    dd = max_drawdown(np.arange(len(v)) * S, v)
    worst = max((v[i] - v[j] for i in range(len(v)) for j in range(i, len(v))), default=0.0)
    assert dd.depth == pytest.approx(max(worst, 0.0))
    assert 0 <= dd.duration_ns <= (len(v) - 1) * S and dd.longest_ns >= 0


# the increments may be tiny (their squares underflow: `moments` scales them) but not
# subnormal: c x of a subnormal x loses its digits to the float format, not to the metric
@settings(max_examples=100, deadline=None)
@given(st.lists(st.floats(-1e3, 1e3, allow_nan=False, allow_subnormal=False), min_size=3,
                max_size=50),
       st.floats(0.01, 100), st.floats(0.5, 0.99))  # fmt: skip
def test_ratio_and_var_invariants(values: list[float], c: float, alpha: float) -> None:
    x = np.array(values)
    a, b = sharpe(x), sharpe(c * x)
    assert (math.isnan(a) and math.isnan(b)) or a == pytest.approx(b, rel=1e-6, abs=1e-9)
    assert historical_cvar(x, alpha) >= historical_var(x, alpha) - 1e-9
    assert historical_var(c * x, alpha) == pytest.approx(c * historical_var(x, alpha), abs=1e-6)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.integers(1, 10), st.integers(-20, 20)), min_size=1, max_size=20),
       st.integers(1, 20))  # fmt: skip
def test_inventory_mean_between_extremes(steps: list, limit: int) -> None:
    ts = np.cumsum([0] + [d for d, _ in steps[:-1]]) * S
    pos = Series.of(ts, [q for _, q in steps])
    inv = inventory_stats(pos, int(ts[-1]) + S, limit)
    assert inv.min - 1e-9 <= inv.mean <= inv.max + 1e-9
    assert 0 <= inv.time_at_limit <= 1 and inv.std >= 0


@settings(max_examples=150, deadline=None)
@given(st.integers(-1_000, 1_000), st.integers(1, 500), st.integers(1, 30),
       st.lists(st.integers(-20_000, 20_000), max_size=30))  # fmt: skip
def test_grid_slots_are_the_searched_ones(start: int, step: int, n: int, ts: list[int]) -> None:
    """On a regular grid the slots come by arithmetic; they are the ones a search finds."""
    from agents.metrics.series import cumulative_on_grid, grid_slots

    grid = np.arange(start, start + step * n, step, dtype=np.int64)
    t = np.sort(np.asarray(ts, dtype=np.int64))
    assert grid_slots(t, grid).tolist() == np.searchsorted(grid, t, side="left").tolist()
    w = np.ones(len(t))
    expected = [float((t <= g).sum()) for g in grid]
    assert cumulative_on_grid(t, w, grid).tolist() == expected


@settings(max_examples=100, deadline=None)
@given(st.lists(st.floats(-1e3, 1e3, allow_nan=False), min_size=1, max_size=60),
       st.floats(0.5, 0.995))  # fmt: skip
def test_var_and_cvar_together_are_each_alone(values: list[float], alpha: float) -> None:
    from agents.metrics import historical_var_cvar

    x = np.array(values)
    var, cvar = historical_var_cvar(x, alpha)
    assert var == historical_var(x, alpha)
    assert cvar == pytest.approx(historical_cvar(x, alpha), rel=1e-12, abs=1e-9)


def test_tiny_increments_keep_their_ratios() -> None:
    """Increments whose squares underflow are measured scaled: the ratios are scale-free, so a
    series of tiny but nonzero increments has the ratios of the same series at any scale."""
    for x in ([1.7e-160, 0.0, 0.0], [1e-170, 0.0, -1e-170, 3e-170], [1e200, -1e200, 5e199]):
        a = np.array(x)
        unit = a / np.max(np.abs(a))
        assert sharpe(a) == pytest.approx(sharpe(unit), rel=1e-12)
        assert sortino(a) == pytest.approx(sortino(unit), rel=1e-12)


@pytest.mark.parametrize("n", [10, 5_000, 10_801, 100_000])
def test_var_and_cvar_of_long_series_from_their_tail(n: int) -> None:
    """On a long series the VaR and CVaR come from the outcomes under a sampled threshold: the
    same order statistics as the whole series' (the CVaR's sum may add in another order)."""
    from agents.metrics.var import historical_var_cvar

    rng = np.random.default_rng(n)
    series = (rng.normal(size=n), rng.integers(-3, 3, n).astype(float), np.zeros(n),
              np.sort(rng.normal(size=n))[::-1].copy())  # fmt: skip
    for x in series:
        for alpha in (0.5, 0.95, 0.99):
            var, cvar = historical_var_cvar(x, alpha)
            assert var == -np.quantile(x, 1 - alpha)
            assert var == historical_var(x, alpha)
            assert cvar == pytest.approx(historical_cvar(x, alpha), rel=1e-12, abs=1e-15)
