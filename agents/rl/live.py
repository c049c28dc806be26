"""A trained policy as an `Agent`: `agora attach policy RUN` and the Python API.

    from agents.rl.live import PolicyAgent
    agent = PolicyAgent({"path": "runs/mm-20261207-010203"})   # any host: live or simulated

Every `step_ms` of the environment the policy was trained on (a timer), the agent builds the
observation with the environments' own `ObservationBuilder` from what it sees (top of book,
its position, its PnL marked to the mid, its fills since the last step, and its queue places
from `QueueTracker`), asks the policy for an action and turns it into its two quotes exactly
as the environment does (`agents.rl.desk`: `decode_box`, then `Desk.quotes` around the mid it
last saw, with the same inventory cap). Policies with the Box action (MarketMaking-v0) trade
live; the discrete variant's actions move offsets the environment keeps, not yet here.

A quote whose price is unchanged and whose size only goes down is amended in place (it keeps
its queue priority); any other change is a replace; a size of zero cancels that side.

Inventory and PnL are what the environment measures, counted from when the agent started (an
account that already holds shares starts at inventory 0): the position bought or sold since,
and the cash flow of the agent's own fills in ticks x lots plus that inventory at the mid
(fees not included).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from agents.agent import Agent
from agents.events import Fill, OrderUpdate, Quote, TradeTick
from agents.strategies._common import resolve_symbol

__all__ = ["PolicyAgent"]

_TIMER = "policy.step"


class PolicyParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    path: str = Field(description="the run directory (or model.zip) agora train saved")
    symbol: str | None = Field(default=None, description="symbol to quote (None: the first)")
    deterministic: bool = Field(default=True, description="the policy's mean action, no noise")
    step_ms: float | None = Field(default=None, gt=0, description="override the env's step")


class PolicyAgent(Agent):
    """Quotes what a policy trained by `agora train` decides, one decision per step."""

    Params = PolicyParams

    def __init__(self, params: Any = None, policy: Any = None, env_config: Any = None) -> None:
        super().__init__(params)
        self._given = (policy, env_config)  # the Python API: a policy object instead of a path

    def on_start(self) -> None:
        from gymnasium import spaces

        from agents.rl.config import EnvConfig
        from agents.rl.desk import Desk
        from agents.rl.observation import QueueTracker

        p = self.params
        policy, env_cfg = self._given
        if policy is None:
            from agents.rl.policy import load_policy

            policy, run = load_policy(p.path)
            policy.deterministic = p.deterministic
            env_cfg = env_cfg if env_cfg is not None else run.config.env
            self.env_id = run.config.env_id
        else:
            self.env_id = "agents.rl:Agora/MarketMaking-v0"
        space = getattr(getattr(policy, "model", None), "action_space", None)
        if space is not None and not isinstance(space, spaces.Box):
            raise ValueError(f"{p.path}: a {type(space).__name__} policy ({self.env_id}); live "
                             "trading takes MarketMaking-v0 (Box action) policies")  # fmt: skip
        self.policy = policy
        self.env_cfg = EnvConfig.coerce(env_cfg)
        self.symbol = resolve_symbol(self.ctx, p.symbol)
        self.start_position = self.ctx.position(self.symbol)
        self.desk = Desk(self.env_cfg)
        self.builder = self.desk.builder
        self.queues = {"buy": QueueTracker(), "sell": QueueTracker()}
        self.ids: dict[str, str | None] = {"buy": None, "sell": None}
        self.fills = 0
        self.fill_count = 0
        self.cash_ticks = 0.0
        self.steps = 0
        self.last_obs: np.ndarray | None = None
        self.last_action: Any = None
        self.builder.reset(float("nan"), 0.0, self.ctx.now())
        self.policy.reset()
        step_ms = p.step_ms if p.step_ms is not None else self.env_cfg.step_ms
        self.ctx.set_timer(_TIMER, round(step_ms * 1e6))

    # ------------------------------------------------------------------ what it sees
    @property
    def inventory(self) -> int:
        """Lots bought less lots sold since the agent started."""
        return self.ctx.position(self.symbol) - self.start_position

    def pnl(self, mid: float) -> float:
        """Own fills' cash flow (ticks x lots) plus the inventory at `mid`."""
        return self.cash_ticks + (self.inventory * mid if mid == mid else 0.0)

    def on_fill(self, fill: Fill) -> None:
        if fill.symbol != self.symbol:
            return
        if self.ctx.log is not None:
            self.ctx.log.info("policy_fill", side=fill.side, price=fill.price, qty=fill.qty,
                              inventory=self.inventory)  # fmt: skip
        self.fills += 1
        self.fill_count += 1
        sign = 1 if fill.side == "buy" else -1
        self.cash_ticks -= sign * fill.price * fill.qty
        order = self.ctx.portfolio.orders.get(fill.client_order_id)
        tracker = self.queues[fill.side]
        if order is None:
            tracker.clear()
        else:
            tracker.resize(order.leaves_qty)

    def on_order(self, update: OrderUpdate) -> None:
        side = update.side
        if update.symbol != self.symbol or side not in self.queues:
            return
        if update.client_order_id != self.ids.get(side):
            return
        tracker = self.queues[side]
        if update.exec_type in ("new", "replaced") and update.price is not None:
            if update.exec_type == "replaced" and tracker.price == update.price:
                tracker.resize(update.leaves_qty)  # a size-down keeps its place
            else:
                tracker.place(update.price, update.leaves_qty, self._level(side, update.price)
                              - update.leaves_qty)  # fmt: skip
        elif update.exec_type in ("canceled", "rejected", "expired"):
            tracker.clear()
            self.ids[side] = None

    def on_trade(self, trade: TradeTick) -> None:
        if trade.symbol == self.symbol:
            for tracker in self.queues.values():
                tracker.on_trade(trade.price, trade.qty)

    def on_book(self, quote: Quote) -> None:
        if quote.symbol != self.symbol:
            return
        if quote.bid is not None:
            self.queues["buy"].on_level(quote.bid, quote.bid_qty)
        if quote.ask is not None:
            self.queues["sell"].on_level(quote.ask, quote.ask_qty)

    def _level(self, side: str, price: int) -> float:
        """Lots shown at `price` on `side` (0 if the level is not in the top of the book)."""
        bids, asks = self.ctx.book(self.symbol, 10)
        for px, qty, *_ in bids if side == "buy" else asks:
            if px == price:
                return float(qty)
        return 0.0

    def observe(self) -> np.ndarray:
        """This step's observation (as the environment builds it)."""
        ctx = self.ctx
        q = ctx.quote(self.symbol)
        bid, bid_qty, ask, ask_qty = (None, 0, None, 0) if q is None else (
            q.bid, q.bid_qty, q.ask, q.ask_qty)  # fmt: skip
        mid = self.builder.mid_of(bid, ask)
        obs = self.builder.build(
            ctx.now(), bid, bid_qty, ask, ask_qty, self.inventory, self.pnl(mid),
            self.fills, self.queues["buy"].position, self.queues["sell"].position,
        )  # fmt: skip
        self.fills = 0
        return obs

    # ------------------------------------------------------------------ what it does
    def on_timer(self, name: str) -> None:
        if name != _TIMER:
            return
        obs = self.observe()
        self.last_obs = obs
        if self.builder.last_mid != self.builder.last_mid:  # no mid yet: nothing to quote around
            return
        from agents.rl.desk import decode_box

        action = self.policy.act(obs)
        self.last_action = action
        self.steps += 1
        self.desk.inventory = self.inventory
        bid, bid_qty, ask, ask_qty = self.desk.quotes(*decode_box(action, self.env_cfg))
        self._quote("buy", bid, bid_qty)
        self._quote("sell", ask, ask_qty)

    def _quote(self, side: str, price: int | None, qty: int) -> None:
        ctx = self.ctx
        clid = self.ids[side]
        order = ctx.portfolio.orders.get(clid) if clid is not None else None
        if order is not None and order.cancel_pending:
            order = None
        if price is None or qty <= 0 or price < 1:
            if order is not None:
                ctx.cancel(order.client_order_id)
            return
        if order is None:
            self.ids[side] = ctx.submit(self.symbol, side, qty, price)
            return
        if order.price == price and order.leaves_qty == qty:
            return
        ctx.replace(order.client_order_id, qty=order.cum_qty + qty, price=price)
