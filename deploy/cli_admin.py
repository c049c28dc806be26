"""`agora admin`: actions on a running market that need the admin token.

`agora admin scenario NAME` sends a stress scenario to the live market (the fundamental-value
process's control socket, `agents.stress.live`): refused without the admin token, with the
reason; accepted, it strikes ``at_s`` seconds later (default here: 1 s) and the `agora up`
panel shows it happen.
"""

from __future__ import annotations

import json

import typer

from exchange.errors import UserError

app = typer.Typer(help="Admin actions on a running market (the admin token is needed).",
                  no_args_is_help=True)  # fmt: skip


@app.command()
def scenario(
    name: str = typer.Argument("flash-crash", help="a named scenario (agora stress --list)"),
    param: list[str] | None = typer.Option(
        None, "--param", help="key=value set on every part that has it, e.g. pct=-5 (repeatable)"
    ),
    at: float = typer.Option(1.0, help="seconds from now until it strikes (its at_s)"),
    host: str | None = typer.Option(
        None, help="population whose runner starts the scenario's own agents (sell program, "
        "fat finger); default: the market's first population",
    ),
    data_dir: str = typer.Option(None, help="the market's data directory (agora up --data-dir)"),
    admin_token: str = typer.Option(None, help="the admin token (env AGORA_ADMIN_TOKEN)"),
    json_out: bool = typer.Option(False, "--json", help="print the reply as JSON"),
) -> None:
    """Make a stress scenario happen on the running market (admin token required).

    Fundamental shocks act in the fair-value process; liquidity withdrawal and herding in the
    agent runners; a sell program or a fat finger is a new agent in the runner of --host.
    A sell program sized on the day's volume counts the volume the host runner has seen.
    """
    from agents.stress.live import request
    from deploy.cli import _admin_token, _market, _settings
    from deploy.cli_stress import _overrides

    settings = _settings(data_dir)
    token = _admin_token(admin_token, settings)
    params = {"at_s": at, **_overrides(param)}
    if host is None:
        market = _market(data_dir, None)
        host = market.populations[0].name if market is not None and market.populations else None
    endpoint = settings.fundamental_control
    if not endpoint:
        raise UserError("no scenario address: AGORA_FUNDAMENTAL_CONTROL is empty")
    try:
        reply = request(endpoint, token, name=name, params=params, host=host)
    except TimeoutError:
        raise UserError(f"no answer from the fair-value process at {endpoint} (is the market "
                        "running? --data-dir or AGORA_FUNDAMENTAL_CONTROL say where)") from None
    if json_out:
        typer.echo(json.dumps(reply))
        if reply.get("type") != "scenario_accepted":
            raise typer.Exit(2)
        return
    if reply.get("type") != "scenario_accepted":
        raise UserError(f"scenario refused: {reply.get('reason', reply)}")
    parts = ", ".join(p["kind"] for p in reply["parts"])
    typer.echo(f"scenario {reply['name']} accepted (#{reply['id']}: {parts}); it strikes in "
               f"{at:g} s" + (f", new agents in population {host}" if host else ""))
