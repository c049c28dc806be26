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
    """The fee on `notional` cash units at `bps`, rounded to the nearest unit (half to even).

    Plain float arithmetic on integers: deterministic on every IEEE-754 machine, and exact
    enough (a notional below 2**53 / 100 cash units).
    """
    if not bps:
        return 0
    return round(notional * bps / 10_000)
