"""Environment steps per second of `Agora/MarketMaking-v0`, one process, default step length.

    python bench/rl_env.py [--steps 50000] [--crowd-steps 3000] [--seed 1] [--json]

`flow` background (the compiled flow book): the environment as `gymnasium.make` returns it
(with its wrappers) and unwrapped, a random policy, episodes reset as they end (reset time
included); beside it, its peers in the same run: the flow book alone (`FlowMarket.step` with
fixed quotes, no observation or reward) and the book's background events per step.
`crowd` background (the default crowd, examples/market.toml, in SimMarket): the environment,
and its peer, the same market without the learner run over the same simulated time in the
same step-sized slices. Compilation (numba, cached on disk) and the first reset are not
timed. Targets: 20,000 steps/s with flow, 1,000 with the default crowd. The simulated market
runs its compiled cores when `agora accel build` made them (printed).
"""

from __future__ import annotations

import argparse
import json
import time

try:  # noqa: SIM105  (first: keeps bench/ off the import path, see _path.py)
    import _path  # noqa: F401
except ModuleNotFoundError:
    pass

import gymnasium as gym
import numpy as np

import agents.rl  # noqa: F401  (registers the environments)
from agents.rl import flowbook as fb
from agents.rl.config import EnvConfig
from agents.rl.flow import FlowMarket


def _env_rate(env: gym.Env, steps: int, seed: int) -> tuple[float, int]:
    env.reset(seed=seed)
    actions = np.random.default_rng(seed).uniform(-1, 1, (steps, 4)).astype(np.float32)
    resets = 0
    t0 = time.perf_counter()
    for a in actions:
        _, _, term, trunc, _ = env.step(a)
        if term or trunc:
            env.reset()
            resets += 1
    return steps / (time.perf_counter() - t0), resets


def _flow_book_rate(steps: int, seed: int) -> tuple[float, float]:
    cfg = EnvConfig()
    m = FlowMarket(cfg, np.random.default_rng(seed), 1, cfg.regime)
    events0 = int(m.state["si"][fb.S_EVENTS])
    t0 = time.perf_counter()
    for _ in range(steps):
        mid = m.mid()
        if mid == mid:
            m.quote(0, int(mid) - 2, 3, int(mid) + 3, 3)
        m.step()
    rate = steps / (time.perf_counter() - t0)
    return rate, (int(m.state["si"][fb.S_EVENTS]) - events0) / steps


def _crowd_rates(steps: int, seed: int) -> tuple[float, float]:
    from agents.config import load_market
    from agents.rl.crowd import DEFAULT_MARKET
    from agents.sim import SimMarket

    env = gym.make("agents.rl:Agora/MarketMaking-v0",
                   config={"background": "crowd", "episode_steps": steps + 1})  # fmt: skip
    rate, _ = _env_rate(env, steps, seed)
    env.close()
    sim = SimMarket.from_config(load_market(DEFAULT_MARKET), seed=seed)
    step_ns = EnvConfig().step_ns
    sim.run(duration_ns=10 * 10**9)
    t0 = time.perf_counter()
    for _ in range(steps):
        sim.run(duration_ns=step_ns)
    return rate, steps / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--steps", type=int, default=50_000)
    ap.add_argument("--crowd-steps", type=int, default=3_000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = ap.parse_args()
    step_ms = EnvConfig().step_ms

    # compile (or load the cache) and warm up outside the timings
    _env_rate(gym.make("agents.rl:Agora/MarketMaking-v0"), 200, args.seed)

    wrapped, resets = _env_rate(gym.make("agents.rl:Agora/MarketMaking-v0"), args.steps,
                                args.seed)  # fmt: skip
    bare, _ = _env_rate(gym.make("agents.rl:Agora/MarketMaking-v0").unwrapped, args.steps,
                        args.seed)  # fmt: skip
    book, events = _flow_book_rate(args.steps, args.seed)
    crowd, crowd_sim = _crowd_rates(args.crowd_steps, args.seed)
    import accel

    compiled = accel.active()
    figures = {
        "step_ms": step_ms,
        "compiled_cores": compiled,
        "flow_env_steps_per_s": round(wrapped),
        "flow_env_unwrapped_steps_per_s": round(bare),
        "flow_book_only_steps_per_s": round(book),
        "flow_events_per_step": round(events, 1),
        "flow_resets": resets,
        "crowd_env_steps_per_s": round(crowd),
        "crowd_market_alone_steps_per_s": round(crowd_sim),
    }
    if args.json:
        print(json.dumps(figures))
        return
    print(f"MarketMaking-v0, one process, step {step_ms:g} ms of simulated time, random policy")
    print(f"  flow   gymnasium.make (wrapped)   {wrapped:>10,.0f} steps/s   "
          f"({args.steps:,} steps, {resets} resets)")  # fmt: skip
    print(f"  flow   unwrapped                  {bare:>10,.0f} steps/s")
    print(f"  flow   book alone (peer)          {book:>10,.0f} steps/s   "
          f"({events:.1f} background events per step)")  # fmt: skip
    print(f"  crowd  gymnasium.make (wrapped)   {crowd:>10,.0f} steps/s   "
          f"({args.crowd_steps:,} steps, examples/market.toml)")  # fmt: skip
    print(f"  crowd  the market alone (peer)    {crowd_sim:>10,.0f} steps/s   "
          "(same crowd, same slices, no learner)")  # fmt: skip
    print(f"  compiled cores (agora accel build) in the crowd: {', '.join(compiled) or 'none'}")
    print("  targets: flow >= 20,000 steps/s, crowd >= 1,000 steps/s")


if __name__ == "__main__":
    main()
