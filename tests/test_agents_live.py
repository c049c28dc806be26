"""A mixed crowd of agents trading live: exchange + clearing + fundamental + one runner process.

More than 100 agents across the strategies trade on real processes (until the drop copy
shows trades by several strategies, then a Ctrl-C); their trades settle; every agent's final
cash and position in the clearing house equal its own view (the runner reconciles both at the
end and reports any difference in its ``AGORA_RESULT`` line).
"""

from __future__ import annotations

import json
import signal
import sys
from pathlib import Path

from dropcopy import DropCopy

from deploy.launch import Proc, client_env, start_fundamental, start_market

CROWD = """
seed = 3
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
count = 60
latency = { kind = "exponential", network_us = 200 }

[[populations]]
name = "noise"
strategy = "noise"
count = 10

[[populations]]
name = "fv"
strategy = "fair_value"
count = 20
params = { rate_per_s = 2.0 }

[[populations]]
name = "trend"
strategy = "trend"
count = 4

[[populations]]
name = "mr"
strategy = "mean_reversion"
count = 4

[[populations]]
name = "as"
strategy = "avellaneda_stoikov"
count = 1

[[populations]]
name = "mm"
strategy = "fixed_spread_mm"
count = 1

[[populations]]
name = "hft"
strategy = "imbalance"
count = 2

[[populations]]
name = "twap"
strategy = "twap"
count = 1
params = { total_qty = 50, horizon_ns = 4_000_000_000, slices = 8 }
"""


def test_a_mixed_crowd_trades_settles_and_agrees_with_clearing(tmp_path: Path) -> None:
    config = tmp_path / "crowd.toml"
    config.write_text(CROWD)
    market = start_market(tmp_path)
    fundamental = start_fundamental(
        AGORA_FUNDAMENTAL_INTERVAL_S="0.1",
        AGORA_FUNDAMENTAL_MODEL=json.dumps(
            {"symbols": {"AGR": "100.00"}, "scale": 0.002, "step_s": 0.1, "seed": 3}
        ),
    )
    ep = market.endpoints
    env = client_env({**ep, "fundamental": fundamental.ready["fundamental"]}, market.admin_token)
    drop = DropCopy(ep["dropcopy"])
    proc = None
    try:
        proc = Proc([sys.executable, "-m", "agents", "run", "--config", str(config),
                     "--json-logs"], env)  # fmt: skip
        # Trade until more than ten trades (two agents' fills each) by at least four
        # strategies went by, however long that takes on this machine; then Ctrl-C.
        drop.wait(lambda d: d.trades > 10 and len(d.populations) >= 4)
        err = proc.stop(signal.SIGINT, timeout=150)
    finally:
        drop.close()
        if proc is not None and proc.returncode is None:
            proc.kill()
        fundamental.stop()
        market.stop()
    assert proc.returncode == 0, err[-4000:]
    line = next(x for x in proc.output.splitlines() if x.startswith("AGORA_RESULT "))
    result = json.loads(line[len("AGORA_RESULT ") :])
    assert result["agents"] == 103
    assert result["errors"] == 0, proc.stderr[-4000:]
    assert result["fills"] > 20  # both sides of a trade between two agents count
    assert result["mismatches"] == []
    assert result["recovered_fills"] == 0  # no session was lost: every report arrived
    strategies_that_traded = {r["strategy"] for r in result["pnl"] if r["fills"]}
    assert len(strategies_that_traded) >= 4, strategies_that_traded
    # every trade was between two of these agents: the lots only changed hands
    assert sum(r["positions"].get("AGR", 0) for r in result["pnl"]) == 103 * 2000
