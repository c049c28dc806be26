"""A recording made by a live `agora up` market replays, and a market maker's backtest over it
runs end to end through `agora backtest` (real processes on 127.0.0.1, free ports)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq

from tests.probes import wait_until

AGORA = [sys.executable, "-m", "deploy.cli"]
WAIT_S = 180.0  # a safety net against a hang, never a synchronisation

MARKET = """
name = "replayed"
seed = 9

[[symbols]]
symbol = "AGR"
reference_price = 10000
band_bps = 1000

[clearing]
starting_cash = 50_000_000
starting_positions = { AGR = 2000 }

[[populations]]
name = "zi"
strategy = "zi"
count = 30
params = { mean_interval_ns = 100_000_000 }
"""


def _rows(folder: Path) -> int:
    return sum(pq.read_metadata(p).num_rows for p in folder.glob("*.parquet"))


def test_a_live_recording_replays_and_a_market_maker_backtests_over_it(tmp_path: Path) -> None:
    config = tmp_path / "market.toml"
    config.write_text(MARKET)
    data = tmp_path / "market"
    env = {k: v for k, v in os.environ.items() if not k.startswith("AGORA_")}
    env["AGORA_RECORDER_FLUSH_S"] = "0.5"
    err = open(tmp_path / "up.err", "w")  # noqa: SIM115 (closed below)
    up = subprocess.Popen([*AGORA, "up", str(config), "--data-dir", str(data), "--free-ports",
                           "--json"], stdout=subprocess.PIPE, stderr=err, text=True,
                          cwd=tmp_path, env=env)  # fmt: skip
    rec = data / "recorder"
    try:
        assert up.stdout is not None
        for line in up.stdout:  # the ready event
            if line.startswith("{") and json.loads(line).get("event") == "ready":
                break
        else:
            raise AssertionError((tmp_path / "up.err").read_text()[-3000:])
        # wait for the tape we need: trades and quotes recorded (finished files)
        wait_until(lambda: _rows(rec / "trades") >= 30 and _rows(rec / "tob") >= 30,
                   "30 trades and quotes recorded", WAIT_S)  # fmt: skip
        up.send_signal(signal.SIGINT)
        assert up.wait(timeout=WAIT_S) == 0, (tmp_path / "up.err").read_text()[-3000:]
    finally:
        if up.poll() is None:
            up.kill()
            up.wait()
        err.close()

    trades, quotes = _rows(rec / "trades"), _rows(rec / "tob")
    out = tmp_path / "bt"
    r = subprocess.run([*AGORA, "backtest", "fixed_spread_mm", "--data", str(rec),
                        "--fill-rule", "trade-through", "--latency", "0.2ms", "--queue",
                        "displayed", "--param", "requote_on_book=true", "--param",
                        "half_spread_ticks=1", "--out", str(out), "--json"],
                       capture_output=True, text=True, timeout=WAIT_S, cwd=tmp_path)  # fmt: skip
    assert r.returncode == 0, r.stderr[-3000:]
    summary = json.loads(r.stdout.strip().splitlines()[-1])
    # every recorded update was replayed, in the recording's layout
    assert summary["layout"] == "recording" and summary["symbols"] == ["AGR"]
    assert summary["events"] == trades + quotes
    assert summary["fill_rule"] == "trade-through" and summary["queue"] == "displayed"
    assert summary["orders"] > 0
    m = summary["metrics"]["AGR"]
    assert m["market_making"]["fills"] == summary["fills"]
    for name in ("trades", "fills", "orders", "positions", "agents"):
        assert (out / f"{name}.parquet").is_file()
    saved = json.loads((out / "summary.json").read_text())
    assert saved["events"] == summary["events"]
    fills = pq.read_table(out / "fills.parquet").to_pylist()
    assert len(fills) == summary["fills"]
    assert all(f["rule"] in ("trade-through", "taker") for f in fills)
    # the recorded depth gives synthetic quotes: the price of 3 lots through the levels,
    # never better than the recorded touch
    from agents.replay.readers import open_tape
    from agents.replay.stream import load_all
    from agents.replay.tape import NO_ASK, NO_BID, QUOTE

    raw = load_all(open_tape(rec).chunks())
    syn = load_all(open_tape(rec, synthetic_size=3).chunks())
    q = syn.kind == QUOTE
    assert q.sum() == _rows(rec / "book") and (syn.kind != QUOTE).sum() == trades
    both = q & (syn.a != NO_BID) & (syn.c != NO_ASK)
    assert both.any() and (syn.a[both] < syn.c[both]).all()
    rq = raw.kind == QUOTE
    best_bid = raw.a[rq & (raw.a != NO_BID)].max()
    assert syn.a[both].max() <= best_bid
    # and the people's table prints
    cmd = [*AGORA, "backtest", "avellaneda_stoikov", "--data", str(rec), "--fill-rule",
           "quote-through", "--out", str(tmp_path / "as")]
    table = subprocess.run(cmd, capture_output=True, text=True, timeout=WAIT_S, cwd=tmp_path)
    assert table.returncode == 0, table.stderr[-3000:]
    assert "updates replayed" in table.stdout and f"{trades + quotes:,}" in table.stdout
