"""`agora accel build|status|clean`: the optional compiled cores (see `accel`)."""

from __future__ import annotations

import os

import typer

app = typer.Typer(
    help="Compiled cores: the same Python sources compiled by Cython (optional, ~20% faster "
    "simulated runs; a seeded run gives the same trades). Used only while the source they "
    "were built from is unchanged; AGORA_PURE=1 turns them off.",
    no_args_is_help=True,
)


@app.command()
def build(
    jobs: int = typer.Option(os.cpu_count() or 1, "--jobs", "-j", help="parallel compilers"),
) -> None:
    """Compile the cores into the cache (needs the 'accel' extra: Cython; and a C compiler)."""
    from accel import cache_dir
    from accel.build import BuildError
    from accel.build import build as do_build

    try:
        written = do_build(jobs=jobs, progress=typer.echo)
    except BuildError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from exc
    typer.echo(f"{len(written)} modules compiled into {cache_dir()}")


@app.command()
def status() -> None:
    """Which cores have a compiled twin that matches their source today."""
    from accel import MODULES, cache_dir, compiled_path
    from accel.build import find_source

    pure = os.environ.get("AGORA_PURE", "") not in ("", "0")
    fresh = 0
    for name in MODULES:
        ok = compiled_path(name, find_source(name).read_bytes()).is_file()
        fresh += ok
        typer.echo(f"{'compiled' if ok else 'python  '}  {name}")
    typer.echo(
        f"{fresh}/{len(MODULES)} compiled and current in {cache_dir()}"
        + (" (not used: AGORA_PURE is set)" if pure else "")
    )


@app.command()
def clean() -> None:
    """Remove every compiled module from the cache."""
    from accel import cache_dir
    from accel.build import clean as do_clean

    typer.echo(f"removed {do_clean()} compiled modules from {cache_dir()}")


def register(main: typer.Typer) -> None:
    """Add `agora accel ...` to the `agora` app."""
    main.add_typer(app, name="accel")
