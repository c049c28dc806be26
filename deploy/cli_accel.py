"""`agora accel build|status|clean`: the optional compiled cores (see `accel`)."""

from __future__ import annotations

import os

import typer

app = typer.Typer(
    help="Compiled cores: the same Python sources compiled by Cython (optional, ~15% faster "
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
    """Which cores have a build of today's source (used unless AGORA_PURE is set)."""
    from accel import MODULES, cache_dir, compiled_path, disabled
    from accel.build import BuildError, find_source

    fresh = 0
    for name in MODULES:
        try:
            ok = compiled_path(name, find_source(name).read_bytes()).is_file()
        except (BuildError, OSError) as exc:
            typer.echo(f"error   {name}: {exc}")
            continue
        fresh += ok
        typer.echo(f"{'built   ' if ok else 'python  '}  {name}")
    typer.echo(
        f"{fresh}/{len(MODULES)} built from today's source in {cache_dir()}"
        + (" (not used: AGORA_PURE is set)" if disabled() else "")
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
