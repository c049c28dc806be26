"""The `agora` command line.

Every sub-command is a thin shell over a core or a process; it parses options and prints.
Heavy imports happen inside each command, so `agora --help` stays fast.
"""

from __future__ import annotations

import contextlib
import random
import time
from collections import deque
from typing import Any, NoReturn

import typer
from rich.console import Group
from rich.live import Live
from rich.table import Table

from agents.cli_help import PlainHelpGroup
from exchange.engine import Engine
from exchange.events import TRADE, view
from exchange.symbols import SymbolSpec

app = typer.Typer(help="Agora: an exchange simulation you can trade on.", no_args_is_help=True,
                  cls=PlainHelpGroup)  # fmt: skip


@app.callback()
def main() -> None:
    """Agora: an exchange simulation you can trade on."""


@app.command()
def version() -> None:
    """Print the installed version."""
    from importlib.metadata import version as dist_version

    typer.echo(dist_version("agora-market"))


@app.command()
def demo(
    seconds: float = typer.Option(5.0, help="how long to run (wall clock)"),
    symbol: str = typer.Option("AGR", help="symbol to trade"),
    seed: int = typer.Option(1, help="random seed of the order flow"),
    rate: int = typer.Option(2_000, help="orders per second to submit"),
) -> None:
    """Run the matching engine in-process with random order flow and show the live book.

    A look at the core before the networked market exists: random limit, market and cancel
    orders from 20 accounts around a drifting mid, matched by the real engine.
    """
    rng = random.Random(seed)
    spec = SymbolSpec(symbol=symbol, reference_price=10_000, band_bps=2_000)
    engine = Engine([spec])
    trades: deque = deque(maxlen=10)
    counts = {"orders": 0, "trades": 0, "volume": 0, "rejects": 0}
    mid = 10_000.0
    live_ids: list[tuple[str, int]] = []
    start = time.monotonic()
    with Live(refresh_per_second=8) as live:
        while (now := time.monotonic() - start) < seconds:
            ts = int(now * 1e9)
            for _ in range(max(1, rate // 50)):
                mid += rng.gauss(0, 0.5)
                account = f"trader{rng.randrange(20)}"
                side = rng.choice(("buy", "sell"))
                r = rng.random()
                if r < 0.25 and live_ids:
                    acct, oid = live_ids.pop(rng.randrange(len(live_ids)))
                    events = engine.cancel(acct, oid, ts=ts)
                elif r < 0.35:
                    events = engine.submit(
                        symbol, side, "market", rng.randint(1, 20), None, account, ts=ts
                    )
                else:
                    off = int(rng.expovariate(0.3)) + 1
                    price = int(mid) - off if side == "buy" else int(mid) + off
                    events = engine.submit(
                        symbol, side, "limit", rng.randint(1, 50), price, account, ts=ts
                    )
                counts["orders"] += 1
                for ev in events:
                    if ev[0] == TRADE:
                        t = view(ev)
                        trades.appendleft(t)
                        counts["trades"] += 1
                        counts["volume"] += t.qty
                    elif ev[0] == "accepted" and ev[8] is not None:
                        live_ids.append((ev[5], ev[3]))
                    elif ev[0] == "rejected":
                        counts["rejects"] += 1
            live.update(_render(engine, spec, trades, counts))
            time.sleep(0.02)
    from agents.units import price, shares

    last = engine.last_trade(symbol)
    typer.echo(
        f"{counts['orders']:,} orders, {counts['trades']:,} trades, "
        f"{shares(spec, counts['volume'])} shares traded, "
        f"{counts['rejects']:,} rejects; last price {price(spec, last[0] if last else None)}"
    )


@app.command()
def exchange(
    data_dir: str = typer.Option(None, help="journal directory (env AGORA_EXCHANGE_DATA_DIR)"),
    metrics_port: int = typer.Option(
        None, help="Prometheus port, 0 = off (env AGORA_EXCHANGE_METRICS_PORT)"
    ),
) -> None:
    """Run the exchange process (gateway, feed, snapshot service, drop copy, journal).

    Every setting comes from AGORA_EXCHANGE_* environment variables (see
    exchange/settings.py); the options here override the most common ones.
    """
    from exchange.__main__ import main as run_exchange
    from exchange.settings import ExchangeSettings

    overrides: dict = {}
    if data_dir is not None:
        overrides["data_dir"] = data_dir
    if metrics_port is not None:
        overrides["metrics_port"] = metrics_port
    run_exchange(ExchangeSettings(**overrides))


@app.command()
def clearing(
    data_dir: str = typer.Option(None, help="database directory (env AGORA_CLEARING_DATA_DIR)"),
    database_url: str = typer.Option(
        None, help="SQLAlchemy URL instead of SQLite (env AGORA_CLEARING_DATABASE_URL)"
    ),
) -> None:
    """Run the clearing process (account API, settlement of the exchange's trades).

    Every setting comes from AGORA_CLEARING_* environment variables (clearing/settings.py).
    """
    from clearing.__main__ import main as run_clearing
    from clearing.settings import ClearingSettings

    overrides: dict = {}
    if data_dir is not None:
        overrides["data_dir"] = data_dir
    if database_url is not None:
        overrides["database_url"] = database_url
    run_clearing(ClearingSettings(**overrides))


DATA_DIR_HELP = ("the market's data directory (agora up --data-dir): its addresses, admin token "
                 "and market file (env AGORA_DATA_DIR; default var)")  # fmt: skip


def _fail(message: str) -> NoReturn:
    """A user's mistake: one line on stderr, exit status 2."""
    typer.echo(f"agora: {message}", err=True)
    raise typer.Exit(2)


def _settings(data_dir: str | None) -> Any:
    """Client settings for the market kept in `data_dir` (see `agents.market_dir`)."""
    from agents.market_dir import MarketDirError, client_settings

    try:
        return client_settings(data_dir)
    except MarketDirError as exc:
        _fail(str(exc))


def _admin_token(token: str | None, settings: Any) -> str:
    token = token or settings.admin_token
    if token:
        return token
    _fail("no admin token: pass --data-dir of the market (agora up keeps it in <data dir>/"
          "admin.token), set AGORA_ADMIN_TOKEN, or pass --admin-token")  # fmt: skip


def _market(data_dir: str | None, config: str | None) -> Any:
    """The market file for the starting allocations: --config, else <data dir>/market.json."""
    from agents.config import MarketConfig, load_market
    from agents.market_dir import resolve

    if config:
        return load_market(config)
    path = resolve(data_dir)[0] / "market.json"
    return MarketConfig.model_validate_json(path.read_text()) if path.is_file() else None


@app.command()
def accounts(
    data_dir: str = typer.Option(None, help=DATA_DIR_HELP),
    config: str = typer.Option(
        None, help="market file with the starting allocations (default: <data dir>/market.json)"
    ),
    admin_token: str = typer.Option(None, help="clearing's admin token (env AGORA_ADMIN_TOKEN)"),
    top: int = typer.Option(50, help="show the best N by trading PnL"),
    json_out: bool = typer.Option(False, "--json", help="print the leaderboard as JSON"),
) -> None:
    """The accounts of a running clearing house as a leaderboard, best trading PnL first.

    Trading PnL is what an account's own trades made, marked to market, minus fees;
    inventory PnL the price move on the shares it started with. Money in currency.
    """
    import json

    from clearing.client import ClearingError, request_sync
    from clearing.protocol import ListAccounts
    from deploy.leaderboard import by_strategy, rank, tables
    from exchange.protocol import TRADE_EPOCH_BITS

    settings = _settings(data_dir)
    endpoint = settings.clearing
    token = _admin_token(admin_token, settings)
    try:
        reply = request_sync(endpoint, ListAccounts(admin_token=token))
    except ClearingError as exc:
        typer.echo(f"agora: clearing at {endpoint}: {exc} (is the market running? "
                   "--data-dir or AGORA_CLEARING say where it is)", err=True)  # fmt: skip
        raise typer.Exit(2) from None
    market = _market(data_dir, config)
    rows = rank(reply.accounts, market)
    if json_out:
        typer.echo(json.dumps({"settled_through": reply.settled_through,
                               "accounts": [r.as_dict() for r in rows],
                               "strategies": by_strategy(rows)}))  # fmt: skip
        return
    from rich.console import Console

    settled = reply.settled_through
    epoch, n = settled >> TRADE_EPOCH_BITS, settled & ((1 << TRADE_EPOCH_BITS) - 1)
    where = f"{n:,} of exchange epoch {epoch}" if epoch else f"{n:,}"
    console = Console()
    for table in tables(rows, market, top):
        console.print(table)
    typer.echo(f"{len(rows):,} accounts, settled through trade {where}")
    if reply.trade_conflicts:
        typer.echo(f"ALERT: {reply.trade_conflicts:,} trades refused: their id already named "
                   "another settled trade (see clearing's trade_conflicts table and its error "
                   "log)", err=True)  # fmt: skip


@app.command("open-account")
def open_account(
    name: str = typer.Argument(None, help="account name (default: clearing picks one)"),
    cash: int = typer.Option(None, help="starting cash in cash units (cents)"),
    position: list[str] | None = typer.Option(None, help="SYMBOL=LOTS, repeatable"),
    data_dir: str = typer.Option(None, help=DATA_DIR_HELP),
    admin_token: str = typer.Option(None, help="clearing's admin token (env AGORA_ADMIN_TOKEN)"),
    json_out: bool = typer.Option(False, "--json", help="print the account and file as JSON"),
) -> None:
    """Open an account (admin); its token goes to an owner-only file, never to the terminal.

    Writes <data dir>/accounts/NAME.env (AGORA_ACCOUNT and AGORA_TOKEN): `source` it, and
    `agora attach` trades as that account.
    """
    import json
    import os

    from agents.market_dir import resolve, write_env_file
    from clearing.client import ClearingError, request_sync
    from clearing.protocol import OpenAccount

    settings = _settings(data_dir)
    positions = {}
    for p in position or []:
        sym, _, lots = p.partition("=")
        if not lots.isdigit():
            _fail(f"--position wants SYMBOL=LOTS, not {p!r}")
        positions[sym] = int(lots)
    msg = OpenAccount(admin_token=_admin_token(admin_token, settings), account=name, cash=cash,
                      positions=positions or None)  # fmt: skip
    try:
        reply = request_sync(settings.clearing, msg)
    except ClearingError as exc:  # a taken name, a wrong token or address: the user's to fix
        hint = ("choose another name" if exc.reason == "account_exists" else
                "is the market running? --data-dir or AGORA_CLEARING say where it is")  # fmt: skip
        typer.echo(f"agora: clearing at {settings.clearing}: {exc} ({hint})", err=True)
        raise typer.Exit(2) from None
    folder = resolve(data_dir)[0] / "accounts"
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = folder / f"{reply.account}.env"
    old = os.umask(0o077)  # the token file is born owner-only
    try:
        write_env_file(path, {"AGORA_ACCOUNT": reply.account, "AGORA_TOKEN": reply.token},
                       comment=f"Agora account {reply.account}: source this file to trade as it")
    finally:
        os.umask(old)
    if json_out:
        typer.echo(json.dumps({"account": reply.account, "token_file": str(path)}))
    else:
        typer.echo(f"opened account {reply.account}; its token is in {path} (owner-only).\n"
                   f"Trade as it: source {path} && agora attach my_agent.py:MyAgent")


@app.command()
def up(
    config: str = typer.Argument(None, help="market file (TOML); default: the built-in market"),
    data_dir: str = typer.Option(
        "var", help="journal, database, recordings, logs, the admin token and agora.env"
    ),
    free_ports: bool = typer.Option(
        False, "--free-ports",
        help="listen on any free ports instead of 5555-5560 (several markets on one machine); "
        "clients find them in <data dir>/agora.env",
    ),
    duration: float = typer.Option(0.0, help="stop after this many seconds; 0 = until Ctrl-C"),
    fresh: bool = typer.Option(
        False, "--fresh", help="forget the market kept in --data-dir first"
    ),
    json_out: bool = typer.Option(
        False, "--json",
        help="also print machine output on stdout, one JSON object a line: ready (addresses, "
        "pids, file paths) and the final summary; never the token",
    ),
    web: bool = typer.Option(
        True, "--web/--no-web", help="the web dashboard (needs the web extra); its URL is printed"
    ),
    metrics: bool = typer.Option(
        False, "--metrics", help="every service serves Prometheus metrics (ports 9101-9105, "
        "agent runners from 9110; any free ports with --free-ports)",
    ),
) -> None:
    """Run a whole market here: clearing, exchange, fair value, recorder and the agents.

    The same services docker compose runs (`agora compose`), as local processes. It writes
    <data dir>/agora.env (`source` it in another terminal to reach this market) and keeps the
    admin token in <data dir>/admin.token (owner-only). Ctrl-C stops everything and prints the
    leaderboard; the full summary goes to <data dir>/summary.json.
    """
    from pathlib import Path

    from agents.config import load_market
    from deploy import up as up_mod
    from deploy.markets import default_market

    market = load_market(config) if config else default_market()
    ports = up_mod.free_ports() if free_ports else None
    if web and not up_mod.web_installed():
        typer.echo("web dashboard: not installed (pip install 'agora-market[web]'); "
                   "--no-web starts without it", err=True)  # fmt: skip
        web = False
    extra = up_mod.extra_ports(market, web, metrics, free_ports)
    taken = up_mod.ports_in_use({**(ports or up_mod.DEFAULT_PORTS), **extra})
    if taken:  # checked before --fresh, which must not wipe a running market's data
        from exchange.errors import UserError

        listed = ", ".join(f"{port} ({role})" for role, port in taken.items())
        raise UserError(f"port {listed} already in use: is another `agora up` running? Stop "
                        "it with Ctrl-C, or run this one with --free-ports and its own "
                        "--data-dir")  # fmt: skip
    if fresh:
        up_mod.fresh(Path(data_dir))
    summary = up_mod.Up(market, Path(data_dir), ports=ports, json_out=json_out,
                        extra=extra).run(duration)  # fmt: skip
    failed = [name for name, n in summary.get("restarts", {}).items() if n]
    if failed:
        typer.echo(f"services restarted during the run: {', '.join(failed)}", err=True)


@app.command()
def compose(
    config: str = typer.Argument(None, help="market file (TOML); default: the built-in market"),
    out: str = typer.Option("-", help="file to write; - = standard output"),
) -> None:
    """Write docker-compose.yml for a market (the services `agora up` starts)."""
    from agents.config import load_market
    from deploy.compose import render
    from deploy.markets import default_market

    text = render(load_market(config) if config else default_market())
    if out == "-":
        typer.echo(text, nl=False)
    else:
        with open(out, "w") as fh:
            fh.write(text)


@app.command("market-file")
def market_file() -> None:
    """Print the built-in default market as a TOML file to start your own from."""
    from deploy.markets import default_market, to_toml

    typer.echo(to_toml(default_market()), nl=False)


@app.command()
def record(
    out_dir: str = typer.Option(
        None, help="where the Parquet files go (env AGORA_RECORDER_OUT_DIR)"
    ),
    flush_s: float = typer.Option(
        None, help="write what arrived at least this often, in seconds, so the recording reads "
        "while it runs (env AGORA_RECORDER_FLUSH_S; default 5)",
    ),
    rotate_s: float = typer.Option(
        None, help="files are named by periods of this many seconds (env AGORA_RECORDER_ROTATE_S)"
    ),
) -> None:
    """Record the exchange's feed (trades, top of book, L2 deltas, status, bars) to Parquet.

    The `recorder` service of `agora up` and docker compose; settings from AGORA_RECORDER_*.
    """
    from agents.recorder.__main__ import main as run_recorder
    from agents.recorder.settings import RecorderSettings

    overrides: dict = {}
    if out_dir is not None:
        overrides["out_dir"] = out_dir
    if rotate_s is not None:
        overrides["rotate_s"] = rotate_s
    if flush_s is not None:
        overrides["flush_s"] = flush_s
    run_recorder(RecorderSettings(**overrides))


@app.command()
def watch(
    symbol: str = typer.Argument("AGR", help="symbol to watch"),
    levels: int = typer.Option(10, help="book levels per side"),
    seconds: float = typer.Option(0.0, help="stop after this long; 0 = until Ctrl-C"),
    data_dir: str = typer.Option(None, help=DATA_DIR_HELP),
) -> None:
    """A live terminal view of a running exchange: the book, last trades, feed rate.

    Prices in the symbol's currency, sizes in shares. Addresses come from AGORA_FEED and
    AGORA_SNAPSHOT, else the market's agora.env in --data-dir, else this machine's defaults.
    """
    import asyncio

    from agents.units import spec_for

    settings = _settings(data_dir)
    # Ctrl-C is how a view is left, not an error. asyncio.run turns it into a cancellation of
    # _watch (which closes the view and its sockets) and raises it again here.
    from agents.client import ClientError
    from exchange.errors import UserError

    with contextlib.suppress(KeyboardInterrupt):
        try:
            asyncio.run(_watch(spec_for(symbol, settings.symbols), levels, seconds, settings))
        except ClientError as exc:  # nothing answers there: the user's address, not a bug
            raise UserError(
                f"{exc} from {settings.snapshot} (is the market running? `agora up` in "
                "another terminal, or --data-dir / AGORA_SNAPSHOT and AGORA_FEED point at one)"
            ) from None


async def _watch(spec: SymbolSpec, levels: int, seconds: float, settings: Any) -> None:
    import asyncio

    from agents.client import MarketDataClient

    symbol = spec.symbol
    md = MarketDataClient(settings=settings)
    trades: deque = deque(maxlen=12)
    stats = {"messages": 0, "rate": 0.0}
    state: dict = {"book": None}

    async def follow_book() -> None:
        async for book in md.watch_order_book(symbol):
            state["book"] = book
            stats["messages"] += 1

    async def follow_trades() -> None:
        async for trade in md.watch_trades(symbol):
            trades.appendleft(trade)
            stats["messages"] += 1

    tasks = [asyncio.create_task(follow_book()), asyncio.create_task(follow_trades())]
    start = last = time.monotonic()
    counted = 0
    try:
        with Live(refresh_per_second=4) as live:
            while not seconds or time.monotonic() - start < seconds:
                await asyncio.sleep(0.25)  # the refresh interval of the view, not a sync
                now = time.monotonic()
                stats["rate"] = (stats["messages"] - counted) / (now - last)
                counted, last = stats["messages"], now
                live.update(_render_feed(spec, state["book"], trades, stats, levels, md))
                for t in tasks:
                    if t.done() and t.exception():
                        raise t.exception()  # type: ignore[misc]
    except KeyboardInterrupt:
        pass
    finally:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await md.close()


def _render_feed(
    spec: SymbolSpec, book: Any, trades: deque, stats: dict, levels: int, md: Any
) -> Group:
    title = f"{spec.symbol}  feed {stats['rate']:,.0f} msgs/s  resyncs {md.resyncs}" + (
        f"  seq {book.seq}" if book is not None else "  (waiting for a snapshot)"
    )
    bids, asks = book.levels(levels) if book is not None else ([], [])
    tape = [(t.ts, t.trade_id, t.price, t.qty, t.aggressor_side) for t in trades]
    return Group(_book_table(spec, title, bids, asks), _tape_table(spec, "last trades", tape))


def _render(engine: Engine, spec: SymbolSpec, trades: deque, counts: dict) -> Group:
    symbol = spec.symbol
    bids, asks = engine.depth(symbol, 8)
    tape = [(t.ts, t.trade_id, t.price, t.qty, t.aggressor) for t in trades]
    return Group(
        _book_table(spec, f"{symbol} order book ({engine.phase(symbol)})", bids, asks),
        _tape_table(spec, f"last trades ({counts['trades']:,} so far)", tape,
                    clock=lambda ns: f"{ns / 1e9:,.3f} s"),  # the demo's clock starts at 0
    )


def _book_table(spec: SymbolSpec, title: str, bids: list, asks: list) -> Table:
    """Bids and asks side by side, best first; levels are (price ticks, qty lots, count)."""
    from agents.units import price, shares

    table = Table(title=title)
    for col in ("bid orders", "bid size", "bid", "ask", "ask size", "ask orders"):
        table.add_column(col, justify="right")
    for i in range(max(len(bids), len(asks))):
        b = bids[i] if i < len(bids) else None
        a = asks[i] if i < len(asks) else None
        table.add_row(
            str(b[2]) if b else "", shares(spec, b[1]) if b else "", price(spec, b[0]) if b else "",
            price(spec, a[0]) if a else "", shares(spec, a[1]) if a else "",
            str(a[2]) if a else "",
        )  # fmt: skip
    return table


def _tape_table(
    spec: SymbolSpec, title: str, rows: list[tuple], clock: Any = None
) -> Table:
    """(ts ns, trade id, price ticks, qty lots, aggressor) rows, newest first; times of day
    (`clock` formats them otherwise)."""
    from agents.units import price, shares, timestamp

    clock = clock or timestamp
    tape = Table(title=title)
    for col in ("time", "trade id", "price", "size", "aggressor"):
        tape.add_column(col, justify="right")
    for ts, trade_id, px, qty, side in rows:
        tape.add_row(clock(ts) if ts else "-", str(trade_id), price(spec, px),
                     shares(spec, qty), str(side))  # fmt: skip
    return tape


def _register_more() -> None:
    """Commands kept in their own modules (agents, simulation), registered on `app`."""
    from agents.cli import app as agents_app
    from agents.cli import attach
    from deploy import cli_accel, cli_facts, cli_sim

    app.add_typer(agents_app, name="agents")
    app.command()(attach)
    cli_sim.register(app)
    cli_facts.register(app)
    cli_accel.register(app)
    __import__("deploy.cli_stress", fromlist=["register"]).register(app)
    app.add_typer(__import__("deploy.cli_admin", fromlist=["app"]).app, name="admin")
    from deploy.cli_report import report
    app.command()(report)
    from deploy import cli_rl
    cli_rl.register(app)
    from deploy.cli_journal import app as journal_app
    app.add_typer(journal_app, name="journal")
    from deploy.cli_backtest import backtest
    app.command()(backtest)


_register_more()


def run() -> None:
    """The `agora` command: a user's mistake is one line and status 2 (`exchange.errors`)."""
    from exchange.errors import guard

    guard(app, "agora")


if __name__ == "__main__":
    run()
