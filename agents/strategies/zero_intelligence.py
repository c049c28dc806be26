"""Zero-intelligence traders: random limit and market orders around a reference price."""

from __future__ import annotations

from math import log
from typing import Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from agents.agent import Agent
from agents.strategies._common import ExpiryQueue, reference_ticks, resolve_symbol

__all__ = ["ZeroIntelligence"]

_TIMER = "zi.arrive"
_EXPIRE = "zi.expire"
_BLOCK = 256  # uniforms drawn from the generator at once


class ZeroIntelligence(Agent):
    """Gode-Sunder style zero-intelligence trader.

    Orders arrive as a Poisson process: the waiting time to the next one is exponential with
    mean `mean_interval_ns` (or exactly that interval when `poisson` is off). On each arrival
    the side is a fair coin; with probability `market_prob` the order is a market order,
    otherwise a limit order at

        buy:  p = a - u,   sell: p = a + u,   u ~ Uniform{min_offset_ticks, ..., max_offset_ticks}

    where `a` is the anchor (last trade, mid, F(t) or the spec's reference price, falling back
    along that list when the chosen one is unknown). A negative `min_offset_ticks` lets some
    limit orders cross the anchor. Sizes are uniform integers in [min_size, max_size]. Resting
    orders are cancelled `lifetime_ns` after they were sent (0: they rest until filled).

    Prices carry no information and there is no budget constraint beyond the exchange's, so the
    book's shape and the price process come from the order-flow statistics alone.

    Sources: D. K. Gode and S. Sunder, "Allocative efficiency of markets with zero-intelligence
    traders", Journal of Political Economy 101(1), 1993; J. D. Farmer, P. Patelli and I. I.
    Zovko, "The predictive power of zero intelligence in financial markets", PNAS 102(6), 2005.
    """

    class Params(BaseModel):
        model_config = ConfigDict(extra="forbid")

        symbol: str | None = Field(default=None, description="symbol to trade (None: the first)")
        mean_interval_ns: int = Field(
            default=1_000_000_000, gt=0, description="mean time between two orders (ns)"
        )
        poisson: bool = Field(
            default=True, description="exponential (Poisson) waiting times, else a fixed interval"
        )
        market_prob: float = Field(
            default=0.1, ge=0.0, le=1.0, description="probability that an order is a market order"
        )
        min_offset_ticks: int = Field(
            default=0, description="smallest distance from the anchor (negative: may cross)"
        )
        max_offset_ticks: int = Field(
            default=20, ge=0, description="largest distance of a limit price from the anchor"
        )
        min_size: int = Field(default=1, ge=1, description="smallest order size (lots)")
        max_size: int = Field(default=10, ge=1, description="largest order size (lots)")
        lifetime_ns: int = Field(
            default=30_000_000_000,
            ge=0,
            description="cancel a resting order this long after sending it (0: never)",
        )
        anchor: Literal["last", "mid", "fundamental", "reference"] = Field(
            default="mid", description="price the limit orders are placed around"
        )

        @model_validator(mode="after")
        def _ranges(self) -> Self:
            if self.max_size < self.min_size:
                raise ValueError("max_size must be >= min_size")
            if self.max_offset_ticks < self.min_offset_ticks:
                raise ValueError("max_offset_ticks must be >= min_offset_ticks")
            return self

    def on_start(self) -> None:
        p = self.params
        ctx = self.ctx
        self.symbol = resolve_symbol(ctx, p.symbol)
        self._order = (p.anchor,)
        self._expiry = ExpiryQueue(_EXPIRE)
        # The crowd's hot path runs once per order. Its random numbers come from one block of
        # uniforms drawn from the agent's generator at a time (`_BLOCK` per call): a numpy
        # call per number (`integers` alone is ~0.8 us) cost more than the rest of an arrival.
        # Sizes, offsets and coins are the uniforms scaled; waits are -mean * log(1 - u).
        self._random = ctx.rng.random
        self._uniforms: list[float] = []
        self._size = (p.min_size, p.max_size - p.min_size + 1)
        self._offset = (p.min_offset_ticks, p.max_offset_ticks - p.min_offset_ticks + 1)
        self._schedule()

    def _refill(self) -> list[float]:
        """The uniforms not used yet, refilled to hold at least the five an arrival may use."""
        self._uniforms = u = self._random(_BLOCK).tolist() + self._uniforms
        return u

    def _schedule(self) -> None:
        p = self.params
        if p.poisson:  # exponential waiting time by inversion of one uniform
            u = self._uniforms
            if len(u) < 5:
                u = self._refill()
            wait = max(1, int(-p.mean_interval_ns * log(1.0 - u.pop())))
        else:
            wait = p.mean_interval_ns
        self.ctx.set_timer(_TIMER, wait, repeat=False)

    def on_timer(self, name: str) -> None:
        if name == _TIMER:
            self._arrive()
            self._schedule()
        elif name == _EXPIRE:
            self._expiry.sweep(self.ctx)

    def _arrive(self) -> None:
        p = self.params
        ctx = self.ctx
        u = self._uniforms
        if len(u) < 5:
            u = self._refill()
        pop = u.pop
        side = "buy" if pop() < 0.5 else "sell"
        lo, n = self._size
        qty = lo + _below(pop(), n)
        if pop() < p.market_prob:
            ctx.submit(self.symbol, side, qty)
            return
        anchor = round(reference_ticks(ctx, self.symbol, self._order))
        lo, n = self._offset
        offset = lo + _below(pop(), n)
        price = anchor - offset if side == "buy" else anchor + offset
        if price < 1:
            price = 1
        clid = ctx.submit(self.symbol, side, qty, price)
        self._expiry.track(ctx, clid, p.lifetime_ns)


def _below(u: float, n: int) -> int:
    """A uniform integer in [0, n) from a uniform float in [0, 1) (guarding the rounding edge)."""
    k = int(u * n)
    return k if k < n else n - 1
