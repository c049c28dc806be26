"""The environments under RLlib (the `ray` extra) with several workers: distributed training is
RLlib's job; this checks that MarketMaking-v0 runs there unchanged. Skipped, with a message,
when Ray is absent.
"""

from __future__ import annotations

import pytest

pytest.importorskip("agents.rl", reason="the rl extra (gymnasium, numba) is not installed")
pytest.importorskip("ray.rllib", reason="Ray RLlib is not installed (pip install -e '.[ray]')")
pytest.importorskip("torch")

import ray
from ray.rllib.algorithms.ppo import PPOConfig


def _make(env_config: dict) -> object:
    import gymnasium as gym

    return gym.make("agents.rl:Agora/MarketMaking-v0", config=dict(env_config))


def test_market_making_trains_under_rllib_with_two_workers() -> None:
    ray.init(num_cpus=3, include_dashboard=False, log_to_driver=False,
             ignore_reinit_error=True)  # fmt: skip
    try:
        # the gymnasium id as it is: each worker imports agents.rl and makes the environment
        # with gymnasium.make(id, **env_config), so the env's own config goes under "config"
        config = (
            PPOConfig()
            .environment("agents.rl:Agora/MarketMaking-v0",
                         env_config={"config": {"episode_steps": 50}})
            .env_runners(num_env_runners=2, rollout_fragment_length=50)
            .training(train_batch_size_per_learner=200, minibatch_size=100, num_epochs=1)
            .framework("torch")
        )
        algo = config.build_algo()
        try:
            result = algo.train()
            runners = algo.env_runner_group.num_healthy_remote_workers()
        finally:
            algo.stop()
    finally:
        ray.shutdown()
    assert runners == 2
    sampled = result["env_runners"]["num_env_steps_sampled_lifetime"]
    assert sampled >= 200
    assert result["env_runners"]["num_episodes_lifetime"] >= 2
