"""A simulation's outputs as columns, and a Parquet writer (when pyarrow is importable).

The tables of a run directory, all plain ``{column: list}`` dicts so they cost nothing to build
and any tool (pandas, polars, pyarrow) can take them. Prices are in ticks, quantities in lots,
cash in cash units, times in ns:

* ``trades``: ts, trade_id, symbol, price (ticks), qty (lots), aggressor, buy_account,
  sell_account, one row per fill, in engine order;
* ``top_of_book``: ts, symbol, bid, bid_qty, ask, ask_qty, one row per top-of-book change;
* ``agents``: name, account, strategy, cash, trading_pnl, inventory_pnl, pnl, fees, volume,
  fills, orders_sent, open_orders and one ``position_<symbol>`` column per symbol. PnL is in
  cash units, marked to the last trade (`agents.analysis.pnl`): ``trading_pnl`` is what the
  agent's own trades made, minus fees; ``inventory_pnl`` the price move on its starting
  position (from the reference price); ``pnl`` their sum, as the clearing house counts it;
* ``orders`` (when the market records them: ``record_orders``): ts, account, symbol, action
  (new, cancel or replace), side, price, qty, clid, every order action as the agent sent it
  (a mass cancel is one cancel row without an order);
* ``positions`` (when sampled: ``positions_interval_ns``): ts, account, symbol, position, cash
  on a regular grid, as the clearing house holds them;
* ``refusals``: ts, account, population, reason, every new order or replace refused before it
  could trade, by the risk gate (``insufficient_funds``, ``insufficient_position``, ...) or the
  engine (``price_outside_band``, ...), with the reject reason the agent heard (a replace
  that came too late, its order already done, is not a refusal of its terms: not listed).

The market's settings and the refusals counted by reason and population are plain data for
``summary.json`` (`settings`, `refusal_counts`).

Derived tables (not in `tables`, built on request; `write_parquet` writes any of them):

* ``bars`` (`bars`): OHLCV bars from the trades on a regular grid, the series that price
  statistics and charts want;
* ``fundamental`` (`fundamental_table`): ts, symbol, value, every F(t) the market published,
  to hold the traded price against the fair value.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agents.sim.market import population_of

if TYPE_CHECKING:
    from agents.analysis.pnl import PnlSplit
    from agents.sim.market import SimMarket

__all__ = [
    "HAVE_PYARROW",
    "ORDERS_COLUMNS",
    "POSITIONS_COLUMNS",
    "REFUSALS_COLUMNS",
    "RowSink",
    "agents_table",
    "bars",
    "fundamental_table",
    "orders_table",
    "pnl_by_population",
    "pnl_splits",
    "population_of",
    "positions_table",
    "refusal_counts",
    "refusals_table",
    "settings",
    "tables",
    "write_parquet",
]

ORDERS_COLUMNS = ("ts", "account", "symbol", "action", "side", "price", "qty", "clid")
POSITIONS_COLUMNS = ("ts", "account", "symbol", "position", "cash")
REFUSALS_COLUMNS = ("ts", "account", "population", "reason")

try:  # pyarrow is optional for the kernel; only writing Parquet needs it
    import pyarrow as pa
    import pyarrow.parquet as pq

    HAVE_PYARROW = True
except ImportError:  # pragma: no cover - depends on the environment
    pa = pq = None  # type: ignore[assignment]
    HAVE_PYARROW = False


def tables(market: SimMarket) -> dict[str, dict[str, list]]:
    """The output tables of `market` (see the module docstring): trades, top_of_book, agents
    and refusals, and orders and positions when the market recorded them."""
    out = {
        "trades": market.trades,
        "top_of_book": market.top_of_book(),
        "agents": agents_table(market),
        "refusals": refusals_table(market),
    }
    if market.order_log is not None:
        out["orders"] = orders_table(market)
    if market.position_log is not None:
        out["positions"] = positions_table(market)
    return out


def _columns(rows: list[tuple], names: tuple[str, ...]) -> dict[str, list]:
    if not rows:
        return {k: [] for k in names}
    return {k: list(col) for k, col in zip(names, zip(*rows, strict=True), strict=True)}


def orders_table(market: SimMarket) -> dict[str, list]:
    """Every order action the agents sent (`ORDERS_COLUMNS`), in the order they sent them."""
    if market.order_log is None:
        raise ValueError("this market does not record orders (SimMarket(record_orders=True))")
    return _columns(market.order_log, ORDERS_COLUMNS)


def positions_table(market: SimMarket) -> dict[str, list]:
    """Positions and cash of every account on the sampling grid (`POSITIONS_COLUMNS`)."""
    if market.position_log is None:
        raise ValueError("this market does not sample positions (positions_interval_ns)")
    return _columns(market.position_log, POSITIONS_COLUMNS)


def refusals_table(market: SimMarket) -> dict[str, list]:
    """Every refused new order or replace (`REFUSALS_COLUMNS`), in time order."""
    return _columns(market.refusal_log, REFUSALS_COLUMNS)


def refusal_counts(market: SimMarket) -> dict[str, Any]:
    """Refusals counted for ``summary.json``: ``{"total": n, "by_reason": {reason: n},
    "by_population": {population: {reason: n}}}``, most frequent first."""
    log = market.refusal_log
    per: dict[str, Counter] = {}
    for _ts, _account, population, reason in log:
        per.setdefault(population, Counter())[reason] += 1
    return {
        "total": len(log),
        "by_reason": dict(Counter(row[3] for row in log).most_common()),
        "by_population": {p: dict(c.most_common()) for p, c in per.items()},
    }


def settings(market: SimMarket) -> dict[str, Any]:
    """The market's settings for ``summary.json``: each symbol's spec (tick, lot, reference
    price, band in basis points and as [low, high] ticks around the reference, breaker) and
    clearing's terms (fees, leverage, short limit and margins, starting cash and positions),
    and each population as it was built (strategy, head count, starting cash and positions,
    parameters and latency when it came from the config)."""
    config = market.config
    symbols = []
    for spec in market.specs.values():
        row = spec.model_dump(mode="json")
        row["band_ticks"] = None if not spec.band_bps else list(spec.band())
        symbols.append(row)
    from_config = {p.name: p for p in config.populations}
    populations: dict[str, dict[str, Any]] = {}
    for ctx in market.agents:
        name = population_of(ctx.name)
        pop = populations.get(name)
        if pop is None:
            pop = populations[name] = {
                "name": name, "strategy": type(ctx.agent).__name__, "count": 0,
                "starting_cash": ctx.initial_cash, "starting_positions": ctx.initial_positions,
            }  # fmt: skip
            declared = from_config.get(name)
            if declared is not None:
                pop["strategy"] = declared.strategy
                pop["params"] = dict(declared.params)
                pop["latency"] = declared.latency.model_dump(mode="json")
        pop["count"] += 1
    interval = market.positions_interval_ns
    return {
        "symbols": symbols,
        "clearing": {
            "enabled": market.ledger is not None,
            "fees": market.fees.model_dump(mode="json"),
            "leverage": config.clearing.leverage,
            "short_limit": config.clearing.short_limit,
            "short_margin": config.clearing.short_margin,
            "maintenance_margin": config.clearing.maintenance_margin,
            "starting_cash": market.starting_cash,
            "starting_positions": dict(market.starting_positions),
        },
        "fundamental": dict(config.fundamental),
        "fundamental_interval_s": market.fundamental_interval_ns / 1e9,
        "populations": list(populations.values()),
        "positions_interval_s": interval / 1e9 if interval else None,
    }


def pnl_splits(market: SimMarket) -> list[PnlSplit]:
    """Each agent's trading and inventory PnL (in `market.agents` order), marked to the last
    trade; the starting mark is the symbol's reference price (where the market starts)."""
    from agents.analysis.pnl import split

    starts = {s: market.specs[s].reference_price for s in market.symbols}
    marks = {s: p for s in market.symbols if (p := market.last_price(s)) is not None}
    out = []
    for ctx in market.agents:
        p = ctx.portfolio
        out.append(split(ctx.initial_cash, ctx.initial_positions, p.cash, p.positions, starts,
                         marks, p.multipliers))  # fmt: skip
    return out


def agents_table(market: SimMarket) -> dict[str, list]:
    """`market.results()` with its PnL split: trading_pnl, inventory_pnl and pnl (the total)."""
    results = market.results()
    splits = pnl_splits(market)
    cols: dict[str, list] = {}
    for key, values in results.items():
        if key == "pnl":
            cols["trading_pnl"] = [x.trading for x in splits]
            cols["inventory_pnl"] = [x.inventory for x in splits]
            cols["pnl"] = [x.total for x in splits]
        else:
            cols[key] = values
    return cols


def pnl_by_population(market: SimMarket) -> dict[str, dict[str, int]]:
    """``{"trading_pnl": {population: ...}, "inventory_pnl": {...}, "pnl": {...}}``: the
    agents' PnL summed per population (cash units), populations in first-seen order."""
    from agents.analysis.pnl import split_by

    names = [ctx.name for ctx in market.agents]
    per = split_by(zip((population_of(n) for n in names), pnl_splits(market), strict=True))
    return {
        "trading_pnl": {k: v.trading for k, v in per.items()},
        "inventory_pnl": {k: v.inventory for k, v in per.items()},
        "pnl": {k: v.total for k, v in per.items()},
    }


def bars(
    trades: dict[str, list], bar_ns: int = 1_000_000_000, fill: bool = True
) -> dict[str, list]:
    """OHLCV bars of `bar_ns` from a trades table (columns ts, symbol, price, qty).

    Columns: ts (bar start, ns), symbol, open, high, low, close (ticks), volume (lots), count
    (trades), vwap (ticks, float). Per symbol, bars run from the first bar with a trade to the
    last; with `fill`, a bar without trades is kept with open = high = low = close = the
    previous close and volume 0 (a regular grid, so returns at different times compare; the
    zero return is what a quiet bar of a real market shows too), else it is left out. Rows are
    ordered by symbol (first appearance), then time.
    """
    if bar_ns <= 0:
        raise ValueError(f"bar_ns must be positive, got {bar_ns}")
    cols: dict[str, list] = {
        k: [] for k in ("ts", "symbol", "open", "high", "low", "close", "volume", "count", "vwap")
    }
    per_symbol: dict[str, dict[int, list[int]]] = {}
    for ts, sym, px, qty in zip(
        trades["ts"], trades["symbol"], trades["price"], trades["qty"], strict=True
    ):
        b = ts // bar_ns
        book = per_symbol.setdefault(sym, {})
        bar = book.get(b)
        if bar is None:  # open, high, low, close, volume, count, notional
            book[b] = [px, px, px, px, qty, 1, px * qty]
        else:
            if px > bar[1]:
                bar[1] = px
            if px < bar[2]:
                bar[2] = px
            bar[3] = px
            bar[4] += qty
            bar[5] += 1
            bar[6] += px * qty
    for sym, book in per_symbol.items():
        keys = sorted(book)
        grid = range(keys[0], keys[-1] + 1) if fill else keys
        prev_close = book[keys[0]][0]
        for b in grid:
            bar = book.get(b)
            if bar is None:
                o = h = lo = c = prev_close
                vol = n = 0
                vwap = float(prev_close)
            else:
                o, h, lo, c, vol, n, notional = bar
                vwap = notional / vol if vol else float(c)
            prev_close = c
            for key, value in (("ts", b * bar_ns), ("symbol", sym), ("open", o), ("high", h),
                               ("low", lo), ("close", c), ("volume", vol), ("count", n),
                               ("vwap", vwap)):  # fmt: skip
                cols[key].append(value)
    return cols


def fundamental_table(market: SimMarket) -> dict[str, list]:
    """Every fair value F(t) the market published: ts, symbol, value (empty without one)."""
    cols: dict[str, list] = {"ts": [], "symbol": [], "value": []}
    # the market keeps its published history per symbol for the agents' lazy views
    f_ts: dict[str, list[int]] = getattr(market, "_f_ts", {})
    f_val: dict[str, list[float]] = getattr(market, "_f_val", {})
    rows = [(t, sym, v) for sym in f_ts for t, v in zip(f_ts[sym], f_val[sym], strict=True)]
    rows.sort(key=lambda row: row[0])  # stable: same-ts values keep the symbol order
    for t, sym, v in rows:
        cols["ts"].append(t)
        cols["symbol"].append(sym)
        cols["value"].append(float(v))
    return cols


def _schema(name: str, cols: dict[str, list]) -> Any:
    i64, s = pa.int64(), pa.string()
    fixed = {
        "ts": i64, "trade_id": i64, "price": i64, "qty": i64, "bid": i64, "bid_qty": i64,
        "ask": i64, "ask_qty": i64, "cash": i64, "fees": i64, "volume": i64, "fills": i64,
        "orders_sent": i64, "open_orders": i64, "pnl": pa.float64(),
        "trading_pnl": pa.float64(), "inventory_pnl": pa.float64(), "symbol": s,
        "aggressor": s, "buy_account": s, "sell_account": s, "name": s, "account": s,
        "strategy": s, "open": i64, "high": i64, "low": i64, "close": i64, "count": i64,
        "vwap": pa.float64(), "value": pa.float64(), "action": s, "side": s, "clid": s,
        "population": s, "reason": s, "position": i64,
    }  # fmt: skip
    fields = []
    for col in cols:
        fields.append(pa.field(col, fixed.get(col, i64 if col.startswith("position_") else s)))
    return pa.schema(fields)


class RowSink:
    """One table of a run directory written to Parquet as the run goes (a row group per
    `write`), so a long run's orders and positions never pile up in memory. `close` writes the
    file even when no row came (an empty table with its columns)."""

    def __init__(self, path: str | Path, name: str, columns: tuple[str, ...]) -> None:
        if not HAVE_PYARROW:
            raise RuntimeError("writing Parquet needs pyarrow (pip install pyarrow)")
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.columns = columns
        self.rows = 0
        self._schema = _schema(name, dict.fromkeys(columns))
        self._writer = pq.ParquetWriter(self.path, self._schema)

    def write(self, rows: list[tuple]) -> None:
        if rows:
            self._writer.write_table(pa.table(_columns(rows, self.columns), schema=self._schema))
            self.rows += len(rows)

    def close(self) -> Path:
        if self.rows == 0:
            self._writer.write_table(self._schema.empty_table())
        self._writer.close()
        return self.path


def write_parquet(
    market: SimMarket | dict[str, dict[str, list]], directory: str | Path
) -> dict[str, Path]:
    """Write ``trades.parquet``, ``top_of_book.parquet`` and ``agents.parquet`` into
    `directory` (created if needed); returns the paths. Raises RuntimeError without pyarrow.

    Given a dict of tables instead of a market, writes ``<name>.parquet`` for each of them
    (e.g. `tables` plus `bars` and `fundamental_table`)."""
    if not HAVE_PYARROW:
        raise RuntimeError("writing Parquet needs pyarrow (pip install pyarrow)")
    data = market if isinstance(market, dict) else tables(market)
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    paths = {}
    for name, cols in data.items():
        cols = dict(cols)
        if name == "trades" and "buy_account" in cols:
            for key in ("buy_account", "sell_account"):
                cols[key] = [None if a is None else str(a) for a in cols[key]]
        for key in ("pnl", "trading_pnl", "inventory_pnl"):
            if name == "agents" and key in cols:
                cols[key] = [float(x) for x in cols[key]]
        table = pa.table(cols, schema=_schema(name, cols))
        path = out / f"{name}.parquet"
        pq.write_table(table, path)
        paths[name] = path
    return paths
