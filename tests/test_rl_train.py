"""Training, baselines and evaluation of `agents.rl` (`agora train`, `agora evaluate`).

Needs the `rl` extra (gymnasium, Stable-Baselines3, torch, numba); skipped without it. The
training runs are a few thousand steps: they check that the whole path works (config, model,
curriculum, saving, loading, evaluating through the command line), not what is learnt.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("gymnasium")
pytest.importorskip("stable_baselines3")
pytest.importorskip("torch")
pytest.importorskip("agents.rl", reason="the rl extra (gymnasium, numba) is not installed")

from agents.rl.baselines import (
    AvellanedaStoikovPolicy,
    DoNothingPolicy,
    FixedSpreadPolicy,
    decode_observation,
)
from agents.rl.config import EnvConfig
from agents.rl.desk import decode_box
from agents.rl.train.config import TrainConfig, load_config

REPO = Path(__file__).resolve().parents[1]
TIMEOUT_S = 900  # a safety net for a hung run, not a measure of speed

SMALL_ENV = {"episode_steps": 200}


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "deploy.cli", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=TIMEOUT_S)  # fmt: skip


def _toml(path: Path, body: str) -> Path:
    path.write_text(body)
    return path


# ------------------------------------------------------------------------- the model
def test_the_reference_network_and_hyperparameters(tmp_path: Path) -> None:
    import torch

    from agents.rl.train.algorithms import build_model
    from agents.rl.train.trainer import make_vec_env

    cfg = TrainConfig.model_validate({"env": SMALL_ENV, "vec": {"n_envs": 1}})
    algo = cfg.algorithm
    assert (algo.learning_rate, algo.lr_schedule, algo.clip_range, algo.gae_lambda,
            algo.ent_coef, algo.vf_coef) == (3e-4, "linear", 0.2, 0.95, 0.01, 0.5)  # fmt: skip
    env = make_vec_env(cfg)
    try:
        model = build_model(cfg, env, None)
    finally:
        env.close()
    policy = model.policy
    # one trunk, shared by the policy and the value heads
    assert policy.features_extractor is policy.pi_features_extractor
    assert policy.pi_features_extractor is policy.vf_features_extractor
    linears = [m for m in policy.features_extractor.modules() if isinstance(m, torch.nn.Linear)]
    assert [m.out_features for m in linears] == [256, 256, 128]
    assert linears[0].in_features == 9
    relus = [m for m in policy.features_extractor.modules() if isinstance(m, torch.nn.ReLU)]
    assert len(relus) == 3
    assert (policy.action_net.in_features, policy.action_net.out_features) == (128, 4)
    assert (policy.value_net.in_features, policy.value_net.out_features) == (128, 1)
    assert model.clip_range(1.0) == 0.2 and model.gae_lambda == 0.95
    assert model.lr_schedule(1.0) == pytest.approx(3e-4)
    assert model.lr_schedule(0.5) == pytest.approx(1.5e-4)
    assert model.lr_schedule(0.0) == 0.0


def test_a_mistake_in_the_training_file_is_one_line_and_status_2(tmp_path: Path) -> None:
    bad = _toml(tmp_path / "bad.toml", "[algorithm]\nname = 'ppo'\nclip = 0.3\n")
    done = _cli("train", str(bad), cwd=tmp_path)
    assert done.returncode == 2, done.stderr
    assert "clip" in done.stderr and "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    env_typo = _toml(tmp_path / "env.toml", "[env]\nstep_msec = 50\n")
    with pytest.raises(Exception, match="step_msec"):
        load_config(env_typo)


@pytest.mark.parametrize("kind", ["dummy", "subproc"])
def test_the_curriculum_switches_every_sub_environment(kind: str) -> None:
    from stable_baselines3.common.callbacks import CallbackList

    from agents.rl.train.algorithms import build_model
    from agents.rl.train.callbacks import CurriculumCallback
    from agents.rl.train.trainer import make_vec_env

    cfg = TrainConfig.model_validate({
        "env": SMALL_ENV, "total_steps": 256, "vec": {"n_envs": 2, "kind": kind},
        "algorithm": {"name": "ppo", "n_steps": 64, "batch_size": 64, "n_epochs": 1},
        "curriculum": {"phases": [{"start": 0, "regime": "low"},
                                  {"start": 128, "regime": "high"}]},
    })  # fmt: skip
    assert [cfg.curriculum.regime_at(s) for s in (0, 127, 128, 10**9)] == \
        ["low", "low", "high", "high"]  # fmt: skip
    env = make_vec_env(cfg)
    try:
        model = build_model(cfg, env, None)
        curriculum = CurriculumCallback(cfg.curriculum)
        model.learn(total_timesteps=cfg.total_steps, callback=CallbackList([curriculum]))
        assert curriculum.switches == [(0, "low"), (128, "high")]
        assert env.get_attr("regime") == ["high", "high"]
        env.reset()  # the regime takes effect at the next episode, in every sub-environment
        assert [info["regime"] for info in env.reset_infos] == ["high", "high"]
    finally:
        env.close()


# ------------------------------------------------------------------------- the baselines
def _obs(cfg: EnvConfig, mid: float, inventory: float, fills: float = 0.0) -> np.ndarray:
    o = np.zeros(9, np.float32)
    o[0] = mid / cfg.price_scale_ticks
    o[2] = inventory / cfg.max_inventory
    o[8] = fills / cfg.fills_scale
    return o


def test_avellaneda_stoikov_quotes_match_the_formula() -> None:
    cfg = EnvConfig(max_offset_ticks=50.0, min_offset_ticks=-50.0, max_quote_size=10)
    gamma, k, tau = 0.05, 1.5, 2.0
    policy = AvellanedaStoikovPolicy(cfg, gamma=gamma, k=k, tau_s=tau, estimate_k=False,
                                     min_spread=0.0, size=4)  # fmt: skip
    policy.reset()
    dt = cfg.step_ms / 1000.0
    sigma2, last = 1.0, None  # sigma_init 1, EWMA weight 0.05
    for mid, q in [(0.0, 0), (2.0, 3), (1.0, -6), (-3.0, 10), (-3.0, -2), (4.0, 0)]:
        action = policy.act(_obs(cfg, mid, q))
        if last is not None:
            sigma2 = 0.95 * sigma2 + 0.05 * (mid - last) ** 2 / dt
        last = mid
        assert policy.sigma2 == pytest.approx(sigma2, rel=1e-5)
        # the textbook formulas, written out here rather than imported
        r = mid - q * gamma * sigma2 * tau
        spread = gamma * sigma2 * tau + (2 / gamma) * math.log(1 + gamma / k)
        bid, ask = r - spread / 2, r + spread / 2
        off_b, off_a, qb, qa = decode_box(action, cfg)
        assert off_b == pytest.approx(mid - bid, abs=1e-4)  # float32 action
        assert off_a == pytest.approx(ask - mid, abs=1e-4)
        assert (qb, qa) == (4, 4)


def test_the_baselines_quote_what_they_say() -> None:
    cfg = EnvConfig()
    obs = _obs(cfg, 0.0, 0)
    off_b, off_a, qb, qa = decode_box(FixedSpreadPolicy(cfg, half_spread=3, size=7).act(obs), cfg)
    assert (off_b, off_a, qb, qa) == (pytest.approx(3.0), pytest.approx(3.0), 7, 7)
    assert decode_box(DoNothingPolicy(cfg).act(obs), cfg)[2:] == (0, 0)
    state = decode_observation(_obs(cfg, 12.0, -30, fills=4), cfg)
    assert (state.mid, state.inventory, state.fills) == pytest.approx((12.0, -30.0, 4.0))


def test_avellaneda_stoikov_stops_quoting_the_side_beyond_the_inventory_limit() -> None:
    cfg = EnvConfig(max_inventory=10)
    policy = AvellanedaStoikovPolicy(cfg, size=5)
    assert decode_box(policy.act(_obs(cfg, 0.0, 10)), cfg)[2:] == (0, 5)
    assert decode_box(policy.act(_obs(cfg, 0.0, -8)), cfg)[2:] == (5, 2)


def test_an_evaluation_episode_is_the_same_for_the_same_seed() -> None:
    import gymnasium as gym

    from agents.rl.evaluate import episode_metrics, run_episode

    env = gym.make("agents.rl:Agora/MarketMaking-v0", config={"episode_steps": 100})
    try:
        policy = AvellanedaStoikovPolicy(env.unwrapped.config)
        a = run_episode(env, policy, 10_000, "medium")
        b = run_episode(env, policy, 10_000, "medium")
        c = run_episode(env, policy, 10_001, "medium")
    finally:
        env.close()
    assert a.pnl == b.pnl and a.fill_ts == b.fill_ts and len(a.ts) == 100
    assert a.mid != c.mid
    m = episode_metrics(a, 0.1, 10)
    assert m["total_pnl"] == a.pnl[-1]
    assert m["fills"] == len(a.fill_ts)


# ------------------------------------------------------------------------- end to end
PPO_TOML = """
name = "ppo-smoke"
seed = 3
total_steps = 2048
output = "runs"
env_id = "agents.rl:Agora/MarketMaking-v0"

[env]
episode_steps = 200

[algorithm]
name = "ppo"
n_steps = 256
batch_size = 256
n_epochs = 2

[vec]
n_envs = 4

[curriculum]
phases = [{ start = 0, regime = "low" }, { start = 1024, regime = "medium" }]
"""


def test_ppo_trains_saves_loads_and_evaluates_through_the_cli(tmp_path: Path) -> None:
    cfg_path = _toml(tmp_path / "ppo.toml", PPO_TOML)
    done = _cli("train", str(cfg_path), "--json", "--no-progress", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    meta = json.loads(done.stdout.strip().splitlines()[-1])
    run = tmp_path / meta["run"] if not Path(meta["run"]).is_absolute() else Path(meta["run"])
    assert meta["steps"] >= 2048 and meta["seed"] == 3 and meta["algorithm"] == "ppo"
    assert meta["versions"]["stable-baselines3"] and meta["versions"]["torch"]
    assert meta["curriculum"] == [{"step": 0, "regime": "low"},
                                  {"step": 1024, "regime": "medium"}]  # fmt: skip
    assert (run / "model.zip").exists() and (run / "config.toml").read_text() == PPO_TOML
    assert json.loads((run / "config.json").read_text())["algorithm"]["clip_range"] == 0.2

    from agents.rl.policy import load_policy

    policy, loaded = load_policy(run)
    assert loaded.config.seed == 3
    obs = np.linspace(-1, 1, 9).astype(np.float32)
    again, _ = load_policy(run / "model.zip")
    assert np.array_equal(policy.act(obs), again.act(obs))

    done = _cli("evaluate", str(run), "--seeds", "2", "--regimes", "low,high",
                "--episode-steps", "60", "--json", cwd=tmp_path)  # fmt: skip
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["policies"] == ["ppo-smoke", "avellaneda-stoikov", "fixed-spread",
                                  "do-nothing"]  # fmt: skip
    for regime in ("low", "high"):
        for name in result["policies"]:
            cell = result["table"][regime][name]
            assert cell["total_pnl"]["n"] == 2
    nothing = [e for e in result["episodes"] if e["policy"] == "do-nothing"]
    assert all(e["total_pnl"] == 0 and e["fills"] == 0 for e in nothing)
    assert (run / "eval" / "eval.json").exists()
    assert (run / "eval" / "metrics.png").stat().st_size > 0
    assert (run / "eval" / "equity_high.png").exists()

    done = _cli("evaluate", str(run), "--seeds", "2", "--regimes", "low",
                "--episode-steps", "30", "--baselines", "", cwd=tmp_path)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "ppo-smoke" in done.stdout and "total PnL" in done.stdout


DQN_TOML = """
name = "dqn-smoke"
total_steps = 1200
env_id = "agents.rl:Agora/MarketMakingDiscrete-v0"

[env]
episode_steps = 200

[algorithm]
name = "dqn"
learning_starts = 200
buffer_size = 5000
batch_size = 64
target_update_interval = 200

[vec]
n_envs = 2
"""


def test_dqn_trains_on_the_discrete_variant_and_evaluates(tmp_path: Path) -> None:
    cfg_path = _toml(tmp_path / "dqn.toml", DQN_TOML)
    done = _cli("train", str(cfg_path), "--json", "--no-progress", "--output",
                str(tmp_path / "runs"), cwd=tmp_path)  # fmt: skip
    assert done.returncode == 0, done.stderr
    meta = json.loads(done.stdout.strip().splitlines()[-1])
    assert meta["algorithm"] == "dqn" and meta["steps"] >= 1200
    run = Path(meta["run"])

    from agents.rl.policy import load_policy

    policy, _ = load_policy(run)
    action = policy.act(np.zeros(9, np.float32))
    assert isinstance(action, int) and 0 <= action < 6
    done = _cli("evaluate", str(run), "--seeds", "2", "--regimes", "medium", "--episode-steps",
                "40", "--baselines", "fixed-spread", "--no-plots", "--json", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["table"]["medium"]["dqn-smoke"]["total_pnl"]["n"] == 2
    assert result["table"]["medium"]["fixed-spread"]["total_pnl"]["n"] == 2
