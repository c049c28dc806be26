"""`agora up` end to end: a market starts, trades flow and settle, the README's custom agent
attaches and trades, Ctrl-C stops everything, nothing is left running, and the recorder's
Parquet files hold the trades."""

from __future__ import annotations

import json
import os
import re
import selectors
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq

from deploy.launch import Proc, client_env

ROOT = Path(__file__).resolve().parent.parent
AGORA = [sys.executable, "-m", "deploy.cli"]
WAIT_S = 120.0  # a safety net against a hang, never a synchronisation

MARKET = """
name = "e2e"
seed = 5
fundamental_interval_s = 0.2

[[symbols]]
symbol = "AGR"
reference_price = 10000
band_bps = 1000

[clearing]
starting_cash = 50_000_000
starting_positions = { AGR = 2000 }
fees = { maker_bps = -1.0, taker_bps = 2.0 }

[[populations]]
name = "zi"
strategy = "zi"
count = 40
params = { mean_interval_ns = 250_000_000 }

[[populations]]
name = "mm"
strategy = "fixed_spread_mm"
count = 1
"""


def _line(proc: subprocess.Popen, prefix: str) -> str:
    assert proc.stdout is not None
    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ)
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline and sel.select(deadline - time.monotonic()):
        line = proc.stdout.readline()
        if not line:
            break
        if line.startswith(prefix):
            return line[len(prefix) :]
    raise AssertionError(f"no {prefix!r} line")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie (exited, not yet reaped by a dead parent) is not running
    with open(f"/proc/{pid}/stat") as fh:
        return fh.read().split(")")[-1].split()[0] != "Z"


def test_agora_up_attach_ctrl_c(tmp_path: Path) -> None:
    config = tmp_path / "market.toml"
    config.write_text(MARKET)
    agent_code = re.search(r"## Attach your own agent\n.*?```python\n(.*?)```",
                           (ROOT / "README.md").read_text(), re.S)  # fmt: skip
    assert agent_code, "README lost its custom agent"
    (tmp_path / "my_agent.py").write_text(agent_code.group(1))

    up_err = open(tmp_path / "up.err", "w")  # noqa: SIM115 (closed below)
    up = subprocess.Popen(
        [*AGORA, "up", str(config), "--data-dir", str(tmp_path / "var"), "--free-ports"],
        stdout=subprocess.PIPE, stderr=up_err, text=True, cwd=tmp_path,
    )  # fmt: skip
    try:
        try:
            ready = json.loads(_line(up, "AGORA_READY "))
        except AssertionError:
            raise AssertionError((tmp_path / "up.err").read_text()[-3000:]) from None
        ep = ready["endpoints"]
        env = client_env(ep, ready["admin_token"])
        # it trades until its first fill (its own log line), then gets a Ctrl-C
        attach = Proc([*AGORA, "attach", "my_agent.py:DipBuyer", "--name", "mine"], env,
                      cwd=tmp_path)  # fmt: skip
        try:
            attach.wait_log(lambda line: '"filled"' in line, timeout=WAIT_S)
        finally:
            err = attach.stop(signal.SIGINT, timeout=WAIT_S)
        assert attach.returncode == 0, err[-3000:]
        result = json.loads(next(x for x in attach.output.splitlines()
                                 if x.startswith("AGORA_RESULT "))[13:])  # fmt: skip
        assert result["fills"] > 0 and result["mismatches"] == [] and result["errors"] == 0
        # the leaderboard of the running market
        board = subprocess.run([*AGORA, "accounts"], env=env, capture_output=True, text=True,
                               timeout=WAIT_S, cwd=tmp_path)  # fmt: skip
        assert board.returncode == 0, board.stderr
        assert "mine" in board.stdout and "42 accounts" in board.stdout
        # the README's feed example prints trades as they happen
        feed_code = re.search(r"## Subscribe to the price feed\n\n```python\n(.*?)```",
                              (ROOT / "README.md").read_text(), re.S)  # fmt: skip
        assert feed_code, "README lost its feed example"
        (tmp_path / "feed.py").write_text(feed_code.group(1))
        feed = subprocess.Popen([sys.executable, "feed.py"], env=env, cwd=tmp_path, text=True,
                                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)  # fmt: skip
        try:
            trade_id, price, qty, side = _line(feed, "").split()
            assert int(trade_id) > 0 and float(price) > 0 and int(qty) > 0
            assert side in ("buy", "sell", "none")
            for _ in range(10):  # more trades, so the tape below has seen more than ten
                _line(feed, "")
        finally:
            feed.kill()
            feed.wait()
        up.send_signal(signal.SIGINT)  # Ctrl-C
        try:
            summary = json.loads(_line(up, "AGORA_SUMMARY "))
        except AssertionError:
            raise AssertionError((tmp_path / "up.err").read_text()[-3000:]) from None
        assert up.wait(timeout=WAIT_S) == 0
    finally:
        if up.poll() is None:
            up.kill()
            up.wait()
        up_err.close()

    assert not [p for p in ready["pids"].values() if _alive(p)], "a service outlived agora up"
    # trades flowed and were settled: clearing's books cover every trade the tape showed
    assert summary["trades"] > 10
    settled = max(a["settled_through"] for a in summary["accounts"])
    assert settled >= summary["trades"]
    assert summary["agents"]["agents-zi"]["mismatches"] == 0
    assert any(a["account"] == "mine" for a in summary["accounts"])
    # the recorder's Parquet files hold them: a contiguous run of trade ids up to the last
    files = sorted((tmp_path / "var" / "recorder" / "trades").glob("*.parquet"))
    assert files
    ids = sorted(i for f in files for i in pq.read_table(f).column("trade_id").to_pylist())
    assert ids == list(range(ids[0], settled + 1))
    assert settled - ids[0] + 1 >= summary["trades"]
