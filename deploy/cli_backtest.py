"""`agora backtest`: run a strategy over a recorded or external tape (`agents.replay`).

A thin shell: it parses options, opens the tape, runs `agents.replay.backtest.run_agent`
(per window for walk-forward), writes the run directory and prints the results for people.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import typer

from exchange.errors import UserError

_DURATION = re.compile(r"^\s*([0-9]*\.?[0-9]+)\s*(ns|us|µs|ms|s)?\s*$")
_UNIT_NS = {"ns": 1, "us": 1_000, "µs": 1_000, "ms": 1_000_000, "s": 1_000_000_000}


def parse_duration(text: str, option: str) -> int:
    """``0.5ms``, ``200us``, ``3`` (milliseconds when no unit) as ns."""
    m = _DURATION.match(text)
    if not m:
        raise UserError(f"{option} {text!r}: want a duration such as 0.5ms, 200us, 2s")
    return round(float(m.group(1)) * _UNIT_NS[m.group(2) or "ms"])


def _params(pairs: list[str] | None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise UserError(f"--param wants key=value, not {pair!r}")
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value
    return out


def _fmt(v: Any, digits: int = 4) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:,.{digits}g}" if abs(v) < 1e4 else f"{v:,.0f}"
    if isinstance(v, int):
        return f"{v:,d}"
    return str(v)


def results_table(summary: dict[str, Any], title: str) -> Any:
    """The run as a rich table: counts, speed, fills by rule, then the metrics per symbol."""
    from rich.table import Table

    from agents.units import money, timestamp

    t = Table(title=title)
    t.add_column("measure")
    t.add_column("value", justify="right")
    first, last = summary.get("first_ts"), summary.get("last_ts")
    span = "-" if first is None or last is None else (
        f"{timestamp(first)} to {timestamp(last)} ({(last - first) / 1e9:,.1f} s)")  # fmt: skip
    rows: list[tuple[str, str]] = [
        ("tape", f"{summary['tape']} ({summary['layout']})"),
        ("span", span),
        ("fill rule", f"{summary['fill_rule']}, queue {summary['queue']}, size "
                      f"{summary['size']}"),
        ("latency order / cancel", f"{summary['latency_ns'] / 1e6:g} ms / "
                                   f"{summary['cancel_latency_ns'] / 1e6:g} ms"),
        ("updates replayed", _fmt(summary["events"])),
        ("updates/s", _fmt(summary["events_per_s"])),
        ("orders (new, cancel, replace)", _fmt(summary["orders"])),
        ("fills", _fmt(summary["fills"]) + "".join(
            f", {n:,} {r}" for r, n in sorted(summary["fills_by_rule"].items()))),
        ("volume (lots)", _fmt(summary["volume"])),
    ]  # fmt: skip
    for sym, fin in summary.get("final", {}).items():
        rows.append((f"{sym} final position (lots)", _fmt(fin["position"])))
    for sym, m in summary.get("metrics", {}).items():
        p, r, mm = m["profitability"], m["risk"], m["market_making"]
        pre = f"{sym} " if len(summary.get("metrics", {})) > 1 else ""
        rows += [
            (f"{pre}PnL total (trading + inventory)",
             f"{money(p['total'] or 0)} ({money(p['trading'] or 0)} + "
             f"{money(p['inventory'] or 0)})"),
            (f"{pre}Sharpe (annualised)", _fmt(p["sharpe"])),
            (f"{pre}max drawdown", money(r["max_drawdown"] or 0)),
            (f"{pre}fill ratio", _fmt(mm["fill_ratio"])),
            (f"{pre}spread captured (ticks/lot)", _fmt(mm["spread_captured"])),
            (f"{pre}markouts (ticks/lot)", ", ".join(
                f"{h} {_fmt(v, 3)}" for h, v in mm["markouts"].items())),
        ]  # fmt: skip
    for k, v in rows:
        t.add_row(k, v)
    return t


def backtest(
    target: str = typer.Argument(..., help="strategy: registry name, module:Class or "
                                 "path/to/my_agent.py:MyAgent"),
    data: Path = typer.Option(..., "--data", help="tape: a recording (agora up's "
                              "<data dir>/recorder), an agora simulate run, or CSV/Parquet "
                              "files in the documented layouts"),
    fill_rule: str = typer.Option("quote-through", "--fill-rule",
                                  help="quote-through | trade-through"),
    queue: str = typer.Option("none", help="queue model at the order's price: none | displayed"),
    size: str = typer.Option("whole", help="fill size: whole | capped (by the update's size)"),
    latency: str = typer.Option("0", help="order latency (0.5ms, 200us; no unit: ms)"),
    cancel_latency: str | None = typer.Option(None, help="cancel latency (default: --latency)"),
    param: list[str] | None = typer.Option(None, "--param", help="strategy parameter k=v"),
    grid: list[str] | None = typer.Option(None, "--grid", help="walk-forward: name=v1,v2 "
                                          "tried on the train window"),
    train: str | None = typer.Option(None, help="train window START:END (s from the tape's "
                                     "start, or ISO)"),
    test: str | None = typer.Option(None, help="test window START:END"),
    rolling: str | None = typer.Option(None, help="rolling windows TRAIN:TEST (s)"),
    tick_size: str = typer.Option("0.01", help="tick size of external prices"),
    symbol: str | None = typer.Option(None, help="symbol of external files without one"),
    ts_unit: str = typer.Option("auto", help="integer timestamps of external files: "
                                "ns | us | ms | s | auto"),
    synthetic_size: int | None = typer.Option(None, help="quote the VWAP price of this many "
                                              "lots through the recorded depth"),
    cash: int = typer.Option(0, help="starting cash (cash units)"),
    sample: float = typer.Option(1.0, help="inventory/PnL sampling interval (s)"),
    out: Path | None = typer.Option(None, help="run directory (default var/backtest/<name>)"),
    json_out: bool = typer.Option(False, "--json", help="print the summary as JSON"),
) -> None:
    """Run a strategy over a recorded or external tape and write its results.

    Every resting order is filled by the chosen rule (quote-through: a later best quote at or
    through its price; trade-through: a later trade through its price), with the queue
    model, fill size and latencies given. Writes fills, orders, positions, trades, agents
    and summary.json (the `agora simulate` layout) and prints the metrics.
    """
    from pydantic import ValidationError
    from rich.console import Console

    from agents.replay.backtest import run_agent
    from agents.replay.config import ReplayConfig
    from agents.replay.readers import open_tape
    from agents.replay.results import write_run
    from agents.replay.walkforward import Window, best_of, parse_window
    from agents.replay.walkforward import grid as make_grid
    from agents.replay.walkforward import rolling as roll
    from agents.strategies import load_strategy

    if fill_rule not in ("quote-through", "trade-through"):
        raise UserError(f"--fill-rule {fill_rule!r}: quote-through or trade-through")
    if queue not in ("none", "displayed"):
        raise UserError(f"--queue {queue!r}: none or displayed")
    if size not in ("whole", "capped"):
        raise UserError(f"--size {size!r}: whole or capped")
    if ts_unit not in ("ns", "us", "ms", "s", "auto"):
        raise UserError(f"--ts-unit {ts_unit!r}: ns, us, ms, s or auto")
    if sample <= 0:
        raise UserError("--sample must be positive")
    try:
        cls = load_strategy(target)
    except (ValueError, TypeError) as exc:
        raise UserError(str(exc)) from None
    try:
        config = ReplayConfig(
            fill_rule=fill_rule, queue=queue, size=size,  # type: ignore[arg-type]
            latency_ns=parse_duration(latency, "--latency"),
            cancel_latency_ns=None if cancel_latency is None else parse_duration(
                cancel_latency, "--cancel-latency"),
            starting_cash=cash, sample_ns=max(1, round(sample * 1e9)),
        )  # fmt: skip
    except ValidationError as exc:
        raise UserError(str(exc).splitlines()[-1]) from None
    params = _params(param)
    tape = open_tape(data, tick_size=tick_size, symbol=symbol, ts_unit=ts_unit,
                     synthetic_size=synthetic_size)  # fmt: skip
    name = f"{cls.__name__}-{fill_rule}"
    out_dir = out if out is not None else Path("var/backtest") / name
    console = Console()

    def one(p: dict[str, Any], start: int | None, end: int | None, label: str) -> Any:
        try:
            return run_agent(cls, p, tape, config, start_ns=start, end_ns=end, name=label)
        except ValidationError as exc:
            raise UserError(f"{target} parameters: {str(exc).splitlines()[-1]}") from None

    windows: list[Window] = []
    if rolling is not None or train is not None or test is not None:
        first, last = tape.span()
        if rolling is not None:
            if train or test:
                raise UserError("--rolling or --train/--test, not both")
            windows = roll(rolling, first, last)
        else:
            if not (train and test):
                raise UserError("walk-forward needs both --train and --test (or --rolling)")
            windows = [Window(parse_window(train, first), parse_window(test, first))]
    elif grid:
        raise UserError("--grid needs a train window (--train/--test or --rolling)")

    if not windows:
        run = one(params, None, None, name)
        files = write_run(out_dir, run.record, run.summary, cls.__name__, config.account)
        if json_out:
            print(json.dumps(run.summary, default=str))
            return
        console.print(results_table(run.summary, f"backtest {cls.__name__} over {data}"))
        console.print(f"wrote {out_dir}/ ({', '.join(files)})")
        return

    combos = make_grid(grid)
    grid_keys = list(combos[0])
    candidates = [{**params, **g} for g in combos]
    report = []
    for k, w in enumerate(windows, 1):
        runs: dict[int, Any] = {}

        def score(c: dict[str, Any], w: Window = w, runs: dict[int, Any] = runs,
                  k: int = k) -> float:
            r = one(c, *w.train, f"{name}-train{k}")
            runs[id(c)] = r
            return sum((m["profitability"]["total"] or 0.0)
                       for m in r.summary["metrics"].values())  # fmt: skip

        best, train_pnl = best_of(candidates, score)
        tr = runs[id(best)]
        te = one(best, *w.test, f"{name}-test{k}")
        write_run(out_dir / f"train-{k}", tr.record, tr.summary, cls.__name__, config.account)
        write_run(out_dir / f"test-{k}", te.record, te.summary, cls.__name__, config.account)
        test_pnl = sum((m["profitability"]["total"] or 0.0)
                       for m in te.summary["metrics"].values())  # fmt: skip
        report.append({"window": k, "train": list(w.train), "test": list(w.test),
                       "params": best, "train_pnl": train_pnl, "test_pnl": test_pnl,
                       "train_fills": tr.summary["fills"], "test_fills": te.summary["fills"]})
    (out_dir).mkdir(parents=True, exist_ok=True)
    (out_dir / "walkforward.json").write_text(json.dumps(report, indent=2, default=str) + "\n")
    if json_out:
        print(json.dumps(report, default=str))
        return
    from rich.table import Table

    from agents.units import money, timestamp

    t = Table(title=f"walk-forward {cls.__name__} ({fill_rule}) over {data}")
    for col in ("window", "train", "test", "chosen parameters", "train PnL", "test PnL",
                "fills train/test"):  # fmt: skip
        t.add_column(col, justify="right" if "PnL" in col or "fills" in col else "left")
    for r in report:
        t.add_row(str(r["window"]), f"{timestamp(r['train'][0])}-{timestamp(r['train'][1])}",
                  f"{timestamp(r['test'][0])}-{timestamp(r['test'][1])}",
                  ", ".join(f"{k}={r['params'][k]}" for k in grid_keys) or "-",
                  money(r["train_pnl"]),
                  money(r["test_pnl"]), f"{r['train_fills']:,}/{r['test_fills']:,}")
    console.print(t)
    console.print(f"wrote {out_dir}/ (train-N/, test-N/, walkforward.json)")

