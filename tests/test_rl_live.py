"""`agora attach policy RUN`: a policy trained by `agora train` trades on a real local market.

Exchange and clearing run as processes on loopback, a small zero-intelligence crowd trades in
a runner process, and the policy is attached as one more agent through the command line. The
test waits for the policy's first fill (its `policy_fill` log line), however long that takes
on this machine, then stops it with Ctrl-C and checks its result.
"""

from __future__ import annotations

import json
import signal
import sys
from pathlib import Path

import pytest

pytest.importorskip("stable_baselines3")
pytest.importorskip("agents.rl", reason="the rl extra (gymnasium, numba) is not installed")

from deploy.launch import Proc, client_env, start_market

WAIT_S = 180.0  # a safety net for a hung process, not a measure of speed

CROWD = """
seed = 5
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
latency = { kind = "exponential", network_us = 200 }
"""


def _train_tiny_run(out: Path) -> Path:
    from agents.rl.train import TrainConfig, train

    cfg = TrainConfig.model_validate({
        "name": "live", "total_steps": 512, "output": str(out), "tensorboard": False,
        "env": {"episode_steps": 100, "step_ms": 100.0},
        "algorithm": {"name": "ppo", "n_steps": 128, "batch_size": 128, "n_epochs": 1},
        "vec": {"n_envs": 2},
    })  # fmt: skip
    return train(cfg, progress=False).path


def test_a_trained_policy_trades_on_a_live_market(tmp_path: Path) -> None:
    run = _train_tiny_run(tmp_path / "runs")
    (tmp_path / "crowd.toml").write_text(CROWD)
    market = start_market(tmp_path / "var")
    crowd = policy = None
    try:
        env = client_env(market.endpoints, market.admin_token)
        env["AGORA_SYMBOLS"] = '[{"symbol": "AGR", "reference_price": 10000}]'
        crowd = Proc([sys.executable, "-m", "agents", "run", "--config",
                      str(tmp_path / "crowd.toml"), "--json-logs"], env)  # fmt: skip
        # the policy samples its actions (not only the mean) so it quotes from the start
        policy = Proc([sys.executable, "-m", "deploy.cli", "attach", "policy", str(run),
                       "--param", "deterministic=false", "--name", "rl-policy",
                       "--cash", "50000000", "--json"], env,
                      cwd=tmp_path)  # fmt: skip
        line = policy.wait_log(lambda s: '"policy_fill"' in s or "Traceback" in s,
                               timeout=WAIT_S)  # fmt: skip
        assert '"policy_fill"' in line, policy.stderr_text()[-4000:]
        fill = json.loads(line)
        assert fill["side"] in ("buy", "sell") and fill["qty"] > 0 and fill["price"] > 0
        err = policy.stop(signal.SIGINT, timeout=WAIT_S)
        assert policy.returncode == 0, err[-4000:]
        result_line = next(x for x in policy.output.splitlines()
                           if x.startswith("AGORA_RESULT "))  # fmt: skip
        result = json.loads(result_line[len("AGORA_RESULT "):])
        row = next(r for r in result["pnl"] if r["agent"] == "rl-policy")
        assert row["fills"] >= 1 and row["errors"] == 0
        assert result["mismatches"] == []
    finally:
        for proc in (policy, crowd):
            if proc is not None and proc.returncode is None:
                proc.stop(signal.SIGINT, timeout=WAIT_S)
        market.stop()
