"""`Agora/MarketMaking-v0` and `Agora/MarketMakingDiscrete-v0`: one learning market maker in a
background market (`flow` or `crowd`, see `agents.rl.config.EnvConfig.background`).

Each step the agent's quotes are replaced (a quote at an unchanged price whose size only goes
down keeps its place in the queue), the market runs `step_ms` of simulated time, and the agent
is scored: R = ΔPnL - λ_I·I² - λ_V·sigma² - λ_Q·ImpactCost, each term in ``info``
(`agents.rl.desk`). The observation is `agents.rl.observation` (nine values). An episode ends
(truncated) after `episode_steps` steps; it never terminates early.

Box actions (MarketMaking-v0), each in [-1, 1]: bid offset, ask offset (mapped onto
[min_offset_ticks, max_offset_ticks] ticks from the mid the agent last saw), bid size, ask size
(mapped onto 0..max_quote_size lots; 0 = no quote on that side).

Discrete actions (MarketMakingDiscrete-v0), on quotes of `quote_size` lots whose offsets the
environment remembers (starting at one tick each side): 0 keep, 1 shift both quotes up a tick,
2 shift down, 3 widen (one tick more each side), 4 narrow (one tick less each side, never
below the offset range), 5 skew by inventory (shift both quotes against the position, by
``max(1, round(max_offset_ticks·|I|/max_inventory))`` ticks).
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from agents.rl.background import make_background
from agents.rl.config import REGIMES, EnvConfig
from agents.rl.desk import Desk, decode_box
from agents.rl.observation import OBS_HIGH, OBS_LOW

__all__ = ["MarketMakingDiscreteEnv", "MarketMakingEnv", "check_regime"]


def check_regime(regime: str) -> str:
    if regime not in (*REGIMES, "switching"):
        raise ValueError(f"unknown regime {regime!r}: low, medium, high or switching")
    return regime


class MarketMakingEnv(gym.Env):
    """The reference market-making task (see the module docstring)."""

    metadata = {"render_modes": ["ansi"], "render_fps": 10}

    def __init__(self, config: EnvConfig | dict[str, Any] | None = None,
                 render_mode: str | None = None) -> None:  # fmt: skip
        self.config = EnvConfig.coerce(config)
        self.render_mode = render_mode
        self.observation_space = spaces.Box(OBS_LOW, OBS_HIGH, dtype=np.float32)
        self.action_space = self._action_space()
        self.regime = check_regime(self.config.regime)
        self.desk = Desk(self.config)
        self.market: Any = None
        self.steps = 0

    def _action_space(self) -> spaces.Space:
        return spaces.Box(-1.0, 1.0, (4,), np.float32)

    def set_regime(self, regime: str) -> None:
        """The volatility regime of the next episodes (low, medium, high or switching); a
        curriculum calls it on every sub-environment between phases."""
        self.regime = check_regime(regime)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None
              ) -> tuple[np.ndarray, dict[str, Any]]:  # fmt: skip
        super().reset(seed=seed)
        if options and "regime" in options:
            self.set_regime(options["regime"])
        self.market = make_background(self.config, self.np_random, 1, self.regime)
        self.steps = 0
        self._reset_quotes()
        obs = self.desk.start(self.market)
        return obs, {"regime": self.market.regime, "mid": self.desk.mid}

    def _reset_quotes(self) -> None:
        pass

    def _decode(self, action: Any) -> tuple[float, float, int, int]:
        return decode_box(action, self.config)

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        if self.market is None:
            raise RuntimeError("call reset() before step()")
        off_b, off_a, qb, qa = self._decode(action)
        self.market.quote(0, *self.desk.quotes(off_b, off_a, qb, qa))
        self.market.step()
        self.steps += 1
        obs, reward, info = self.desk.settle(self.market)
        truncated = self.steps >= self.config.episode_steps
        return obs, reward, False, truncated, info

    def render(self) -> str | None:
        if self.render_mode != "ansi" or self.market is None:
            return None
        d = self.desk
        return (f"step {self.steps}  mid {d.mid:.1f}  inventory {d.inventory}  "
                f"PnL {d.pnl:.1f}  regime {self.market.regime}")  # fmt: skip

    def close(self) -> None:
        closer = getattr(self.market, "close", None)
        if closer is not None:
            closer()
        self.market = None


class MarketMakingDiscreteEnv(MarketMakingEnv):
    """The same task with six discrete actions (see the module docstring), for DQN."""

    KEEP, UP, DOWN, WIDEN, NARROW, SKEW = range(6)

    def _action_space(self) -> spaces.Space:
        return spaces.Discrete(6)

    def _reset_quotes(self) -> None:
        self.offsets = [1.0, 1.0]

    def _decode(self, action: Any) -> tuple[float, float, int, int]:
        a = int(action)
        if not 0 <= a < 6:
            raise ValueError(f"action {a} is not one of 0..5")
        c = self.config
        b, s = self.offsets
        if a == self.UP:
            b, s = b - 1, s + 1
        elif a == self.DOWN:
            b, s = b + 1, s - 1
        elif a == self.WIDEN:
            b, s = b + 1, s + 1
        elif a == self.NARROW:
            b, s = b - 1, s - 1
        elif a == self.SKEW and self.desk.inventory:
            inv = self.desk.inventory
            k = max(1, round(c.max_offset_ticks * abs(inv) / c.max_inventory))
            k = k if inv > 0 else -k  # long: both quotes down, to sell
            b, s = b + k, s - k
        lo, hi = c.min_offset_ticks, c.max_offset_ticks
        b, s = min(max(b, lo), hi), min(max(s, lo), hi)
        if b + s < 1:  # the quotes must not touch
            b, s = b + 0.5, s + 0.5
        self.offsets = [b, s]
        return b, s, c.quote_size, c.quote_size
