"""`train(config)`: build the vectorised environments and the model, train, save the run."""

from __future__ import annotations

import importlib.util
import json
import time
from collections.abc import Callable
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

from agents.rl.train.config import TrainConfig
from agents.rl.train.runs import Run, library_versions, new_run_dir

__all__ = ["env_factory", "make_vec_env", "train"]


def env_factory(cfg: TrainConfig, regime: str | None = None) -> Callable[[], Any]:
    """A picklable function that makes one Monitor-wrapped environment of `cfg` (the ``[env]``
    table as its config; `regime` overrides the config's)."""
    env_kwargs = dict(cfg.env)
    if regime is not None:
        env_kwargs["regime"] = regime
    return partial(_make_env, cfg.env_id, env_kwargs)


def _make_env(env_id: str, env_kwargs: dict[str, Any]) -> Any:
    import gymnasium as gym
    from stable_baselines3.common.monitor import Monitor

    kwargs = {"config": env_kwargs} if env_kwargs else {}
    return Monitor(gym.make(env_id, **kwargs))


def make_vec_env(cfg: TrainConfig, n_envs: int | None = None, seed: int | None = None) -> Any:
    """`cfg.vec.n_envs` sub-environments, sub-env i seeded ``seed + i`` (its own seed stream),
    each in a Monitor (episode returns for the progress bar and TensorBoard)."""
    from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv

    n = n_envs or cfg.vec.n_envs
    fns = [env_factory(cfg) for _ in range(n)]
    vec = SubprocVecEnv(fns) if cfg.vec.kind == "subproc" else DummyVecEnv(fns)
    vec.seed(cfg.seed if seed is None else seed)  # sub-env i: seed + i, at the first reset
    return vec


def train(cfg: TrainConfig, *, config_text: str | None = None, progress: bool = True,
          run_dir: Path | None = None) -> Run:  # fmt: skip
    """Train as `cfg` says and save the run (see `agents.rl.train.runs` for its layout)."""
    import torch
    from stable_baselines3.common.callbacks import CallbackList
    from stable_baselines3.common.utils import set_random_seed

    from agents.rl.train.algorithms import build_model
    from agents.rl.train.callbacks import CurriculumCallback, ProgressCallback, mean_episode_reward

    torch.set_num_threads(cfg.torch_threads)
    set_random_seed(cfg.seed)
    run_dir = run_dir or new_run_dir(cfg)
    run_dir.mkdir(parents=True, exist_ok=True)
    if config_text is not None:
        (run_dir / "config.toml").write_text(config_text)
    (run_dir / "config.json").write_text(cfg.model_dump_json(indent=2))
    tb = None
    if cfg.tensorboard and importlib.util.find_spec("tensorboard") is not None:
        tb = run_dir / "tb"
    meta: dict[str, Any] = {
        "seed": cfg.seed, "algorithm": cfg.algorithm.name, "env": cfg.env_id,
        "versions": library_versions(), "started": datetime.now(UTC).isoformat(),
        "tensorboard": str(tb) if tb else None,
    }  # fmt: skip
    env = make_vec_env(cfg)
    try:
        model = build_model(cfg, env, tb)
        curriculum = CurriculumCallback(cfg.curriculum) if cfg.curriculum.enabled else None
        bar = ProgressCallback(cfg.total_steps, curriculum, enabled=progress)
        callbacks = [c for c in (curriculum, bar) if c is not None]
        t0 = time.perf_counter()
        model.learn(total_timesteps=cfg.total_steps, callback=CallbackList(callbacks),
                    tb_log_name="train")  # fmt: skip
        wall = time.perf_counter() - t0
        model.save(str(run_dir / "model.zip"))
    finally:
        env.close()
    meta.update({
        "finished": datetime.now(UTC).isoformat(), "steps": int(model.num_timesteps),
        "wall_s": round(wall, 3), "steps_per_s": round(model.num_timesteps / wall, 1),
        "curriculum": [{"step": s, "regime": r} for s, r in (curriculum.switches if curriculum
                                                             else [])],
        "mean_episode_reward": mean_episode_reward(model),
    })  # fmt: skip
    (run_dir / "meta.json").write_text(json.dumps(meta, indent=2))
    return Run(run_dir, cfg, meta, run_dir / "model.zip")
