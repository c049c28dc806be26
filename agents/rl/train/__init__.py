"""Training: `agora train CONFIG.toml` (PPO or DQN through Stable-Baselines3, a volatility
curriculum, runs saved with their config, seed and library versions).

Imports torch and Stable-Baselines3 when a function here is called, not when the package is
imported, so `agora --help` and the config checks stay light.
"""

from __future__ import annotations

from typing import Any

from agents.rl.train.config import TrainConfig, load_config
from agents.rl.train.runs import Run, load_run

__all__ = ["Run", "TrainConfig", "load_config", "load_run", "train"]


def train(cfg: TrainConfig, **kw: Any) -> Run:
    """Train as `cfg` says and save the run (`agents.rl.train.trainer.train`)."""
    from agents.rl.train.trainer import train as _train

    return _train(cfg, **kw)
