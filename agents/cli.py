"""`python -m agents run|list|attach` (also `agora agents ...` and `agora attach`).

Addresses and credentials come from the environment like every Agora client (`AGORA_GATEWAY`,
`AGORA_FEED`, `AGORA_SNAPSHOT`, `AGORA_CLEARING`, `AGORA_FUNDAMENTAL`, `AGORA_ADMIN_TOKEN`,
`AGORA_SYMBOLS`), else from the market's data directory (``--data-dir`` or `AGORA_DATA_DIR`:
its ``agora.env`` and ``admin.token``, see `agents.market_dir`); the options here say what to
run. The final PnL table is for people (stderr); the result as JSON (``AGORA_RESULT {...}``
on stdout) is for programs: with ``--json``, or when stdout is not a terminal.
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any

import typer

from agents import market_dir
from agents.cli_help import PlainHelpGroup
from agents.config import LatencyConfig, load_market
from agents.logs import configure
from agents.settings import ClientSettings
from exchange.errors import UserError

app = typer.Typer(help="Run trading agents against a live market.", no_args_is_help=True,
                  cls=PlainHelpGroup)


def _params(pairs: list[str] | None) -> dict[str, Any]:
    """k=v pairs; a value is JSON when it parses as JSON (numbers, true, lists), else text."""
    out: dict[str, Any] = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise typer.BadParameter(f"--param wants key=value, not {pair!r}")
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value
    return out


def _strategy(target: str) -> type:
    """The strategy class `target` names; a name that is not one is the user's mistake."""
    from agents.strategies import load_strategy

    try:
        return load_strategy(target)
    except ValueError as exc:  # load_strategy's "no such strategy ..." messages
        raise UserError(str(exc)) from None



DATA_DIR_HELP = ("the market's data directory (agora up --data-dir): its addresses and admin "
                 "token (env AGORA_DATA_DIR; default var)")  # fmt: skip
JSON_HELP = ("print the result as one JSON line (AGORA_RESULT {...}) on stdout; "
             "default: when stdout is not a terminal")  # fmt: skip


def _settings(data_dir: str | None) -> ClientSettings:
    """Addresses and admin token: the environment, else the market's data directory."""
    try:
        return market_dir.client_settings(data_dir)
    except market_dir.MarketDirError as exc:
        typer.echo(f"agora: {exc}", err=True)
        raise typer.Exit(2) from None


def _finish(result: dict[str, Any], json_out: bool | None = None) -> None:
    from rich.console import Console
    from rich.table import Table

    from agents.units import money

    table = Table(title=f"final PnL ({result['agents']} agents, {result['fills']:,} fills; "
                        "in currency, as clearing settled them; total PnL = trading + inventory, "
                        "`agora accounts` splits it)")  # fmt: skip
    for col in ("agent", "strategy", "orders", "fills", "rejected", "cash", "total PnL",
                "errors"):
        table.add_column(col, justify="left" if col in ("agent", "strategy") else "right")
    for row in sorted(result["pnl"], key=lambda r: r["pnl"], reverse=True)[:25]:
        table.add_row(row["agent"], row["strategy"], f"{row['orders']:,}", f"{row['fills']:,}",
                      f"{row.get('rejects', 0):,}", money(row["cash"]), money(row["pnl"]),
                      str(row["errors"]))  # fmt: skip
    Console(stderr=True).print(table)
    if result["mismatches"]:
        typer.echo(f"own view and clearing disagree for {len(result['mismatches'])} agents",
                   err=True)  # fmt: skip
    if json_out if json_out is not None else not sys.stdout.isatty():
        print("AGORA_RESULT " + json.dumps(result), flush=True)


def _run(specs: list[Any], settings: ClientSettings, symbols: list[Any] | None, seed: int,
         duration: float) -> dict[str, Any]:  # fmt: skip
    from agents.runner import Runner

    async def go() -> dict[str, Any]:
        runner = Runner(specs, settings, symbols, seed)
        if duration:
            asyncio.get_running_loop().call_later(duration, runner.stop)
        return await runner.run()

    from agents.client import ClientError
    from clearing.client import ClearingError
    from exchange.loop import run

    try:
        return run(go())
    except (ClientError, ClearingError) as exc:  # a wrong address or token: one line, no trace
        raise UserError(
            f"{exc} (is the market running? `agora up` writes its addresses to var/agora.env; "
            "--data-dir or AGORA_GATEWAY/AGORA_CLEARING point elsewhere, and "
            "AGORA_ADMIN_TOKEN or AGORA_ACCOUNT/AGORA_TOKEN say who you are)"
        ) from None


@app.command()
def run(
    strategy: str = typer.Argument(None, help="registry name, module:Class or file.py:Class"),
    count: int = typer.Option(1, help="how many agents"),
    name: str = typer.Option(None, help="population name (agent names are NAME-0, NAME-1...)"),
    param: list[str] | None = typer.Option(None, help="strategy parameter key=value"),
    symbol: str = typer.Option(None, help="the symbol to trade (the strategy's `symbol`)"),
    config: Path = typer.Option(None, help="market file: symbols and --population from it"),
    population: str = typer.Option(None, help="run this population of --config"),
    population_json: str = typer.Option(
        None, envvar="AGORA_POPULATION", help="a population (the market file's fields) as JSON"
    ),
    instance: str = typer.Option(
        None, envvar="AGORA_INSTANCE",
        help="suffix for agent names when several copies of a population run ('hostname': "
        "this host's name, for container replicas)",
    ),
    seed: int = typer.Option(None, help="random seed (default: the config's, else 1)"),
    network_us: float = typer.Option(None, help="one-way network latency, microseconds"),
    decision_us: float = typer.Option(None, help="decision delay, microseconds"),
    latency_kind: str = typer.Option(None, help="fixed | uniform | exponential"),
    cash: int = typer.Option(None, help="starting cash of new accounts (cash units)"),
    position: list[str] | None = typer.Option(None, help="SYMBOL=LOTS new accounts start with"),
    account: str = typer.Option(None, help="an existing account (with --token; count 1)"),
    token: str = typer.Option(None, help="the existing account's token"),
    duration: float = typer.Option(0.0, help="stop after this many seconds; 0 = until Ctrl-C"),
    json_logs: bool = typer.Option(
        None, "--json-logs/--console-logs", help="logs as JSON lines; default: when not a terminal"
    ),
    data_dir: str = typer.Option(None, help=DATA_DIR_HELP),
    json_out: bool = typer.Option(None, "--json/--no-json", help=JSON_HELP),
) -> None:
    """Run COUNT agents of STRATEGY in this process, each with its own account."""
    from agents.runner import AgentSpec

    configure(json_logs)
    settings = _settings(data_dir)
    market = load_market(config) if config is not None else None
    latency = LatencyConfig()
    params: dict[str, Any] = {}
    positions = None
    pop = None
    if population_json:
        from agents.config import Population

        pop = Population.model_validate_json(population_json)
    elif population is not None:
        if market is None:
            raise typer.BadParameter("--population needs --config")
        pop = next((p for p in market.populations if p.name == population), None)
        if pop is None:
            raise typer.BadParameter(f"no population {population!r} in {config}")
    if pop is not None:
        strategy = strategy or pop.strategy
        count = pop.count if count == 1 else count
        name = name or pop.name
        params = dict(pop.params)
        latency = pop.latency
        cash = cash if cash is not None else pop.cash
        positions = pop.positions
    if strategy is None and market is not None and population is None and not population_json:
        _finish(_run(_config_specs(market), settings, market.symbols,
                     seed if seed is not None else market.seed, duration), json_out)  # fmt: skip
        return
    if strategy is None:
        raise typer.BadParameter("which strategy? give STRATEGY, --population, or --config")
    if market is not None:
        cash = cash if cash is not None else market.clearing.starting_cash
        positions = positions if positions is not None else market.clearing.starting_positions
    params.update(_params(param))
    if symbol is not None:
        params["symbol"] = symbol
    if position:
        positions = {k: int(v) for k, v in _params(position).items()}
    latency = latency.model_copy(update={k: v for k, v in {
        "network_us": network_us, "decision_us": decision_us, "kind": latency_kind,
    }.items() if v is not None})  # fmt: skip
    cls = _strategy(strategy)
    name = name or strategy.rsplit(":", 1)[-1].lower()
    if instance:
        import socket

        name = f"{name}-{socket.gethostname()[:12] if instance == 'hostname' else instance}"
    if account is not None and count != 1:
        raise typer.BadParameter("--account runs exactly one agent")
    specs = [
        AgentSpec(cls(params), f"{name}-{i}" if account is None else account, latency,
                  account=account, token=token, cash=cash, positions=positions)
        for i in range(count)
    ]
    symbols = market.symbols if market is not None else settings.symbols
    seed = seed if seed is not None else (market.seed if market is not None else 1)
    _finish(_run(specs, settings, symbols, seed, duration), json_out)


def _config_specs(market: Any) -> list[Any]:
    """Every population of a market file, as agents of one runner."""
    from agents.runner import AgentSpec

    specs = []
    for pop in market.populations:
        cls = _strategy(pop.strategy)
        cash = pop.cash if pop.cash is not None else market.clearing.starting_cash
        positions = (
            pop.positions if pop.positions is not None else market.clearing.starting_positions
        )
        for i in range(pop.count):
            specs.append(AgentSpec(cls(dict(pop.params)), f"{pop.name}-{i}", pop.latency,
                                   cash=cash, positions=positions))  # fmt: skip
    return specs


MARKET_CHECK_S = 1.5
"""How long `attach` waits for the exchange to answer before saying that none runs."""


def _require_market(settings: ClientSettings, timeout: float = MARKET_CHECK_S) -> None:
    """Ask the exchange's snapshot service one question; no answer in `timeout` s means no
    market runs there, which the user hears at once (with how to start one) rather than after
    the runner's long logon wait."""
    import msgpack
    import zmq

    from exchange.protocol import SnapshotRequest, encode

    ctx = zmq.Context()
    sock = ctx.socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    try:
        sock.connect(settings.snapshot)
        sock.send(encode(SnapshotRequest(symbol="AGR")))
        if sock.poll(int(timeout * 1000)):
            msgpack.unpackb(sock.recv())
            return
    finally:
        sock.close()
        ctx.term()
    raise UserError(
        f"no market answers at {settings.snapshot} (AGORA_SNAPSHOT): start one with `agora up` "
        "in another terminal, or point AGORA_GATEWAY, AGORA_FEED, AGORA_SNAPSHOT and "
        "AGORA_CLEARING at a running one"
    )


@app.command("list")
def list_strategies() -> None:
    """The strategies this installation knows, with their parameters."""
    from agents.strategies import STRATEGIES

    for key, cls in sorted(STRATEGIES.items()):
        doc = (cls.__doc__ or "").strip().splitlines()[0] if cls.__doc__ else ""
        fields = ", ".join(f"{n}={f.default!r}" for n, f in cls.Params.model_fields.items())
        typer.echo(f"{key:20} {doc}\n{'':20} {fields}")


def attach(
    target: str = typer.Argument(
        ..., help="path/to/my_agent.py:MyAgent or module:Class, or 'policy' (then PATH)"
    ),
    path: str = typer.Argument(None, help="with 'policy': a run saved by agora train"),
    param: list[str] | None = typer.Option(None, help="parameter key=value"),
    name: str = typer.Option(None, help="agent (and account) name"),
    account: str = typer.Option(None, help="an existing account (env AGORA_ACCOUNT)"),
    token: str = typer.Option(None, help="its token (env AGORA_TOKEN)"),
    cash: int = typer.Option(None, help="starting cash (cash units) if a new account is opened"),
    duration: float = typer.Option(0.0, help="stop after this many seconds; 0 = until Ctrl-C"),
    config: Path = typer.Option(None, help="market file (symbols)"),
    data_dir: str = typer.Option(None, help=DATA_DIR_HELP),
    json_out: bool = typer.Option(None, "--json/--no-json", help=JSON_HELP),
) -> None:
    """Attach your own agent class to a running market (one agent, its own account).

    The market's addresses and admin token come from its data directory (--data-dir, or
    AGORA_DATA_DIR, default var: what agora up writes there), unless AGORA_* variables say
    otherwise. With AGORA_ACCOUNT/AGORA_TOKEN (or --account/--token) it trades that account;
    otherwise it opens one through clearing with the admin token.

    `agora attach policy PATH` runs a policy trained by `agora train` (the `rl` extra): the
    same observations as in training, built from the live feed (`agents.rl.policy_agent`).
    """
    from agents.runner import AgentSpec

    configure(None)
    settings = _settings(data_dir)
    params = _params(param)
    if target == "policy":
        if path is None:
            raise typer.BadParameter("agora attach policy PATH: which run? (agora train's)")
        import importlib.util

        missing = [m for m in ("gymnasium", "stable_baselines3", "torch")
                   if importlib.util.find_spec(m) is None]  # fmt: skip
        if missing:
            raise UserError(f"agora attach policy needs the rl extra ({', '.join(missing)} "
                            "missing): pip install -e '.[rl]'")  # fmt: skip
        from agents.rl.train.runs import load_run

        load_run(path)  # a wrong path is said here, before the market is contacted
        params["path"] = path
        target = "agents.rl.policy_agent:PolicyAgent"
        name = name or "policy"
    elif path is not None:
        raise typer.BadParameter(f"unexpected {path!r} (only 'policy' takes a PATH)")
    cls = _strategy(target)
    _require_market(settings)
    account = account or settings.account
    token = token if token is not None else (settings.token or None)
    agent_name = name or account or target.rsplit(":", 1)[-1].lower()
    spec = AgentSpec(cls(params), agent_name, account=account, token=token, cash=cash)
    market = load_market(config) if config is not None else None
    symbols = market.symbols if market is not None else settings.symbols
    _finish(_run([spec], settings, symbols, 1, duration), json_out)


app.command()(attach)
