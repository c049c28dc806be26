"""What evaluation and live trading run: a `Policy` maps one observation to one action.

Trained models and the baselines look the same from outside, so `agora evaluate` runs them in
one loop and `agora attach policy` could put either in front of a live market. A policy keeps
whatever state it needs between steps (the baselines estimate sigma and k online) and forgets
it at `reset`, called at the start of every episode.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

__all__ = ["ModelPolicy", "Policy", "load_policy"]


@runtime_checkable
class Policy(Protocol):
    name: str

    def reset(self) -> None:
        """A new episode starts: forget what the previous one taught the policy's estimators."""

    def act(self, obs: np.ndarray) -> np.ndarray | int:
        """The action for one observation (one environment, not a batch)."""


class ModelPolicy:
    """A trained Stable-Baselines3 model as a `Policy` (deterministic actions by default)."""

    def __init__(self, model: Any, name: str = "policy", deterministic: bool = True) -> None:
        self.model = model
        self.name = name
        self.deterministic = deterministic

    def reset(self) -> None:
        pass

    def act(self, obs: np.ndarray) -> np.ndarray | int:
        action, _ = self.model.predict(np.asarray(obs), deterministic=self.deterministic)
        if np.ndim(action) == 0:
            return int(action)
        return np.asarray(action)


def load_policy(path: str | Path, name: str | None = None) -> tuple[ModelPolicy, Any]:
    """The policy saved by `agora train` at `path` (a run directory or its model.zip), and the
    run (its training config: the environment the policy was trained on)."""
    from agents.rl.train.runs import load_run

    run = load_run(path)
    return ModelPolicy(run.load_model(), name or run.config.name), run
