"""`agora up` end to end: a market starts, trades flow and settle, the README's custom agent
attaches and trades (finding the market through --data-dir alone), Ctrl-C stops everything,
nothing is left running, the recorder's Parquet files hold the trades, and the leaderboard
splits PnL into trading and inventory. The terminal gets text for people; JSON only with
--json; the admin token never leaves its owner-only file."""

from __future__ import annotations

import json
import os
import queue
import re
import signal
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from agents.market_dir import read_env_file
from deploy.launch import Proc

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


# Keyed by the pipe object itself (held here, so it stays alive): an id() key would be reused
# by a later test's pipe once this one is freed, handing it the old pipe's lines.
_READERS: dict[Any, tuple[queue.Queue, list[str], threading.Thread]] = {}


def _lines(pipe: Any) -> queue.Queue:
    """The pipe's lines as they come (a reader thread: nothing waits unseen in a buffer)."""
    if pipe not in _READERS:
        q: queue.Queue = queue.Queue()
        seen: list[str] = []

        def read() -> None:
            for line in pipe:
                seen.append(line)
                q.put(line)
            q.put(None)

        thread = threading.Thread(target=read, daemon=True)
        thread.start()
        _READERS[pipe] = (q, seen, thread)
    return _READERS[pipe][0]


def _all_of(pipe: Any) -> str:
    """Everything the pipe carried, once it has closed."""
    _lines(pipe)
    _, seen, thread = _READERS[pipe]
    thread.join(WAIT_S)
    return "".join(seen)


def _line(proc: subprocess.Popen, prefix: str, stream: str = "stdout") -> str:
    """The next line of the child's `stream` that starts with `prefix` (what follows it)."""
    q = _lines(getattr(proc, stream))
    deadline = time.monotonic() + WAIT_S
    while (left := deadline - time.monotonic()) > 0:
        try:
            line = q.get(timeout=left)
        except queue.Empty:
            break
        if line is None:
            break
        if line.startswith(prefix):
            return line[len(prefix) :]
    raise AssertionError(f"no {prefix!r} line")


def _event(proc: subprocess.Popen, event: str) -> dict:
    """The next JSON line of `agora up --json` with this "event"."""
    while True:
        msg = json.loads("{" + _line(proc, "{"))
        if msg.get("event") == event:
            return msg


def _without_agora_vars() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("AGORA_")}


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

    data = tmp_path / "market"  # not ./var: the commands below must be told where it is
    up_err = open(tmp_path / "up.err", "w")  # noqa: SIM115 (closed below)
    up = subprocess.Popen(
        [*AGORA, "up", str(config), "--data-dir", str(data), "--free-ports", "--json"],
        stdout=subprocess.PIPE, stderr=up_err, text=True, cwd=tmp_path,
        env=_without_agora_vars(),
    )  # fmt: skip
    try:
        try:
            ready = _event(up, "ready")
        except AssertionError:
            raise AssertionError((tmp_path / "up.err").read_text()[-3000:]) from None
        token_file = data / "admin.token"
        token = token_file.read_text().strip()
        assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
        assert ready["admin_token_file"] == str(token_file) and token not in json.dumps(ready)
        # the env file: every address, the token's path, never the token
        env_text = (data / "agora.env").read_text()
        assert token not in env_text
        file_env = read_env_file(data / "agora.env")
        ep = ready["endpoints"]
        assert file_env["AGORA_GATEWAY"] == ep["gateway"] and file_env["AGORA_FEED"] == ep["feed"]
        assert file_env["AGORA_CLEARING"] == ep["clearing"]
        assert file_env["AGORA_DATA_DIR"] == str(data)
        assert file_env["AGORA_ADMIN_TOKEN_FILE"] == str(token_file)
        # attach finds addresses and token through --data-dir alone (no AGORA_* set)
        # it trades until its first fill (its own log line), then gets a Ctrl-C
        attach = Proc([*AGORA, "attach", "my_agent.py:DipBuyer", "--name", "mine",
                       "--data-dir", "market"], _without_agora_vars(), cwd=tmp_path)  # fmt: skip
        try:
            attach.wait_log(lambda line: '"filled"' in line, timeout=WAIT_S)
        finally:
            err = attach.stop(signal.SIGINT, timeout=WAIT_S)
        assert attach.returncode == 0, err[-3000:]
        result = json.loads(next(x for x in attach.output.splitlines()
                                 if x.startswith("AGORA_RESULT "))[13:])  # fmt: skip
        assert result["fills"] > 0 and result["mismatches"] == [] and result["errors"] == 0
        assert token not in attach.output + err
        # the leaderboard of the running market, found through AGORA_DATA_DIR
        board = subprocess.run([*AGORA, "accounts"], capture_output=True, text=True,
                               env={**_without_agora_vars(), "AGORA_DATA_DIR": str(data)},
                               timeout=WAIT_S, cwd=tmp_path)  # fmt: skip
        assert board.returncode == 0, board.stderr
        assert "mine" in board.stdout and "42 accounts" in board.stdout
        assert "ranked by trading PnL" in board.stdout and "ZeroIntelligence" in board.stdout
        # a data directory that is not there: one line, exit 2
        wrong = subprocess.run([*AGORA, "accounts", "--data-dir", "nowhere"], cwd=tmp_path,
                               env=_without_agora_vars(), capture_output=True, text=True,
                               timeout=WAIT_S)  # fmt: skip
        assert wrong.returncode == 2 and "nowhere" in wrong.stderr
        assert len(wrong.stderr.strip().splitlines()) == 1
        # the README's feed example prints trades as they happen
        feed_code = re.search(r"## Subscribe to the price feed\n\n```python\n(.*?)```",
                              (ROOT / "README.md").read_text(), re.S)  # fmt: skip
        assert feed_code, "README lost its feed example"
        (tmp_path / "feed.py").write_text(feed_code.group(1))
        # another terminal: `source market/agora.env`, then any program finds the market
        feed = subprocess.Popen(
            ["bash", "-c", f"source market/agora.env && exec {sys.executable} feed.py"],
            env=_without_agora_vars(), cwd=tmp_path, text=True, stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
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
            summary = _event(up, "summary")
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
    saved = json.loads((data / "summary.json").read_text())
    assert saved["accounts"] == summary["accounts"] and saved["trades"] == summary["trades"]
    # the honest leaderboard: every account's split is known and adds up to clearing's PnL,
    # ranked by trading PnL; the idle part (inventory) is the same per share for everyone
    rows = summary["accounts"]
    assert all(a["trading_pnl"] + a["inventory_pnl"] == a["pnl"] for a in rows)
    assert [a["trading_pnl"] for a in rows] == sorted((a["trading_pnl"] for a in rows),
                                                      reverse=True)  # fmt: skip
    assert len({a["inventory_pnl"] for a in rows}) == 1  # all started with 2,000 AGR
    classes = {g["strategy"]: g for g in summary["strategies"]}
    assert classes["ZeroIntelligence"]["agents"] == 40 and classes["other"]["agents"] == 1
    assert sum(g["trading_pnl"] for g in classes.values()) == sum(a["trading_pnl"] for a in rows)
    # next to the PnL: the fill ratio the runners counted, Sharpe and drawdown as sampled
    assert all(0 < a["fill_ratio"] <= 1 for a in rows if a["strategy"] == "ZeroIntelligence"
               and a["trading_pnl"] != 0)  # fmt: skip
    assert 0 < classes["ZeroIntelligence"]["fill_ratio"] <= 1
    assert "sampled every" in summary["metrics_note"]
    assert all(a["max_drawdown"] is None or a["max_drawdown"] >= 0 for a in rows)
    # the recorder's Parquet files hold them: a contiguous run of trade ids up to the last
    files = sorted((data / "recorder" / "trades").glob("*.parquet"))
    assert files
    ids = sorted(i for f in files for i in pq.read_table(f).column("trade_id").to_pylist())
    assert ids == list(range(ids[0], settled + 1))
    assert settled - ids[0] + 1 >= summary["trades"]


SMALL = """
name = "small"

[[symbols]]
symbol = "AGR"

[[populations]]
name = "zi"
strategy = "zi"
count = 1
"""


def test_agora_up_prints_for_people_and_keeps_the_token_in_its_file(tmp_path: Path) -> None:
    """Without --json: no JSON and no secret on the terminal; it says where things are."""
    config = tmp_path / "small.toml"
    config.write_text(SMALL)
    up = subprocess.Popen(
        [*AGORA, "up", str(config), "--data-dir", "var", "--free-ports"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path,
        env=_without_agora_vars(),
    )  # fmt: skip
    try:
        _line(up, "  Ctrl-C stops", stream="stderr")  # the last line of where-things-are
        up.send_signal(signal.SIGINT)
        assert up.wait(timeout=WAIT_S) == 0
    finally:
        if up.poll() is None:
            up.kill()
            up.wait()
    assert up.stdout is not None and up.stderr is not None
    out, err = _all_of(up.stdout), _all_of(up.stderr)
    token = (tmp_path / "var" / "admin.token").read_text().strip()
    assert out == ""  # stdout is for --json only
    assert token not in err
    assert "AGORA_" not in err and not [ln for ln in err.splitlines() if ln.startswith("{")]
    assert "leaderboard" in err and "summary (JSON)" in err
    summary = json.loads((tmp_path / "var" / "summary.json").read_text())
    assert summary["market"] == "small" and len(summary["accounts"]) == 1


def test_a_stop_right_after_ctrl_c_at_start_up_never_fails(tmp_path: Path) -> None:
    """Ctrl-C can land while the PnL sampler thread is being started (the instant after the
    where-things-are lines): the stop must then go through, not fail joining a thread that
    never ran, and the sampler, if it runs at all, ends at once."""
    from agents.config import load_market
    from deploy.up import Up

    config = tmp_path / "small.toml"
    config.write_text(SMALL)
    up = Up(load_market(config), tmp_path / "var")
    up._sampler = threading.Thread(target=lambda: None)  # created, interrupted before start
    up.stop_sampling()  # raised RuntimeError("cannot join thread before it is started")
    assert up._sampling.is_set()
    up._sampler.start()
    up.stop_sampling()  # and once it runs, joining it works as before
    assert not up._sampler.is_alive()
