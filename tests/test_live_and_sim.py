"""One market file, run live (`agora up`: real processes) and in simulated time
(`agora simulate`): the same strategies trade in both.

The live market runs until every population has traded (as the exchange's drop copy shows),
not for a fixed stretch of wall time: how much happens in a few seconds depends on how busy
the machine is, and a correct run must not fail on a loaded one.
"""

from __future__ import annotations

import json
import selectors
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
from dropcopy import DropCopy

MARKET = """
name = "both"
seed = 4
fundamental_interval_s = 0.2

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
count = 20
params = { mean_interval_ns = 200_000_000 }

[[populations]]
name = "fv"
strategy = "fair_value"
count = 10
params = { rate_per_s = 2.0 }

[[populations]]
name = "noise"
strategy = "noise"
count = 3

[[populations]]
name = "mm"
strategy = "fixed_spread_mm"
count = 2
params = { half_spread_ticks = 1, size = 20, requote_interval_ns = 200_000_000 }
"""
POPULATIONS = {"zi", "fv", "noise", "mm"}
AGORA = [sys.executable, "-m", "deploy.cli"]
WAIT_S = 180.0  # a safety net against a hang, never a synchronisation


def _ready(up: subprocess.Popen) -> dict:
    """`agora up --json`'s ready event (printed once every service is up)."""
    assert up.stdout is not None
    sel = selectors.DefaultSelector()
    sel.register(up.stdout, selectors.EVENT_READ)
    deadline = time.monotonic() + WAIT_S
    try:
        while (left := deadline - time.monotonic()) > 0 and sel.select(left):
            line = up.stdout.readline()
            if not line:
                break
            event = json.loads(line) if line.startswith("{") else {}
            if event.get("event") == "ready":
                return event
    finally:
        sel.close()
    raise AssertionError("agora up ended (or hung) before it was ready")


def test_the_same_market_file_trades_live_and_simulated(tmp_path: Path) -> None:
    config = tmp_path / "both.toml"
    config.write_text(MARKET)

    err_path = tmp_path / "up.err"
    with open(err_path, "w") as err:
        up = subprocess.Popen(
            [*AGORA, "up", str(config), "--data-dir", str(tmp_path / "var"), "--free-ports",
             "--json"],
            stdout=subprocess.PIPE, stderr=err, text=True, cwd=tmp_path,
        )  # fmt: skip
        try:
            drop = DropCopy(_ready(up)["endpoints"]["dropcopy"])
            try:  # until every population has traded (or the safety net ran out)
                drop.wait(lambda d: set(d.populations) >= POPULATIONS, WAIT_S)
            finally:
                drop.close()
            up.send_signal(signal.SIGTERM)  # stops it as Ctrl-C does
            out, _ = up.communicate(timeout=WAIT_S)
        finally:
            if up.poll() is None:
                up.kill()
                up.communicate()
    assert up.returncode == 0, err_path.read_text()[-3000:]
    events = [json.loads(x) for x in out.splitlines() if x.startswith("{")]
    summary = next(e for e in events if e.get("event") == "summary")
    live_fills = {name.removeprefix("agents-"): r["fills"]
                  for name, r in summary["agents"].items()}  # fmt: skip
    assert set(live_fills) == POPULATIONS
    assert all(r["mismatches"] == 0 for r in summary["agents"].values())

    sim = subprocess.run(
        [*AGORA, "simulate", str(config), "--until", "8", "--out", str(tmp_path / "sim"),
         "--no-progress"],
        capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    assert sim.returncode == 0, sim.stderr[-3000:]
    agents = pq.read_table(tmp_path / "sim" / "agents.parquet").to_pylist()
    sim_fills: dict[str, int] = {}
    for row in agents:
        pop = row["name"].rsplit("-", 1)[0]
        sim_fills[pop] = sim_fills.get(pop, 0) + row["fills"]
    assert set(sim_fills) == POPULATIONS

    traded_live = {p for p, n in live_fills.items() if n > 0}
    traded_sim = {p for p, n in sim_fills.items() if n > 0}
    assert traded_live == traded_sim == POPULATIONS, (live_fills, sim_fills, drop.populations)
