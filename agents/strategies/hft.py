"""A fast liquidity taker trading on the top-of-book queue imbalance."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from agents.agent import Agent
from agents.events import Quote
from agents.strategies._common import pending_signed, resolve_symbol

__all__ = ["ImbalanceTaker"]


class ImbalanceTaker(Agent):
    """Takes liquidity in the direction of the top-of-book imbalance.

    On every top-of-book change it reads I = (Q_bid - Q_ask)/(Q_bid + Q_ask) ∈ [-1, 1]. A large
    bid queue against a thin ask queue predicts an up-move (the ask queue is likely to deplete
    first), so for I > threshold it buys `order_size` lots at the best ask with an IOC limit
    (`through_ticks` beyond it), and for I < -threshold sells at the best bid. It then waits
    `cooldown_ns` before acting again and never lets position plus working orders exceed
    `max_position` in absolute value. The signal is the one-level queue imbalance; the work per
    event is a few comparisons.

    Sources: A. Cartea, R. Donnelly and S. Jaimungal, "Enhancing trading strategies with order
    book signals", Applied Mathematical Finance 25(1), 2018; M. D. Gould and J. Bonart, "Queue
    imbalance as a one-tick-ahead price predictor in a limit order book", Market
    Microstructure and Liquidity 2(2), 2016.
    """

    class Params(BaseModel):
        model_config = ConfigDict(extra="forbid")

        symbol: str | None = Field(default=None, description="symbol to trade (None: the first)")
        threshold: float = Field(
            default=0.6, gt=0.0, lt=1.0, description="act when |imbalance| exceeds this"
        )
        min_depth: int = Field(
            default=1, ge=0, description="ignore books with fewer lots at the touch in total"
        )
        order_size: int = Field(default=1, ge=1, description="lots per order")
        max_position: int = Field(default=10, ge=1, description="absolute position limit (lots)")
        cooldown_ns: int = Field(
            default=100_000_000, ge=0, description="quiet time after each order (ns)"
        )
        through_ticks: int = Field(
            default=0, ge=0, description="IOC limit this many ticks beyond the best quote"
        )

    def on_start(self) -> None:
        self.symbol = resolve_symbol(self.ctx, self.params.symbol)
        self._next_ok = -(2**62)

    def on_book(self, quote: Quote) -> None:
        if quote.symbol != self.symbol:
            return
        p = self.params
        imb = quote.imbalance
        if imb is None or -p.threshold <= imb <= p.threshold:
            return
        if quote.bid_qty + quote.ask_qty < p.min_depth:
            return
        ctx = self.ctx
        now = ctx.now()
        if now < self._next_ok:
            return
        exposure = ctx.position(self.symbol) + pending_signed(ctx, self.symbol)
        if imb > 0:
            if quote.ask is None:
                return
            qty = min(p.order_size, p.max_position - exposure)
            if qty <= 0:
                return
            ctx.submit(self.symbol, "buy", qty, quote.ask + p.through_ticks, tif="IOC")
        else:
            if quote.bid is None:
                return
            qty = min(p.order_size, p.max_position + exposure)
            if qty <= 0:
                return
            ctx.submit(self.symbol, "sell", qty, max(1, quote.bid - p.through_ticks), tif="IOC")
        self._next_ok = now + p.cooldown_ns
