"""The one agent a scenario brings that the strategy zoo has no use for: a single order."""

from __future__ import annotations

import math
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from agents.agent import Agent
from agents.strategies._common import reference_ticks, resolve_symbol

__all__ = ["OneOrder"]


class OneOrder(Agent):
    """Sends one order when it starts and nothing else (a fat finger).

    A market order of `qty` lots, or with `price_pct` a limit order that far (percent) from
    the last price (else the mid, else F, else the reference price), rounded away from the
    market: a sell at -20 is priced 20% below the last trade.
    """

    class Params(BaseModel):
        model_config = ConfigDict(extra="forbid")

        symbol: str | None = None
        side: Literal["buy", "sell"] = "sell"
        qty: int = Field(1_000, gt=0)
        price_pct: float | None = Field(None, gt=-100)

    def on_start(self) -> None:
        p = self.params
        symbol = resolve_symbol(self.ctx, p.symbol)
        price = None
        if p.price_pct is not None:
            raw = reference_ticks(self.ctx, symbol) * (1 + p.price_pct / 100.0)
            price = max(1, math.floor(raw) if p.side == "sell" else math.ceil(raw))
        self.client_order_id = self.ctx.submit(symbol, p.side, p.qty, price)
