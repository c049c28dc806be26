"""Several learning market makers in one market: a PettingZoo ``ParallelEnv``.

`MultiMarketMakingEnv` puts `EnvConfig.agents` market makers (``mm_0``, ``mm_1``, ...) in the
same background market, each with the observation, Box action and reward of
`Agora/MarketMaking-v0` (`agents.rl.desk`). Their orders share the book's queues (an order
that arrived earlier is ahead, whoever sent it) and they can trade with each other. All act at
once each step; every agent's episode is truncated together after `episode_steps` steps.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np
from gymnasium import spaces
from pettingzoo import ParallelEnv

from agents.rl.background import make_background
from agents.rl.config import EnvConfig
from agents.rl.desk import Desk, decode_box
from agents.rl.market_making import check_regime
from agents.rl.observation import OBS_HIGH, OBS_LOW

__all__ = ["MultiMarketMakingEnv", "parallel_env"]


class MultiMarketMakingEnv(ParallelEnv):
    metadata = {"name": "agora_market_making_v0", "render_modes": []}

    def __init__(self, config: EnvConfig | dict[str, Any] | None = None,
                 render_mode: str | None = None) -> None:  # fmt: skip
        self.config = EnvConfig.coerce(config)
        self.render_mode = render_mode
        self.possible_agents = [f"mm_{i}" for i in range(self.config.agents)]
        self.agents: list[str] = []
        self.regime = check_regime(self.config.regime)
        self._rng = np.random.default_rng()
        self.market: Any = None
        self.desks = {a: Desk(self.config, i) for i, a in enumerate(self.possible_agents)}

    @functools.cache  # noqa: B019 - one space per agent, for the env's life
    def observation_space(self, agent: str) -> spaces.Space:
        return spaces.Box(OBS_LOW, OBS_HIGH, dtype=np.float32)

    @functools.cache  # noqa: B019
    def action_space(self, agent: str) -> spaces.Space:
        return spaces.Box(-1.0, 1.0, (4,), np.float32)

    def set_regime(self, regime: str) -> None:
        """The volatility regime of the next episodes (see `agents.rl.config`)."""
        self.regime = check_regime(regime)

    def reset(self, seed: int | None = None, options: dict[str, Any] | None = None
              ) -> tuple[dict[str, np.ndarray], dict[str, dict]]:  # fmt: skip
        if seed is not None:
            self._rng = np.random.default_rng(seed)
        if options and "regime" in options:
            self.set_regime(options["regime"])
        self.market = make_background(self.config, self._rng, len(self.possible_agents),
                                      self.regime)  # fmt: skip
        self.agents = list(self.possible_agents)
        self.steps = 0
        obs = {a: self.desks[a].start(self.market) for a in self.agents}
        infos = {a: {"regime": self.market.regime} for a in self.agents}
        return obs, infos

    def step(self, actions: dict[str, Any]) -> tuple[dict, dict, dict, dict, dict]:
        if not self.agents:
            raise RuntimeError("the episode is over: call reset()")
        for a in self.agents:
            if a in actions:
                desk = self.desks[a]
                off_b, off_a, qb, qa = decode_box(actions[a], self.config)
                self.market.quote(desk.index, *desk.quotes(off_b, off_a, qb, qa))
        self.market.step()
        self.steps += 1
        obs, rewards, infos = {}, {}, {}
        for a in self.agents:
            obs[a], rewards[a], infos[a] = self.desks[a].settle(self.market)
        done = self.steps >= self.config.episode_steps
        terminations = {a: False for a in self.agents}
        truncations = {a: done for a in self.agents}
        if done:
            self.agents = []
        return obs, rewards, terminations, truncations, infos

    def close(self) -> None:
        closer = getattr(self.market, "close", None)
        if closer is not None:
            closer()
        self.market = None


def parallel_env(config: EnvConfig | dict[str, Any] | None = None) -> MultiMarketMakingEnv:
    """PettingZoo's conventional constructor name."""
    return MultiMarketMakingEnv(config)
