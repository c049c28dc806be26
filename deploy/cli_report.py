"""`agora report RUN_DIR`: one self-contained HTML file about a run (`deploy.report`)."""

from __future__ import annotations

from pathlib import Path

import typer


def report(
    run_dir: Path = typer.Argument(..., help="a run directory of agora simulate, or a recording"),
    out: Path | None = typer.Option(None, help="HTML file to write (default: RUN_DIR/report.html)"),
    max_points: int = typer.Option(2_000, min=10, help="points per chart at most (decimated)"),
) -> None:
    """Write an offline HTML report of a run: price with F(t), PnL, drawdown and inventory per
    strategy class, markout curves, the metrics table, stylized facts and the run's config.

    The file needs no server and no network (the charting library is inlined); open it in any
    browser. A recording (a recorder directory, or an `agora up` data directory) has no
    accounts: its report shows the price and the stylized facts only.
    """
    from agents.analysis.run_metrics import NotARun
    from deploy.report import build, render

    if not run_dir.exists():
        typer.echo(f"agora report: {run_dir} does not exist", err=True)
        raise typer.Exit(2)
    try:
        page = render(build(run_dir, max_points=max_points))
    except NotARun as exc:
        typer.echo(f"agora report: {exc}", err=True)
        raise typer.Exit(2) from None
    target = out if out is not None else (run_dir if run_dir.is_dir() else run_dir.parent) / (
        "report.html")  # fmt: skip
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(page, encoding="utf-8")
    typer.echo(f"wrote {target} ({len(page.encode()) / 1e6:.1f} MB)")
