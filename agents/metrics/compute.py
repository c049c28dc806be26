"""The single entry point: plain series in, a `Metrics` out (see the package docstring)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from agents.metrics.drawdown import max_drawdown, max_relative_drawdown
from agents.metrics.execution import implementation_shortfall, slippage, twap
from agents.metrics.inventory import inventory_stats
from agents.metrics.market_making import (
    DEFAULT_MARKOUT_S,
    fill_ratio,
    markouts,
    quote_time_at_top,
    spread_captured,
)
from agents.metrics.pnl import breakdown, pnl_curve
from agents.metrics.result import (
    Execution,
    MarketMaking,
    Metrics,
    Profitability,
    Risk,
    Sampling,
)
from agents.metrics.returns import (
    TRADING_YEAR_S,
    moments,
    periods_per_year,
    profit_factor,
    sharpe,
    sortino,
    turnover,
)
from agents.metrics.series import NS, Fills, Series, as_of, dot, time_weights
from agents.metrics.var import historical_var_cvar, parametric_cvar, parametric_var

__all__ = ["MarketContext", "MetricsConfig", "compute", "merge_fills", "sum_on_grid"]


@dataclass(frozen=True, slots=True)
class MetricsConfig:
    """`sample_s`: the PnL sampling interval for the ratios and the historical VaR (s);
    `year_s`: seconds in a year for the annualisation; `alpha`: the VaR confidence;
    `horizon_s`: the horizon of the inventory's parametric VaR; `markout_s`: markout horizons."""

    sample_s: float = 1.0
    year_s: float = TRADING_YEAR_S
    alpha: float = 0.95
    horizon_s: float = 60.0
    markout_s: tuple[float, ...] = DEFAULT_MARKOUT_S


@dataclass(slots=True)
class MarketContext:
    """What every account of one market shares, built once: the mid (ticks) and the market's
    trades (time, price, quantity) with cumulative sums for any window's VWAP, and the mid's
    log-return volatility per sampling interval (for the parametric inventory VaR).

    `end_ns` is when the watch ended (a run's end): the last mid holds until then, so a
    markout horizon reaching up to it is known; by default the last mid's own stamp."""

    mids: Series
    trade_ts: np.ndarray
    trade_price: np.ndarray
    trade_qty: np.ndarray
    config: MetricsConfig = field(default_factory=MetricsConfig)
    end_ns: int | None = None  # the end of what was watched (default: the last mid's stamp)
    _cum_pq: np.ndarray = field(init=False)
    _cum_q: np.ndarray = field(init=False)
    _mid_area: np.ndarray = field(init=False)
    _gaps: np.ndarray = field(init=False)
    _before: np.ndarray | None = field(init=False)
    _in_order: bool | None = field(init=False)  # whether the trades are in time order
    _after: dict[float, np.ndarray] = field(init=False)
    _move: dict[float, np.ndarray] = field(init=False)
    _grids: dict[tuple[int, int, int], np.ndarray] = field(init=False)
    _weights: dict[tuple[int, int, int, int], np.ndarray] = field(init=False)
    mid_sigma: float = field(init=False)

    def __post_init__(self) -> None:
        self.trade_ts = np.asarray(self.trade_ts, dtype=np.int64)
        self.trade_price = np.asarray(self.trade_price, dtype=float)
        self.trade_qty = np.asarray(self.trade_qty, dtype=float)
        self._cum_pq = _running(self.trade_price * self.trade_qty, 0.0)
        self._cum_q = _running(self.trade_qty, 0.0)
        self.mid_sigma = _log_sigma(self.mids, self.config.sample_s)
        # the mid's integral over time at each stamp, for any window's TWAP in O(log n)
        v = np.nan_to_num(self.mids.values)
        held = np.diff(self.mids.ts).astype(float)
        self._mid_area = _running(np.multiply(v[:-1], held, out=held), 0.0)
        self._gaps = _running(~np.isfinite(self.mids.values), 0)
        self._before: np.ndarray | None = None
        self._in_order: bool | None = None
        self._after: dict[float, np.ndarray] = {}
        self._move: dict[float, np.ndarray] = {}
        self._grids: dict[tuple[int, int, int], np.ndarray] = {}
        self._weights: dict[tuple[int, int, int, int], np.ndarray] = {}

    def grid(self, start_ns: int, end_ns: int, step_ns: int) -> np.ndarray:
        """The sampling grid ``arange(start_ns, end_ns + 1, step_ns)``, one array for every
        account measured on it: a curve stamped on it is known to be on it without comparing
        its stamps (read-only)."""
        key = (int(start_ns), int(end_ns), int(step_ns))
        g = self._grids.get(key)
        if g is None:
            g = self._grids[key] = np.arange(key[0], key[1] + 1, key[2], dtype=np.int64)
            g.flags.writeable = False
        return g

    def grid_weights(self, start_ns: int, end_ns: int, step_ns: int, until_ns: int) -> np.ndarray:
        """`time_weights` of `grid(start_ns, end_ns, step_ns)` until `until_ns`, once."""
        key = (int(start_ns), int(end_ns), int(step_ns), int(until_ns))
        w = self._weights.get(key)
        if w is None:
            w = self._weights[key] = time_weights(self.grid(*key[:3]), key[3])
        return w

    def mid_before(self, fills: Fills) -> np.ndarray:
        """The mid just before each fill (NaN: none yet, or a one-sided book)."""
        if fills.trade is None:
            return as_of(self.mids, fills.ts, strict=True)
        return self._trades_before()[fills.trade]

    def mid_after(self, fills: Fills, horizon_s: float) -> np.ndarray:
        """The mid `horizon_s` after each fill; NaN past the last mid (not known yet)."""
        if fills.trade is None:
            at = fills.ts + round(horizon_s * NS)
            return np.where(at <= self.last_ns, as_of(self.mids, at), np.nan)
        return self._trades_after(horizon_s)[fills.trade]

    def mid_move(self, fills: Fills, horizon_s: float) -> np.ndarray:
        """`mid_after` minus `mid_before` for each fill (NaN where either is unknown): with the
        market's trade index, subtracted once per trade for every account."""
        if fills.trade is None:
            return self.mid_after(fills, horizon_s) - self.mid_before(fills)
        return self.trade_moves(horizon_s)[fills.trade]

    def trade_moves(self, horizon_s: float) -> np.ndarray:
        """For each of the market's trades, the mid `horizon_s` after it minus the mid just
        before it (NaN where either is unknown), computed once (read-only)."""
        h = float(horizon_s)
        move = self._move.get(h)
        if move is None:
            after = self._after.get(h)
            if after is not None:
                move = after - self._trades_before()
            else:  # the mids after are wanted for the moves only: subtracted where they lie
                move = self._mids_after(h)
                np.subtract(move, self._trades_before(), out=move)
            self._move[h] = move
            move.flags.writeable = False
        return move

    def _trades_before(self) -> np.ndarray:
        if self._before is None:
            self._before = as_of(self.mids, self.trade_ts, strict=True)
        return self._before

    def _trades_after(self, horizon_s: float) -> np.ndarray:
        h = float(horizon_s)
        after = self._after.get(h)
        if after is None:
            after = self._after[h] = self._mids_after(h)
        return after

    def _mids_after(self, h: float) -> np.ndarray:
        """The mid `h` seconds after each trade (NaN past `last_ns`), a fresh array."""
        at = self.trade_ts + round(h * NS)
        if self._in_order is None:
            t = self.trade_ts
            self._in_order = bool(len(t) < 2 or (t[1:] >= t[:-1]).all())
        if self._in_order:  # the times known by the end are the first ones: no selection
            k = int(np.searchsorted(at, self.last_ns, side="right"))
            after = np.full(len(at), np.nan)
            idx = np.searchsorted(self.mids.ts, at[:k], side="right")
            idx -= 1  # as_of's row: the last mid stamped at or before
            v = self.mids.values
            if k and idx[0] >= 0 and v.dtype == np.float64:  # every one has a mid
                np.take(v, idx, out=after[:k])
            else:
                after[:k] = as_of(self.mids, at[:k])
        else:
            after = np.where(at <= self.last_ns, as_of(self.mids, at), np.nan)
        return after

    @property
    def last_ns(self) -> int:
        """Until when the mids are known: `end_ns`, else the last mid's stamp (-1: none)."""
        last = int(self.mids.ts[-1]) if len(self.mids) else -1
        return max(last, self.end_ns) if self.end_ns is not None else last

    @property
    def last_trades(self) -> Series:
        """The last trade price as a step function: the clearing house's mark."""
        return Series(self.trade_ts, self.trade_price)

    def vwap(self, start_ns: int, end_ns: int) -> float:
        """The market's VWAP over trades stamped in [start_ns, end_ns] (NaN without any)."""
        i = int(self.trade_ts.searchsorted(start_ns, side="left"))  # (the method: no wrapper)
        j = int(self.trade_ts.searchsorted(end_ns, side="right"))
        q = self._cum_q[j] - self._cum_q[i]
        return float((self._cum_pq[j] - self._cum_pq[i]) / q) if q > 0 else math.nan


    def twap(self, start_ns: int, end_ns: int) -> float:
        """The mid's time-weighted mean over [start_ns, end_ns] (`execution.twap`, from the
        precomputed integral); NaN before the first mid or where a side was empty."""
        mids = self.mids
        if len(mids) == 0 or end_ns <= start_ns:
            return twap(mids, start_ns, end_ns)
        i0 = int(mids.ts.searchsorted(start_ns, side="right")) - 1
        i1 = int(mids.ts.searchsorted(end_ns, side="right")) - 1
        if i0 < 0:
            return twap(mids, start_ns, end_ns)
        v = mids.values
        if self._gaps[i1 + 1] != self._gaps[i0]:
            return twap(mids, start_ns, end_ns)  # skips the one-sided stretches
        area = (self._mid_area[i1] - self._mid_area[i0]
                - v[i0] * (start_ns - mids.ts[i0]) + v[i1] * (end_ns - mids.ts[i1]))  # fmt: skip
        return float(area / (end_ns - start_ns))


def _running(x: np.ndarray, zero: float) -> np.ndarray:
    """``concatenate(([zero], cumsum(x)))``, summed straight into its place (no copy)."""
    out = np.empty(len(x) + 1, dtype=np.result_type(zero, np.cumsum(x[:0])))
    out[0] = zero
    np.cumsum(x, out=out[1:])
    return out


def _log_sigma(mids: Series, sample_s: float) -> float:
    ok = np.isfinite(mids.values) & (mids.values > 0)
    if ok.sum() < 3:
        return math.nan
    t, v = mids.ts[ok], mids.values[ok]
    step = max(1, round(sample_s * NS))
    grid = np.arange(int(t[0]), int(t[-1]) + 1, step, dtype=np.int64)
    sampled = v[np.searchsorted(t, grid, side="right") - 1]
    r = np.diff(np.log(sampled))
    return float(np.std(r, ddof=1)) if len(r) > 1 else math.nan


def merge_fills(parts: Sequence[Fills]) -> Fills:
    """Several accounts' fills as one time-ordered set (a strategy class, a market)."""
    parts = [p for p in parts if len(p)]
    if not parts:
        return Fills.empty()
    names = ("ts", "side", "price", "qty", "fee")
    cols = [np.concatenate([getattr(p, c) for p in parts]) for c in names]
    if all(p.trade is not None for p in parts):
        cols.append(np.concatenate([p.trade for p in parts]))  # type: ignore[misc]
    order = np.argsort(cols[0], kind="stable")
    return Fills(*(c[order] for c in cols))


def sum_on_grid(parts: Sequence[Series], grid: np.ndarray) -> Series:
    """The sum of step functions at the times of `grid` (each valued as-of; NaN before its
    first stamp counts 0): a strategy class's PnL or inventory."""
    g = np.asarray(grid, dtype=np.int64)
    total = np.zeros(len(g))
    for p in parts:
        total += np.nan_to_num(as_of(p, g))
    return Series(g, total)


def compute(
    fills: Fills | None = None,
    market: MarketContext | None = None,
    pnl: Series | None = None,
    inventory: Series | None = None,
    posted_qty: float | None = None,
    *,
    equity: Series | None = None,
    start_position: float = 0.0,
    start_mark: float | None = None,
    mark: float | None = None,
    position_limit: float | None = None,
    at_top: Series | None = None,
    time_at_top: float | None = None,
    multiplier: float = 1.0,
    start_ns: int | None = None,
    end_ns: int | None = None,
    config: MetricsConfig | None = None,
) -> Metrics:
    """Every measure of one account (or of a group's merged fills and summed curves).

    Give what you have; what is missing is derived where it can be, else reported as NaN and
    named in `Metrics.missing`:

    * `fills` (`Fills`): the account's fills; `market` (`MarketContext`): the mid and the
      market's trades (marks, markouts, VWAP, TWAP, volatility);
    * `pnl`: its PnL curve (cash units); built from the fills and the market's last trades
      (with `start_position` valued at `start_mark`) when not given;
    * `inventory`: its position (lots); from the fills and `start_position` when not given;
    * `posted_qty`: the quantity it offered (lots), for the fill ratio;
    * `equity`: its equity curve (cash units), for the relative drawdown and turnover;
    * `mark`: the final mark (default: the last trade), `position_limit` (lots), `at_top` (0/1
      step function, the account quoted at the best price) or `time_at_top` (that share of
      the time, already measured, e.g. from a run's orders), `multiplier` (cash units per tick
      x lot), `start_ns`/`end_ns`: the span measured (default: the curves' own).
    """
    cfg = config or (market.config if market is not None else MetricsConfig())
    f = fills if fills is not None else Fills.empty()
    missing: list[str] = []
    marks = market.last_trades if market is not None and len(market.trade_ts) else None
    if mark is None:
        mark = float(marks.values[-1]) if marks is not None else (
            float(f.price[-1]) if len(f) else math.nan)  # fmt: skip
    s0 = mark if start_mark is None else start_mark
    t0 = start_ns if start_ns is not None else _first(pnl, f, marks)
    t1 = end_ns if end_ns is not None else _last(pnl, f, marks)
    step = max(1, round(cfg.sample_s * NS))
    if t0 is None or t1 is None:
        grid = np.empty(0, dtype=np.int64)
    elif market is not None:
        grid = market.grid(t0, t1, step)  # shared by the accounts of one market
    else:
        grid = np.arange(t0, t1 + 1, step, dtype=np.int64)
    if pnl is None:
        if marks is not None or len(f):
            pnl = Series(grid, pnl_curve(f, marks if marks is not None else
                                         Series(f.ts, f.price), grid, start_position, s0,
                                         multiplier))  # fmt: skip
        else:
            missing.append("pnl")
            pnl = Series(np.empty(0, np.int64), np.empty(0))
    sampled = _on(pnl, grid)
    if len(sampled) and not np.isfinite(sampled).all():
        first = np.flatnonzero(np.isfinite(sampled))
        sampled = np.nan_to_num(sampled, nan=float(sampled[first[0]]) if len(first) else 0.0)
    x = sampled[1:] - sampled[:-1]  # np.diff, without its wrapper
    mo = moments(x)
    ppy = periods_per_year(cfg.sample_s, cfg.year_s)
    sampling = Sampling(cfg.sample_s, mo.n, ppy, cfg.year_s)

    # what several measures share, once: signed quantities, filled lots, traded ticks x lots
    signed, filled, traded = f.signed_qty, float(np.add.reduce(f.qty)), float(dot(f.price, f.qty))
    parts = breakdown(f, mark, start_position, s0, multiplier,
                      signed_qty=signed) if math.isfinite(mark) else None  # fmt: skip
    notional = traded * multiplier
    eq_mean = _mean(_on(equity, grid)) if equity is not None and len(grid) else math.nan
    total = float(pnl.values[-1]) if len(pnl) else math.nan
    prof = Profitability(
        total=parts.total if parts else total,
        trading=parts.trading if parts else math.nan,
        inventory=parts.inventory if parts else math.nan,
        realised=parts.realised if parts else math.nan,
        unrealised=parts.unrealised if parts else math.nan,
        fees=parts.fees if parts else math.nan,
        fees_paid=parts.fees_paid if parts else math.nan,
        rebates=parts.rebates if parts else math.nan,
        sharpe=sharpe(x, ppy, mo), sortino=sortino(x, ppy, mo),
        profit_factor=profit_factor(x, mo),
        notional=notional, turnover=turnover(notional, eq_mean),
    )  # fmt: skip

    dd = max_drawdown(pnl.ts, pnl.values)
    rel = math.nan
    if equity is not None and len(equity) and np.minimum.reduce(equity.values) > 0:
        rel = max_relative_drawdown(equity.values)
    if equity is None:
        missing.append("equity")
    sd = mo.sd if mo.n > 1 else math.nan
    sigma = market.mid_sigma if market is not None else math.nan
    if inventory is None:
        inventory = _position(f, start_position, t0)
    q_end = float(inventory.values[-1]) if len(inventory) else start_position
    horizon = cfg.horizon_s / cfg.sample_s
    s_cash = mark * multiplier
    hist = historical_var_cvar(x, cfg.alpha)
    risk = Risk(
        max_drawdown=dd.depth, max_drawdown_rel=rel, drawdown_s=dd.duration_ns / NS,
        recovered=dd.recovered, longest_drawdown_s=dd.longest_ns / NS, alpha=cfg.alpha,
        var=hist[0], cvar=hist[1],
        var_parametric=parametric_var(1.0, 1.0, sd, 1.0, cfg.alpha),
        cvar_parametric=parametric_cvar(1.0, 1.0, sd, 1.0, cfg.alpha),
        horizon_s=cfg.horizon_s,
        inventory_var=parametric_var(q_end, s_cash, sigma, horizon, cfg.alpha),
        inventory_cvar=parametric_cvar(q_end, s_cash, sigma, horizon, cfg.alpha),
        mid_sigma=sigma,
    )  # fmt: skip
    weights = None
    if market is not None and inventory.ts is grid and t1 is not None and len(grid):
        weights = market.grid_weights(int(grid[0]), t1, step, t1)  # t0 is grid[0]
    inv = inventory_stats(inventory, t1, position_limit, weights)

    mids = market.mids if market is not None else None
    if mids is None:
        missing.append("mids")
    m0 = market.mid_before(f) if market is not None else np.full(len(f), np.nan)
    sc = spread_captured(f, m0, multiplier, signed_qty=signed)
    if posted_qty is None:
        missing.append("posted quantity")
    if at_top is None and time_at_top is None:
        missing.append("quotes at top")
    mm = MarketMaking(
        fills=len(f), filled_qty=filled, posted_qty=posted_qty,
        fill_ratio=fill_ratio(filled, posted_qty), spread_captured=sc.per_lot,
        spread_captured_total=sc.total,
        markouts=markouts(f, mids, cfg.markout_s, m0,
                          moves={float(h): market.mid_move(f, h) for h in cfg.markout_s},
                          signed_qty=signed)
        if market is not None and len(f) else {float(h): math.nan for h in cfg.markout_s},
        quote_time_at_top=quote_time_at_top(at_top, t1) if at_top is not None else (
            math.nan if time_at_top is None else float(time_at_top)),
    )  # fmt: skip

    arrival = float(m0[0]) if len(f) else math.nan
    ist, ist_bps = implementation_shortfall(f, arrival, signed_qty=signed, qty_total=filled)
    fv = float(traded / filled) if filled > 0 else math.nan
    mv = market.vwap(int(f.ts[0]), int(f.ts[-1])) if market is not None and len(f) else math.nan
    tw = market.twap(int(f.ts[0]), int(f.ts[-1])) if market is not None and len(f) else math.nan
    ex = Execution(arrival=arrival, shortfall=ist * multiplier, shortfall_bps=ist_bps,
                   fills_vwap=fv, market_vwap=mv, twap=tw,
                   vwap_slippage=slippage(f, mv, signed_qty=signed, qty_total=filled),
                   twap_slippage=slippage(f, tw, signed_qty=signed, qty_total=filled))
    return Metrics(prof, risk, inv, mm, ex, sampling, tuple(missing))


def _mean(a: np.ndarray) -> float:
    """`np.mean` of a float array (its sum over its count), without its wrapper's checks: a
    market's accounts take many means of short curves."""
    return float(np.add.reduce(a) / len(a))


def _on(series: Series, grid: np.ndarray) -> np.ndarray:
    """`series` at the times of `grid` (as-of); its own values when it is already on it."""
    if len(grid) == 0:
        return np.empty(0)
    if series.ts is grid or (len(series.ts) == len(grid) and np.array_equal(series.ts, grid)):
        return series.values.astype(float, copy=False)
    return as_of(series, grid)


def _position(f: Fills, start_position: float, t0: int | None) -> Series:
    head_t = [t0 if t0 is not None else (int(f.ts[0]) if len(f) else 0)]
    ts = np.concatenate((np.asarray(head_t, dtype=np.int64), f.ts))
    return Series(ts, start_position + np.concatenate(([0.0], np.cumsum(f.signed_qty))))


def _first(pnl: Series | None, f: Fills, marks: Series | None) -> int | None:
    cands = [int(s.ts[0]) for s in (pnl, marks) if s is not None and len(s)]
    if len(f):
        cands.append(int(f.ts[0]))
    return min(cands) if cands else None


def _last(pnl: Series | None, f: Fills, marks: Series | None) -> int | None:
    cands = [int(s.ts[-1]) for s in (pnl, marks) if s is not None and len(s)]
    if len(f):
        cands.append(int(f.ts[-1]))
    return max(cands) if cands else None
