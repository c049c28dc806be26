"""The `agora` command line.

Every sub-command is a thin shell over a core or a process; it parses options and prints.
Heavy imports happen inside each command, so `agora --help` stays fast.
"""

from __future__ import annotations

import random
import time
from collections import deque
from typing import Any

import typer
from rich.console import Group
from rich.live import Live
from rich.table import Table

from exchange.engine import Engine
from exchange.events import TRADE, view
from exchange.symbols import SymbolSpec

app = typer.Typer(help="Agora: an exchange simulation you can trade on.", no_args_is_help=True)


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
    engine = Engine([SymbolSpec(symbol=symbol, reference_price=10_000, band_bps=2_000)])
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
            live.update(_render(engine, symbol, trades, counts))
            time.sleep(0.02)
    typer.echo(
        f"{counts['orders']:,} orders, {counts['trades']:,} trades, "
        f"volume {counts['volume']:,} lots, "
        f"{counts['rejects']:,} rejects; last price {engine.last_trade(symbol)}"
    )


@app.command()
def exchange(
    data_dir: str = typer.Option(None, help="journal directory [env AGORA_EXCHANGE_DATA_DIR]"),
    metrics_port: int = typer.Option(
        None, help="Prometheus port, 0 = off [env AGORA_EXCHANGE_METRICS_PORT]"
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
    data_dir: str = typer.Option(None, help="database directory [env AGORA_CLEARING_DATA_DIR]"),
    database_url: str = typer.Option(
        None, help="SQLAlchemy URL instead of SQLite [env AGORA_CLEARING_DATABASE_URL]"
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


def _admin_token(token: str | None) -> str:
    from pathlib import Path

    from agents.settings import ClientSettings

    token = token or ClientSettings().admin_token
    if token:
        return token
    for path in (Path("var/admin.token"), Path("var/clearing/admin.token")):
        if path.exists():  # agora up's, then a standalone clearing's
            return path.read_text().strip()
    raise typer.BadParameter("no admin token: pass --admin-token, set AGORA_ADMIN_TOKEN, or run "
                             "where var/admin.token (agora up) is")  # fmt: skip


def _money(units: int) -> str:
    return f"{units / 100:,.2f}"


@app.command()
def accounts(
    admin_token: str = typer.Option(None, help="clearing's admin token [env AGORA_ADMIN_TOKEN]"),
    top: int = typer.Option(50, help="show the best N by PnL"),
) -> None:
    """The accounts of a running clearing house as a PnL leaderboard.

    Cash and PnL in currency (cash units / 100); positions in lots.
    """
    from agents.settings import ClientSettings
    from clearing.client import ClearingError, request_sync
    from clearing.protocol import ListAccounts

    endpoint = ClientSettings().clearing
    try:
        reply = request_sync(endpoint, ListAccounts(admin_token=_admin_token(admin_token)))
    except ClearingError as exc:
        typer.echo(f"clearing at {endpoint}: {exc}", err=True)
        raise typer.Exit(1) from None
    from rich.console import Console

    table = Table(title=f"accounts (settled through trade {reply.settled_through:,})")
    for col in ("#", "account", "cash", "positions", "equity", "PnL", "fees"):
        table.add_column(col, justify="left" if col in ("account", "positions") else "right")
    for i, b in enumerate(reply.accounts[:top], 1):
        positions = ", ".join(f"{p.symbol} {p.qty:,}" for p in b.positions if p.qty) or "-"
        table.add_row(
            str(i), b.account, _money(b.cash), positions, _money(b.equity), _money(b.pnl),
            _money(b.fees_paid),
        )  # fmt: skip
    Console().print(table)
    typer.echo(f"{len(reply.accounts):,} accounts")


@app.command("open-account")
def open_account(
    name: str = typer.Argument(None, help="account name (default: clearing picks one)"),
    cash: int = typer.Option(None, help="starting cash in cash units (cents)"),
    position: list[str] | None = typer.Option(None, help="SYMBOL=LOTS, repeatable"),
    admin_token: str = typer.Option(None, help="clearing's admin token [env AGORA_ADMIN_TOKEN]"),
) -> None:
    """Open an account (admin) and print its name and secret token (shown only once)."""
    from agents.settings import ClientSettings
    from clearing.client import ClearingError, request_sync
    from clearing.protocol import OpenAccount

    positions = {}
    for p in position or []:
        sym, _, lots = p.partition("=")
        if not lots.isdigit():
            raise typer.BadParameter(f"--position wants SYMBOL=LOTS, not {p!r}")
        positions[sym] = int(lots)
    msg = OpenAccount(admin_token=_admin_token(admin_token), account=name, cash=cash,
                      positions=positions or None)  # fmt: skip
    try:
        reply = request_sync(ClientSettings().clearing, msg)
    except ClearingError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(1) from None
    typer.echo(f"AGORA_ACCOUNT={reply.account}")
    typer.echo(f"AGORA_TOKEN={reply.token}")


@app.command()
def up(
    config: str = typer.Argument(None, help="market file (TOML); default: the built-in market"),
    data_dir: str = typer.Option("var", help="journal, database, recordings and logs"),
    free_ports: bool = typer.Option(False, help="any free ports instead of 5555-5560"),
    duration: float = typer.Option(0.0, help="stop after this many seconds; 0 = until Ctrl-C"),
    fresh: bool = typer.Option(False, help="forget the market kept in --data-dir first"),
) -> None:
    """Run a whole market here: clearing, exchange, fair value, recorder and the agents.

    The same services docker compose runs (`agora compose`), as local processes. Ctrl-C
    stops them all and prints the final PnL leaderboard.
    """
    from pathlib import Path

    from agents.config import load_market
    from deploy import up as up_mod
    from deploy.markets import default_market

    market = load_market(config) if config else default_market()
    if fresh:
        up_mod.fresh(Path(data_dir))
    ports = up_mod.free_ports() if free_ports else None
    summary = up_mod.Up(market, Path(data_dir), ports=ports).run(duration)
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
    out_dir: str = typer.Option(None, help="where the Parquet files go [AGORA_RECORDER_OUT_DIR]"),
    rotate_s: float = typer.Option(None, help="one file per channel per this many seconds"),
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
    run_recorder(RecorderSettings(**overrides))


@app.command()
def watch(
    symbol: str = typer.Argument("AGR", help="symbol to watch"),
    levels: int = typer.Option(10, help="book levels per side"),
    seconds: float = typer.Option(0.0, help="stop after this long; 0 = until Ctrl-C"),
) -> None:
    """A live terminal view of a running exchange: top of book, last trades, feed rate.

    Addresses come from AGORA_FEED and AGORA_SNAPSHOT (defaults: the local exchange).
    """
    import asyncio

    asyncio.run(_watch(symbol, levels, seconds))


async def _watch(symbol: str, levels: int, seconds: float) -> None:
    import asyncio

    from agents.client import MarketDataClient

    md = MarketDataClient()
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
                live.update(_render_feed(symbol, state["book"], trades, stats, levels, md))
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


def _render_feed(symbol: str, book: Any, trades: deque, stats: dict, levels: int, md: Any) -> Group:
    title = f"{symbol}  feed {stats['rate']:,.0f} msgs/s  resyncs {md.resyncs}" + (
        f"  seq {book.seq}" if book is not None else "  (waiting for a snapshot)"
    )
    bids, asks = book.levels(levels) if book is not None else ([], [])
    tape = [(t.trade_id, t.price, t.qty, t.aggressor_side) for t in trades]
    return Group(_book_table(title, bids, asks), _tape_table("last trades", tape))


def _render(engine: Engine, symbol: str, trades: deque, counts: dict) -> Group:
    bids, asks = engine.depth(symbol, 8)
    tape = [(t.trade_id, t.price, t.qty, t.aggressor) for t in trades]
    return Group(
        _book_table(f"{symbol} order book ({engine.phase(symbol)})", bids, asks),
        _tape_table(f"last trades ({counts['trades']:,} so far)", tape),
    )


def _book_table(title: str, bids: list, asks: list) -> Table:
    """Bids and asks side by side, best first; levels are (price, qty, count)."""
    table = Table(title=title)
    for col in ("bid orders", "bid qty", "bid", "ask", "ask qty", "ask orders"):
        table.add_column(col, justify="right")
    for i in range(max(len(bids), len(asks))):
        b = bids[i] if i < len(bids) else None
        a = asks[i] if i < len(asks) else None
        table.add_row(
            str(b[2]) if b else "", str(b[1]) if b else "", str(b[0]) if b else "",
            str(a[0]) if a else "", str(a[1]) if a else "", str(a[2]) if a else "",
        )  # fmt: skip
    return table


def _tape_table(title: str, rows: list[tuple]) -> Table:
    """(trade id, price, qty, aggressor) rows, newest first."""
    tape = Table(title=title)
    for col in ("trade id", "price", "qty", "aggressor"):
        tape.add_column(col, justify="right")
    for row in rows:
        tape.add_row(*(str(v) for v in row))
    return tape


def _register_more() -> None:
    """Commands kept in their own modules (agents, simulation), registered on `app`."""
    from agents.cli import app as agents_app
    from agents.cli import attach
    from deploy import cli_accel, cli_sim

    app.add_typer(agents_app, name="agents")
    app.command()(attach)
    cli_sim.register(app)
    cli_accel.register(app)
    from deploy.cli_journal import app as journal_app
    app.add_typer(journal_app, name="journal")


_register_more()

if __name__ == "__main__":
    app()
