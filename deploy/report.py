"""`agora report`: one self-contained HTML file about a run, readable offline.

What it shows, from a run directory of `agora simulate` (or a recording, with what a recording
has): the price with F(t) and the mid; trading PnL, drawdown and inventory curves per strategy
class; the markout curves (adverse selection) per class; the metrics table (per class, the
whole market and the best and worst agents, all from `agents.metrics`); the stylized facts of
the price (`agents.analysis.stylized`); and the run's summary and market file.

The charts are uPlot 1.6.32 (MIT, ``deploy/vendor/uplot``), inlined with the data as JSON, so
the file needs no server and no network. Long series are decimated to at most `max_points`
points per chart: each point is the value in force at its time (the last trade, the PnL as
marked then), on a regular grid, so a 3-hour run plots the same way as a 3-minute one.
"""

from __future__ import annotations

import html
import json
import math
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["Report", "build", "render"]

NS = 1_000_000_000
MAX_POINTS = 2_000
TOP_AGENTS = 10


@dataclass
class Chart:
    """One uPlot chart: x values (seconds), named y series, axis labels."""

    id: str
    title: str
    x: list[float]
    series: dict[str, list[float | None]]
    x_label: str = "time (s)"
    y_label: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, "title": self.title, "x": self.x, "series": self.series,
                "xLabel": self.x_label, "yLabel": self.y_label}  # fmt: skip


@dataclass
class Report:
    """Everything the page shows, as plain data (the HTML is `render`'s)."""

    title: str
    source: str
    charts: list[Chart] = field(default_factory=list)
    tables: list[tuple[str, list[str], list[list[str]]]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    config: dict[str, Any] = field(default_factory=dict)


def _round(values: np.ndarray, digits: int = 4) -> list[float | None]:
    return [None if not math.isfinite(v) else round(float(v), digits) for v in values]


def _decimate(grid: np.ndarray, max_points: int) -> np.ndarray:
    """Indices of at most `max_points` evenly spaced points of `grid` (the last one kept)."""
    if len(grid) <= max_points:
        return np.arange(len(grid))
    idx = np.linspace(0, len(grid) - 1, max_points).round().astype(np.int64)
    return np.unique(idx)


def _fmt(v: Any, digits: int = 3) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "-"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if v == 0:
        return "0"  # not "-0" (a loss of nothing)
    if isinstance(v, int) or (isinstance(v, float) and abs(v) >= 1000):
        return f"{v:,.0f}"
    if isinstance(v, float):
        return f"{v:,.{digits}g}"
    return str(v)


METRIC_COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("trading PnL", "profitability", "trading"),
    ("total PnL", "profitability", "total"),
    ("realised", "profitability", "realised"),
    ("unrealised", "profitability", "unrealised"),
    ("fees", "profitability", "fees"),
    ("Sharpe", "profitability", "sharpe"),
    ("Sortino", "profitability", "sortino"),
    ("profit factor", "profitability", "profit_factor"),
    ("turnover", "profitability", "turnover"),
    ("max drawdown", "risk", "max_drawdown"),
    ("drawdown (s)", "risk", "drawdown_s"),
    ("VaR", "risk", "var"),
    ("CVaR", "risk", "cvar"),
    ("fills", "market_making", "fills"),
    ("fill ratio", "market_making", "fill_ratio"),
    ("spread captured (ticks)", "market_making", "spread_captured"),
    ("time at top", "market_making", "quote_time_at_top"),
    ("markout 1 s", "markouts", "1s"),
    ("markout 10 s", "markouts", "10s"),
    ("markout 60 s", "markouts", "60s"),
    ("inventory mean", "inventory", "mean"),
    ("inventory std", "inventory", "std"),
    ("inventory max |q|", "inventory", "max_abs"),
    ("time at limit", "inventory", "time_at_limit"),
    ("shortfall (bps)", "execution", "shortfall_bps"),
)
MONEY = {"trading", "total", "realised", "unrealised", "fees", "max_drawdown", "var", "cvar"}


def _metric_row(name: str, d: dict[str, Any], cash_unit: float) -> list[str]:
    row = [name]
    for _, section, key in METRIC_COLUMNS:
        src = d["market_making"]["markouts"] if section == "markouts" else d[section]
        v = src.get(key)
        if key in MONEY and isinstance(v, int | float):
            v = float(v) * cash_unit
        row.append(_fmt(v))
    return row


def build(path: str | Path, max_points: int = MAX_POINTS) -> Report:
    """The report of a run directory (or a recording); `NotARun` if it is neither."""
    from agents.analysis.run_metrics import measure, read_run, tick_size

    p = Path(path)
    recording = _recording_dir(p)
    if recording is not None and not (p / "trades.parquet").is_file():
        return _build_recording(recording, max_points)
    run = read_run(p)
    rm = measure(run)
    notes = list(rm.notes)
    tick, _, _ = tick_size(run, rm.symbol, [])
    cash_unit = 0.01
    summary = run.summary
    title = f"{summary.get('name', p.name)}: {rm.symbol}"
    report = Report(title=title, source=str(p), notes=notes,
                    config={"summary": summary, "market": run.market})  # fmt: skip

    idx = _decimate(rm.grid, max_points)
    x = _round(rm.grid[idx] / NS, 3)
    from agents.metrics import Series, as_of

    trades = run.tables["trades"]
    t_ts = trades.column("ts").to_numpy().astype(np.int64)
    t_px = trades.column("price").to_numpy().astype(float)
    sym = np.asarray(trades.column("symbol").to_pylist(), dtype=object) == rm.symbol
    g = rm.grid[idx]
    price = {"last trade": _round(as_of(Series(t_ts[sym], t_px[sym]), g) * tick),
             "mid": _round(as_of(rm.mids, g) * tick)}  # fmt: skip
    if "fundamental" in run.tables and run.tables["fundamental"].num_rows:
        f = run.tables["fundamental"]
        fs = np.asarray(f.column("symbol").to_pylist(), dtype=object) == rm.symbol
        f_ts = f.column("ts").to_numpy().astype(np.int64)[fs]
        f_v = f.column("value").to_numpy().astype(float)[fs]
        if len(f_ts):
            price["F(t)"] = _round(as_of(Series(f_ts, f_v), g))
    else:
        notes.append("no fundamental table: the price chart has no F(t)")
    report.charts.append(Chart("price", f"Price of {rm.symbol}, mid and fair value F(t)", x,
                               price, y_label="price"))  # fmt: skip
    pnl = {k: _round(v[idx] * cash_unit, 2) for k, v in rm.pnl.items()}
    report.charts.append(Chart("pnl", "Trading PnL per strategy class (own trades marked to the "
                               "last trade, minus fees)", x, pnl, y_label="money"))  # fmt: skip
    dd = {k: _round(-(np.maximum.accumulate(v) - v)[idx] * cash_unit, 2)
          for k, v in rm.pnl.items()}  # fmt: skip
    report.charts.append(Chart("drawdown", "Drawdown of the trading PnL per strategy class", x,
                               dd, y_label="money"))  # fmt: skip
    inv = {k: _round(v[idx], 2) for k, v in rm.position.items()}
    report.charts.append(Chart("inventory", "Inventory per strategy class (summed positions)",
                               x, inv, y_label="lots"))  # fmt: skip
    horizons = sorted(next(iter(rm.markout_curves.values()), {0.0: 0.0}))
    marks = {k: _round(np.array([c.get(h, math.nan) for h in horizons]))
             for k, c in rm.markout_curves.items()}  # fmt: skip
    report.charts.append(Chart("markouts", "Markouts per strategy class: mid move in the "
                               "fill's favour after h (negative: adverse selection)",
                               [float(h) for h in horizons], marks, x_label="horizon h (s)",
                               y_label="ticks per lot"))  # fmt: skip

    header = ["", *(c[0] for c in METRIC_COLUMNS)]
    rows = [_metric_row(k, v.as_dict(), cash_unit) for k, v in rm.strategies.items()]
    rows.append(_metric_row("whole market", rm.market.as_dict(), cash_unit))
    s = rm.market.sampling
    report.tables.append((
        f"Metrics per strategy class (money in currency; Sharpe and Sortino of the trading PnL: "
        f"{s.note}; VaR and CVaR at {rm.market.risk.alpha:.0%} of the PnL over one "
        f"{s.interval_s:g} s interval; markouts in ticks per lot; time at top: share of the run "
        f"a market maker's order rested at the best bid and at the best ask, mean of the two "
        f"sides, from the orders it sent)", header, rows,
    ))  # fmt: skip
    ranked = sorted(rm.agents.items(), key=lambda kv: -kv[1].profitability.trading)
    shown = ranked[:TOP_AGENTS] + ranked[-3:] if len(ranked) > TOP_AGENTS + 3 else ranked
    report.tables.append((
        f"Agents: the best {min(TOP_AGENTS, len(ranked))} and the worst 3 by trading PnL "
        f"(of {len(ranked):,})", ["agent (class)", *header[1:]],
        [_metric_row(f"{k} ({rm.strategy_of[k]})", v.as_dict(), cash_unit) for k, v in shown],
    ))  # fmt: skip
    _facts(report, t_ts[sym], t_px[sym])
    return report


def _facts(report: Report, ts: np.ndarray, px: np.ndarray, bar_s: float = 1.0) -> None:
    from agents.analysis.stylized import facts_table, regular_closes

    closes = regular_closes(ts, px, max(1, round(bar_s * NS)))
    if len(closes) < 3:
        report.notes.append("too few bars for the stylized facts")
        return
    facts = facts_table(closes)
    report.tables.append((f"Stylized facts of the last-trade price ({bar_s:g} s bars)",
                          ["fact", "value"],
                          [[k, _fmt(v)] for k, v in facts.items()]))  # fmt: skip


def _recording_dir(p: Path) -> Path | None:
    """The recorder's directory in `p` (itself, or ``recorder/`` of an `agora up` data dir)."""
    for cand in (p, p / "recorder"):
        if (cand / "trades").is_dir() and any((cand / "trades").glob("trades-*.parquet")):
            return cand
    return None


def _build_recording(rec: Path, max_points: int) -> Report:
    """What a recording allows: the price and mid, spread, the stylized facts. The public
    feed carries no accounts, so there are no PnL metrics."""
    from agents.metrics import NS as _NS
    from agents.metrics import Series, as_of
    from agents.recorder import load

    trades = load(rec, "trades")
    symbol = str(trades.column("symbol")[0].as_py())
    sel = np.asarray(trades.column("symbol").to_pylist(), dtype=object) == symbol
    ts = trades.column("ts").to_numpy().astype(np.int64)[sel]
    px = trades.column("price").to_numpy().astype(float)[sel]
    order = np.argsort(ts, kind="stable")
    ts, px = ts[order], px[order]
    report = Report(title=f"recording: {symbol}", source=str(rec),
                    notes=["a recording of the public feed has no accounts: no PnL, drawdown "
                           "or market-making metrics; prices in ticks"])  # fmt: skip
    t0 = int(ts[0])
    grid = np.arange(t0, int(ts[-1]) + 1, _NS, dtype=np.int64)
    grid = grid[_decimate(grid, max_points)]
    x = _round((grid - t0) / NS, 3)
    series = {"last trade": _round(as_of(Series(ts, px), grid))}
    try:
        tob = load(rec, "tob")
        ok = np.asarray(tob.column("symbol").to_pylist(), dtype=object) == symbol
        b_ts = tob.column("ts").to_numpy().astype(np.int64)[ok]
        bid = tob.column("bid_price").to_numpy(zero_copy_only=False).astype(float)[ok]
        ask = tob.column("ask_price").to_numpy(zero_copy_only=False).astype(float)[ok]
        o = np.argsort(b_ts, kind="stable")
        series["mid"] = _round(as_of(Series(b_ts[o], ((bid + ask) / 2)[o]), grid))
    except FileNotFoundError:
        report.notes.append("no top-of-book recording: no mid")
    report.charts.append(Chart("price", f"Price of {symbol} (ticks)", x, series,
                               x_label="time since the first trade (s)",
                               y_label="ticks"))  # fmt: skip
    _facts(report, ts, px)
    return report


def render(report: Report) -> str:
    """The report as one HTML page (uPlot and the data inlined)."""
    vendor = resources.files("deploy") / "vendor" / "uplot"
    js = (vendor / "uPlot.iife.min.js").read_text(encoding="utf-8")
    css = (vendor / "uPlot.min.css").read_text(encoding="utf-8")
    data = json.dumps({"charts": [c.as_dict() for c in report.charts]}, separators=(",", ":"),
                      allow_nan=False).replace("</", "<\\/")  # fmt: skip
    e = html.escape
    parts = [f"<h1>{e(report.title)}</h1>", f"<p class='src'>{e(report.source)}</p>"]
    if report.notes:
        parts.append("<ul class='notes'>" + "".join(f"<li>{e(n)}</li>" for n in report.notes)
                     + "</ul>")  # fmt: skip
    for c in report.charts:
        parts.append(f"<section><h2>{e(c.title)}</h2><div class='chart' id='{e(c.id)}'></div>"
                     "</section>")  # fmt: skip
    for caption, header, rows in report.tables:
        head = "".join(f"<th>{e(h)}</th>" for h in header)
        body = "".join("<tr>" + "".join(f"<td>{e(c)}</td>" for c in r) + "</tr>" for r in rows)
        parts.append(f"<section><h2>{e(caption)}</h2><div class='scroll'><table><thead>"
                     f"<tr>{head}</tr></thead><tbody>{body}</tbody></table></div>"
                     "</section>")  # fmt: skip
    cfg = json.dumps(report.config, indent=2, default=str)
    parts.append("<section><h2>Run configuration</h2><details><summary>summary.json and the "
                 f"market file (click to open)</summary><pre>{e(cfg)}</pre></details>"
                 "</section>")  # fmt: skip
    return PAGE.format(title=e(report.title), css=css, js=js, data=data, body="\n".join(parts),
                       script=SCRIPT)  # fmt: skip


SCRIPT = """
(function () {
  var data = JSON.parse(document.getElementById('report-data').textContent);
  var colours = ['#1f77b4', '#d62728', '#2ca02c', '#ff7f0e', '#9467bd', '#8c564b', '#e377c2',
                 '#17becf', '#7f7f7f', '#bcbd22'];
  window.agoraCharts = [];
  data.charts.forEach(function (c) {
    var el = document.getElementById(c.id);
    var names = Object.keys(c.series);
    var series = [{label: c.xLabel}];
    var columns = [c.x];
    names.forEach(function (name, i) {
      series.push({label: name, stroke: colours[i % colours.length], width: 1.5,
                   spanGaps: true, points: {show: c.id === 'markouts'}});
      columns.push(c.series[name]);
    });
    var opts = {title: '', width: Math.max(400, el.clientWidth || 900), height: 320,
                scales: {x: {time: false}}, series: series,
                axes: [{label: c.xLabel}, {label: c.yLabel, size: 70}]};
    window.agoraCharts.push({id: c.id, plot: new uPlot(opts, columns, el)});
  });
})();
"""

PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<meta name="generator" content="agora report">
<style>{css}</style>
<style>
body {{ font-family: system-ui, sans-serif; margin: 1.5em; color: #222; }}
h1 {{ margin-bottom: 0; }} .src {{ color: #666; margin-top: .2em; }}
h2 {{ font-size: 1.05em; margin: 1.5em 0 .5em; }}
.notes {{ background: #fff8e1; padding: .6em 2em; }}
.scroll {{ overflow-x: auto; }}
table {{ border-collapse: collapse; font-size: .85em; }}
th, td {{ border: 1px solid #ddd; padding: .25em .5em; text-align: right; white-space: nowrap; }}
th:first-child, td:first-child {{ text-align: left; }}
pre {{ background: #f6f6f6; padding: 1em; overflow-x: auto; font-size: .8em; }}
</style></head>
<body>
{body}
<script id="report-data" type="application/json">{data}</script>
<script>{js}</script>
<script>{script}</script>
</body></html>
"""
