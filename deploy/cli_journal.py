"""`agora journal verify|repair`: look into an exchange journal without the exchange.

The exchange refuses to start on a corrupt journal (one line naming the file and the byte);
these two commands are what that line sends the operator to. `verify` only reads; `repair`
writes a new file beside the original and never touches the original.
"""

from __future__ import annotations

import json
from pathlib import Path

import typer

app = typer.Typer(help="Check or repair an exchange journal.", no_args_is_help=True)


def _path(path: str) -> Path:
    p = Path(path)
    if not p.is_file():
        typer.echo(f"agora journal: no journal file at {p}", err=True)
        raise typer.Exit(2)
    return p


@app.command()
def verify(
    path: str = typer.Argument(..., help="the journal file (e.g. var/exchange/exchange.journal)"),
    as_json: bool = typer.Option(False, "--json", help="one JSON object for machines"),
) -> None:
    """Count records and trades; find a torn tail and any corruption. Exit 1 when corrupt."""
    from exchange.journal_check import describe
    from exchange.journal_check import verify as run_verify

    report = run_verify(_path(path))
    if as_json:
        typer.echo(json.dumps(report.as_dict()))
    else:
        for line in describe(report):
            typer.echo(line)
        if not report.clean:
            typer.echo(f"run `agora journal repair {path}` to write a copy without the damage")
    raise typer.Exit(0 if report.clean else 1)


@app.command()
def repair(
    path: str = typer.Argument(..., help="the journal file to repair (only read)"),
    output: str = typer.Option(None, help="where to write the copy (default: PATH.repaired)"),
    as_json: bool = typer.Option(False, "--json", help="one JSON object for machines"),
) -> None:
    """Write every good record (past any damage) to a new journal beside the original."""
    from exchange.journal_check import describe
    from exchange.journal_check import repair as run_repair

    src = _path(path)
    dest = Path(output) if output else src.with_name(src.name + ".repaired")
    try:
        report = run_repair(src, dest)
    except FileExistsError as exc:
        typer.echo(f"agora journal repair: {exc}", err=True)
        raise typer.Exit(2) from None
    if as_json:
        typer.echo(json.dumps(report.as_dict() | {"output": str(dest)}))
        return
    for line in describe(report):
        typer.echo(line)
    skipped = len(report.corruption) + (report.torn_offset is not None)
    typer.echo(f"wrote {dest}: {report.records:,} records kept, {skipped} stretch(es) skipped")
    if report.corruption:
        typer.echo(
            "records after a skipped stretch were kept; if it held commands, a replay may differ "
            "from what was acknowledged. Keep the original; move the copy into place yourself "
            "(with the exchange stopped) once you are satisfied."
        )
