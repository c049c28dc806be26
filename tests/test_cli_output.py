"""What people read: units as prices, shares, money and times; help without artefacts; the
market's data directory (env file, token lookup); the leaderboard ranked by trading PnL."""

from __future__ import annotations

import os
import re
import stat
from decimal import Decimal
from pathlib import Path

import pytest
from typer.testing import CliRunner

from agents import market_dir
from agents.cli_help import plain_help
from agents.config import ClearingTerms, MarketConfig, Population
from agents.units import money, price, shares, spec_for, timestamp
from clearing.protocol import AccountBalance, PositionInfo
from deploy.cli import app
from deploy.leaderboard import OTHER, by_strategy, rank
from exchange.symbols import SymbolSpec

# ------------------------------------------------------------------------------ units


def test_prices_shares_money_and_times() -> None:
    agr = SymbolSpec(symbol="AGR")  # tick 0.01, lot 1
    assert price(agr, 10_025) == "100.25" and price(agr, 123_456_789) == "1,234,567.89"
    assert price(agr, None) == "-"
    fine = SymbolSpec(symbol="FX", tick_size="0.0005", lot_size="0.1", reference_price=2_000)
    assert price(fine, 2_001) == "1.0005" and shares(fine, 25) == "2.5"
    coarse = SymbolSpec(symbol="BIG", tick_size="5", reference_price=100)
    assert price(coarse, 7) == "35" and shares(agr, 1_500) == "1,500"
    assert money(-123_456) == "-1,234.56" and money(0) == "0.00"
    assert money(5, Decimal("1")) == "5"
    ns = 1_714_568_400 * 10**9 + 123_456_789
    assert re.fullmatch(r"\d\d:\d\d:\d\d\.123", timestamp(ns))
    assert spec_for("FX", [agr, fine]) is fine and spec_for("ZZZ", [agr]).tick_size == agr.tick_size


# ------------------------------------------------------------------------------ help


def _commands(group: object, path: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], object]]:
    out = []
    for name, cmd in getattr(group, "commands", {}).items():
        out.append(((*path, name), cmd))
        out += _commands(cmd, (*path, name))
    return out


def test_every_help_reads_cleanly() -> None:
    """No ``<str>``/``<bool>`` type tags, and no help text eaten as rich markup."""
    import typer.main

    root = plain_help(typer.main.get_command(app))
    commands = _commands(root)
    assert {("up",), ("attach",), ("accounts",), ("watch",), ("agents", "run")} <= {
        p for p, _ in commands
    }
    runner = CliRunner()
    for path, cmd in [((), root), *commands]:
        result = runner.invoke(app, [*path, "--help"], env={"COLUMNS": "200"})
        assert result.exit_code == 0, (path, result.output)
        text = result.output
        assert not re.search(r"<(str|bool|int|float|path|list\[[a-z]+\])>", text), (path, text)
        flat = " ".join(text.replace("│", " ").split())
        for param in getattr(cmd, "params", []):
            if param.help:  # every word of every help text is on the screen, brackets too
                assert " ".join(param.help.split()) in flat, (path, param.help)


def test_python_m_agents_help_reads_cleanly_too() -> None:
    """`python -m agents` is its own typer app: the same clean help."""
    from agents.cli import app as agents_app

    runner = CliRunner()
    for path in ((), ("attach",), ("run",), ("list",)):
        result = runner.invoke(agents_app, [*path, "--help"], env={"COLUMNS": "200"})
        assert result.exit_code == 0, (path, result.output)
        assert not re.search(r"<(str|bool|int|float|path|list\[[a-z]+\])>", result.output), (
            path, result.output,
        )  # fmt: skip


# ------------------------------------------------------------------------------ data dir


def test_env_file_round_trip_and_lookup_order(tmp_path: Path, monkeypatch) -> None:
    for var in [v for v in os.environ if v.startswith("AGORA_")]:
        monkeypatch.delenv(var)
    data = tmp_path / "m"
    data.mkdir()
    symbols = '[{"symbol":"AGR","tick_size":"0.05"}]'
    market_dir.write_env_file(data / market_dir.ENV_FILE, {
        "AGORA_GATEWAY": "tcp://127.0.0.1:6001", "AGORA_FEED": "tcp://127.0.0.1:6002",
        "AGORA_SYMBOLS": symbols, "AGORA_DATA_DIR": str(data),
    }, comment="two\nlines")  # fmt: skip
    assert market_dir.read_env_file(data / "agora.env")["AGORA_SYMBOLS"] == symbols
    (data / "admin.token").write_text("s3cret\n")

    s = market_dir.client_settings(data)
    assert (s.gateway, s.feed, s.admin_token) == ("tcp://127.0.0.1:6001", "tcp://127.0.0.1:6002",
                                                  "s3cret")  # fmt: skip
    assert s.symbols is not None and s.symbols[0].tick_size == Decimal("0.05")
    # what the environment says explicitly wins; AGORA_DATA_DIR stands in for --data-dir
    monkeypatch.setenv("AGORA_FEED", "tcp://elsewhere:1")
    monkeypatch.setenv("AGORA_DATA_DIR", str(data))
    s = market_dir.client_settings()
    assert (s.gateway, s.feed) == ("tcp://127.0.0.1:6001", "tcp://elsewhere:1")
    other = tmp_path / "other.token"
    other.write_text("t2")
    monkeypatch.setenv("AGORA_ADMIN_TOKEN_FILE", str(other))
    assert market_dir.client_settings().admin_token == "t2"
    monkeypatch.setenv("AGORA_ADMIN_TOKEN", "t3")
    assert market_dir.client_settings().admin_token == "t3"
    # a directory that was asked for and is not there is a clear error
    with pytest.raises(market_dir.MarketDirError, match="nowhere"):
        market_dir.client_settings(tmp_path / "nowhere")


def test_a_missing_data_dir_is_one_line_and_exit_2(tmp_path: Path) -> None:
    for argv in (["accounts"], ["open-account", "x"], ["watch", "AGR"], ["attach", "m.py:A"]):
        result = CliRunner().invoke(app, [*argv, "--data-dir", str(tmp_path / "gone")])
        assert result.exit_code == 2, (argv, result.output)
        assert "no market data directory" in result.output and "Traceback" not in result.output


def test_open_account_token_goes_to_an_owner_only_file(tmp_path: Path, monkeypatch) -> None:
    from deploy.launch import start_market

    for var in [v for v in os.environ if v.startswith("AGORA_")]:
        monkeypatch.delenv(var)
    market = start_market(tmp_path / "svc")
    try:
        data = tmp_path / "data"
        data.mkdir()
        market_dir.write_env_file(data / "agora.env", {"AGORA_CLEARING": market.endpoints[
            "clearing"]})  # fmt: skip
        (data / "admin.token").write_text(market.admin_token)
        result = CliRunner().invoke(app, ["open-account", "alice", "--data-dir", str(data)])
        assert result.exit_code == 0, result.output
    finally:
        market.stop()
    path = data / "accounts" / "alice.env"
    values = market_dir.read_env_file(path)
    assert values["AGORA_ACCOUNT"] == "alice" and len(values["AGORA_TOKEN"]) > 10
    assert values["AGORA_TOKEN"] not in result.output and str(path) in result.output
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


# ------------------------------------------------------------------------------ leaderboard


def _balance(account: str, cash: int, qty: int, mark: int, given: int = 100) -> AccountBalance:
    """An account that started with 1,000,000 cash units and `given` AGR at 10,000."""
    start_value = given * 10_000
    equity = cash + qty * mark
    return AccountBalance(
        account=account, cash=cash, deposits=1_000_000, fees_paid=0, equity=equity,
        pnl=equity - 1_000_000 - start_value, settled_through=7,
        positions=[PositionInfo(symbol="AGR", qty=qty, avg_cost=0.0, realised=0, unrealised=0,
                                mark=mark)],
    )  # fmt: skip


def test_the_leaderboard_ranks_by_trading_pnl_not_by_drift() -> None:
    market = MarketConfig(
        symbols=[SymbolSpec(symbol="AGR", reference_price=10_000)],
        clearing=ClearingTerms(starting_cash=1_000_000, starting_positions={"AGR": 100}),
        populations=[Population(name="zi", strategy="zi", count=2),
                     Population(name="mm", strategy="fixed_spread_mm", count=1)],
    )  # fmt: skip
    # The price rose from 100.00 to 110.00. zi-0 did nothing: +100,000 of drift, no trading.
    idle = _balance("zi-0", 1_000_000, 100, 11_000)
    # mm-0 sold 50 at 105.00 (below today's mark): a trading loss of 50 x 500 = -25,000
    seller = _balance("mm-0", 1_000_000 + 50 * 10_500, 50, 11_000)
    # zi-1 bought 20 at 102.00: +20 x 800 = +16,000 of trading PnL
    buyer = _balance("zi-1", 1_000_000 - 20 * 10_200, 120, 11_000)
    # someone opened by hand with 10 shares, not the market's 100: no split guessed
    odd = _balance("alice", 1_000_000, 10, 11_000, given=10)
    rows = rank([idle, seller, buyer, odd], market)
    assert [r.account for r in rows] == ["zi-1", "zi-0", "mm-0", "alice"]
    assert [(r.trading_pnl, r.inventory_pnl) for r in rows[:3]] == [
        (16_000, 100_000), (0, 100_000), (-25_000, 100_000)]  # fmt: skip
    assert (rows[3].trading_pnl, rows[3].strategy, rows[3].pnl) == (None, OTHER, 10_000)
    assert [r.strategy for r in rows[:3]] == ["ZeroIntelligence", "ZeroIntelligence",
                                              "FixedSpreadMarketMaker"]  # fmt: skip
    classes = {g["strategy"]: g for g in by_strategy(rows)}
    assert classes["ZeroIntelligence"]["trading_pnl"] == 16_000
    assert classes["ZeroIntelligence"]["trading_pnl_per_agent"] == 8_000
    assert classes["FixedSpreadMarketMaker"]["inventory_pnl"] == 100_000
    assert classes[OTHER]["unknown"] == 1 and classes[OTHER]["trading_pnl_per_agent"] is None
    # no market file: clearing's total only
    assert all(r.trading_pnl is None for r in rank([idle, buyer], None))
