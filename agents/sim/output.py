"""A simulation's outputs as columns, and a Parquet writer (when pyarrow is importable).

Three tables, all plain ``{column: list}`` dicts so they cost nothing to build and any tool
(pandas, polars, pyarrow) can take them:

* ``trades``: ts, trade_id, symbol, price (ticks), qty (lots), aggressor, buy_account,
  sell_account, one row per fill, in engine order;
* ``top_of_book``: ts, symbol, bid, bid_qty, ask, ask_qty, one row per top-of-book change;
* ``agents``: name, account, strategy, cash, pnl (marked to the last trade), fees, volume,
  fills, orders_sent, open_orders and one ``position_<symbol>`` column per symbol.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from agents.sim.market import SimMarket

__all__ = ["HAVE_PYARROW", "tables", "write_parquet"]

try:  # pyarrow is optional for the kernel; only writing Parquet needs it
    import pyarrow as pa
    import pyarrow.parquet as pq

    HAVE_PYARROW = True
except ImportError:  # pragma: no cover - depends on the environment
    pa = pq = None  # type: ignore[assignment]
    HAVE_PYARROW = False


def tables(market: SimMarket) -> dict[str, dict[str, list]]:
    """The three output tables of `market` (see the module docstring)."""
    return {
        "trades": market.trades,
        "top_of_book": market.top_of_book(),
        "agents": market.results(),
    }


def _schema(name: str, cols: dict[str, list]) -> Any:
    i64, s = pa.int64(), pa.string()
    fixed = {
        "ts": i64, "trade_id": i64, "price": i64, "qty": i64, "bid": i64, "bid_qty": i64,
        "ask": i64, "ask_qty": i64, "cash": i64, "fees": i64, "volume": i64, "fills": i64,
        "orders_sent": i64, "open_orders": i64, "pnl": pa.float64(), "symbol": s,
        "aggressor": s, "buy_account": s, "sell_account": s, "name": s, "account": s,
        "strategy": s,
    }  # fmt: skip
    fields = []
    for col in cols:
        fields.append(pa.field(col, fixed.get(col, i64 if col.startswith("position_") else s)))
    return pa.schema(fields)


def write_parquet(
    market: SimMarket | dict[str, dict[str, list]], directory: str | Path
) -> dict[str, Path]:
    """Write ``trades.parquet``, ``top_of_book.parquet`` and ``agents.parquet`` into
    `directory` (created if needed); returns the paths. Raises RuntimeError without pyarrow."""
    if not HAVE_PYARROW:
        raise RuntimeError("writing Parquet needs pyarrow (pip install pyarrow)")
    data = market if isinstance(market, dict) else tables(market)
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    paths = {}
    for name, cols in data.items():
        cols = dict(cols)
        if name == "trades":
            for key in ("buy_account", "sell_account"):
                cols[key] = [None if a is None else str(a) for a in cols[key]]
        if name == "agents":
            cols["pnl"] = [float(x) for x in cols["pnl"]]
        table = pa.table(cols, schema=_schema(name, cols))
        path = out / f"{name}.parquet"
        pq.write_table(table, path)
        paths[name] = path
    return paths
