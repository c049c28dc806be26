"""Training throughput of `agora train` on this machine, and the default curriculum's wall time.

    nice -n 10 python bench/rl_train.py [--steps 16384] [--vec dummy|subproc] [--n-envs 8]

Trains PPO with the reference network and hyperparameters (`agents.rl.train`, torch with one
thread) for `--steps` environment steps on `MarketMaking-v0` with the `flow` background, then
the same on a peer: an environment with the same observation and action spaces that does
nothing (what SB3 costs alone). Printed per run: steps/s of the whole `learn` (rollouts and
updates), and of the rollouts alone is approximated by stepping the VecEnv with random actions.
The projected wall time of the default curriculum (`TrainConfig().total_steps` steps) follows
from the measured training rate.
"""

from __future__ import annotations

import argparse
import time

try:  # noqa: SIM105  (first: keeps bench/ off the import path, see _path.py)
    import _path  # noqa: F401
except ModuleNotFoundError:  # a subprocess worker: the parent's path is clean already
    pass

import gymnasium as gym
import numpy as np
from gymnasium.envs.registration import register

from agents.rl.observation import OBS_HIGH, OBS_LOW
from agents.rl.train.config import TrainConfig


class _Idle(gym.Env):
    """The peer: MarketMaking-v0's spaces, a constant observation, no market at all."""

    def __init__(self, config: object = None) -> None:
        from agents.rl.config import EnvConfig

        cfg = EnvConfig.coerce(config)
        self.observation_space = gym.spaces.Box(OBS_LOW, OBS_HIGH, dtype=np.float32)
        lo = np.array([cfg.min_offset_ticks] * 2 + [0, 0], np.float32)
        hi = np.array([cfg.max_offset_ticks] * 2 + [cfg.max_quote_size] * 2, np.float32)
        self.action_space = gym.spaces.Box(lo, hi, dtype=np.float32)
        self.n = cfg.episode_steps
        self.t = 0

    def set_regime(self, regime: str) -> None:
        pass

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple:
        super().reset(seed=seed)
        self.t = 0
        return np.zeros(9, np.float32), {}

    def step(self, action: np.ndarray) -> tuple:
        self.t += 1
        return np.zeros(9, np.float32), 0.0, False, self.t >= self.n, {}


register("AgoraBench/Idle-v0", entry_point=_Idle)


def _env_rate(cfg: TrainConfig, steps: int) -> float:
    """VecEnv steps/s with random actions (the environment's share of a rollout)."""
    from agents.rl.train.trainer import make_vec_env

    vec = make_vec_env(cfg)
    try:
        vec.reset()
        n = max(1, steps // cfg.vec.n_envs)
        acts = np.stack([vec.action_space.sample() for _ in range(cfg.vec.n_envs)])
        t0 = time.perf_counter()
        for _ in range(n):
            vec.step(acts)
        return n * cfg.vec.n_envs / (time.perf_counter() - t0)
    finally:
        vec.close()


def _train_rate(cfg: TrainConfig) -> float:
    import tempfile
    from pathlib import Path

    from agents.rl.train.trainer import train

    with tempfile.TemporaryDirectory() as tmp:
        run = train(cfg, progress=False, run_dir=Path(tmp) / "run")
        return float(run.meta["steps_per_s"])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=16_384)
    ap.add_argument("--vec", choices=("dummy", "subproc"), default="dummy")
    ap.add_argument("--n-envs", type=int, default=8)
    args = ap.parse_args()
    rows = []
    for label, env_id in (("MarketMaking-v0 (flow)", "agents.rl:Agora/MarketMaking-v0"),
                          ("peer: idle env, same spaces", "AgoraBench/Idle-v0")):  # fmt: skip
        cfg = TrainConfig.model_validate({
            "name": "bench", "total_steps": args.steps, "env_id": env_id,
            "vec": {"n_envs": args.n_envs, "kind": args.vec}, "tensorboard": False,
        })  # fmt: skip
        env_rate = _env_rate(cfg, args.steps)
        train_rate = _train_rate(cfg)
        rows.append((label, env_rate, train_rate))
    default = TrainConfig()
    print(f"PPO, reference network, {args.n_envs} envs ({args.vec}), n_steps "
          f"{default.algorithm.n_steps}, batch {default.algorithm.batch_size}, "
          f"{args.steps:,} steps per measurement, torch threads 1")  # fmt: skip
    print(f"{'environment':32} {'env steps/s':>12} {'train steps/s':>14}")
    for label, env_rate, train_rate in rows:
        print(f"{label:32} {env_rate:12,.0f} {train_rate:14,.0f}")
    rate = rows[0][2]
    total = default.total_steps
    print(f"default curriculum: {total:,} steps -> {total / rate / 60:,.1f} min "
          f"({total / rate / 3600:,.2f} h) at {rate:,.0f} steps/s")  # fmt: skip


if __name__ == "__main__":
    main()
