"""Zero-intelligence traders: random limit and market orders around a reference price."""

from __future__ import annotations

from typing import Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from agents.agent import Agent
from agents.strategies._common import ExpiryQueue, reference_ticks, resolve_symbol

__all__ = ["ZeroIntelligence"]

_TIMER = "zi.arrive"
_EXPIRE = "zi.expire"


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
        # The crowd's hot path runs once per order: the parameters and the generator's
        # methods are looked up once here, not per arrival (same draws, same order).
        rng = ctx.rng
        self._random = rng.random
        self._integers = rng.integers
        self._exponential = rng.exponential
        self._size_range = (p.min_size, p.max_size + 1)
        self._offset_range = (p.min_offset_ticks, p.max_offset_ticks + 1)
        self._schedule()

    def _schedule(self) -> None:
        p = self.params
        if p.poisson:  # exp_interval(ctx, mean), with the method looked up once
            wait = max(1, int(self._exponential(p.mean_interval_ns)))
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
        random = self._random
        integers = self._integers
        side = "buy" if random() < 0.5 else "sell"
        qty = int(integers(*self._size_range))
        if random() < p.market_prob:
            ctx.submit(self.symbol, side, qty)
            return
        anchor = round(reference_ticks(ctx, self.symbol, self._order))
        offset = int(integers(*self._offset_range))
        price = anchor - offset if side == "buy" else anchor + offset
        if price < 1:
            price = 1
        clid = ctx.submit(self.symbol, side, qty, price)
        self._expiry.track(ctx, clid, p.lifetime_ns)
