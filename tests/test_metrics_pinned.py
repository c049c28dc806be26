"""Every figure `run_metrics.measure` gives for one small synthetic run, pinned.

`measure` shares much of its work between accounts (the legs sorted once, the mids around
every trade looked up once, the grid slots counted once, the time at the top of the book for
every market maker at once): any change to how it is computed must leave the figures as they
were. The run (written by `_write_run` from a fixed integer generator, so it is the same
everywhere) has two symbols, fees and a rebate, one-sided books, auction trades without an
aggressor, an account missing from the agents table, mass cancels and market orders; it is
measured three ways (with the market file and the orders; with neither; with a multiplier of
5, 2 s sampling and no agents). `tests/test_metrics_pinned.json` holds what the code gave
when the figures were pinned; it is only regenerated (``python tests/test_metrics_pinned.py``)
when a figure is meant to change.

Floats are compared to 1e-12 relative (1e-9 absolute for figures that are zero): the order
of a sum may change, or a platform's ``log`` differ in its last bit, but no more.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import Any

import pytest

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")

S = 1_000_000_000
PINNED = Path(__file__).with_suffix(".json")
MM = ("mm-0", "mm-1", "as-0")
OTHERS = ("zi-0", "zi-1", "zi-2", "fv-0", "fv-1", "ghost-0")
STRATEGY = {"mm": "FixedSpreadMarketMaker", "as": "AvellanedaStoikov", "zi": "ZeroIntelligence",
            "fv": "FairValueTrader"}  # fmt: skip


class _Lcg:
    """A 64-bit linear congruential generator: the same numbers on every platform and numpy."""

    def __init__(self, seed: int) -> None:
        self.x = seed

    def next(self, n: int) -> int:
        self.x = (self.x * 6364136223846793005 + 1442695040888963407) % 2**64
        return (self.x >> 33) % n

    def pick(self, xs: Any) -> Any:
        return xs[self.next(len(xs))]


def _write_run(d: Path, market_file: bool = True, orders: bool = True,
               tick: str = "0.01") -> None:  # fmt: skip
    g = _Lcg(2024)
    accounts = MM + OTHERS
    t, px = 0, {"AGR": 10_000, "XYZ": 500}
    trades: dict[str, list[Any]] = {k: [] for k in (
        "ts", "trade_id", "symbol", "price", "qty", "aggressor", "buy_account", "sell_account")}
    book: dict[str, list[Any]] = {k: [] for k in ("ts", "symbol", "bid", "bid_qty", "ask",
                                                  "ask_qty")}  # fmt: skip
    for i in range(700):
        t += g.next(3) * S // 4 + g.next(1000)  # ties now and then
        sym = "XYZ" if g.next(10) == 0 else "AGR"
        px[sym] += g.pick((-1, 0, 0, 1))
        maker = g.pick(MM) if g.next(10) < 7 else g.pick(accounts)
        taker = g.pick(OTHERS)
        aggr = g.pick(("buy", "sell", "buy", "sell", "buy", None))
        buyer, seller = (taker, maker) if aggr == "buy" else (maker, taker)
        trades["ts"].append(t)
        trades["trade_id"].append(i + 1)
        trades["symbol"].append(sym)
        trades["price"].append(px[sym])
        trades["qty"].append(1 + g.next(9))
        trades["aggressor"].append(aggr)
        trades["buy_account"].append(buyer)
        trades["sell_account"].append(seller)
        spread = 1 + g.next(3)
        one_sided = g.next(25) == 0
        book["ts"].append(t + g.next(2))
        book["symbol"].append(sym)
        book["bid"].append(None if one_sided else px[sym] - spread // 2 - 1)
        book["bid_qty"].append(None if one_sided else 1 + g.next(5))
        book["ask"].append(px[sym] + (spread + 1) // 2)
        book["ask_qty"].append(1 + g.next(5))
    until = t // S + 10
    pq.write_table(pa.table(trades), d / "trades.parquet")
    pq.write_table(pa.table(book), d / "top_of_book.parquet")
    f_ts = list(range(0, until * S, S // 2))
    pq.write_table(pa.table({"ts": f_ts, "symbol": ["AGR"] * len(f_ts),
                             "value": [100.0 + 0.01 * g.next(7) for _ in f_ts]}),
                   d / "fundamental.parquet")  # fmt: skip
    names = [a for a in accounts if a != "ghost-0"]
    net = {a: 0 for a in names}
    paid = {a: 0 for a in names}
    cols = (trades[k] for k in ("symbol", "price", "qty", "buy_account", "sell_account"))
    for sym, p, q, b, s in zip(*cols, strict=True):
        if sym == "AGR":
            for a, sgn in ((b, 1), (s, -1)):
                if a in net:
                    net[a] += sgn * q
                    paid[a] += sgn * q * p
    fees = {"mm-0": -40, "mm-1": 0, "as-0": 25, "zi-0": 130, "zi-1": 0, "zi-2": 7, "fv-0": 55,
            "fv-1": 0}  # fmt: skip
    pq.write_table(pa.table({
        "name": names, "account": names, "strategy": [STRATEGY[a[:2]] for a in names],
        "cash": [1_000_000 - paid[a] - fees[a] for a in names], "fees": [fees[a] for a in names],
        "inventory_pnl": [float(50 * (px["AGR"] - 10_003)) for _ in names],
        "position_AGR": [50 + net[a] for a in names], "position_XYZ": [0 for _ in names],
    }), d / "agents.parquet")  # fmt: skip
    if orders:
        o: dict[str, list[Any]] = {k: [] for k in ("ts", "account", "symbol", "action", "side",
                                                   "price", "qty", "clid")}  # fmt: skip
        tt, clid = 0, 0
        live: dict[str, list[tuple[int, str, int]]] = {a: [] for a in accounts}
        for _ in range(1500):
            tt += g.next(S // 3)
            a = g.pick(MM) if g.next(3) else g.pick(OTHERS)
            r = g.next(20)
            if r == 0:  # a mass cancel
                row = (a, None, "cancel", None, None, None, None)
                live[a] = []
            elif r < 7 and live[a]:
                c, side, p = live[a].pop(g.next(len(live[a])))
                if r < 4:
                    p += g.pick((-1, 0, 1))
                    live[a].append((c, side, p))
                row = (a, "AGR", "replace" if r < 4 else "cancel", side, p, 1 + g.next(9),
                       f"{a}.{c}")  # fmt: skip
            else:
                clid += 1
                side = g.pick(("buy", "sell"))
                level = px["AGR"] + (-1 - g.next(3) if side == "buy" else 1 + g.next(3))
                p = None if g.next(15) == 0 else level
                if p is not None:
                    live[a].append((clid, side, p))
                row = (a, g.pick(("AGR", "AGR", "AGR", "XYZ")), "new", side, p, 1 + g.next(9),
                       f"{a}.{clid}")  # fmt: skip
            o["ts"].append(tt)
            for k, v in zip(("account", "symbol", "action", "side", "price", "qty", "clid"), row,
                            strict=True):  # fmt: skip
                o[k].append(v)
        pq.write_table(pa.table(o), d / "orders.parquet")
    (d / "summary.json").write_text(json.dumps({"name": "pinned", "until_s": until}))
    if market_file:
        (d / "market.json").write_text(json.dumps({
            "symbols": [{"symbol": "AGR", "tick_size": tick, "reference_price": 10_003},
                        {"symbol": "XYZ", "tick_size": tick, "reference_price": 500}],
            "populations": [{"name": "mm", "params": {"max_inventory": 60}},
                            {"name": "zi", "params": {"max_position": 40}}]}))  # fmt: skip


def _figures(tmp: Path) -> dict[str, Any]:
    """Every figure of the three measures, flattened to ``{path: value}``."""
    from agents.analysis.run_metrics import measure, read_run
    from agents.metrics import MetricsConfig

    ways = {
        "full": ({}, {}),
        "bare": ({"market_file": False, "orders": False}, {}),
        "x5": ({"tick": "0.05"}, {"config": MetricsConfig(sample_s=2.0, markout_s=(0.5, 5.0)),
                                  "agents": False}),
    }  # fmt: skip
    out: dict[str, Any] = {}
    for way, (write, kw) in ways.items():
        d = tmp / way
        d.mkdir()
        _write_run(d, **write)
        rm = measure(read_run(d), **kw)
        _flatten(rm.as_dict(), f"{way}.", out)
        _flatten({"markout_curves": {k: {f"{h:g}": v for h, v in c.items()}
                                     for k, c in rm.markout_curves.items()},
                  "pnl": {k: v[::7].tolist() for k, v in rm.pnl.items()},
                  "position": {k: v[::7].tolist() for k, v in rm.position.items()},
                  "grid": [int(rm.grid[0]), int(rm.grid[-1]), len(rm.grid)]},
                 f"{way}.", out)  # fmt: skip
    return out


def _flatten(x: Any, path: str, out: dict[str, Any]) -> None:
    if isinstance(x, dict):
        for k, v in x.items():
            _flatten(v, f"{path}{k}.", out)
    elif isinstance(x, list | tuple) and any(isinstance(v, dict | list) for v in x):
        for i, v in enumerate(x):
            _flatten(v, f"{path}{i}.", out)
    else:
        out[path.rstrip(".")] = list(x) if isinstance(x, tuple) else x


def _same(got: Any, want: Any) -> bool:
    if isinstance(want, float) and isinstance(got, float):
        if math.isnan(want) or math.isnan(got):
            return math.isnan(want) and math.isnan(got)
        return math.isclose(got, want, rel_tol=1e-12, abs_tol=1e-9)
    if isinstance(want, list) and isinstance(got, list):
        return len(got) == len(want) and all(_same(g, w) for g, w in zip(got, want, strict=True))
    return type(got) is type(want) and got == want


def test_every_figure_of_measure_is_as_pinned(tmp_path: Path) -> None:
    want = json.loads(PINNED.read_text())
    got = json.loads(json.dumps(_figures(tmp_path)))  # as the file holds them
    assert got.keys() == want.keys()
    wrong = [f"{k}: {got[k]!r} (pinned {want[k]!r})" for k in want if not _same(got[k], want[k])]
    assert not wrong, f"{len(wrong)} of {len(want)} figures changed:\n" + "\n".join(wrong[:20])
    # the run is what it claims to be: the paths it is meant to take are taken
    notes = {k: v for k, v in got.items() if k.endswith(".notes")}
    assert any("ghost-0" in n for n in notes["full.notes"])
    assert any("XYZ" not in n and "only" in n for n in notes["full.notes"])
    assert any("no market file" in n for n in notes["bare.notes"])
    assert want["full.strategies.FixedSpreadMarketMaker.market_making.quote_time_at_top"] > 0


if __name__ == "__main__":  # regenerate the pinned figures (only when they are meant to change)
    import tempfile

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    with tempfile.TemporaryDirectory() as tmp:
        PINNED.write_text(json.dumps(_figures(Path(tmp)), indent=0, sort_keys=True) + "\n")
    print(f"wrote {PINNED}")
