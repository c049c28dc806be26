"""`agora simulate`, `agora sweep`: the simulated-time commands (`agora facts` judges what they
write: `deploy.cli_facts`).

Thin shells: the runs are `agents.sim.sweep` (one code path for a single run and every run of
a sweep), the statistics `agents.analysis`. Heavy imports happen inside each command so
`agora --help` stays fast.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import typer

NS = 1_000_000_000


def _fmt(value: Any, digits: int = 4) -> str:
    """A table cell: ints with separators, floats to `digits` significant digits, NaN as -."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return f"{value:,d}"
    if isinstance(value, float):
        if not math.isfinite(value):
            return "-"
        return f"{value:,.{digits}g}" if abs(value) < 1e3 else f"{value:,.0f}"
    return str(value)


def _cores(compiled: list[str] | None) -> str:
    """How the speed above was measured: compiled cores (`agora accel build`) or Python."""
    return f"compiled ({len(compiled)} modules)" if compiled else "Python"


def _summary_tables(summary: dict[str, Any], spec: Any = None) -> list[Any]:
    """The run summary as rich tables: counts and speed, then PnL by population (money in
    currency, the last price with `spec`'s tick decimals)."""
    from rich.table import Table

    from agents.units import money, price, shares, spec_for

    spec = spec or spec_for("", None)

    main = Table(title=f"{summary['name']} (seed {summary['seed']}, {summary['until_s']:g} s)")
    main.add_column("metric")
    main.add_column("value", justify="right")
    rows = [
        ("agents", summary["agents"]),
        ("kernel events", summary["events"]),
        ("orders", summary["orders"]),
        ("trades", summary["trades"]),
        ("volume (shares)", shares(spec, summary["volume"])),
        ("wall time (s)", summary["wall_s"]),
        ("events/s", summary["events_per_s"]),
        ("cores", _cores(summary.get("compiled_cores"))),
        ("last price", price(spec, summary["last_price"])),
    ]
    facts = summary.get("facts", {})
    for key, label in (("kurtosis", "return kurtosis"), ("hill_upper", "Hill index, gains"),
                       ("hill_lower", "Hill index, losses"), ("acf_r_1", "ACF r lag 1"),
                       ("acf_abs_10", "ACF |r| lag 10")):  # fmt: skip
        rows.append((f"{label} ({facts.get('bar_s', 1):g} s bars)", facts.get(key)))
    verdict = summary.get("verdict")
    if verdict is not None:
        failed = [k for k, f in verdict["facts"].items() if not f["passed"]]
        rows.append(("stylized facts passed", f"{verdict['passed']} of {verdict['total']}"
                     + (f" (failed: {', '.join(failed)})" if failed else "")))  # fmt: skip
    refusals = summary.get("refusals")
    if refusals is not None:
        top = ", ".join(f"{k} {v:,d}" for k, v in list(refusals["by_reason"].items())[:3])
        rows.append(("refused orders", f"{refusals['total']:,d}" + (f" ({top})" if top else "")))
    for name, value in rows:
        main.add_row(name, _fmt(value))
    pnl = Table(title="PnL by population, marked to the last trade (trading: own trades minus "
                      "fees; inventory: starting shares x price move)")  # fmt: skip
    for col in ("population", "trading PnL", "inventory PnL", "total PnL"):
        pnl.add_column(col, justify="left" if col == "population" else "right")
    trading, inventory = summary.get("trading_pnl", {}), summary.get("inventory_pnl", {})
    for name, value in summary["pnl"].items():
        pnl.add_row(name, money(trading.get(name, 0)), money(inventory.get(name, 0)),
                    money(value))  # fmt: skip
    return [main, pnl]


def _check_bars(bar: float, facts_bar: float, positions_every: float) -> None:
    if bar <= 0 or facts_bar <= 0:
        raise typer.BadParameter("--bar and --facts-bar must be positive")
    if positions_every < 0:
        raise typer.BadParameter("--positions-every must be >= 0")


def simulate(
    config: Path = typer.Argument(..., exists=True, dir_okay=False, help="market TOML file"),
    seed: int | None = typer.Option(None, help="random seed (default: the file's seed)"),
    until: float | None = typer.Option(
        None, help="seconds of simulated time (default: the file's duration_s, else 60)"
    ),
    out: Path | None = typer.Option(None, help="output directory (default: var/sim/<name>-<seed>)"),
    bar: float = typer.Option(1.0, help="bar length for bars.parquet (s)"),
    facts_bar: float = typer.Option(5.0, help="bar of the prices the facts verdict judges (s)"),
    positions_every: float = typer.Option(
        10.0, help="sample every account's position and cash this often (s); 0: never"
    ),
    progress: bool = typer.Option(True, help="show a progress bar (simulated time)"),
) -> None:
    """Run a market file in simulated time and write its history to Parquet.

    Writes trades, top_of_book, bars (OHLCV), agents (PnL, positions), fundamental, orders
    (every order action sent), positions (sampled) and refusals (orders refused before they
    could trade) Parquet files plus summary.json (the counts, the stylized-facts verdict,
    refusals by reason and population, the market's settings), then prints a summary:
    counts, speed, last price, facts passed, refusals, PnL by population. Same file and seed,
    same history, bit for bit.
    """
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from agents.config import load_market
    from agents.sim.sweep import DEFAULT_UNTIL_S, run_history

    market = load_market(config)
    seed = market.seed if seed is None else seed
    until_s = until if until is not None else (market.duration_s or DEFAULT_UNTIL_S)
    if until_s <= 0:
        raise typer.BadParameter("--until must be positive")
    _check_bars(bar, facts_bar, positions_every)
    out_dir = out if out is not None else Path("var/sim") / f"{market.name}-{seed}"
    console = Console()
    with Progress(
        TextColumn("[bold]simulating"), BarColumn(),
        TextColumn("{task.completed:,.1f}/{task.total:,.0f} s simulated"), TimeElapsedColumn(),
        console=console, disable=not progress, transient=True,
    ) as bar_:  # fmt: skip
        task = bar_.add_task("sim", total=until_s)
        summary = run_history(
            market, seed, until_s, out_dir, bar_s=bar,
            progress=lambda t: bar_.update(task, completed=t), facts_bar_s=facts_bar,
            positions_s=positions_every or None,
        )  # fmt: skip
    first = market.symbols[0] if market.symbols else None
    for table in _summary_tables(summary, first):
        console.print(table)
    console.print(f"wrote {out_dir}/ ({', '.join(sorted(summary['files']))})")


def sweep(
    config: Path = typer.Argument(..., exists=True, dir_okay=False, help="market TOML file"),
    param: list[str] | None = typer.Option(
        None,
        "--param",
        help="name=v1,v2,...; name a dotted path into the file, e.g. "
        "populations.0.params.alpha_a or fundamental.scale (repeatable)",
    ),
    random: int = typer.Option(
        0, "--random", help="N random points, each param drawn uniformly in its min,max"
    ),
    seeds: int = typer.Option(1, help="seeds per point: the file's seed, seed+1, ..."),
    workers: int = typer.Option(1, help="parallel worker processes"),
    until: float | None = typer.Option(
        None, help="seconds of simulated time per run (default: duration_s, else 60)"
    ),
    out: Path | None = typer.Option(None, help="output directory (default: var/sweep/<name>)"),
    bar: float = typer.Option(1.0, help="bar length for bars.parquet (s)"),
    facts_bar: float = typer.Option(5.0, help="bar of the prices the facts verdict judges (s)"),
    positions_every: float = typer.Option(
        10.0, help="sample every account's position and cash this often (s); 0: never"
    ),
    ray: str | None = typer.Option(
        None, "--ray", help="run as Ray tasks on this cluster (or 'auto')"
    ),
) -> None:
    """Run every (parameter point x seed) history in parallel; rank the points by the
    stylized facts they pass.

    Each run writes its Parquet files and manifest.json under DIR/run-XXXX; DIR/manifest.json
    and DIR/manifest.parquet list every run's parameters, seed and summary statistics (trades,
    facts verdict, kurtosis, Hill index of each tail, autocorrelations, PnL by population).
    DIR/ranking.json ranks the parameter sets by the facts passed over their seeds and says,
    for each fact, which parameter moves it most.
    """
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn
    from rich.table import Table

    from agents.config import load_market
    from agents.sim import sweep as sw

    market = load_market(config)
    try:
        params = [sw.parse_param(p) for p in param or []]
        if random < 0:
            raise ValueError("--random must be >= 0")
        points = sw.random_points(params, random, market.seed) if random else sw.grid_points(params)
        seed_list = [market.seed + i for i in range(max(1, seeds))]
        out_dir = out if out is not None else Path("var/sweep") / market.name
        _check_bars(bar, facts_bar, positions_every)
        specs = sw.sweep_specs(market, points, seed_list, out_dir, until, bar, facts_bar,
                               positions_every or None)  # fmt: skip
    except (ValueError, TypeError) as exc:
        raise typer.BadParameter(str(exc)) from None
    if ray is not None:
        try:
            import ray as _ray  # type: ignore[import-not-found]  # noqa: F401
        except ImportError:
            typer.echo("--ray needs Ray, which is not installed: pip install 'agora-market[ray]'",
                       err=True)  # fmt: skip
            raise typer.Exit(2) from None
    console = Console()
    console.print(
        f"{len(points)} point(s) x {len(seed_list)} seed(s) = {len(specs)} run(s), "
        + (f"Ray at {ray}" if ray is not None else f"{workers} worker(s)")
    )
    with Progress(
        BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=console, transient=True
    ) as bar_:
        task = bar_.add_task("runs", total=len(specs))
        rows = sw.run_sweep(specs, workers, ray, on_done=lambda _row: bar_.advance(task))
    paths = sw.write_manifest(rows, out_dir)
    table = Table(title=f"sweep: {len(rows)} runs")
    names = [n for n, _ in params]
    for col in ("run", "seed", *names, "trades", "facts", "kurtosis", "Hill +/-", "ACF |r| 10"):
        table.add_column(col, justify="left" if col == "run" else "right")
    for row in rows:
        f = row["summary"]["facts"]
        v = row["summary"]["verdict"]
        table.add_row(
            row["run"], str(row["seed"]), *(_fmt(row["params"][n]) for n in names),
            _fmt(row["summary"]["trades"]), f"{v['passed']}/{v['total']}", _fmt(f["kurtosis"]),
            f"{_fmt(f['hill_upper'], 3)} / {_fmt(f['hill_lower'], 3)}", _fmt(f["acf_abs_10"]),
        )  # fmt: skip
    console.print(table)
    ranks = sw.rank_points(rows)
    drivers = sw.fact_drivers(rows)
    for t in _ranking_tables(ranks, drivers, names):
        console.print(t)
    ranking = out_dir / "ranking.json"
    ranking.write_text(json.dumps({
        "points": [r.to_dict() for r in ranks],
        "drivers": {fact: [{"param": d.param, "spread": d.spread, "shares": d.shares}
                           for d in ds] for fact, ds in drivers.items()},
    }, indent=2, default=str))  # fmt: skip
    console.print(f"manifest: {', '.join(str(p) for p in paths.values())}; ranking: {ranking}")


_TOP = 6  # parameter sets shown fact by fact


def _short_names(names: list[str]) -> list[str]:
    """Swept parameters by the last part of their path where that is unambiguous."""
    last = [n.rsplit(".", 1)[-1] for n in names]
    return [t if last.count(t) == 1 else n for n, t in zip(names, last, strict=True)]


def _ranking_tables(ranks: list[Any], drivers: dict[str, list[Any]], names: list[str]) -> list:
    """The parameter sets ranked by the facts they pass, and each fact's strongest driver."""
    from rich.table import Table

    table = Table(title="parameter sets ranked by stylized facts passed (mean over seeds)")
    for col in ("rank", *_short_names(names), "seeds", "passed", "worst seed", "all facts"):
        table.add_column(col, justify="right")
    for i, r in enumerate(ranks, 1):
        table.add_row(
            str(i), *(_fmt(r.params.get(n)) for n in names), str(len(r.seeds)),
            f"{r.passed_mean:.2g} of {r.total}", str(r.passed_min), str(r.all_passed),
        )  # fmt: skip
    top = ranks[:_TOP]
    per_fact = Table(title="seeds passing each fact, best parameter sets first"
                     + (f" (top {_TOP})" if len(ranks) > _TOP else ""))  # fmt: skip
    per_fact.add_column("fact")
    for i in range(1, len(top) + 1):
        per_fact.add_column(f"#{i}", justify="right")
    for key in top[0].per_fact if top else ():
        per_fact.add_row(key, *(f"{r.per_fact[key]} of {len(r.seeds)}" for r in top))
    out = [table, per_fact]
    short = dict(zip(names, _short_names(names), strict=True))
    if names and any(drivers.values()):
        drive = Table(title="which parameter moves each fact (share of runs passing it)")
        for col in ("fact", "parameter", "spread", "pass share by value"):
            drive.add_column(col, justify="right" if col == "spread" else "left")
        for fact, ds in drivers.items():
            if ds:
                d = ds[0]
                shares = ", ".join(f"{k}: {v:.0%}" for k, v in d.shares.items())
                drive.add_row(fact, short.get(d.param, d.param), f"{d.spread:.0%}", shares)
        out.append(drive)
    return out


def register(app: typer.Typer) -> None:
    """Add this module's commands to the `agora` app."""
    app.command()(simulate)
    app.command()(sweep)
