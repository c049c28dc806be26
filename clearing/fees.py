"""Trading fees: maker/taker rates in basis points, rebates allowed.

One function, shared by the clearing ledger and an agent's own book-keeping
(`agents.portfolio`), so that both compute the same fee to the cash unit for every fill.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["FeeSchedule", "fee_for"]


class FeeSchedule(BaseModel):
    """Fees in basis points of the notional; a negative rate is a rebate.

    The aggressor of a trade pays the taker rate, the resting order the maker rate; both sides
    of an auction uncross pay the maker rate (nobody took liquidity).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    maker_bps: float = Field(0.0, ge=-100, le=100)
    taker_bps: float = Field(0.0, ge=0, le=100)

    def rate(self, liquidity: str) -> float:
        return self.taker_bps if liquidity == "taker" else self.maker_bps


def fee_for(notional: int, bps: float) -> int:
    """The fee on `notional` cash units at `bps`, truncated toward zero to a whole unit.

    Exact integer arithmetic on the rate in millionths (bps to two decimals), so every machine
    gets the same fee. Truncation matters for pre-trade risk: for a non-negative rate the fees
    of several partial fills never add up to more than the fee of the whole order
    (floor(a) + floor(b) <= floor(a + b)), so a reservation of the whole order's fee always
    covers however the order fills. A rebate (negative rate) is truncated too: never more
    than the exact rebate.
    """
    if not bps:
        return 0
    rate = round(bps * 100)  # millionths of the notional
    if rate >= 0:
        return notional * rate // 1_000_000
    return -(notional * -rate // 1_000_000)
