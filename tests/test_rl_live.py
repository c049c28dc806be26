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


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A policy trained for a few hundred steps: enough to load and act, not to be good."""
    from agents.rl.train import TrainConfig, train

    out = tmp_path_factory.mktemp("runs")
    cfg = TrainConfig.model_validate({
        "name": "live", "total_steps": 512, "output": str(out), "tensorboard": False,
        "env": {"episode_steps": 100, "step_ms": 100.0},
        "algorithm": {"name": "ppo", "n_steps": 128, "batch_size": 128, "n_epochs": 1},
        "vec": {"n_envs": 2},
    })  # fmt: skip
    return train(cfg, progress=False).path


def test_the_policy_agent_runs_in_simulated_time_from_python(tiny_run: Path) -> None:
    from agents.config import LatencyConfig, MarketConfig, Population
    from agents.rl.policy import load_policy
    from agents.rl.policy_agent import PolicyAgent
    from agents.sim import SimMarket

    crowd = MarketConfig(seed=3, populations=[Population(name="zi", strategy="zi", count=40)])
    market = SimMarket.from_config(crowd)
    agent = PolicyAgent({"path": str(tiny_run), "deterministic": False})
    market.add_agent(agent, "rl-policy", latency=LatencyConfig(kind="fixed", network_us=500))
    market.run(duration_ns=20 * 1_000_000_000)
    assert agent.steps == 200  # one decision per 100 ms step
    assert agent.last_obs is not None and agent.last_obs.shape == (9,)
    assert agent.fill_count > 0
    bid, _, ask, _ = agent.last_quotes
    assert bid < ask
    # deterministic: the agent quotes what the saved policy says for what it observed
    policy, _ = load_policy(tiny_run)
    sure = PolicyAgent({"path": str(tiny_run)})
    market.add_agent(sure, "rl-mean", latency=LatencyConfig(kind="fixed", network_us=500))
    market.run(duration_ns=1_000_000_000)
    assert sure.steps == 10
    assert sure.policy.act(sure.last_obs).tolist() == policy.act(sure.last_obs).tolist()


def test_a_trained_policy_trades_on_a_live_market(tmp_path: Path, tiny_run: Path) -> None:
    run = tiny_run
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
