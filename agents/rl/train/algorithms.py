"""Stable-Baselines3 models built from a `TrainConfig`: PPO (continuous) and DQN (discrete).

The reference network is one shared ReLU trunk with two linear heads. SB3 has no shared
hidden layers in `net_arch` any more, so the trunk is a features extractor (`Trunk`) that
actor and critic share, and ``net_arch=dict(pi=[], vf=[])`` leaves each head one linear layer
(PPO: 4 Gaussian means for the 4-value action plus a learnt log-std, and 1 value).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import gymnasium as gym
import torch
from stable_baselines3 import DQN, PPO
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor
from stable_baselines3.common.vec_env import VecEnv

from agents.rl.train.config import DQNConfig, PPOConfig, TrainConfig

__all__ = ["ALGORITHMS", "Trunk", "build_model", "lr_schedule"]

ALGORITHMS: dict[str, type[BaseAlgorithm]] = {"ppo": PPO, "dqn": DQN}


class Trunk(BaseFeaturesExtractor):
    """Flattened observation through Linear+ReLU layers of the given widths."""

    def __init__(self, observation_space: gym.Space, layers: list[int] | None = None) -> None:
        layers = list(layers or [256, 256, 128])
        super().__init__(observation_space, features_dim=layers[-1])
        n_in = int(gym.spaces.flatdim(observation_space))
        mods: list[torch.nn.Module] = [torch.nn.Flatten()]
        for width in layers:
            mods += [torch.nn.Linear(n_in, width), torch.nn.ReLU()]
            n_in = width
        self.net = torch.nn.Sequential(*mods)

    def forward(self, observations: torch.Tensor) -> torch.Tensor:
        return self.net(observations)


def lr_schedule(initial: float, kind: str) -> float | Callable[[float], float]:
    """SB3 schedules take the fraction of training left (1 -> 0): linear decays to zero."""
    if kind == "constant":
        return initial

    def linear(progress_remaining: float) -> float:
        return initial * progress_remaining

    return linear


def build_model(cfg: TrainConfig, env: VecEnv, tensorboard_dir: Path | None) -> BaseAlgorithm:
    """A fresh PPO or DQN on `env` with the configured hyperparameters and the shared trunk."""
    algo = cfg.algorithm
    common: dict[str, Any] = {
        "seed": cfg.seed,
        "verbose": 0,
        "device": "cpu",
        "tensorboard_log": str(tensorboard_dir) if tensorboard_dir is not None else None,
    }
    if isinstance(algo, PPOConfig):
        return PPO(
            "MlpPolicy", env,
            learning_rate=lr_schedule(algo.learning_rate, algo.lr_schedule),
            n_steps=algo.n_steps, batch_size=algo.batch_size, n_epochs=algo.n_epochs,
            gamma=algo.gamma, gae_lambda=algo.gae_lambda, clip_range=algo.clip_range,
            ent_coef=algo.ent_coef, vf_coef=algo.vf_coef, max_grad_norm=algo.max_grad_norm,
            normalize_advantage=algo.normalize_advantage,
            policy_kwargs={
                "features_extractor_class": Trunk,
                "features_extractor_kwargs": {"layers": algo.trunk},
                "share_features_extractor": True,
                "net_arch": {"pi": [], "vf": []},
                "activation_fn": torch.nn.ReLU,
                "log_std_init": algo.log_std_init,
            },
            **common,
        )  # fmt: skip
    assert isinstance(algo, DQNConfig)
    return DQN(
        "MlpPolicy", env,
        learning_rate=lr_schedule(algo.learning_rate, algo.lr_schedule),
        buffer_size=algo.buffer_size, learning_starts=algo.learning_starts,
        batch_size=algo.batch_size, gamma=algo.gamma, train_freq=algo.train_freq,
        gradient_steps=algo.gradient_steps, target_update_interval=algo.target_update_interval,
        exploration_fraction=algo.exploration_fraction,
        exploration_final_eps=algo.exploration_final_eps,
        policy_kwargs={
            "features_extractor_class": Trunk,
            "features_extractor_kwargs": {"layers": algo.trunk},
            "net_arch": [],
            "activation_fn": torch.nn.ReLU,
        },
        **common,
    )  # fmt: skip
