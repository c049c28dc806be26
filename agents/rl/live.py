"""A market-making policy's view and hands inside any `agents.Agent`: live, or in simulated time.

`LiveQuoting` turns what an agent's handlers hear (quotes, trades, its own order updates and
fills) into the `MarketMaking-v0` observation with the very `ObservationBuilder` the
environments use, and turns a policy's action into quotes with the environments' own mapping
(`decode_box`, `quote_prices`) and replacement rule (`requote`: an unchanged price with a size
that only goes down is amended, which keeps the order's place in the queue; anything else is
cancelled and sent anew). So a policy trained in simulated time sees and acts the same way over
ZeroMQ. The queue places are estimated from the feed (`QueueTracker`); inventory and PnL count
from the moment quoting starts, as in an episode.

    class PolicyAgent(Agent):
        def on_start(self):
            self.q = LiveQuoting(EnvConfig(), self.ctx.symbols[0])
            self.ctx.set_timer("step", self.q.config.step_ns)
        def on_order(self, update): self.q.on_order(self.ctx, update)
        def on_fill(self, fill): self.q.on_fill(fill)
        def on_trade(self, trade): self.q.on_trade(trade)
        def on_timer(self, name):
            obs = self.q.observe(self.ctx)
            self.q.act(self.ctx, policy(obs))
"""

from __future__ import annotations

from typing import Any

import numpy as np

from agents.agent import Context
from agents.events import Fill, OrderUpdate, TradeTick
from agents.rl.config import EnvConfig
from agents.rl.desk import decode_box, quote_prices
from agents.rl.observation import ObservationBuilder, QueueTracker

__all__ = ["LiveQuoting", "requote"]


def requote(ctx: Context, symbol: str, orders: list[str | None],
            quotes: tuple[int, int, int, int], ioc: bool = False) -> None:  # fmt: skip
    """Replace the resting bid and ask (client order ids in ``orders``, updated in place) by
    ``quotes`` = (bid, bid qty, ask, ask qty); a qty of 0 means no order on that side."""
    for side, name in ((0, "buy"), (1, "sell")):
        px, qty = quotes[2 * side], quotes[2 * side + 1]
        clid = orders[side]
        order = ctx.portfolio.orders.get(clid) if clid else None
        if order is not None and not order.cancel_pending:
            if order.price == px and qty <= order.leaves_qty and not ioc:
                if qty == order.leaves_qty:
                    continue
                if qty > 0:  # a size-down at the same price keeps the place
                    ctx.replace(clid, qty=order.cum_qty + qty)
                    continue
            ctx.cancel(clid)
        orders[side] = None
        if qty > 0:
            orders[side] = ctx.submit(symbol, name, qty, px, tif="IOC" if ioc else "GTC")


class LiveQuoting:
    """Observation and quoting for one learned market maker on one symbol."""

    def __init__(self, config: EnvConfig | dict[str, Any] | None, symbol: str) -> None:
        self.config = EnvConfig.coerce(config)
        self.symbol = symbol
        self.builder = ObservationBuilder.from_config(self.config)
        self.queues = (QueueTracker(), QueueTracker())
        self.orders: list[str | None] = [None, None]
        self.inventory = 0
        self.cash = 0.0
        self.fills = 0
        self.started = False

    # ------------------------------------------------------------------ hearing
    def on_order(self, ctx: Context, update: OrderUpdate) -> None:
        """Track the place of our resting quotes (call from `Agent.on_order`)."""
        if update.client_order_id not in self.orders or update.symbol != self.symbol:
            return
        tracker = self.queues[0 if update.side == "buy" else 1]
        if update.exec_type == "new" and update.price is not None:
            bids, asks = ctx.book(self.symbol, 20)
            levels = bids if update.side == "buy" else asks
            ahead = next((q for p, q, *_ in levels if p == update.price), 0)
            tracker.place(update.price, update.leaves_qty, ahead)
        elif update.exec_type == "replaced" and update.leaves_qty > 0:
            tracker.resize(update.leaves_qty)
        elif update.leaves_qty <= 0 or update.exec_type in ("canceled", "expired", "rejected"):
            tracker.clear()
        else:
            tracker.resize(update.leaves_qty)

    def on_fill(self, fill: Fill) -> None:
        if fill.symbol != self.symbol:
            return
        sign = 1 if fill.side == "buy" else -1
        self.inventory += sign * fill.qty
        self.cash -= sign * fill.price * fill.qty
        self.fills += 1

    def on_trade(self, trade: TradeTick) -> None:
        if trade.symbol == self.symbol:
            for tracker in self.queues:
                tracker.on_trade(trade.price, trade.qty)

    # ------------------------------------------------------------------ observing and acting
    def observe(self, ctx: Context) -> np.ndarray:
        """The nine-value observation now (the first call starts the episode's clock)."""
        q = ctx.quote(self.symbol)
        bid = None if q is None else q.bid
        ask = None if q is None else q.ask
        bq = 0 if q is None else q.bid_qty
        aq = 0 if q is None else q.ask_qty
        b = self.builder
        for tracker, px, qty in ((self.queues[0], bid, bq), (self.queues[1], ask, aq)):
            if px is not None:
                tracker.on_level(px, qty)
        if not self.started:
            b.reset(b.mid_of(bid, ask), 0.0, ctx.now())
            b.last_mid = float("nan")
            self.started = True
        mid = b.mid_of(bid, ask)
        pnl = self.cash + self.inventory * mid if mid == mid else b.last_pnl
        obs = b.build(ctx.now(), bid, bq, ask, aq, self.inventory, pnl, self.fills,
                      self.queues[0].position, self.queues[1].position)  # fmt: skip
        self.fills = 0
        return obs

    def act(self, ctx: Context, action: Any) -> tuple[int, int, int, int]:
        """Quote as the Box action says (`decode_box`); returns the quotes sent."""
        off_b, off_a, qb, qa = decode_box(action, self.config)
        mid = self.builder.last_mid
        if mid != mid:
            return (0, 0, 0, 0)  # no mid seen yet: nothing to quote around
        quotes = quote_prices(mid, off_b, off_a, qb, qa, self.inventory, self.config)
        requote(ctx, self.symbol, self.orders, quotes)
        return quotes
