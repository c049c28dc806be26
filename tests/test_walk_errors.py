"""A newcomer's wrong address or wrong token: one line naming what failed and how to find the
market (status 2), never a traceback; and no machine line on a person's terminal."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from deploy.launch import client_env, free_endpoint, start_market

TIMEOUT_S = 120  # a safety net for a hung process, not a measure of speed

AGENT = '''
from agents import Agent


class Idle(Agent):
    pass
'''


def _cli(args: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "deploy.cli", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=TIMEOUT_S)  # fmt: skip


def _one_line(done: subprocess.CompletedProcess[str], *words: str) -> None:
    assert done.returncode == 2, (done.returncode, done.stderr[-3000:])
    assert "Traceback" not in done.stderr, done.stderr[-3000:]
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, done.stderr[-3000:]
    for word in words:
        assert word in lines[0], lines[0]


@pytest.fixture(scope="module")
def market(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    m = start_market(tmp_path_factory.mktemp("walk") / "var")
    try:
        yield m
    finally:
        m.stop()


def test_attach_with_a_wrong_admin_token_says_so_in_one_line(market, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "idle.py").write_text(AGENT)
    env = client_env(market.endpoints, "not-the-admin-token")
    done = _cli(["attach", "idle.py:Idle", "--duration", "1"], tmp_path, env)
    _one_line(done, "is the market running?", "AGORA_ADMIN_TOKEN")
    assert "not-the-admin-token" not in done.stderr + done.stdout  # a secret is never echoed


def test_accounts_with_a_wrong_admin_token_says_so_in_one_line(market, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    env = client_env(market.endpoints, "not-the-admin-token")
    _one_line(_cli(["accounts"], tmp_path, env), "clearing at", "is the market running?")


def test_open_account_twice_says_so_in_one_line(market, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    env = client_env(market.endpoints, market.admin_token)
    first = _cli(["open-account", "walker", "--cash", "100000"], tmp_path, env)
    assert first.returncode == 0, first.stderr[-3000:]
    _one_line(_cli(["open-account", "walker", "--cash", "100000"], tmp_path, env),
              "account_exists", "choose another name")  # fmt: skip


def test_watch_with_no_market_says_so_in_one_line(tmp_path: Path) -> None:
    env = client_env({"feed": free_endpoint(), "snapshot": free_endpoint()})
    done = _cli(["watch", "AGR", "--seconds", "30"], tmp_path, env)
    _one_line(done, "no snapshot reply", "is the market running?")


def test_strategy_table_says_which_accounts_count_in_total_pnl_only() -> None:
    """An account opened with its own allocation has no trading/inventory split; the strategy
    table says so rather than showing a per-agent figure over fewer agents than it lists."""
    from rich.console import Console

    from agents.config import MarketConfig
    from deploy.leaderboard import OTHER, Row, tables

    def row(name: str, trading: int | None) -> Row:
        inventory = None if trading is None else -500
        return Row(account=name, strategy=OTHER, cash=0, equity=0, pnl=(trading or 0) - 500,
                   trading_pnl=trading, inventory_pnl=inventory, fees=0, settled_through=0,
                   positions={})  # fmt: skip

    market = MarketConfig.model_validate({"name": "m", "symbols": [{"symbol": "AGR"}]})
    console = Console(record=True, width=200)
    for table in tables([row("mine", 4_000), row("by-hand", None)], market):
        console.print(table)
    text = console.export_text()
    assert "other: 1 of 2 accounts" in text and "total PnL only" in text, text
    console = Console(record=True, width=200)
    for table in tables([row("mine", 4_000)], market):
        console.print(table)
    assert "total PnL only" not in console.export_text()


def test_a_second_agora_up_on_taken_ports_says_so_in_one_line(tmp_path: Path) -> None:
    """The ports are asked before anything starts (and before --fresh could touch data)."""
    import socket

    from deploy.services import DEFAULT_PORTS

    holder = socket.socket()
    holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        holder.bind(("127.0.0.1", DEFAULT_PORTS["clearing"]))
    except OSError:
        pass  # something (another market) already listens there: the same situation
    else:
        holder.listen()
    try:
        (tmp_path / "var").mkdir()
        (tmp_path / "var" / "keep").write_text("a running market's data")
        done = _cli(["up", "--fresh", "--duration", "1"], tmp_path, dict(os.environ))
        _one_line(done, f"{DEFAULT_PORTS['clearing']} (clearing)", "--free-ports")
        assert (tmp_path / "var" / "keep").exists()  # --fresh did not run
    finally:
        holder.close()
