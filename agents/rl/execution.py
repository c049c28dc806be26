"""`Agora/Execution-v0`: sell (or buy) `execution.quantity` lots within `episode_steps` steps.

Each step the agent chooses how much of what is left to trade now, as a marketable order
that takes liquidity from the background's book (what does not trade at once is cancelled).
The book's depth is the immediate cost; the configured impact model (`agents.impact`) moves
the background's reference price after each child order (the permanent part stays, the
temporary part decays), so trading fast makes the next children dearer. Whatever is left at
the last step is sent then.

Observation (float32, six values, clipped): remaining / quantity [0, 1]; time left (share of
the episode) [0, 1]; spread / spread_scale_ticks [0, 5]; volatility estimate / sigma_scale
[0, 10]; imbalance at the best [-1, 1]; the mid's move since arrival, in the direction that
hurts (up for a buy, down for a sell) / price_scale_ticks [-10, 10].

Action: Box [-1, 1], one value: the share ``(a + 1)/2`` of the remaining quantity to trade.

Reward: minus the implementation shortfall of the step, per lot of the parent order:
``-(side·(price - arrival mid)·qty) / quantity`` summed over the step's fills (side +1 buy,
-1 sell), so an episode's return is minus the shortfall in ticks per lot. A parent not done
by the end (an empty book) costs `unfilled_penalty_ticks` per missing lot. The episode
terminates when nothing is left, and is truncated at `episode_steps`.

Baselines: `baseline_schedule("twap" | "almgren_chriss")` is the per-step child sizes of the
TWAP and Almgren-Chriss trajectories (`agents.impact`), and `baseline_action(name)` the
action that trades this step's child, so a baseline runs through the same environment. The
Almgren-Chriss trajectory uses the regime's sigma and the linear temporary impact that the
configured model implies for one step, η·sigma·√(step).
"""

from __future__ import annotations

import math
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from agents.impact import almgren_chriss_schedule, twap_schedule
from agents.rl.background import make_background
from agents.rl.config import EnvConfig
from agents.rl.flowbook import O_BUY, O_BUY_CASH, O_SELL, O_SELL_CASH, R_MID, R_SNAP
from agents.rl.market_making import check_regime
from agents.rl.observation import ObservationBuilder

__all__ = ["EXEC_HIGH", "EXEC_LOW", "ExecutionEnv"]

EXEC_LOW = np.array([0, 0, 0, 0, -1, -10], np.float32)
EXEC_HIGH = np.array([1, 1, 5, 10, 1, 10], np.float32)
_FAR = 10**9  # a price no book reaches: the child is limited by quantity only


class ExecutionEnv(gym.Env):
    """Optimal execution of one parent order (see the module docstring)."""

    metadata = {"render_modes": []}
    BASELINES = ("twap", "almgren_chriss")

    def __init__(self, config: EnvConfig | dict[str, Any] | None = None,
                 render_mode: str | None = None) -> None:  # fmt: skip
        self.config = EnvConfig.coerce(config)
        self.render_mode = render_mode
        self.observation_space = spaces.Box(EXEC_LOW, EXEC_HIGH, dtype=np.float32)
        self.action_space = spaces.Box(-1.0, 1.0, (1,), np.float32)
        self.regime = check_regime(self.config.regime)
        self.builder = ObservationBuilder.from_config(self.config)
        self.market: Any = None
        self._schedules = {}
        task = self.config.execution
        self.sign = 1 if task.side == "buy" else -1
        self.quantity = task.quantity

    def set_regime(self, regime: str) -> None:
        """The volatility regime of the next episodes (see `agents.rl.config`)."""
        self.regime = check_regime(regime)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None
              ) -> tuple[np.ndarray, dict[str, Any]]:  # fmt: skip
        super().reset(seed=seed)
        if options and "regime" in options:
            self.set_regime(options["regime"])
        self.market = make_background(self.config, self.np_random, 1, self.regime)
        self.steps = 0
        self.remaining = self.quantity
        self.shortfall = 0.0
        self.filled_cash = 0.0
        self._schedules: dict[str, np.ndarray] = {}  # cumulative baseline children, per name
        r = self.market.outcome(0)
        self.arrival = r[R_MID]
        if self.arrival != self.arrival:  # a side is empty: the side that is there
            bid, ask = r[R_SNAP], r[R_SNAP + 2]
            self.arrival = ask if bid != bid else bid
            if self.arrival != self.arrival:
                raise RuntimeError("the background's book is empty after its warm-up")
        self.builder.reset(self.arrival, 0.0, self.market.now_ns)
        obs = self._observe(r)
        return obs, {"arrival": self.arrival, "regime": self.market.regime}

    def _observe(self, r: list[float]) -> np.ndarray:
        b = self.builder
        bid, bq, ask, aq = r[R_SNAP], r[R_SNAP + 1], r[R_SNAP + 2], r[R_SNAP + 3]
        full = b.build(self.market.now_ns, bid, bq, ask, aq, 0, 0.0, 0)
        mid = b.last_mid
        move = 0.0 if mid != mid else self.sign * (mid - self.arrival) / b.price_scale_ticks
        left = 1.0 - self.steps / self.config.episode_steps
        vals = (self.remaining / self.quantity, left, float(full[1]), float(full[3]),
                float(full[4]), move)  # fmt: skip
        return np.clip(np.array(vals, np.float32), EXEC_LOW, EXEC_HIGH)

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        if self.market is None:
            raise RuntimeError("call reset() before step()")
        a = float(np.clip(np.asarray(action, np.float64).reshape(-1)[0], -1.0, 1.0))
        last = self.steps + 1 >= self.config.episode_steps
        qty = self.remaining if last else round((a + 1.0) * 0.5 * self.remaining)
        if qty > 0:
            if self.sign > 0:
                self.market.quote(0, _FAR, qty, _FAR + 1, 0, ioc=True)
            else:
                self.market.quote(0, 0, 0, 1, qty, ioc=True)
        self.market.step()
        self.steps += 1
        r = self.market.outcome(0)
        if self.sign > 0:
            done, cash = r[O_BUY], r[O_BUY_CASH]
        else:
            done, cash = r[O_SELL], r[O_SELL_CASH]
        done = int(done)
        self.remaining -= done
        self.filled_cash += cash
        step_shortfall = self.sign * (cash - done * self.arrival)
        penalty = 0.0
        if last and self.remaining > 0:
            penalty = self.remaining * self.config.execution.unfilled_penalty_ticks
        self.shortfall += step_shortfall + penalty
        reward = -(step_shortfall + penalty) / self.quantity
        obs = self._observe(r)
        terminated = self.remaining <= 0
        truncated = last and not terminated
        filled = self.quantity - self.remaining
        info = {
            "child_qty": qty,
            "filled_qty": done,
            "remaining": self.remaining,
            "arrival": self.arrival,
            "mid": self.builder.last_mid,
            "avg_price": self.filled_cash / filled if filled else math.nan,
            "shortfall": self.shortfall,
            "shortfall_per_lot": self.shortfall / self.quantity,
            "step_shortfall": step_shortfall,
            "unfilled_penalty": penalty,
            "regime": self.market.regime,
            "ts_ns": self.market.now_ns,
        }
        return obs, float(reward), terminated, truncated, info

    # ------------------------------------------------------------------ baselines
    def baseline_schedule(self, name: str) -> list[int]:
        """Per-step child sizes of a baseline trajectory for this episode's parent order."""
        steps = self.config.episode_steps
        if name == "twap":
            return twap_schedule(self.quantity, steps)
        if name == "almgren_chriss":
            if self.market is None:
                raise RuntimeError("call reset() first: the trajectory uses the regime's sigma")
            step_s = self.config.step_ms / 1e3
            sigma = self.market.sigma
            eta = max(self.config.impact.eta * sigma * math.sqrt(step_s), 1e-12)
            return almgren_chriss_schedule(self.quantity, steps, steps * step_s,
                                           self.config.execution.risk_aversion, sigma, eta)
        raise ValueError(f"unknown baseline {name!r}: one of {', '.join(self.BASELINES)}")

    def baseline_action(self, name: str) -> np.ndarray:
        """The action that trades this step's child of the named baseline (what it did not
        get filled earlier is caught up now)."""
        cache = self._schedules
        if name not in cache:
            cache[name] = np.cumsum(self.baseline_schedule(name))
        target = int(cache[name][min(self.steps, len(cache[name]) - 1)])
        want = max(0, min(self.remaining, target - (self.quantity - self.remaining)))
        frac = want / self.remaining if self.remaining else 0.0
        return np.array([2.0 * frac - 1.0], np.float32)
