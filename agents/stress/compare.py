"""Run a market with and without a scenario on the same seeds, and compare what happened.

Both runs of a seed are ordinary simulated histories (`agents.sim.sweep.run_history`, the
same directory format as `agora simulate`, so `agora report` reads either). The baseline has
the scenario installed *dry* (same events, doing nothing), so the two runs are identical up
to the moment the scenario strikes: every difference after it is the scenario's.

Per run: the largest drawdown of the traded price, the time to recover within 1% of the
pre-event price (of F(t) after a fundamental shock), the spread, one-sidedness and depth of
the book during the event, volatility halts and price-band rejects, PnL per population
(trading, inventory, total; `agents.analysis.pnl`) and per strategy class with the largest
drawdown of its PnL curve and its Sharpe ratio (`agents.metrics`). `stress.json` holds it all.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from agents.config import MarketConfig
from agents.stress.figures import book_during, halts, price_before, price_drawdown, recovery_s
from agents.stress.host import NS, SimHost
from agents.stress.library import Composite, build, named

__all__ = ["DEPTH_LEVELS", "SAMPLE_NS", "run"]

SAMPLE_NS = 100_000_000  # depth sampling period during the event (virtual time)
DEPTH_LEVELS = 5  # depth = lots within this many price levels of each side
_MARGIN_S = 5.0  # depth is also sampled this long before and after the event


class _DepthSampler:
    """Samples the book's depth on a fixed grid around the event (in both runs alike)."""

    def __init__(self, symbol: str, start_ns: int, end_ns: int) -> None:
        self.symbol = symbol
        self.start_ns, self.end_ns = start_ns, end_ns
        self.ts: list[int] = []
        self.bid: list[int] = []
        self.ask: list[int] = []

    def install(self, market: Any) -> None:
        self.market = market
        for t in range(max(0, self.start_ns), self.end_ns + 1, SAMPLE_NS):
            market.schedule(t, self._sample)

    def _sample(self) -> None:
        m = self.market
        bids, asks = m.depth_at(self.symbol, m.now, DEPTH_LEVELS)
        self.ts.append(m.now)
        self.bid.append(sum(level[1] for level in bids))
        self.ask.append(sum(level[1] for level in asks))

    def during(self, start_ns: int, end_ns: int) -> dict[str, float | None]:
        both = [b + a for t, b, a in zip(self.ts, self.bid, self.ask, strict=True)
                if start_ns <= t < end_ns]  # fmt: skip
        if not both:
            return {"mean_depth": None, "min_depth": None}
        return {"mean_depth": sum(both) / len(both), "min_depth": float(min(both))}


def _scenario(scenario: str | Composite | Sequence[Mapping[str, Any]],
              overrides: Mapping[str, Any] | None) -> Composite:  # fmt: skip
    if isinstance(scenario, Composite):
        return scenario
    if isinstance(scenario, str):
        return named(scenario, overrides)
    return build(scenario)


def _figures(market: Any, summary: dict[str, Any], comp: Composite, symbol: str,
             sampler: _DepthSampler) -> dict[str, Any]:  # fmt: skip
    from agents.sim.output import fundamental_table, population_of

    a_s, b_s = comp.window_s()
    t0, t1 = round(a_s * NS), round(b_s * NS)
    trades = market.trades
    spec = market.specs[symbol]
    fund = fundamental_table(market) if comp.shocks_fundamental else None
    strategies: dict[str, str] = {}
    for ctx in market.agents:
        strategies.setdefault(population_of(ctx.name), type(ctx.agent).__name__)
    dd = price_drawdown(trades, symbol)
    refused: dict[str, int] = {}  # orders refused (risk gate or engine), by reason
    for row in market.refusal_log:
        refused[row[3]] = refused.get(row[3], 0) + 1
    return {
        "pre_event_price": price_before(trades, symbol, t0),
        "last_price": market.last_price(symbol),
        "max_drawdown": dd["drawdown"],
        "drawdown_trough": dd["trough"],
        "drawdown_trough_s": dd["trough_s"],
        "recovery_s": recovery_s(trades, symbol, t0, fundamental=fund,
                                 tick_size=float(spec.tick_size)),
        "recovery_target": "F(t)" if fund is not None else "the pre-event price",
        **book_during(market.top_of_book(), symbol, t0, t1),
        **sampler.during(t0, t1),
        "halts": halts(market.status, symbol),
        "band_rejects": refused.get("price_outside_band", 0),
        "halted_rejects": refused.get("halted", 0),
        "refusals": refused,
        "trades": summary["trades"],
        "volume": summary["volume"],
        "pnl": summary["pnl"],
        "trading_pnl": summary["trading_pnl"],
        "inventory_pnl": summary["inventory_pnl"],
        "strategies": strategies,
    }


def _class_metrics(run_dir: Path) -> dict[str, dict[str, float]]:
    """PnL, its largest drawdown and Sharpe per strategy class (`agents.metrics`, read from
    the run directory by `agents.analysis.run_metrics`; cash units)."""
    from agents.analysis.run_metrics import run_metrics

    out = {}
    for name, m in run_metrics(run_dir).strategies.items():
        out[name] = {"pnl": m.profitability.total, "trading_pnl": m.profitability.trading,
                     "inventory_pnl": m.profitability.inventory,
                     "max_drawdown": m.risk.max_drawdown, "sharpe": m.profitability.sharpe}
    return out


def run(
    config: MarketConfig | str | Path,
    scenario: str | Composite | Sequence[Mapping[str, Any]] = "flash-crash",
    seeds: Sequence[int] | None = None,
    until_s: float | None = None,
    out_dir: str | Path | None = None,
    overrides: Mapping[str, Any] | None = None,
    symbol: str | None = None,
    progress: Callable[[str, float], None] | None = None,
) -> dict[str, Any]:
    """Run `config` with and without `scenario` (a name from `agents.stress.NAMED` with
    `overrides`, scenario tables, or a `Composite`) on each of `seeds` (default: the file's
    seed) for `until_s` simulated seconds (default: the file's ``duration_s``, else 60).

    Writes ``<out_dir>/seed-<n>/{baseline,scenario}/`` (run directories, each with the
    ``market.json`` it ran, the scenario's tables in the stressed one) and
    ``<out_dir>/stress.json``; returns the same dict. `progress(label, simulated_s)` is
    called as the runs advance. The market file's own ``[[scenario]]`` tables are left out of
    both runs (the comparison is about `scenario` alone).
    """
    from agents.config import load_market
    from agents.sim.sweep import DEFAULT_UNTIL_S, run_history

    if not isinstance(config, MarketConfig):
        config = load_market(config)
    comp = _scenario(scenario, overrides)
    base_config = config.model_copy(update={"scenario": []})
    seeds = list(seeds) if seeds else [config.seed]
    until_s = until_s if until_s is not None else (config.duration_s or DEFAULT_UNTIL_S)
    a_s, b_s = comp.window_s()
    if a_s >= until_s:
        raise ValueError(f"the scenario strikes at {a_s:g} s, after the run's end "
                         f"({until_s:g} s): run longer (--until) or move it (at_s)")  # fmt: skip
    symbol = symbol or config.symbols[0].symbol
    if symbol not in {s.symbol for s in config.symbols}:
        raise ValueError(f"no symbol {symbol!r} in this market")
    default = Path("var/stress") / f"{config.name}-{comp.name}"
    out = Path(out_dir) if out_dir is not None else default
    result: dict[str, Any] = {
        "market": config.name, "scenario": comp.name, "parts": comp.as_tables(),
        "window_s": [a_s, b_s], "until_s": until_s, "symbol": symbol,
        "tick_size": str(config.symbols[0].tick_size), "seeds": [],
    }  # fmt: skip
    t_wall = time.perf_counter()
    for seed in seeds:
        row: dict[str, Any] = {"seed": seed, "dirs": {}}
        for side in ("baseline", "scenario"):
            sampler = _DepthSampler(symbol, round((a_s - _MARGIN_S) * NS),
                                    round((b_s + _MARGIN_S) * NS))  # fmt: skip
            held: dict[str, Any] = {}

            def prepare(market: Any, side: str = side, sampler: _DepthSampler = sampler,
                        held: dict[str, Any] = held) -> None:  # fmt: skip
                held["market"] = market
                comp.install(SimHost(market), dry=side == "baseline")
                sampler.install(market)

            run_dir = out / f"seed-{seed}" / side
            label = f"seed {seed} {side}"
            summary = run_history(
                base_config, seed, until_s, run_dir, prepare=prepare,
                progress=(lambda t, label=label: progress(label, t)) if progress else None,
            )  # fmt: skip
            row[side] = _figures(held["market"], summary, comp, symbol, sampler)
            row["dirs"][side] = str(run_dir)
            # the market file of this run, its scenario included (agora report shows it)
            used = base_config.model_copy(
                update={"seed": seed, "scenario": comp.as_tables() if side == "scenario" else []}
            )
            (run_dir / "market.json").write_text(used.model_dump_json(indent=2))
            row[side]["classes"] = _class_metrics(run_dir)
        result["seeds"].append(row)
    result["wall_s"] = time.perf_counter() - t_wall
    out.mkdir(parents=True, exist_ok=True)
    (out / "stress.json").write_text(json.dumps(result, indent=2, default=str))
    result["out_dir"] = str(out)
    return result
