"""A user's mistake is one clear line on stderr and exit status 2, never a traceback.

Each mistake is made for real, in a subprocess, the way a user would make it: a market file
with a typo, a malformed ``AGORA_*`` variable, a port that another program holds, a damaged
database. The processes run on loopback with free ports.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from agents.cli import MARKET_CHECK_S
from deploy.launch import free_endpoint

TIMEOUT_S = 120  # a safety net for a hung process, not a measure of speed
AGORA = [sys.executable, "-m", "deploy.cli"]

GOOD_SYMBOL = '[[symbols]]\nsymbol = "AGR"\n'


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AGORA_")}
    return {**env, **extra}


def _run(argv: list[str], cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, cwd=cwd, env=_env(**env), capture_output=True, text=True,
                          timeout=TIMEOUT_S)  # fmt: skip


def one_line(done: subprocess.CompletedProcess[str]) -> str:
    """The single stderr line of a refused start (asserting there is exactly one)."""
    assert "Traceback" not in done.stderr, done.stderr[-3000:]
    assert done.returncode == 2, (done.returncode, done.stderr[-2000:])
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    return lines[0]


def _simulate(tmp_path: Path, market: str) -> str:
    path = tmp_path / "market.toml"
    path.write_text(market)
    return one_line(_run([*AGORA, "simulate", str(path), "--until", "1", "--out",
                          str(tmp_path / "out")], tmp_path))  # fmt: skip


# ------------------------------------------------------------------------------ market files
def test_a_toml_syntax_error_names_the_file_line_and_column(tmp_path: Path) -> None:
    line = _simulate(tmp_path, GOOD_SYMBOL + "tick_size = \n")
    assert "market.toml" in line and "line 3, column 13" in line, line


def test_an_unknown_key_suggests_the_nearest_valid_name(tmp_path: Path) -> None:
    line = _simulate(tmp_path, GOOD_SYMBOL + 'tick_sise = "0.01"\n')
    assert "unknown key 'tick_sise' in symbols[0]" in line and "did you mean 'tick_size'" in line
    line = _simulate(tmp_path, GOOD_SYMBOL + "[clearing]\nstarting_csh = 5\n")
    assert "did you mean 'starting_cash'" in line, line


def test_a_negative_tick_size_is_refused(tmp_path: Path) -> None:
    line = _simulate(tmp_path, GOOD_SYMBOL + 'tick_size = "-0.01"\n')
    assert "symbols[0].tick_size" in line and "greater than 0" in line, line


def test_a_zero_lot_size_is_refused(tmp_path: Path) -> None:
    line = _simulate(tmp_path, GOOD_SYMBOL + "lot_size = 0\n")
    assert "symbols[0].lot_size" in line and "greater than 0" in line, line


def test_a_market_without_symbols_is_refused(tmp_path: Path) -> None:
    line = _simulate(tmp_path, 'name = "no-symbols"\nseed = 3\n')
    assert "no [[symbols]]" in line, line  # it used to run a default AGR silently


def test_starting_positions_in_a_symbol_the_market_does_not_list(tmp_path: Path) -> None:
    line = _simulate(tmp_path, GOOD_SYMBOL + "[clearing.starting_positions]\nXYZ = 5\n")
    assert "starting_positions names XYZ" in line and "AGR" in line, line
    pop = '[[populations]]\nname = "z"\nstrategy = "zi"\npositions = { ABC = 1 }\n'
    line = _simulate(tmp_path, GOOD_SYMBOL + pop)
    assert "population 'z'" in line and "ABC" in line, line


def test_a_missing_market_file_is_one_line(tmp_path: Path) -> None:
    line = one_line(_run([*AGORA, "compose", "nope.toml"], tmp_path))
    assert "No such file or directory: nope.toml" in line, line


# ------------------------------------------------------------------------------ processes
@pytest.fixture
def taken_port() -> Iterator[int]:
    """A port another program listens on."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


def _exchange_env(tmp_path: Path, **env: str) -> dict[str, str]:
    binds = {f"AGORA_EXCHANGE_{r}_BIND": "tcp://127.0.0.1:*"
             for r in ("GATEWAY", "FEED", "SNAPSHOT", "DROPCOPY")}  # fmt: skip
    return {**binds, "AGORA_EXCHANGE_DATA_DIR": str(tmp_path / "ex"), **env}


def test_a_port_in_use_names_the_port_and_the_service(tmp_path: Path, taken_port: int) -> None:
    env = _exchange_env(tmp_path, AGORA_EXCHANGE_FEED_BIND=f"tcp://127.0.0.1:{taken_port}")
    line = one_line(_run([sys.executable, "-m", "exchange"], tmp_path, **env))
    assert line.startswith("exchange: ") and f"port {taken_port} (feed" in line, line
    assert "AGORA_EXCHANGE_FEED_BIND" in line, line
    done = _run([sys.executable, "-m", "clearing"], tmp_path,
                AGORA_CLEARING_API_BIND=f"tcp://127.0.0.1:{taken_port}",
                AGORA_CLEARING_DATA_DIR=str(tmp_path / "cl"))  # fmt: skip
    line = one_line(done)
    assert line.startswith("clearing: ") and f"port {taken_port}" in line, line
    done = _run([sys.executable, "-m", "agents.fundamental"], tmp_path,
                AGORA_FUNDAMENTAL_BIND=f"tcp://127.0.0.1:{taken_port}")  # fmt: skip
    assert f"port {taken_port}" in one_line(done)


def test_a_port_above_65535_is_refused_not_wrapped(tmp_path: Path) -> None:
    env = _exchange_env(tmp_path, AGORA_EXCHANGE_GATEWAY_BIND="tcp://127.0.0.1:99999")
    line = one_line(_run([sys.executable, "-m", "exchange"], tmp_path, **env))
    assert "AGORA_EXCHANGE_GATEWAY_BIND" in line and "99999" in line, line
    line = one_line(_run([*AGORA, "exchange", "--metrics-port", "70000"], tmp_path,
                         **_exchange_env(tmp_path)))  # fmt: skip
    assert "metrics_port" in line and "70000" in line, line


def test_a_corrupt_clearing_database(tmp_path: Path) -> None:
    data = tmp_path / "clearing"
    data.mkdir()
    (data / "clearing.sqlite").write_bytes(b"this is not a database\n" * 200)
    done = _run([sys.executable, "-m", "clearing"], tmp_path,
                AGORA_CLEARING_API_BIND="tcp://127.0.0.1:*",
                AGORA_CLEARING_DATA_DIR=str(data))  # fmt: skip
    line = one_line(done)
    assert "clearing database" in line and "clearing.sqlite" in line, line


@pytest.mark.parametrize(("module", "var", "value"), [
    ("exchange", "AGORA_EXCHANGE_SYMBOLS", '[{"symbol": '),
    ("exchange", "AGORA_EXCHANGE_RATE_LIMIT", "fast"),
    ("clearing", "AGORA_CLEARING_STARTING_CASH", "-5"),
    ("clearing", "AGORA_CLEARING_STARTING_POSITIONS", '{"XYZ": 3}'),
    ("agents.fundamental", "AGORA_FUNDAMENTAL_INTERVAL_S", "soon"),
    ("agents.recorder", "AGORA_RECORDER_CHANNELS", '["trades", "nope"]'),
])  # fmt: skip
def test_a_malformed_variable_is_named(tmp_path: Path, module: str, var: str, value: str) -> None:
    env = {**_exchange_env(tmp_path), "AGORA_CLEARING_DATA_DIR": str(tmp_path / "cl"), var: value}
    line = one_line(_run([sys.executable, "-m", module], tmp_path, **env))
    assert var in line, line


def test_a_malformed_client_variable_is_named(tmp_path: Path) -> None:
    done = _run([sys.executable, "-m", "agents", "attach", "x.py:X"], tmp_path,
                AGORA_GATEWAY="127.0.0.1:5555")  # fmt: skip
    line = one_line(done)
    assert "AGORA_GATEWAY" in line and "tcp://" in line, line


def test_attach_with_no_market_says_so_and_how_to_start_one(tmp_path: Path) -> None:
    (tmp_path / "my_agent.py").write_text("from agents import Agent\n\n\nclass A(Agent):\n"
                                          "    pass\n")  # fmt: skip
    nobody = free_endpoint()  # nothing listens there
    done = _run([*AGORA, "attach", "my_agent.py:A"], tmp_path, AGORA_SNAPSHOT=nobody)
    line = one_line(done)
    assert f"no market answers at {nobody}" in line and "agora up" in line, line
    assert MARKET_CHECK_S <= 2.0  # said within a second or two, not after a logon timeout


def test_an_unknown_strategy_is_one_line(tmp_path: Path) -> None:
    line = one_line(_run([sys.executable, "-m", "agents", "run", "zi_typo"], tmp_path))
    assert "unknown strategy 'zi_typo'" in line, line


@pytest.mark.parametrize(("argv", "says"), [
    (["attach"], "Missing argument 'TARGET'"),
    (["up", "--bogus"], "No such option: --bogus"),
    (["simulate", "examples/market.toml", "--until", "soon"], "Invalid value for '--until'"),
])  # fmt: skip
def test_a_command_line_mistake_is_one_line(tmp_path: Path, argv: list[str], says: str) -> None:
    line = one_line(_run([*AGORA, *argv], tmp_path))
    assert says in line and "--help" in line and "╭" not in line, line


def test_python_m_agents_usage_mistake_is_one_line(tmp_path: Path) -> None:
    line = one_line(_run([sys.executable, "-m", "agents", "attach"], tmp_path))
    assert line.startswith("agents: Missing argument 'TARGET'"), line
