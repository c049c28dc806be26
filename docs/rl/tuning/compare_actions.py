"""Does a trained policy skew by inventory like Avellaneda-Stoikov? Both act on the same states.

    python docs/rl/tuning/compare_actions.py RUN_DIR [REGIME]

Plays one held-out episode (seed 20,010) with the Avellaneda-Stoikov baseline; at every step
both the baseline and the policy decode their action for the same observation. Prints each
one's mean ± std of the offsets (ticks) and sizes (lots), and the correlation between the
inventory and the quote skew (ask offset - bid offset; negative: long -> quotes lowered, as
Avellaneda-Stoikov's reservation price does). Then the policy's action on the last
observation with the inventory swept.
"""

from __future__ import annotations

import sys

import gymnasium as gym
import numpy as np
import torch

import agents.rl  # noqa: F401  (registers the environments)
from agents.rl.baselines import decode_observation, make_baseline
from agents.rl.config import EnvConfig
from agents.rl.desk import decode_box
from agents.rl.observation import inventory_scale
from agents.rl.policy import load_policy


def main() -> None:
    torch.set_num_threads(1)
    pol, run = load_policy(sys.argv[1])
    regime = sys.argv[2] if len(sys.argv) > 2 else "low"
    cfg = dict(run.config.env)
    ec = EnvConfig.coerce(cfg)
    env = gym.make(run.config.env_id, config=cfg)
    base = make_baseline("avellaneda-stoikov", cfg)
    obs, _ = env.reset(seed=20_010, options={"regime": regime})
    base.reset()
    rows = []
    for _ in range(ec.episode_steps):
        a_as, a_pol = base.act(obs), pol.act(obs)
        inv = decode_observation(obs, ec).inventory
        rows.append((inv, *decode_box(a_as, ec), *decode_box(a_pol, ec)))
        obs, _, _, _, _ = env.step(a_as)
    r = np.array(rows)
    for name, c in (("AS", 1), ("policy", 5)):
        bo, ao, bs, asz = r[:, c], r[:, c + 1], r[:, c + 2], r[:, c + 3]
        skew = ao - bo
        corr = np.corrcoef(r[:, 0], skew)[0, 1] if skew.std() > 0 else float("nan")
        print(f"{name:6s} bid offset {bo.mean():.2f} ± {bo.std():.2f}  ask offset "
              f"{ao.mean():.2f} ± {ao.std():.2f}  sizes {bs.mean():.1f}/{asz.mean():.1f}  "
              f"corr(inventory, skew) {corr:+.2f}")  # fmt: skip
    o = obs.copy()
    for q in (-20, -10, -5, 0, 5, 10, 20):
        o[2] = q / inventory_scale(ec)
        off_b, off_a, qb, qa = decode_box(pol.act(o), ec)
        print(f"inventory {q:+4d}: bid {off_b:.2f} ticks x {qb}, ask {off_a:.2f} ticks x {qa}")


if __name__ == "__main__":
    main()
