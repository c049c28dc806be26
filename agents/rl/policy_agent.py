"""A trained policy as an `Agent`: `agora attach policy RUN`, and the same from Python.

    from agents.rl.policy_agent import PolicyAgent

    agent = PolicyAgent({"path": "runs/mm-ppo-20261207-010203"})      # a saved run
    agent = PolicyAgent(policy=my_policy, env_config={"step_ms": 100})  # any `Policy` object

Every `step_ms` of the environment the policy was trained on (a timer), the agent reads the
`MarketMaking-v0` observation from what it hears and asks the policy for an action, which it
quotes. Both halves are the environments' own `agents.rl.live.LiveQuoting` (the observation
builder, the queue tracker, the action mapping and the replacement rule), so a policy trained
in simulated time sees and acts the same way over ZeroMQ, and the same class runs in a
`SimMarket` too. Policies with the Box action (MarketMaking-v0) trade; the discrete variant's
actions move offsets that its environment keeps, which is not done here.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from agents.agent import Agent
from agents.events import Fill, OrderUpdate, TradeTick
from agents.strategies._common import resolve_symbol

__all__ = ["PolicyAgent", "PolicyParams"]

_TIMER = "policy.step"


class PolicyParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    path: str | None = Field(default=None, description="agora train's run directory or model.zip")
    symbol: str | None = Field(default=None, description="symbol to quote (None: the first)")
    deterministic: bool = Field(default=True, description="the policy's mean action, no noise")
    step_ms: float | None = Field(default=None, gt=0, description="override the env's step")


class PolicyAgent(Agent):
    """Quotes what a policy trained by `agora train` decides, one decision per step."""

    Params = PolicyParams

    def __init__(self, params: Any = None, policy: Any = None, env_config: Any = None) -> None:
        super().__init__(params)
        if policy is None and self.params.path is None:
            raise ValueError("PolicyAgent needs a saved run (path) or a policy object")
        self._given = (policy, env_config)

    def on_start(self) -> None:
        from gymnasium import spaces

        from agents.rl.config import EnvConfig
        from agents.rl.live import LiveQuoting

        p = self.params
        policy, env_cfg = self._given
        if policy is None:
            from agents.rl.policy import load_policy

            policy, run = load_policy(p.path)
            policy.deterministic = p.deterministic
            env_cfg = env_cfg if env_cfg is not None else run.config.env
            space = policy.model.action_space
            if not isinstance(space, spaces.Box):
                raise ValueError(f"{p.path}: a {type(space).__name__}-action policy "
                                 f"({run.config.env_id}); live quoting takes MarketMaking-v0 "
                                 "(Box action) policies")  # fmt: skip
        self.policy = policy
        self.symbol = resolve_symbol(self.ctx, p.symbol)
        self.quoting = LiveQuoting(EnvConfig.coerce(env_cfg), self.symbol)
        self.steps = 0
        self.fill_count = 0
        self.last_obs: np.ndarray | None = None
        self.last_quotes: tuple[int, int, int, int] | None = None
        self.policy.reset()
        step_ms = p.step_ms if p.step_ms is not None else self.quoting.config.step_ms
        self.ctx.set_timer(_TIMER, round(step_ms * 1e6))

    @property
    def inventory(self) -> int:
        """Lots bought less lots sold since the agent started (as in an episode)."""
        return self.quoting.inventory

    @property
    def pnl(self) -> float:
        """Cash flow of its fills (ticks x lots) plus the inventory at the last mid seen."""
        mid = self.quoting.builder.last_mid
        return self.quoting.cash + (self.quoting.inventory * mid if mid == mid else 0.0)

    def on_order(self, update: OrderUpdate) -> None:
        self.quoting.on_order(self.ctx, update)

    def on_fill(self, fill: Fill) -> None:
        self.quoting.on_fill(fill)
        if fill.symbol == self.symbol:
            self.fill_count += 1
            if self.ctx.log is not None:
                self.ctx.log.info("policy_fill", side=fill.side, price=fill.price,
                                  qty=fill.qty, inventory=self.inventory)  # fmt: skip

    def on_trade(self, trade: TradeTick) -> None:
        self.quoting.on_trade(trade)

    def on_timer(self, name: str) -> None:
        if name != _TIMER:
            return
        obs = self.quoting.observe(self.ctx)
        self.last_obs = obs
        action = self.policy.act(obs)
        self.steps += 1
        self.last_quotes = self.quoting.act(self.ctx, action)
