"""Mean reversion: trade against the z-score of the price around its moving average."""

from __future__ import annotations

from typing import Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from agents.agent import Agent
from agents.strategies._common import RollingWindow, market_price, resolve_symbol, trade_toward

__all__ = ["MeanReversion", "zscore"]

_TIMER = "mr.sample"


def zscore(value: float, mean: float, std: float) -> float | None:
    """(value - mean) / std, None when std is 0."""
    return None if std <= 0.0 else (value - mean) / std


class MeanReversion(Agent):
    """Z-score mean reversion with hysteresis.

    Every `sample_interval_ns` it samples the price p (last trade, else mid) into a window of
    the last `window` samples and computes z = (p - mean)/std over that window (population
    std, including the new sample). The target position is

        z >  z_entry  ->  -max_position   (rich: sell)
        z < -z_entry  ->  +max_position   (cheap: buy)
        |z| < z_exit  ->  0               (back to fair: flatten)

    and is kept unchanged for z_exit ≤ |z| ≤ z_entry. Each sample sends one order of at most
    `order_size` lots toward the target (position plus working orders), as a market order or an
    IOC limit `aggressive_ticks` through the opposite best quote.

    Sources: J. M. Poterba and L. H. Summers, "Mean reversion in stock prices", Journal of
    Financial Economics 22(1), 1988; E. Gatev, W. Goetzmann and K. G. Rouwenhorst, "Pairs
    trading", Review of Financial Studies 19(3), 2006 (the 2-sigma entry rule).
    """

    class Params(BaseModel):
        model_config = ConfigDict(extra="forbid")

        symbol: str | None = Field(default=None, description="symbol to trade (None: the first)")
        sample_interval_ns: int = Field(
            default=1_000_000_000, gt=0, description="price sampling period (ns)"
        )
        window: int = Field(default=30, ge=2, description="samples in the moving average")
        z_entry: float = Field(default=2.0, gt=0.0, description="enter beyond this |z|")
        z_exit: float = Field(default=0.5, ge=0.0, description="flatten inside this |z|")
        order_size: int = Field(default=5, ge=1, description="largest order per sample (lots)")
        max_position: int = Field(default=20, ge=1, description="absolute position limit (lots)")
        market: bool = Field(default=True, description="market orders, else aggressive IOC limits")
        aggressive_ticks: int = Field(
            default=1, ge=0, description="IOC limit this many ticks through the opposite best"
        )
        price_source: Literal["last", "mid"] = Field(default="last", description="sampled price")

        @model_validator(mode="after")
        def _bands(self) -> Self:
            if self.z_exit >= self.z_entry:
                raise ValueError("z_exit must be below z_entry")
            return self

    def on_start(self) -> None:
        p = self.params
        self.symbol = resolve_symbol(self.ctx, p.symbol)
        self._window = RollingWindow(p.window)
        self.z: float | None = None
        self.target = 0
        self.ctx.set_timer(_TIMER, p.sample_interval_ns)

    def on_timer(self, name: str) -> None:
        if name != _TIMER:
            return
        p = self.params
        price = market_price(self.ctx, self.symbol, p.price_source)
        if price is None:
            return
        w = self._window
        w.push(price)
        if not w.full:
            return
        z = self.z = zscore(price, w.mean, w.std)
        if z is None:
            return
        if z > p.z_entry:
            self.target = -p.max_position
        elif z < -p.z_entry:
            self.target = p.max_position
        elif abs(z) < p.z_exit:
            self.target = 0
        trade_toward(self.ctx, self.symbol, self.target, p.order_size, p.market, p.aggressive_ticks)
