"""How a replay fills orders: the rule, the queue model, the fill size, the latencies."""

from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from agents.replay.orders import (
    P_FIELDS,
    P_LAT_CANCEL,
    P_LAT_ORDER,
    P_QUEUE,
    P_RULE,
    P_SIZE,
    QUEUE_DISPLAYED,
    QUEUE_NONE,
    QUOTE_THROUGH,
    SIZE_CAPPED,
    SIZE_WHOLE,
    TRADE_THROUGH,
)  # fmt: skip
from clearing.fees import FeeSchedule

__all__ = ["FillRule", "ReplayConfig"]

FillRule = Literal["quote-through", "trade-through"]


class ReplayConfig(BaseModel):
    """The choices of one replay run (`agora backtest` options; see `agents.replay.rules`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    fill_rule: FillRule = "quote-through"
    queue: Literal["none", "displayed"] = Field(
        default="none", description="queue model for updates at exactly the order's price")
    size: Literal["whole", "capped"] = Field(
        default="whole", description="fill the whole order, or at most the update's size")
    latency_ns: int = Field(default=0, ge=0, description="an order or replace takes effect after")
    cancel_latency_ns: int | None = Field(
        default=None, ge=0, description="a cancel takes effect after (default: latency_ns)")
    starting_cash: int = Field(default=0, description="cash units (cents) at the start")
    fees: FeeSchedule = Field(default_factory=FeeSchedule)
    sample_ns: int = Field(default=1_000_000_000, gt=0,
                           description="grid of the inventory and PnL series (ns)")  # fmt: skip
    account: str = "backtest"

    def params(self) -> np.ndarray:
        """The loop's parameter array (`agents.replay.orders` P_* cells)."""
        prm = np.zeros(P_FIELDS, np.int64)
        prm[P_RULE] = QUOTE_THROUGH if self.fill_rule == "quote-through" else TRADE_THROUGH
        prm[P_QUEUE] = QUEUE_DISPLAYED if self.queue == "displayed" else QUEUE_NONE
        prm[P_SIZE] = SIZE_CAPPED if self.size == "capped" else SIZE_WHOLE
        prm[P_LAT_ORDER] = self.latency_ns
        lat_cancel = self.latency_ns if self.cancel_latency_ns is None else self.cancel_latency_ns
        prm[P_LAT_CANCEL] = lat_cancel
        return prm
