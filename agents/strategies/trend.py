"""Trend following: a moving-average crossover on sampled prices."""

from __future__ import annotations

from collections import deque
from typing import Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from agents.agent import Agent
from agents.strategies._common import market_price, resolve_symbol, trade_toward

__all__ = ["TrendFollower"]

_TIMER = "trend.sample"


class TrendFollower(Agent):
    """Moving-average crossover trend follower.

    Every `sample_interval_ns` it samples the price p (last trade, else mid; nothing is sampled
    before the market has printed or quoted) and keeps the fast and slow simple moving averages

        MA_n(t) = (1/n) · Σ_{i<n} p(t-i),   d(t) = MA_fast(t) - MA_slow(t).

    The regime is +1 when d > threshold, -1 when d < -threshold, 0 in between. An up-cross (the
    regime becomes +1) sets the target position to +max_position, a down-cross to
    -max_position; the first full window only establishes the regime. Each sample sends one
    order of at most `order_size` lots toward the target (position plus working orders), as a
    market order or an IOC limit `aggressive_ticks` through the opposite best quote, so the
    position never exceeds `max_position` in absolute value.

    Sources: W. Brock, J. Lakonishok and B. LeBaron, "Simple technical trading rules and the
    stochastic properties of stock returns", Journal of Finance 47(5), 1992 (moving-average
    rules); C. Chiarella and G. Iori (2002) for chartists in order-book simulations.
    """

    class Params(BaseModel):
        model_config = ConfigDict(extra="forbid")

        symbol: str | None = Field(default=None, description="symbol to trade (None: the first)")
        sample_interval_ns: int = Field(
            default=1_000_000_000, gt=0, description="price sampling period (ns)"
        )
        fast_window: int = Field(default=5, ge=1, description="samples in the fast average")
        slow_window: int = Field(default=20, ge=2, description="samples in the slow average")
        threshold_ticks: float = Field(
            default=0.0, ge=0.0, description="dead band on MA_fast - MA_slow (ticks)"
        )
        order_size: int = Field(default=5, ge=1, description="largest order per sample (lots)")
        max_position: int = Field(default=20, ge=1, description="absolute position limit (lots)")
        market: bool = Field(default=True, description="market orders, else aggressive IOC limits")
        aggressive_ticks: int = Field(
            default=1, ge=0, description="IOC limit this many ticks through the opposite best"
        )
        price_source: Literal["last", "mid"] = Field(default="last", description="sampled price")

        @model_validator(mode="after")
        def _windows(self) -> Self:
            if self.fast_window >= self.slow_window:
                raise ValueError("fast_window must be shorter than slow_window")
            return self

    def on_start(self) -> None:
        p = self.params
        self.symbol = resolve_symbol(self.ctx, p.symbol)
        self._prices: deque[float] = deque(maxlen=p.slow_window)
        self.regime: int | None = None
        self.target = 0
        self.ctx.set_timer(_TIMER, p.sample_interval_ns)

    def on_timer(self, name: str) -> None:
        if name != _TIMER:
            return
        p = self.params
        price = market_price(self.ctx, self.symbol, p.price_source)
        if price is None:
            return
        prices = self._prices
        prices.append(price)
        n = len(prices)
        if n < p.slow_window:
            return
        fast = sum(prices[i] for i in range(n - p.fast_window, n)) / p.fast_window
        slow = sum(prices) / n
        d = fast - slow
        regime = 1 if d > p.threshold_ticks else (-1 if d < -p.threshold_ticks else 0)
        if self.regime is not None and regime != self.regime and regime != 0:
            self.target = regime * p.max_position
        self.regime = regime
        trade_toward(self.ctx, self.symbol, self.target, p.order_size, p.market, p.aggressive_ticks)
