"""`agora train CONFIG.toml` and `agora evaluate RUN`: reinforcement learning on the simulated
market (`agents.rl`). `agora attach policy RUN` (in `agents.cli`) puts a trained policy in
front of a live market.

Thin shells over `agents.rl.train` and `agents.rl.evaluate`. They need the `rl` extra
(gymnasium, Stable-Baselines3, torch); without it they say so in one line (status 2).
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import typer

from exchange.errors import UserError

_NEED = ("gymnasium", "stable_baselines3", "torch")


def require_rl() -> None:
    """The `rl` extra is installed, else a one-line `UserError` saying how to install it."""
    missing = [m for m in _NEED if importlib.util.find_spec(m) is None]
    if missing:
        raise UserError(
            f"this needs the rl extra ({', '.join(missing)} missing): "
            "pip install -e '.[rl]' (a CPU build of torch first keeps the install small)"
        )


def train(
    config: Path = typer.Argument(..., help="training file (TOML: env, algorithm, curriculum)"),
    steps: int = typer.Option(None, help="override total_steps"),
    seed: int = typer.Option(None, help="override the seed"),
    output: Path = typer.Option(None, help="override where run directories go"),
    name: str = typer.Option(None, help="override the run name"),
    vec: str = typer.Option(None, help="override the VecEnv: dummy | subproc"),
    n_envs: int = typer.Option(None, help="override the number of sub-environments"),
    progress: bool = typer.Option(None, "--progress/--no-progress",
                                  help="progress bar (default: on a terminal)"),
    json_out: bool = typer.Option(False, "--json", help="print the run's metadata as JSON"),
) -> None:
    """Train a policy (PPO, or DQN for a discrete action set) as CONFIG says; save the run.

    The run directory (printed at the end) holds the config, the seed, the library versions
    and model.zip: give it to `agora evaluate` and `agora attach policy`.
    """
    import sys

    require_rl()
    from agents.rl.train import load_config
    from agents.rl.train import train as do_train

    cfg = load_config(config)
    data = cfg.model_dump()
    data.update({k: v for k, v in {"total_steps": steps, "seed": seed, "output": output,
                                   "name": name}.items() if v is not None})  # fmt: skip
    data["vec"].update({k: v for k, v in {"kind": vec, "n_envs": n_envs}.items() if v is not None})
    cfg = type(cfg).model_validate(data)
    show = sys.stderr.isatty() if progress is None else progress
    run = do_train(cfg, config_text=config.read_text(), progress=show)
    if json_out:
        print(json.dumps({"run": str(run.path), **run.meta}))
        return
    m = run.meta
    typer.echo(f"trained {m['steps']:,} steps in {m['wall_s']:,.1f} s "
               f"({m['steps_per_s']:,.0f} steps/s); run saved in {run.path}")  # fmt: skip
    typer.echo(f"next: agora evaluate {run.path}")


def evaluate(
    target: str = typer.Argument(..., help="a run directory (agora train), or 'baselines'"),
    seeds: int = typer.Option(20, help="held-out episodes per regime"),
    first_seed: int = typer.Option(10_000, help="first held-out seed (training uses small ones)"),
    regimes: str = typer.Option("low,medium,high,switching", help="comma-separated regimes"),
    baselines: str = typer.Option("avellaneda-stoikov,fixed-spread,do-nothing",
                                  help="comma-separated baselines ('' for none)"),
    episode_steps: int = typer.Option(None, help="override the episode length"),
    config: Path = typer.Option(None, help="with 'baselines': a training file for the env"),
    out: Path = typer.Option(None, help="where the JSON and plots go (default: RUN/eval)"),
    plots: bool = typer.Option(True, "--plots/--no-plots", help="write PNG plots"),
    json_out: bool = typer.Option(False, "--json", help="print the result as JSON"),
    markdown: bool = typer.Option(False, "--markdown", help="print the table as Markdown"),
) -> None:
    """Run a policy and the baselines on held-out seeds in each regime; print the table.

    Every policy sees the same seeds (the same market) in each regime. Writes eval.json and,
    with matplotlib, plots into --out.
    """
    require_rl()
    from agents.rl.evaluate import EvalSpec, markdown_table, render_table, run_evaluation

    spec = EvalSpec(
        regimes=[r.strip() for r in regimes.split(",") if r.strip()],
        seeds=list(range(first_seed, first_seed + seeds)),
        baselines=[b.strip() for b in baselines.split(",") if b.strip()],
        episode_steps=episode_steps,
    )
    result = run_evaluation(target, spec, config=config, out=out, plots=plots)
    if json_out:
        print(json.dumps(result.to_json()))
        return
    if markdown:
        print(markdown_table(result))
        return
    import sys

    from rich.console import Console

    # a pipe or a file gets the whole table, not one squeezed to 80 columns
    Console(width=None if sys.stdout.isatty() else 220).print(render_table(result))
    typer.echo(f"results in {result.out}")


def register(app: typer.Typer) -> None:
    """Add this module's commands to the `agora` app."""
    app.command()(train)
    app.command()(evaluate)
