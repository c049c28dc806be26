"""`agora facts`: the stylized-facts verdict of a price history, beside real series.

A thin shell over `agents.analysis.verdict` (the facts and their bands) and
`agents.analysis.history` (trades to bar closes). Heavy imports happen inside the command so
`agora --help` stays fast.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

if TYPE_CHECKING:
    import numpy as np

    from agents.analysis.verdict import FactsVerdict

NS = 1_000_000_000


@dataclass(frozen=True)
class Column:
    """One series of the report: its label, the unit of one bar, and its verdict."""

    label: str
    source: str
    bar: str  # "5 s", "1 day"
    bar_s: float | None  # seconds per bar (None for daily closes)
    returns: np.ndarray
    verdict: FactsVerdict

    def to_dict(self) -> dict[str, Any]:
        return {"label": self.label, "source": self.source, "bar": self.bar,
                "bar_s": self.bar_s, **self.verdict.to_dict()}  # fmt: skip


def _num(x: float | None) -> str:
    if x is None or not math.isfinite(x):
        return "-"
    return f"{x:.3g}"


def _scale_label(scale: int, col: Column) -> str:
    if col.bar_s is None:
        return f"{scale} day" + ("s" if scale != 1 else "")
    return f"{scale * col.bar_s:g} s"


def render(columns: list[Column], title: str) -> list[Any]:
    """The verdict (fact, band, each series' value and PASS/FAIL), the aggregation table and
    the ACFs behind the memory and clustering facts, as rich tables."""
    from rich.table import Table

    first = columns[0].verdict
    verdict = Table(title=title)
    verdict.add_column("fact")
    verdict.add_column("band")
    for col in columns:
        verdict.add_column(f"{col.label}\n({col.bar} bars)", justify="right")
    for i, fact in enumerate(first.facts):
        cells = []
        for col in columns:
            f = col.verdict.facts[i]
            mark = "[green]PASS[/]" if f.passed else "[red]FAIL[/]"
            cells.append(f"{_num(f.value)} {mark}")
        verdict.add_row(fact.title, fact.band, *cells)
    verdict.add_row(
        "facts passed", "", *(f"{c.verdict.passed} of {c.verdict.total}" for c in columns),
        end_section=True,
    )  # fmt: skip
    hill = ", ".join(
        f"{c.label}: k = {c.verdict.tails.k} of {c.verdict.n}" for c in columns
    )
    verdict.caption = f"Hill per tail from the top {first.bands.tail_fraction:.0%}: {hill}"

    agg = Table(title="excess kurtosis as returns are aggregated (aggregational Gaussianity)")
    agg.add_column("bars summed", justify="right")
    for col in columns:
        agg.add_column(col.label, justify="right")
    for j, scale in enumerate(first.bands.scales):
        cells = [
            f"{_num(c.verdict.kurtosis_by_scale[j][1])} ({_scale_label(scale, c)})"
            for c in columns
        ]
        agg.add_row(str(scale), *cells)

    acfs = Table(title="autocorrelation of returns r and of |r| (volatility clustering)")
    acfs.add_column("lag (bars)", justify="right")
    for col in columns:
        acfs.add_column(f"{col.label}\nr", justify="right")
        acfs.add_column("|r|", justify="right")
    lags = [lag for lag in (1, 2, 5, 10, 20, 50) if lag <= first.bands.decay_lag]
    for lag in lags:
        cells = []
        for c in columns:
            v = c.verdict
            cells.append(_num(v.acf_r[lag - 1]) if lag <= len(v.acf_r) else "")
            cells.append(_num(v.acf_abs[lag - 1]))
        acfs.add_row(str(lag), *cells)
    acfs.caption = "95% noise band of an independent series: " + ", ".join(
        f"{c.label} ±{_num(c.verdict.noise_band)}" for c in columns
    )
    return [verdict, agg, acfs]


def facts(
    path: Path = typer.Argument(
        ..., exists=True, help="a run dir, a trades Parquet file, or a date,close CSV"
    ),
    real: list[str] = typer.Option(
        ["sp500"], help="shipped real series beside it: sp500, nasdaq, wti, none (repeatable)"
    ),
    real_csv: list[Path] = typer.Option(
        [],
        "--real-csv",
        exists=True,
        dir_okay=False,
        help="another date,close CSV of daily closes beside it (repeatable)",
    ),
    out: Path | None = typer.Option(
        None, help="where to write facts.json and the PNGs (default: beside PATH)"
    ),
    bar: float = typer.Option(5.0, help="bar length of the simulated price series (s)"),
    symbol: str | None = typer.Option(None, help="symbol (default: the first traded)"),
    plots: bool = typer.Option(True, help="write PNG plots when matplotlib is importable"),
    as_json: bool = typer.Option(False, "--json", help="print the verdicts as JSON"),
    check: bool = typer.Option(
        False, help="exit with status 1 unless PATH's series passes every fact"
    ),
) -> None:
    """The stylized-facts verdict of a history: PASS or FAIL per fact, with its band.

    The simulated price is the last trade of each bar (quiet bars repeat the close); its log
    returns are judged on heavy tails (excess kurtosis; Hill's index of each tail from the top
    5% of returns), no linear autocorrelation, volatility clustering and its slow decay, and
    aggregational Gaussianity (kurtosis of 1, 2, 6, 12, 20 bars summed: 5 to 100 s on 5 s
    bars). The shipped daily closes (S&P 500 by default) are judged by the same bands beside
    it. Writes facts.json (and PNG plots with matplotlib).
    """
    from rich.console import Console
    from rich.markup import escape

    from agents.analysis.history import closes_from_trades, read_trades, trades_path
    from agents.analysis.real import REAL_SERIES, load_closes_csv, load_real
    from agents.analysis.stylized import log_returns
    from agents.analysis.verdict import facts_verdict

    names = [r for r in real if r != "none"]
    for name in names:
        if name not in REAL_SERIES:
            raise typer.BadParameter(f"--real must be one of {[*sorted(REAL_SERIES), 'none']}")
    if bar <= 0:
        raise typer.BadParameter("--bar must be positive")

    columns: list[Column] = []

    def daily(label: str, source: str, closes: np.ndarray) -> Column:
        r = log_returns(closes)
        return Column(label, source, "1 day", None, r, facts_verdict(r))

    try:
        if path.suffix.lower() == ".csv":
            _, closes = load_closes_csv(path)
            columns.append(daily(path.stem, str(path), closes))
            default_out = path.parent
        else:
            tpath = trades_path(path)
            closes = closes_from_trades(read_trades(tpath), max(1, round(bar * NS)), symbol)
            if len(closes) < 3:
                typer.echo(f"{tpath}: too few bars with a price ({len(closes)})", err=True)
                raise typer.Exit(1)
            r = log_returns(closes)
            columns.append(Column("simulated", str(tpath), f"{bar:g} s", bar, r, facts_verdict(r)))
            default_out = tpath.parent
        for name in names:
            columns.append(daily(name, f"shipped {REAL_SERIES[name]}", load_real(name)[1]))
        for csv_path in real_csv:
            columns.append(daily(csv_path.stem, str(csv_path), load_closes_csv(csv_path)[1]))
    except (FileNotFoundError, ValueError) as exc:
        raise typer.BadParameter(str(exc)) from None

    data = {"series": [c.to_dict() for c in columns]}
    out_dir = out if out is not None else default_out
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "facts.json").write_text(json.dumps(data, indent=2, allow_nan=False))
    written = [out_dir / "facts.json"]
    console = Console(stderr=as_json)
    if plots:
        from agents.analysis import plots as charts

        if charts.HAVE_MATPLOTLIB:
            series = [(f"{c.label} ({c.bar} bars)", c.returns) for c in columns]
            charted = charts.plot_facts(series, out_dir, bands=columns[0].verdict.bands)
            written.extend(charted.values())
        else:  # escaped: rich would take "[plots]" for markup and print nothing of it
            console.print(escape(f"no plots: matplotlib is not installed ({charts.INSTALL_HINT})"))
    if as_json:
        typer.echo(json.dumps(data, indent=2, allow_nan=False))
    else:
        for table in render(columns, f"stylized facts: {columns[0].source}"):
            console.print(table)
        console.print(escape(f"wrote {', '.join(str(p) for p in written)}"))
    if check and not columns[0].verdict.all_passed:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    """Add `agora facts` to the `agora` app."""
    app.command()(facts)
