"""Noise traders: market orders of heavy-tailed size at Poisson times."""

from __future__ import annotations

import math

from pydantic import BaseModel, ConfigDict, Field

from agents.agent import Agent
from agents.strategies._common import exp_interval, resolve_symbol

__all__ = ["NoiseTrader", "pareto_size"]

_TIMER = "noise.arrive"


def pareto_size(u: float, x_min: float, tail: float, cap: int) -> int:
    """A Pareto(x_min, tail) size by inversion of a uniform u in [0, 1), rounded down, capped.

    P(S > s) = (x_min / s)^tail for s >= x_min, so S = x_min * (1 - u)^(-1/tail).
    """
    size = x_min * (1.0 - u) ** (-1.0 / tail)
    return max(1, min(cap, math.floor(size)))


class NoiseTrader(Agent):
    """Uninformed liquidity demand: market orders with Pareto sizes at Poisson times.

    Arrivals form a Poisson process of rate 1/`mean_interval_ns`. The side is buy with
    probability `buy_prob`; the size is Pareto with scale `min_size` and tail exponent
    `tail_exponent`, P(S > s) = (min_size/s)^tail for s ≥ min_size, rounded down to whole lots and
    capped at `max_size`. A tail exponent near 1.5 reproduces the power-law order-size
    distribution reported for equity markets; the orders carry no information and are a
    canonical counterparty for informed traders and market makers.

    Sources: A. S. Kyle, "Continuous auctions and insider trading", Econometrica 53(6), 1985
    (noise traders); X. Gabaix, P. Gopikrishnan, V. Plerou and H. E. Stanley, "A theory of
    power-law distributions in financial market fluctuations", Nature 423, 2003 (order sizes).
    """

    class Params(BaseModel):
        model_config = ConfigDict(extra="forbid")

        symbol: str | None = Field(default=None, description="symbol to trade (None: the first)")
        mean_interval_ns: int = Field(
            default=2_000_000_000, gt=0, description="mean time between two orders (ns)"
        )
        buy_prob: float = Field(default=0.5, ge=0.0, le=1.0, description="probability of a buy")
        tail_exponent: float = Field(
            default=1.5, gt=0.0, description="Pareto tail exponent of the order size"
        )
        min_size: float = Field(default=1.0, gt=0.0, description="Pareto scale (lots)")
        max_size: int = Field(default=1_000, ge=1, description="cap on one order's size (lots)")

    def on_start(self) -> None:
        self.symbol = resolve_symbol(self.ctx, self.params.symbol)
        self._cap = min(self.params.max_size, self.ctx.spec(self.symbol).max_qty)
        self.ctx.set_timer(_TIMER, exp_interval(self.ctx, self.params.mean_interval_ns), False)

    def on_timer(self, name: str) -> None:
        if name != _TIMER:
            return
        p = self.params
        rng = self.ctx.rng
        side = "buy" if rng.random() < p.buy_prob else "sell"
        qty = pareto_size(rng.random(), p.min_size, p.tail_exponent, self._cap)
        self.ctx.submit(self.symbol, side, qty)
        self.ctx.set_timer(_TIMER, exp_interval(self.ctx, p.mean_interval_ns), False)
