"""One market file, run live (`agora up`: real processes) and in simulated time
(`agora simulate`): the same strategies trade in both."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq

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


def test_the_same_market_file_trades_live_and_simulated(tmp_path: Path) -> None:
    config = tmp_path / "both.toml"
    config.write_text(MARKET)

    live = subprocess.run(
        [*AGORA, "up", str(config), "--data-dir", str(tmp_path / "var"), "--free-ports",
         "--duration", "8"],
        capture_output=True, text=True, timeout=180, cwd=tmp_path,
    )  # fmt: skip
    assert live.returncode == 0, live.stderr[-3000:]
    summary = json.loads(next(x for x in live.stdout.splitlines()
                              if x.startswith("AGORA_SUMMARY "))[14:])  # fmt: skip
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
    assert traded_live == traded_sim == POPULATIONS, (live_fills, sim_fills)
