"""A replay run's results: the standard metrics, the run directory, the summary.

The run directory has the same shape as an `agora simulate` run (Parquet tables plus
``summary.json``), so the same tools read both:

* ``trades``: the strategy's fills in the simulated market's trades layout (ts, trade_id,
  symbol, price, qty, aggressor, buy_account, sell_account; the tape is the other side);
* ``fills``: the same fills with the rule that made each (quote-through, trade-through, or
  taker for a marketable order filled on arrival), liquidity, fee and the mid at the time;
* ``orders`` (ts, account, symbol, action, side, price, qty, clid) and ``positions`` (ts,
  account, symbol, position, cash, mid, equity on the sampling grid);
* ``agents``: one row (name, account, strategy, cash, trading_pnl, inventory_pnl, pnl, fees,
  volume, fills, orders_sent, open_orders, position_<symbol>).

The metrics are `agents.metrics.compute` on the fills, the position and the equity marked to
the mid on the sampling grid (the tape's mid is the mark: a replay has no clearing price).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from agents.replay.record import Record

__all__ = ["metrics_by_symbol", "summary_of", "write_run"]


def metrics_by_symbol(record: Record, multipliers: dict[str, int] | None = None,
                      sample_s: float = 1.0) -> dict[str, dict[str, Any]]:  # fmt: skip
    """`agents.metrics.compute` per traded symbol, as plain dicts (`Metrics.as_dict`)."""
    from agents.metrics import Fills, MarketContext, MetricsConfig, Series, compute

    cfg = MetricsConfig(sample_s=sample_s)
    pos = record.positions
    out: dict[str, dict[str, Any]] = {}
    for symbol in dict.fromkeys(pos["symbol"]):
        rows = [i for i, s in enumerate(pos["symbol"]) if s == symbol]
        ts = np.array([pos["ts"][i] for i in rows], np.int64)
        mid = np.array([np.nan if pos["mid"][i] is None else pos["mid"][i] for i in rows])
        position = np.array([pos["position"][i] for i in rows], float)
        equity = np.array([np.nan if pos["equity"][i] is None else pos["equity"][i]
                           for i in rows])  # fmt: skip
        order = np.argsort(ts, kind="stable")
        ts, mid, position, equity = ts[order], mid[order], position[order], equity[order]
        keep = np.concatenate((ts[1:] != ts[:-1], [True])) if len(ts) else np.array([], bool)
        ts, mid, position, equity = ts[keep], mid[keep], position[keep], equity[keep]
        f = record.fills
        idx = [i for i, s in enumerate(f["symbol"]) if s == symbol]
        fills = Fills.of(ts=[f["ts"][i] for i in idx],
                         side=[1 if f["side"][i] == "buy" else -1 for i in idx],
                         price=[f["price"][i] for i in idx], qty=[f["qty"][i] for i in idx],
                         fee=[f["fee"][i] for i in idx])  # fmt: skip
        market = MarketContext(mids=Series.of(ts, mid), trade_ts=[], trade_price=[],
                               trade_qty=[], config=cfg)  # fmt: skip
        start_eq = next((e for e in equity if math.isfinite(e)), 0.0)
        pnl = Series.of(ts, np.nan_to_num(equity - start_eq, nan=0.0))
        o = record.orders
        posted = sum(o["qty"][i] for i, s in enumerate(o["symbol"])
                     if s == symbol and o["action"][i] == "new")  # fmt: skip
        last_mid = next((m for m in mid[::-1] if math.isfinite(m)), None)
        m = compute(fills, market, pnl=pnl, inventory=Series.of(ts, position),
                    posted_qty=float(posted) if posted else None, mark=last_mid,
                    multiplier=float((multipliers or {}).get(symbol, 1)), config=cfg)  # fmt: skip
        out[symbol] = m.as_dict()
    return out


def summary_of(record: Record, *, name: str, strategy: str, config: Any, tape: Any,
               wall_s: float, multipliers: dict[str, int] | None = None,
               window: tuple[int | None, int | None] = (None, None)) -> dict[str, Any]:  # fmt: skip
    """The run's summary (what ``summary.json`` holds and the table prints)."""
    f = record.fills
    by_rule: dict[str, int] = {}
    for r in f["rule"]:
        by_rule[r] = by_rule.get(r, 0) + 1
    pos = record.positions
    last = {s: (pos["position"][i], pos["cash"][i], pos["equity"][i])
            for i, s in enumerate(pos["symbol"])}  # fmt: skip
    sample_s = config.sample_ns / 1e9
    return {
        "name": name,
        "strategy": strategy,
        "kind": "backtest",
        "tape": str(tape.path),
        "layout": tape.layout,
        "symbols": list(tape.symbols),
        "fill_rule": config.fill_rule,
        "queue": config.queue,
        "size": config.size,
        "latency_ns": config.latency_ns,
        "cancel_latency_ns": config.cancel_latency_ns if config.cancel_latency_ns is not None
        else config.latency_ns,
        "window": {"start_ns": window[0], "end_ns": window[1]},
        "first_ts": record.first_ts,
        "last_ts": record.last_ts,
        "events": record.events,
        "wall_s": wall_s,
        "events_per_s": record.events / wall_s if wall_s > 0 else None,
        "orders": len(record.orders["ts"]),
        "fills": len(f["ts"]),
        "fills_by_rule": by_rule,
        "volume": int(sum(f["qty"])),
        "final": {s: {"position": p, "cash": c, "equity": e} for s, (p, c, e) in last.items()},
        "metrics": metrics_by_symbol(record, multipliers, sample_s),
    }


def write_run(out_dir: Path | str, record: Record, summary: dict[str, Any],
              strategy: str, account: str) -> list[str]:  # fmt: skip
    """Write the run directory (see the module docstring); returns the file names."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    f = record.fills
    n = len(f["ts"])
    trades = {
        "ts": f["ts"], "trade_id": list(range(1, n + 1)), "symbol": f["symbol"],
        "price": f["price"], "qty": f["qty"],
        "aggressor": ["sell" if s == "buy" and lq == "maker" else
                      "buy" if lq == "maker" else s for s, lq in zip(f["side"], f["liquidity"],
                                                                    strict=True)],
        "buy_account": [account if s == "buy" else "tape" for s in f["side"]],
        "sell_account": [account if s == "sell" else "tape" for s in f["side"]],
    }  # fmt: skip
    i64, flt, s = pa.int64(), pa.float64(), pa.string()
    schemas = {
        "trades": {"ts": i64, "trade_id": i64, "symbol": s, "price": i64, "qty": i64,
                   "aggressor": s, "buy_account": s, "sell_account": s},
        "fills": {"ts": i64, "clid": s, "symbol": s, "side": s, "price": i64, "qty": i64,
                  "rule": s, "liquidity": s, "fee": i64, "mid": flt},
        "orders": {"ts": i64, "account": s, "symbol": s, "action": s, "side": s, "price": i64,
                   "qty": i64, "clid": s},
        "positions": {"ts": i64, "account": s, "symbol": s, "position": i64, "cash": i64,
                      "mid": flt, "equity": flt},
    }  # fmt: skip
    tables = {"trades": trades, "fills": f, "orders": record.orders,
              "positions": record.positions}  # fmt: skip
    final = summary.get("final", {})
    fees = int(sum(f["fee"]))
    agents: dict[str, list] = {
        "name": [summary["name"]], "account": [account], "strategy": [strategy],
        "cash": [int(sum(v["cash"] for v in final.values()) if final else 0)],
    }  # fmt: skip
    total = sum((m["profitability"]["total"] or 0.0) for m in summary.get("metrics", {}).values())
    prof = [m["profitability"] for m in summary.get("metrics", {}).values()]
    agents["trading_pnl"] = [float(sum((p["trading"] or 0.0) for p in prof))]
    agents["inventory_pnl"] = [float(sum((p["inventory"] or 0.0) for p in prof))]
    agents["pnl"] = [float(total)]
    agents["fees"] = [fees]
    agents["volume"] = [int(sum(f["qty"]))]
    agents["fills"] = [n]
    agents["orders_sent"] = [sum(1 for a in record.orders["action"] if a == "new")]
    agents["open_orders"] = [0]
    for sym, v in final.items():
        agents[f"position_{sym}"] = [int(v["position"])]
    written = []
    for name, cols in tables.items():
        schema = pa.schema([(k, schemas[name][k]) for k in cols])
        pq.write_table(pa.table(cols, schema=schema), out / f"{name}.parquet")
        written.append(f"{name}.parquet")
    a_schema = pa.schema([(k, flt if k in ("trading_pnl", "inventory_pnl", "pnl") else
                           s if k in ("name", "account", "strategy") else i64)
                          for k in agents])  # fmt: skip
    pq.write_table(pa.table(agents, schema=a_schema), out / "agents.parquet")
    written.append("agents.parquet")
    (out / "summary.json").write_text(json.dumps(summary, indent=2, default=str) + "\n")
    written.append("summary.json")
    return written
