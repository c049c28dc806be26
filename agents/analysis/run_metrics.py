"""A run directory's tables as `agents.metrics` inputs: per agent, per strategy class, market.

The reading lives here; the measuring is `agents.metrics.compute` (pure). What a run directory
of `agora simulate` holds (trades, top_of_book, agents, fundamental, summary.json; optionally
orders, positions and the market file as ``market.json``) becomes:

* the market's mid (from top_of_book: (bid + ask) / 2 where both sides are quoted) and trades
  (the mark is the last trade, as the clearing house marks);
* each account's fills from the trades (the buy and sell side of every trade), its starting
  position (its final position minus what it bought net) and its PnL curve on a regular grid
  (`MetricsConfig.sample_s`), marked to the last trade, the starting position at the symbol's
  reference price. Fees are only known as a total per account (agents table): they are spread
  over its fills in proportion to their notional, which is exact for a fee in basis points;
* the posted quantity from the ``orders`` table (new and replace orders) when there is one;
  without it the fill ratio is unknown and `RunMetrics.notes` says so;
* for the market-making classes (`MARKET_MAKERS`), the time at the top of the book: their
  resting orders rebuilt from the orders table and their passive fills
  (`agents.analysis.resting`), against the top_of_book series (`_time_at_top` says how);
* per strategy class and for the whole market: the members' fills merged, their PnL and
  position curves summed on the grid.

Everything is for one symbol (default: the first traded). The market file gives the tick size,
the multiplier and the reference price; without it they are taken from the tables (tick from
the fair value against the traded price, multiplier 1, reference price from the inventory PnL)
and the notes say so.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from agents.metrics import (
    NS,
    Fills,
    MarketContext,
    Metrics,
    MetricsConfig,
    Series,
    as_of,
    compute,
)
from agents.metrics.series import GridRuns, cumulative_on_grid, dot, grid_slots

__all__ = ["NotARun", "RunMetrics", "RunTables", "measure", "read_run", "run_metrics", "tick_size"]

TABLES = ("trades", "top_of_book", "agents", "fundamental", "orders", "positions")
# string columns of few distinct values, read as dictionaries: parquet stores them so, and
# decoding them as strings only for `measure` to hash them back into codes costs both ways
CODED = ("symbol", "buy_account", "sell_account", "aggressor", "account", "action", "side")
LIMIT_PARAMS = ("max_inventory", "max_position")  # strategy parameters that cap a position
MARKET_MAKERS = ("FixedSpreadMarketMaker", "AvellanedaStoikov")  # quote both sides, passively


class NotARun(ValueError):
    """The path is not a run directory (the message says what is missing)."""


@dataclass
class RunTables:
    """The tables of one run directory (pyarrow Tables, read lazily by column; missing tables
    absent), its summary.json and its market file."""

    path: Path
    tables: dict[str, Any]
    summary: dict[str, Any]
    market: dict[str, Any] | None  # the market file (MarketConfig as JSON) or its settings

    def column(self, table: str, name: str, dtype: Any = None) -> np.ndarray:
        """One column as a numpy array (nulls as NaN for numbers)."""
        col = self.tables[table].column(name)
        if col.null_count:
            return col.to_numpy().astype(float)
        out = col.to_numpy()
        return out if dtype is None else out.astype(dtype, copy=False)


def read_run(path: str | Path) -> RunTables:
    """Open a run directory: ``trades.parquet`` and ``agents.parquet`` at least (else
    `NotARun`), the other tables, summary.json and market.json (or config.json) if there."""
    import pyarrow.parquet as pq

    p = Path(path)
    if not p.is_dir():
        raise NotARun(f"{p} is not a directory")
    if not (p / "trades.parquet").is_file() or not (p / "agents.parquet").is_file():
        raise NotARun(f"{p} is not a run directory: no trades.parquet and agents.parquet "
                      "(agora simulate writes them)")  # fmt: skip
    tables: dict[str, Any] = {}
    for name in TABLES:
        f = p / f"{name}.parquet"
        if f.is_file():
            tables[name] = pq.read_table(f, memory_map=True, read_dictionary=CODED)
    summary = _json(p / "summary.json") or {}
    # the market file as run; else the settings summary.json may carry (symbols' specs and
    # the populations with their parameters, in the same shape)
    market = _json(p / "market.json") or _json(p / "config.json") or (
        summary.get("settings") if isinstance(summary.get("settings"), dict) else None)
    return RunTables(p, tables, summary, market)


def _json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


@dataclass
class RunMetrics:
    """Metrics of a run: per agent, per strategy class and for the market, plus the curves a
    report draws (all on `grid`, ns) and `notes` on what was missing or assumed."""

    symbol: str
    grid: np.ndarray
    agents: dict[str, Metrics]
    strategies: dict[str, Metrics]
    market: Metrics
    strategy_of: dict[str, str]
    pnl: dict[str, np.ndarray]  # per strategy class: summed PnL on the grid (cash units)
    position: dict[str, np.ndarray]  # per strategy class: summed position on the grid (lots)
    markout_curves: dict[str, dict[float, float]]  # per strategy class: horizon s -> ticks
    mids: Series
    config: MetricsConfig
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """Plain data: the metrics per agent, per strategy class and for the market."""
        return {
            "symbol": self.symbol,
            "notes": self.notes,
            "market": self.market.as_dict(),
            "strategies": {k: v.as_dict() for k, v in self.strategies.items()},
            "agents": {k: v.as_dict() for k, v in self.agents.items()},
        }


def tick_size(run: RunTables, symbol: str, notes: list[str]) -> tuple[float, float, float]:
    """(tick size, multiplier, reference price in ticks or NaN) of `symbol`."""
    from decimal import Decimal

    for spec in (run.market or {}).get("symbols", []):
        if spec.get("symbol") == symbol:
            tick = Decimal(str(spec.get("tick_size", "0.01")))
            lot = Decimal(str(spec.get("lot_size", "1")))
            ref = spec.get("reference_price")
            return float(tick), float(tick * lot / Decimal("0.01")), (
                float(ref) if ref is not None else math.nan)  # fmt: skip
    notes.append("no market file in the run directory: tick size from the fair value, "
                 "multiplier 1, reference price from the inventory PnL")  # fmt: skip
    tick = 0.01
    if "fundamental" in run.tables and run.tables["fundamental"].num_rows:
        value = float(np.median(run.column("fundamental", "value")))
        px = float(np.median(run.column("trades", "price")))
        if value > 0 and px > 0:
            tick = 10.0 ** round(math.log10(value / px))
    return tick, 1.0, math.nan


def _limits(run: RunTables) -> dict[str, float]:
    """Position limit per population, from its strategy's parameters where it has one."""
    out = {}
    for pop in (run.market or {}).get("populations", []):
        for key in LIMIT_PARAMS:
            if key in pop.get("params", {}):
                out[pop["name"]] = float(pop["params"][key])
    return out


def _quotes(strategy: str) -> bool:
    """Whether a strategy class makes markets (its time at the top of the book is measured)."""
    return strategy in MARKET_MAKERS or "MarketMaker" in strategy


def _population(name: str) -> str:
    head, sep, tail = name.rpartition("-")
    return head if sep and tail.isdigit() else name


def _accounts(run: RunTables, mask: Any) -> tuple[list[str], np.ndarray, np.ndarray]:
    """(account names, buyer codes, seller codes) of the selected trades, one dictionary."""
    import pyarrow as pa

    t = run.tables["trades"]
    buy, sell = t.column("buy_account"), t.column("sell_account")
    if mask is not None:
        buy, sell = buy.filter(mask), sell.filter(mask)
    names, codes = _codes(pa.chunked_array(buy.chunks + sell.chunks, type=buy.type))
    n = len(buy)
    return names, codes[:n], codes[n:]


def measure(
    run: RunTables, config: MetricsConfig | None = None, symbol: str | None = None,
    agents: bool = True,
) -> RunMetrics:
    """Metrics of every agent (unless `agents` is False: classes and market only), every
    strategy class and the whole market of `run`, for `symbol` (default: the first traded).

    The ratios, drawdown and VaR of an account are those of its trading PnL curve (its own
    trades marked to the last trade, minus fees): the drift of the shares it was handed is the
    same for every agent and says nothing of its strategy. The total, inventory, realised and
    unrealised PnL include the allocation; the relative drawdown and turnover use the equity."""
    import pyarrow.compute as pc

    cfg = config or MetricsConfig()
    notes: list[str] = []
    trades = run.tables["trades"]
    if trades.num_rows == 0:
        raise NotARun(f"{run.path}: no trades to measure")
    first = str(trades.column("symbol")[0].as_py())
    symbol = symbol or first
    mask = None
    if not _all_equal(trades.column("symbol"), symbol):
        mask = pc.equal(trades.column("symbol"), symbol)
        notes.append(f"measured on {symbol} only (the run trades several symbols)")

    def col(name: str, dtype: Any) -> np.ndarray:
        c = trades.column(name)
        return (c.filter(mask) if mask is not None else c).to_numpy().astype(dtype, copy=False)

    t_ts, t_px, t_q = col("ts", np.int64), col("price", float), col("qty", float)
    names, buyer, seller = _accounts(run, mask)
    _, mult, ref = tick_size(run, symbol, notes)

    if "top_of_book" in run.tables and run.tables["top_of_book"].num_rows:
        tob = run.tables["top_of_book"]
        sym = tob.column("symbol")
        if sym.null_count == 0 and _all_equal(sym, symbol):  # one symbol: every row
            tob = tob.select(["ts", "bid", "ask"])
        else:
            tob = tob.select(["ts", "bid", "ask"]).filter(pc.equal(sym, symbol))
        b_ts = tob.column("ts").to_numpy().astype(np.int64)
        bid = tob.column("bid").to_numpy(zero_copy_only=False).astype(float)
        ask = tob.column("ask").to_numpy(zero_copy_only=False).astype(float)
        mids = Series(b_ts, (bid + ask) / 2.0)
        book: tuple[np.ndarray, ...] | None = (b_ts, bid, ask)
    else:
        book = None
        notes.append("no top_of_book table: mids are the last trades")
        mids = Series(t_ts, t_px)
    end = int(max(t_ts[-1], mids.ts[-1] if len(mids) else 0))
    until = run.summary.get("until_s")
    if isinstance(until, int | float) and until > 0:
        end = max(end, round(until * NS))
    market = MarketContext(mids, t_ts, t_px, t_q, config=cfg, end_ns=end)
    step = max(1, round(cfg.sample_s * NS))
    grid = market.grid(0, end, step)  # the accounts' curves on it: known to be on the grid
    marks = as_of(market.last_trades, grid)  # before the first trade: the reference price
    marks = np.where(np.isfinite(marks), marks, ref if math.isfinite(ref) else t_px[0])
    last = float(t_px[-1])

    # every trade twice, buy leg then sell leg, in time order; grouped by account, stably
    n = len(t_ts)
    leg_acct = np.empty(2 * n, dtype=np.int64)
    leg_acct[0::2], leg_acct[1::2] = buyer, seller
    small = np.int16 if len(names) < 2**15 else np.int64  # a 16-bit key sorts by radix
    order = np.argsort(leg_acct.astype(small), kind="stable")
    # where each account's legs start: the legs of lower codes counted (-1, no account, first)
    bounds = np.cumsum(np.bincount(leg_acct + 1, minlength=len(names) + 1))
    leg_side = np.tile(np.array([1, -1], dtype=np.int64), n)
    leg_trade = np.repeat(np.arange(n, dtype=np.int64), 2)
    legs = (leg_trade, leg_side)
    # leg k is trade k // 2, bought when k is even: arithmetic, not a look-up per leg
    by_trade = order >> 1
    by_side = 1 - 2 * (order & 1)
    by_acct = (t_ts[by_trade], by_side, t_px[by_trade], t_q[by_trade], by_trade)

    ag = run.tables["agents"].to_pydict()
    row_of = {str(nm): i for i, nm in enumerate(ag["name"])}
    pos_col = f"position_{symbol}"
    orders = _orders(run, symbol, notes)
    posted = orders.posted() if orders is not None else None
    quoting = {str(a) for a, c in zip(ag["name"], ag.get("strategy", ag["name"]), strict=True)
               if _quotes(str(c))}  # fmt: skip
    at_top = _time_at_top(orders, run, mask, book, names, buyer, seller, (t_ts, t_px, t_q),
                          end, quoting) if orders is not None else None  # fmt: skip
    limits = _limits(run)
    strategy_of: dict[str, str] = {}
    per_agent: dict[str, Metrics] = {}
    sums: dict[str, dict[str, Any]] = {}
    acct_group = np.full(len(names), -1, dtype=np.int64)
    zeros = np.zeros(len(grid))
    slots_all = grid_slots(t_ts, grid)[by_trade]  # once per trade, then for each leg
    marks_finite = bool(np.isfinite(marks).all())
    unit = mult == 1.0  # a multiplier of 1 leaves every product as it is
    at_marks: dict[float, np.ndarray] = {}  # starting position -> its value at the marks
    for i, nm in enumerate(names):
        if nm not in row_of:
            notes.append(f"{nm} trades but is not in the agents table: left out")
            continue
        r = row_of[nm]
        lo, hi = bounds[i], bounds[i + 1]
        f_ts, f_s, f_px, f_q, f_trade = (x[lo:hi] for x in by_acct)
        notional = f_px * f_q
        fees_total = float(ag["fees"][r]) if "fees" in ag else 0.0
        total_notional = float(notional.sum())
        fee = notional * (fees_total / total_notional) if total_notional > 0 else notional * 0
        fills = Fills(f_ts, f_s, f_px, f_q, fee, f_trade)
        net = float(dot(f_s, f_q))
        end_pos = float(ag[pos_col][r]) if pos_col in ag else net
        q0 = end_pos - net
        s0 = ref
        if not math.isfinite(s0):  # from inventory PnL = q0 (last - ref) x mult
            inv = float(ag["inventory_pnl"][r]) if "inventory_pnl" in ag else 0.0
            s0 = last - inv / (q0 * mult) if q0 else last
        # the trading PnL curve (`pnl_curve` from no starting position) and the position,
        # sharing the fills' grid slots and running position
        dq = f_s * f_q
        slots = slots_all[lo:hi]
        # an account with few fills against the grid: running sums over its fills' slots only
        runs = GridRuns.of(slots, len(grid)) if 4 * len(slots) < len(grid) else None
        held = cumulative_on_grid(f_ts, dq, grid, slots, runs)  # running sums: never -0.0
        spent = cumulative_on_grid(f_ts, f_px * dq, grid, slots, runs)
        paid = cumulative_on_grid(f_ts, fee, grid, slots, runs) if fee.any() else 0.0
        m = marks if marks_finite else np.where(np.isfinite(marks), marks, s0)
        if unit and math.isfinite(s0) and not isinstance(paid, np.ndarray):
            curve = held * m  # the same numbers: - 0.0, x 1.0 and - 0.0 change none
            curve -= spent
        else:
            curve = (held * m - 0.0 * s0 - spent) * mult - paid
        pos = q0 + held
        strategy = str(ag["strategy"][r]) if "strategy" in ag else _population(nm)
        strategy_of[nm] = strategy
        equity = None
        if "cash" in ag:
            cash0 = float(ag["cash"][r]) + float(dot(f_px, f_s * f_q)) * mult + fees_total
            if unit:  # the starting position at the marks: the same for most accounts
                held_at = at_marks.get(q0)
                if held_at is None:
                    held_at = at_marks[q0] = q0 * marks
            else:
                held_at = q0 * marks * mult
            worth = cash0 + held_at
            worth += curve
            equity = Series(grid, worth)
        g = sums.get(strategy)
        if g is None:
            g = sums[strategy] = {"code": len(sums), "pnl": zeros.copy(), "pos": zeros.copy(),
                                  "equity": zeros.copy(), "has_equity": True, "q0": 0.0,
                                  "posted": 0.0, "has_posted": True, "fees": 0.0,
                                  "s0": s0, "top": []}  # fmt: skip
        acct_group[i] = g["code"]
        g["pnl"] += curve
        g["pos"] += pos
        g["q0"] += q0
        g["fees"] += fees_total
        if equity is not None:
            g["equity"] += equity.values
        else:
            g["has_equity"] = False
        if at_top is not None and nm in at_top:
            g["top"].append(at_top[nm])
        p = posted.get(nm, 0.0) if posted is not None else None
        if p is None:
            g["has_posted"] = False
        else:
            g["posted"] += p
        if agents:
            per_agent[nm] = compute(
                fills, market, Series(grid, curve), Series(grid, pos), p, equity=equity,
                start_position=q0, start_mark=s0, mark=last,
                time_at_top=at_top.get(nm) if at_top is not None else None,
                multiplier=mult, position_limit=limits.get(_population(nm)), start_ns=0,
                end_ns=end, config=cfg,
            )  # fmt: skip

    # groups: the legs in time order, selected by their account's class (no sorting again)
    leg_group = acct_group[leg_acct]
    strategies, pnl, position = {}, {}, {}
    for strategy, g in sums.items():
        sel = leg_group == g["code"]
        fills = _fills(legs, sel, g["fees"], market)
        strategies[strategy] = _group(fills, g, market, grid, last, mult, end, cfg)
        pnl[strategy], position[strategy] = g["pnl"], g["pos"]
    everyone = {
        "pnl": np.sum([g["pnl"] for g in sums.values()], axis=0),
        "pos": np.sum([g["pos"] for g in sums.values()], axis=0),
        "equity": np.sum([g["equity"] for g in sums.values()], axis=0),
        "has_equity": all(g["has_equity"] for g in sums.values()),
        "posted": sum(g["posted"] for g in sums.values()),
        "has_posted": all(g["has_posted"] for g in sums.values()),
        "q0": sum(g["q0"] for g in sums.values()),
        "s0": next(iter(sums.values()))["s0"] if sums else last,
    }
    fees_all = sum(g["fees"] for g in sums.values())
    whole = _group(_fills(legs, leg_group >= 0, fees_all, market), everyone, market, grid, last,
                   mult, end, cfg)  # fmt: skip
    curves = _markout_curves(legs, leg_group, len(sums), market, _curve_horizons(cfg))
    by_code = {g["code"]: s for s, g in sums.items()}
    markout_curves = {by_code[c]: curve for c, curve in curves.items()}
    return RunMetrics(symbol, grid, per_agent, strategies, whole, strategy_of, pnl, position,
                      markout_curves, mids, cfg, notes)  # fmt: skip


def run_metrics(path: str | Path, config: MetricsConfig | None = None) -> RunMetrics:
    """`measure(read_run(path))`."""
    return measure(read_run(path), config)


def _fills(legs: tuple[np.ndarray, ...], sel: np.ndarray, fees: float,
           market: MarketContext) -> Fills:  # fmt: skip
    """The selected legs (each trade's buy leg then its sell leg, as `measure` lays them out)
    as fills, the group's fees spread over them by notional."""
    if sel.all():  # every leg (the whole market): each trade's columns twice, in order
        trade, side = legs
        px, q = np.repeat(market.trade_price, 2), np.repeat(market.trade_qty, 2)
        ts = np.repeat(market.trade_ts, 2)
    else:  # leg k is trade k // 2, its buy leg when k is even (legs[0] and legs[1] say so)
        k = sel.nonzero()[0]
        trade, side = k >> 1, 1 - 2 * (k & 1)
        px, q, ts = market.trade_price[trade], market.trade_qty[trade], market.trade_ts[trade]
    notional = px * q
    total = float(notional.sum())
    if fees == 0 and 0 < total < math.inf:  # no fee to spread: zeros, in pages not yet touched
        # (notional x 0 is a zero too, -0.0 for a negative notional, which no measure of a
        # fee tells apart: they look at whether any fee is nonzero, then at its sign)
        fee = np.zeros(len(notional))
    else:
        fee = notional * (fees / total) if total > 0 else notional * 0
    return Fills(ts, side, px, q, fee, trade)


def _group(fills: Fills, g: dict[str, Any], market: MarketContext, grid: np.ndarray,
           last: float, mult: float, end: int, cfg: MetricsConfig) -> Metrics:  # fmt: skip
    """A group's metrics: its fills, its summed curves and starting positions (the members
    share the symbol's reference price as starting mark)."""
    return compute(
        fills, market, Series(grid, g["pnl"]), Series(grid, g["pos"]),
        g["posted"] if g["has_posted"] else None,
        equity=Series(grid, g["equity"]) if g["has_equity"] else None,
        start_position=g["q0"], start_mark=g["s0"], mark=last, multiplier=mult, start_ns=0,
        end_ns=end, config=cfg, time_at_top=float(np.mean(g["top"])) if g.get("top") else None,
    )  # fmt: skip


def _curve_horizons(cfg: MetricsConfig) -> tuple[float, ...]:
    base = (0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 30.0, 60.0)
    return tuple(sorted(set(base) | set(cfg.markout_s)))


def _markout_curves(
    legs: tuple[np.ndarray, ...], leg_group: np.ndarray, groups: int, market: MarketContext,
    horizons: tuple[float, ...],
) -> dict[int, dict[float, float]]:
    """Markout curve (`agents.metrics.markouts` at each horizon) of every group at once: the
    mid moves are looked up once per trade, then summed per group."""
    trade, side = legs
    n = len(market.trade_ts)
    # each trade's legs summed per group, once: (group, trade) -> side x qty and qty; a
    # horizon is then one product of those with the trades' mid moves
    ok_group = leg_group >= 0
    if not ok_group.all():
        leg_group, trade, side = leg_group[ok_group], trade[ok_group], side[ok_group]
    key = leg_group * n + trade
    q_leg = market.trade_qty[trade]
    sq = np.bincount(key, weights=side * q_leg, minlength=groups * n).reshape(groups, n)
    q = np.bincount(key, weights=q_leg, minlength=groups * n).reshape(groups, n)
    q_all = q.sum(axis=1)
    out: dict[int, dict[float, float]] = {c: {0.0: 0.0} for c in range(groups)}
    # a group's row at a time into buffers reused for every horizon: no groups x trades
    # temporary, no fresh pages (the same products, each row summed as `sum(axis=1)` does)
    known, prod = np.empty(n), np.empty(n)
    num, den = np.empty(groups), np.empty(groups)
    for h in horizons:
        move = market.trade_moves(h)  # the context keeps these for the accounts' markouts
        valid = np.isfinite(move)
        every = bool(valid.all())
        if not every:  # unknown moves count 0, their quantity too
            np.copyto(known, 0.0)
            np.copyto(known, move, where=valid)
        for c in range(groups):
            num[c] = _sum(np.multiply(sq[c], move if every else known, out=prod))
            den[c] = q_all[c] if every else _sum(np.multiply(q[c], valid, out=prod))
        for c in range(groups):
            out[c][float(h)] = float(num[c] / den[c]) if den[c] > 0 else math.nan
    return out


_sum = np.add.reduce  # ndarray.sum's reduction, without its wrapper


@dataclass
class _Orders:
    """The orders table of one symbol (rows as sent; mass cancels of every symbol kept), with
    each row's account code into `accounts`, action code of `agents.analysis.resting` and
    quantity; the other columns are read only for the accounts that `rows` asks about."""

    table: Any
    accounts: list[str]
    account: np.ndarray
    action: np.ndarray
    qty: np.ndarray

    def posted(self) -> dict[str, float]:
        """Posted quantity per account (lots): its new and replace orders."""
        from agents.analysis.resting import CANCEL

        ok = self.action != CANCEL
        n = len(self.accounts)
        # every row, a cancel's quantity counted as 0 (x + 0.0 is x: the same sums, no copies;
        # q x 0 is 0.0 or -0.0, and a sum that starts at 0.0 is changed by neither; the
        # quantities have no NaN): a product, not a selection that branches on every row
        sums = np.bincount(self.account, weights=np.multiply(self.qty, ok), minlength=n)
        has = np.bincount(self.account, weights=ok, minlength=n) > 0
        return {a: float(sums[i]) for i, a in enumerate(self.accounts) if has[i]}

    def rows(self, accounts: set[str]) -> tuple[np.ndarray, ...]:
        """(ts, account code, action, side +1/-1 or 0, price or NaN, quantity, order code or
        -1) of the rows of `accounts`."""
        import pyarrow as pa

        want = np.array([a in accounts for a in self.accounts] + [False])
        sel = want[self.account]
        t = self.table.select(["ts", "side", "price", "clid"]).filter(pa.array(sel))
        _, side = _codes(t.column("side"), {"buy": 1, "sell": -1})
        _, order = _codes(t.column("clid"), named=False)
        price = t.column("price").to_numpy(zero_copy_only=False).astype(float)
        # the rows by index: the accounts' rows are interleaved with the others', and a mask
        # over every row branches at random where a gather by index does not
        at = sel.nonzero()[0]
        return (t.column("ts").to_numpy().astype(np.int64), self.account[at], self.action[at],
                side, price, self.qty[at], order)  # fmt: skip


def _all_equal(col: Any, value: Any) -> bool:
    """Whether every value of the pyarrow column `col` that is not null is `value`, and there
    is one (what ``pc.all(pc.equal(col, value))`` says): for a column read as a dictionary
    (`CODED`), its codes against the few values of its dictionary, without comparing the
    strings of every row."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if not pa.types.is_dictionary(col.type):
        return bool(pc.all(pc.equal(col, value)).as_py())
    if len(col) == col.null_count:
        return False  # no value: `pc.all` says null
    for chunk in col.chunks if isinstance(col, pa.ChunkedArray) else [col]:
        if chunk.null_count == len(chunk):
            continue
        same = np.array([v == value for v in chunk.dictionary.to_pylist()] + [True])
        codes = pc.fill_null(chunk.indices, -1).to_numpy(zero_copy_only=False)
        if not same[codes].all():  # -1 (null) reads the last entry: True
            return False
    return True


def _codes(col: Any, values: dict[Any, int] | None = None,
           default: int = 0, named: bool = True) -> tuple[list[Any], np.ndarray]:  # fmt: skip
    """(distinct values, each row's code; -1 for null) of a pyarrow column, plain or read as a
    dictionary (`CODED`): the values in the order they first appear, as
    `pyarrow.compute.dictionary_encode` numbers them. With `values`, each row's value from that
    mapping instead (`default` for others and null). Not `named`: the codes alone (the values
    an empty list; a column of many distinct values, such as client order ids, is then never
    turned into Python objects)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if pa.types.is_dictionary(col.type):  # the file's codes, into one dictionary
        enc = col.unify_dictionaries().combine_chunks() if isinstance(
            col, pa.ChunkedArray) else col  # fmt: skip
    else:
        enc = pc.dictionary_encode(col).combine_chunks()
    codes = pc.fill_null(enc.indices, -1).to_numpy(zero_copy_only=False)
    if values is not None:  # the file's codes index the table as they are (-1: the default)
        distinct = enc.dictionary.to_pylist()
        table = [values.get(v, default) for v in distinct] + [default]
        return distinct, np.array(table, dtype=np.int64)[codes]
    if not pa.types.is_dictionary(col.type):
        return enc.dictionary.to_pylist() if named else [], codes.astype(np.int64)
    # (the file's codes as read index the tables below; the renumbered codes are 64-bit)
    # a file's dictionary holds values in its own order, some perhaps in no row of `col`
    k, n = len(enc.dictionary), len(codes)
    first = np.full(k + 1, n, dtype=np.int64)
    np.minimum.at(first, codes, np.arange(n, dtype=np.int64))  # -1 (null) lands on k
    seen = np.flatnonzero(first[:k] < n)
    order = seen[np.argsort(first[seen], kind="stable")]
    renumber = np.full(k + 1, -1, dtype=np.int64)
    renumber[order] = np.arange(len(order), dtype=np.int64)
    names = enc.dictionary.take(pa.array(order)).to_pylist() if named else []
    return names, renumber[codes]


def _orders(run: RunTables, symbol: str, notes: list[str]) -> _Orders | None:
    """The orders of `symbol` (and the mass cancels of all symbols), or None without a table."""
    import pyarrow as pa
    import pyarrow.compute as pc

    from agents.analysis.resting import CANCEL, NEW, REPLACE

    orders = run.tables.get("orders")
    if orders is None:
        notes.append("no orders table in this run: posted quantity, hence the fill ratio, and "
                     "the time at the top of the book are unknown")  # fmt: skip
        return None
    sym = orders.column("symbol")
    if not _all_equal(sym, symbol):  # else every row is kept: those of `symbol` and the nulls
        ok = pc.fill_null(pc.equal(sym, symbol), False)
        orders = orders.filter(pc.or_(ok, pc.is_null(sym)))
    accounts, account = _codes(orders.column("account"))
    _, action = _codes(orders.column("action"), {"new": NEW, "replace": REPLACE}, CANCEL)
    if orders.column("account").null_count:  # no account: the extra last code
        account = np.where(account >= 0, account, len(accounts))
    q = orders.column("qty")
    qty = q.to_numpy(zero_copy_only=False).astype(float)
    if q.null_count or not pa.types.is_integer(q.type):  # else there is no NaN to replace
        qty = np.nan_to_num(qty)
    return _Orders(orders, [str(a) for a in accounts] + [""], account, action, qty)


def _time_at_top(
    orders: _Orders, run: RunTables, mask: Any, book: tuple[np.ndarray, ...] | None,
    names: list[str],
    buyer: np.ndarray, seller: np.ndarray, trades: tuple[np.ndarray, ...], end: int,
    quoting: set[str],
) -> dict[str, float]:
    """Each account's share of the run it had an order resting at the best bid, and at the
    best ask (`agents.analysis.resting`), averaged over the two sides: 1 is both sides at the
    top all the time, a one-sided quote always at the top 0.5. Two orders of one account at
    the best on one side at once count twice, a side's share capped at 1 (market makers keep
    one order a side). Measured for the accounts of `quoting` only."""

    from agents.analysis.resting import resting_orders
    from agents.metrics.market_making import time_at_level

    if book is None or end <= 0:
        return {}
    t_ts, t_px, t_q = trades
    trades_t = run.tables["trades"]
    n = len(t_ts)
    if "aggressor" in trades_t.column_names:
        aggr = trades_t.column("aggressor")
        _, aggressor = _codes(aggr.filter(mask) if mask is not None else aggr,
                              {"buy": 1, "sell": -1})  # fmt: skip
    else:
        aggressor = np.zeros(n, np.int64)
    # the trades' account codes as the orders table's, for the quoting accounts (else -1)
    index = {a: i for i, a in enumerate(orders.accounts) if a in quoting}
    to_orders = np.array([index.get(nm, -1) for nm in names] + [-1], dtype=np.int64)
    # the resting side of each trade: the seller when a buy took it, the buyer when a sell
    # did; both sides of a trade without an aggressor (an auction's), appended in time order
    sold = (aggressor > 0).astype(np.int64)  # the resting side sold: arithmetic, no branching
    f_acct = to_orders[buyer + (seller - buyer) * sold]
    f_side = 1 - 2 * sold
    f_ts, f_px, f_q = t_ts, t_px, t_q
    both = np.flatnonzero(aggressor == 0)
    if len(both):
        f_acct = np.concatenate((f_acct, to_orders[seller[both]]))
        f_side = np.concatenate((f_side, -np.ones(len(both), np.int64)))
        f_ts, f_px, f_q = (np.concatenate((x, x[both])) for x in (t_ts, t_px, t_q))
        by_t = np.argsort(f_ts, kind="stable")
        f_acct, f_side, f_ts, f_px, f_q = (x[by_t] for x in (f_acct, f_side, f_ts, f_px, f_q))
    keep = np.flatnonzero(f_acct >= 0)
    o_ts, o_acct, o_action, o_side, o_px, o_q, o_order = orders.rows(quoting)
    rest = resting_orders(o_ts, o_acct, o_action, o_side, o_px, o_q, o_order, end,
                          f_ts[keep], f_acct[keep], f_side[keep], f_px[keep],
                          f_q[keep])  # fmt: skip
    b_ts, b_bid, b_ask = book
    top = np.zeros(len(rest.start))
    # each side's stretches by index (the sides interleave at random: a mask would branch on
    # every stretch), in their order
    for sgn, level in ((1, b_bid), (-1, b_ask)):
        at = (rest.side == sgn).nonzero()[0]
        top[at] = time_at_level(b_ts, level, end, rest.start[at], rest.end[at],
                                rest.price[at])  # fmt: skip
    n = len(orders.accounts)
    bids, asks = (rest.side > 0).nonzero()[0], (rest.side < 0).nonzero()[0]
    bid = np.bincount(rest.account[bids], weights=top[bids], minlength=n)
    ask = np.bincount(rest.account[asks], weights=top[asks], minlength=n)
    share = (np.minimum(bid, end) + np.minimum(ask, end)) / (2.0 * end)
    return {a: float(share[i]) for i, a in enumerate(orders.accounts) if a in quoting}
