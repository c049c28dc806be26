"""The shortcuts a market's many accounts take give what the plain measures give, bit for bit.

`compute` hands the measures what they share (signed quantities, filled lots), the equity's
relative drawdown is taken without the rest of `max_drawdown`, the fills with known mids are
a slice when they are one run, and the mids a horizon after trades in time order are looked up
for the known prefix only: each is checked here against the plain path on random inputs, for
exact equality (the pinned figures of a whole run are `tests/test_metrics_pinned.py`).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agents.metrics import NS, Fills, MarketContext, Series
from agents.metrics.drawdown import max_drawdown, max_relative_drawdown
from agents.metrics.execution import implementation_shortfall, slippage
from agents.metrics.market_making import markouts, spread_captured
from agents.metrics.pnl import breakdown
from agents.metrics.series import as_of, selection

fills_st = st.lists(
    st.tuples(st.integers(0, 50), st.sampled_from((1, -1)), st.integers(9_990, 10_010),
              st.integers(1, 9), st.sampled_from((0.0, 0.5, -0.25))),
    min_size=1, max_size=40,
)  # fmt: skip


def _fills(rows: list[tuple[int, int, int, int, float]]) -> Fills:
    t = np.cumsum([r[0] for r in rows]) * NS
    return Fills.of(t, [r[1] for r in rows], [float(r[2]) for r in rows],
                    [float(r[3]) for r in rows], [r[4] for r in rows])  # fmt: skip


def _same(a: float, b: float) -> bool:
    return (math.isnan(a) and math.isnan(b)) or a == b


@settings(max_examples=200, deadline=None)
@given(st.lists(st.booleans(), max_size=30))
def test_selection_takes_what_the_mask_takes(mask: list[bool]) -> None:
    ok = np.array(mask, dtype=bool)
    x = np.arange(len(ok), dtype=float) * 1.5
    assert np.array_equal(x[selection(ok)], x[ok])
    if ok.any() and np.all(np.diff(np.flatnonzero(ok)) == 1):
        assert isinstance(selection(ok), slice)  # one run: no copy


@settings(max_examples=200, deadline=None)
@given(st.lists(st.floats(1.0, 1e6, allow_nan=False), min_size=1, max_size=60))
def test_relative_drawdown_alone_is_max_drawdowns(values: list[float]) -> None:
    v = np.array(values)
    full = max_drawdown(np.arange(len(v)) * NS, v, relative=True, longest=False).relative
    assert _same(max_relative_drawdown(v), full)


@settings(max_examples=150, deadline=None)
@given(fills_st, st.integers(9_995, 10_005), st.integers(-20, 20))
def test_shared_quantities_give_the_same_measures(rows: list, arrival: int, q0: int) -> None:
    f = _fills(rows)
    signed, filled = f.signed_qty, float(np.add.reduce(f.qty))
    assert breakdown(f, 10_000.0, q0, 9_999.0, signed_qty=signed) == breakdown(
        f, 10_000.0, q0, 9_999.0)
    plain = implementation_shortfall(f, float(arrival))
    shared = implementation_shortfall(f, float(arrival), signed_qty=signed, qty_total=filled)
    assert all(_same(a, b) for a, b in zip(plain, shared, strict=True))
    for bench in (float(arrival), 10_000.5, math.nan):
        assert _same(slippage(f, bench), slippage(f, bench, signed_qty=signed,
                                                  qty_total=filled))  # fmt: skip


@settings(max_examples=150, deadline=None)
@given(fills_st, st.integers(0, 8), st.integers(0, 8))
def test_markouts_and_spread_with_signed_quantities(rows: list, head: int, tail: int) -> None:
    f = _fills(rows)
    n = len(f)
    mids = Series(f.ts, f.price + 0.5)
    m0 = f.price - 0.5
    m0[: min(head, n)] = np.nan  # no mid yet for the first fills
    moves = {1.0: np.linspace(-1.0, 1.0, n), 10.0: np.linspace(2.0, -1.5, n)}
    moves[10.0][max(0, n - tail):] = np.nan  # not known by the end for the last ones
    plain = markouts(f, mids, (1.0, 10.0), m0, moves=moves)
    shared = markouts(f, mids, (1.0, 10.0), m0, moves=moves, signed_qty=f.signed_qty)
    assert plain.keys() == shared.keys()
    assert all(_same(plain[h], shared[h]) for h in plain)
    a, b = spread_captured(f, m0, 2.0), spread_captured(f, m0, 2.0, signed_qty=f.signed_qty)
    assert a.fills == b.fills and _same(a.per_lot, b.per_lot) and _same(a.total, b.total)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.integers(0, 5), min_size=1, max_size=40),
       st.lists(st.integers(0, 5), min_size=1, max_size=40), st.integers(0, 30))  # fmt: skip
def test_mids_after_trades_in_order(mid_gaps: list[int], trade_gaps: list[int],
                                    end: int) -> None:  # fmt: skip
    mid_t = np.cumsum(mid_gaps).astype(np.int64) * NS
    mids = Series(mid_t, 100.0 + np.arange(len(mid_t), dtype=float))
    trade_t = np.cumsum(trade_gaps).astype(np.int64) * NS
    ctx = MarketContext(mids, trade_t, np.full(len(trade_t), 100.0), np.ones(len(trade_t)),
                        end_ns=end * NS)  # fmt: skip
    for h in (0.0, 1.0, 5.0):
        at = trade_t + round(h * NS)
        expected = np.where(at <= ctx.last_ns, as_of(mids, at), np.nan)
        got = ctx.mid_after(Fills.of(trade_t, np.ones(len(trade_t)), np.full(len(trade_t), 1.0),
                                     np.ones(len(trade_t)), trade=np.arange(len(trade_t))), h)
        assert np.array_equal(got, expected, equal_nan=True)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.lists(st.sampled_from(("AGR", "XYZ", None)), max_size=8), min_size=1,
                max_size=4), st.sampled_from(("AGR", "XYZ", "QQQ")))  # fmt: skip
def test_all_equal_is_what_compute_says(chunks: list[list[str | None]], value: str) -> None:
    pa = pytest.importorskip("pyarrow")
    pc = pytest.importorskip("pyarrow.compute")
    from agents.analysis.run_metrics import _all_equal

    plain = pa.chunked_array([pa.array(c, type=pa.string()) for c in chunks])
    coded = pa.chunked_array([pc.dictionary_encode(pa.array(c, type=pa.string()))
                              for c in chunks])  # fmt: skip
    expected = bool(pc.all(pc.equal(plain, value)).as_py())
    assert _all_equal(coded, value) is expected
    assert _all_equal(plain, value) is expected


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(-3, 40), st.floats(-1e6, 1e6, allow_nan=False)),
                max_size=30), st.integers(1, 40))  # fmt: skip
def test_running_sums_over_runs_are_the_grids(events: list[tuple[int, float]],
                                              points: int) -> None:  # fmt: skip
    from agents.metrics.series import GridRuns, cumulative_on_grid, grid_slots

    events = sorted(events, key=lambda e: e[0])
    ts = np.array([e[0] for e in events], dtype=np.int64) * NS
    w = np.array([e[1] for e in events], dtype=float)
    grid = np.arange(points, dtype=np.int64) * NS
    slots = grid_slots(ts, grid)
    plain = cumulative_on_grid(ts, w, grid, slots)
    runs = cumulative_on_grid(ts, w, grid, slots, GridRuns.of(slots, len(grid)))
    assert np.array_equal(plain, runs)
    assert not np.signbit(runs[runs == 0]).any()  # no -0.0 either way


@settings(max_examples=300, deadline=None)
@given(st.lists(st.floats(-1e6, 1e6, allow_nan=False), min_size=1, max_size=40),
       st.lists(st.integers(0, 5), min_size=40, max_size=40))  # fmt: skip
def test_longest_time_under_a_peak_is_the_plain_walks(values: list[float],
                                                      gaps: list[int]) -> None:  # fmt: skip
    ts = np.cumsum(gaps[: len(values)]).astype(np.int64) * NS
    peak, start, last_peak, longest = -math.inf, None, 0, 0
    for i, x in enumerate(values):  # a point at or over the running peak is at a peak
        if x >= peak:
            if start is not None:
                longest = max(longest, int(ts[i] - ts[start]))
            peak, start, last_peak = x, None, i
        elif start is None:
            start = last_peak  # under from the last point at the peak on
    if start is not None:
        longest = max(longest, int(ts[-1] - ts[start]))
    assert max_drawdown(ts, np.array(values)).longest_ns == longest


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 5), st.integers(0, 7)), max_size=60),
       st.sampled_from((8, 2**16 + 3)))  # fmt: skip
def test_resting_levels_in_order_by_radix_are_the_stable_sorts(rows: list[tuple[int, int]],
                                                              span: int) -> None:  # fmt: skip
    from agents.analysis.resting import _by_level

    book = np.array([b for b, _ in rows], dtype=np.int64)
    tick = np.array([t for _, t in rows], dtype=np.int64) * (span // 8)  # past 16 bits or not
    level = book * span + tick
    assert np.array_equal(_by_level(level, book, tick), np.argsort(level, kind="stable"))
