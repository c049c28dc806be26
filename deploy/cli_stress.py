"""`agora stress`: a market with and without a stress scenario, side by side.

A thin shell over `agents.stress.run` (the same call from Python). Heavy imports happen
inside the command so `agora --help` stays fast.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import typer

from exchange.errors import UserError


def _seed_list(text: str | None, first: int) -> list[int]:
    """``3``: three seeds from the file's (like `agora sweep`); ``1,5,9``: those seeds."""
    if text is None:
        return [first]
    try:
        if "," in text:
            return [int(s) for s in text.split(",") if s.strip()]
        n = int(text)
    except ValueError:
        raise UserError(f"--seeds wants a count (3) or a list (1,5,9), not {text!r}") from None
    if n < 1:
        raise UserError("--seeds must be at least 1")
    return [first + i for i in range(n)]


def _overrides(params: list[str] | None) -> dict[str, Any]:
    from agents.sim.sweep import parse_value

    out: dict[str, Any] = {}
    for p in params or []:
        key, sep, value = p.partition("=")
        if not sep or not key:
            raise UserError(f"--param wants key=value, e.g. at_s=30, not {p!r}")
        out[key.strip()] = parse_value(value.strip())
    return out


def _mean(rows: list[dict[str, Any]], key: str) -> float | None:
    values = [r[key] for r in rows if isinstance(r.get(key), int | float)]
    return sum(values) / len(values) if values else None


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.2f}%"


def _secs(x: float | None, never: str = "not recovered") -> str:
    return never if x is None else f"{x:,.2f} s"


def _num(x: float | None, digits: int = 1) -> str:
    return "-" if x is None or not math.isfinite(x) else f"{x:,.{digits}f}"


def stress(
    config: Path = typer.Argument(None, exists=True, dir_okay=False, help="market TOML file"),
    scenario: str = typer.Option(
        "flash-crash", "--scenario", help="a named scenario (agora stress --list shows them)"
    ),
    param: list[str] | None = typer.Option(
        None, "--param", help="key=value set on every part of the scenario that has it, e.g. "
        "at_s=30 or adv_pct=100 (repeatable)",
    ),
    seeds: str | None = typer.Option(
        None, help="a count (3: the file's seed and the next two) or a list (1,5,9)"
    ),
    until: float | None = typer.Option(
        None, help="seconds of simulated time per run (default: the file's duration_s, else 60)"
    ),
    out: Path | None = typer.Option(
        None, help="output directory (default: var/stress/<market>-<scenario>)"
    ),
    json_out: bool = typer.Option(False, "--json", help="print the comparison as JSON"),
    progress: bool = typer.Option(True, help="show a progress bar (simulated time)"),
    list_: bool = typer.Option(False, "--list", help="list the named scenarios and exit"),
) -> None:
    """Run a market with and without a stress scenario on the same seeds; compare them.

    Prints, side by side: the price's largest drawdown, the time to recover within 1% of the
    pre-event price (of F after a fundamental shock), spread and depth during the event,
    volatility halts and price-band rejects, and PnL per population. Writes both runs of
    every seed as run directories (agora report reads them) and stress.json.
    """
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
    from rich.table import Table

    from agents import stress as st
    from agents.config import load_market
    from agents.sim.sweep import DEFAULT_UNTIL_S
    from agents.units import money, price, spec_for

    console = Console()
    if list_:
        table = Table(title="stress scenarios (agora stress MARKET.toml --scenario NAME)")
        table.add_column("name")
        table.add_column("what it does")
        for name, what in st.library.describe_named().items():
            table.add_row(name, what)
        console.print(table)
        return
    if config is None:
        raise UserError("which market? agora stress MARKET.toml --scenario NAME (e.g. "
                        "examples/market.toml; --list shows the scenarios)")
    market = load_market(config)
    seed_list = _seed_list(seeds, market.seed)
    until_s = until if until is not None else (market.duration_s or DEFAULT_UNTIL_S)
    try:
        comp = st.named(scenario, _overrides(param))
    except ValueError as exc:
        raise UserError(str(exc)) from None
    total = 2 * len(seed_list) * until_s
    done: dict[str, float] = {}
    with Progress(
        TextColumn("[bold]stress {task.description}"), BarColumn(),
        TextColumn("{task.completed:,.0f}/{task.total:,.0f} s simulated"), TimeElapsedColumn(),
        console=console, disable=not progress or json_out, transient=True,
    ) as bar:  # fmt: skip
        task = bar.add_task(comp.name, total=total)

        def advance(label: str, t: float) -> None:
            done[label] = t
            bar.update(task, completed=sum(done.values()), description=label)

        try:
            result = st.run(market, comp, seed_list, until_s, out, progress=advance)
        except ValueError as exc:
            raise UserError(str(exc)) from None
    if json_out:
        typer.echo(json.dumps(result, default=str))
        return
    spec = spec_for(result["symbol"], market.symbols)
    base = [r["baseline"] for r in result["seeds"]]
    hit = [r["scenario"] for r in result["seeds"]]
    a_s, b_s = result["window_s"]
    seeds_text = ", ".join(str(s) for s in seed_list)
    title = (f"{result['scenario']} on {result['market']} ({result['symbol']}), seed "
             f"{seeds_text}, {until_s:g} s; event {a_s:g}-{b_s:g} s"
             + (" (means over seeds)" if len(seed_list) > 1 else ""))  # fmt: skip
    table = Table(title=title)
    table.add_column("figure")
    table.add_column("without", justify="right")
    table.add_column("with scenario", justify="right")
    target = hit[0]["recovery_target"]
    rows = [
        ("price before the event", lambda s: price(spec, _mean(s, "pre_event_price"))),
        ("largest price drawdown", lambda s: _pct(_mean(s, "max_drawdown"))),
        ("lowest price in it", lambda s: price(spec, _mean(s, "drawdown_trough"))),
        (f"recovery to within 1% of {target}", lambda s: _secs(_mean(s, "recovery_s"))
         if all(r["recovery_s"] is not None for r in s) else "not recovered"),
        ("mean spread in the event (ticks)", lambda s: _num(_mean(s, "mean_spread"), 2)),
        ("widest spread in the event (ticks)", lambda s: _num(_mean(s, "max_spread"), 0)),
        ("time with a side of the book empty", lambda s: _pct(_mean(s, "one_sided"))),
        (f"mean depth in the event (lots, {st.compare.DEPTH_LEVELS} levels a side)",
         lambda s: _num(_mean(s, "mean_depth"))),
        ("lowest depth in the event (lots)", lambda s: _num(_mean(s, "min_depth"), 0)),
        ("volatility halts", lambda s: _num(_mean(s, "halts"), 1 if len(s) > 1 else 0)),
        ("price-band rejects", lambda s: _num(_mean(s, "band_rejects"), 1 if len(s) > 1 else 0)),
        ("orders refused in a halt", lambda s: _num(_mean(s, "halted_rejects"),
                                                    1 if len(s) > 1 else 0)),
        ("trades", lambda s: _num(_mean(s, "trades"), 0)),
        ("last price", lambda s: price(spec, _mean(s, "last_price"))),
    ]  # fmt: skip
    for label, fmt in rows:
        table.add_row(label, fmt(base), fmt(hit))
    console.print(table)

    pnl = Table(title="PnL by strategy class (trading + inventory, marked to the last trade) "
                      "and the largest drawdown of its PnL curve (agents.metrics)")  # fmt: skip
    for col in ("strategy class", "PnL without", "PnL with", "change", "drawdown without",
                "drawdown with"):  # fmt: skip
        pnl.add_column(col, justify="left" if col == "strategy class" else "right")
    classes = list(dict.fromkeys([*base[0]["classes"], *hit[0]["classes"]]))

    def cls_mean(rows: list[dict[str, Any]], name: str, key: str) -> float | None:
        values = [r["classes"][name][key] for r in rows if name in r["classes"]]
        return sum(values) / len(values) if values else None

    for name in classes:
        b, h = cls_mean(base, name, "pnl"), cls_mean(hit, name, "pnl")
        bd, hd = cls_mean(base, name, "max_drawdown"), cls_mean(hit, name, "max_drawdown")
        pnl.add_row(name, "-" if b is None else money(b), "-" if h is None else money(h),
                    money((h or 0) - (b or 0)), "-" if bd is None else money(bd),
                    "-" if hd is None else money(hd))  # fmt: skip
    console.print(pnl)
    console.print(f"wrote {result['out_dir']}/ (stress.json; run directories "
                  f"seed-N/baseline and seed-N/scenario for agora report)")  # fmt: skip


def register(app: typer.Typer) -> None:
    """Add this module's command to the `agora` app."""
    app.command()(stress)
