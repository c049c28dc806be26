"""Training callbacks: the curriculum (regime by step, on every sub-environment) and the
progress bar (phase, mean episode reward, steps/s).

The curriculum calls the environment's ``set_regime(name)`` through the VecEnv, so it works the
same with `DummyVecEnv` and `SubprocVecEnv`, and every sub-environment is in the same phase.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from stable_baselines3.common.callbacks import BaseCallback

from agents.rl.train.config import CurriculumConfig

__all__ = ["CurriculumCallback", "ProgressCallback", "mean_episode_reward"]


def mean_episode_reward(model: Any) -> float | None:
    """Mean return of the last episodes SB3 kept (its Monitor buffer, up to 100), or None."""
    buf = getattr(model, "ep_info_buffer", None)
    if not buf:
        return None
    return float(np.mean([ep["r"] for ep in buf]))


class CurriculumCallback(BaseCallback):
    """Switch every sub-environment's regime when training crosses a phase start."""

    def __init__(self, curriculum: CurriculumConfig) -> None:
        super().__init__()
        self.curriculum = curriculum
        self.regime: str | None = None
        self.switches: list[tuple[int, str]] = []  # (step, regime): what happened, for the run

    def _apply(self) -> None:
        regime = self.curriculum.regime_at(self.num_timesteps)
        if regime is None or regime == self.regime:
            return
        self.training_env.env_method("set_regime", regime)
        self.regime = regime
        self.switches.append((self.num_timesteps, regime))
        self.logger.record("curriculum/phase", len(self.switches))

    def _on_training_start(self) -> None:
        self._apply()

    def _on_step(self) -> bool:
        self._apply()
        return True


class ProgressCallback(BaseCallback):
    """A rich progress bar: steps done, phase, mean episode reward and steps/s."""

    def __init__(self, total: int, curriculum: CurriculumCallback | None, enabled: bool = True,
                 refresh_every: int = 2_048) -> None:  # fmt: skip
        super().__init__()
        self.total = total
        self.curriculum = curriculum
        self.enabled = enabled
        self.refresh_every = refresh_every
        self._progress: Progress | None = None
        self._task: Any = None
        self._start = 0.0
        self._start_steps = 0
        self._last = 0
        self.steps_per_s = 0.0

    def _on_training_start(self) -> None:
        self._start = time.perf_counter()
        self._start_steps = self.num_timesteps
        if not self.enabled:
            return
        self._progress = Progress(
            TextColumn("[bold]{task.fields[phase]}"), BarColumn(), MofNCompleteColumn(),
            TextColumn("reward {task.fields[reward]}"), TextColumn("{task.fields[rate]} steps/s"),
            TimeElapsedColumn(), TimeRemainingColumn(),
        )  # fmt: skip
        self._progress.start()
        self._task = self._progress.add_task("train", total=self.total, phase="-", reward="-",
                                             rate="-")  # fmt: skip

    def _on_step(self) -> bool:
        if self.num_timesteps - self._last >= self.refresh_every:
            self._update()
        return True

    def _update(self) -> None:
        self._last = self.num_timesteps
        elapsed = time.perf_counter() - self._start
        done = self.num_timesteps - self._start_steps
        self.steps_per_s = done / elapsed if elapsed > 0 else 0.0
        if self._progress is None:
            return
        reward = mean_episode_reward(self.model)
        phase = (self.curriculum.regime if self.curriculum is not None else None) or "-"
        self._progress.update(
            self._task, completed=min(self.num_timesteps, self.total), phase=phase,
            reward="-" if reward is None else f"{reward:,.2f}", rate=f"{self.steps_per_s:,.0f}",
        )  # fmt: skip

    def _on_training_end(self) -> None:
        self._update()
        if self._progress is not None:
            self._progress.stop()
