"""Symbol specifications: the one place where integer ticks/lots meet decimal prices.

Inside Agora every price is an integer number of ticks and every quantity an integer number of
lots (ARCHITECTURE.md, "Time, prices, quantities"). Integers make matching exact and fast;
decimals appear only at the edges (display, user input, agent maths), and these helpers are the
only sanctioned way across that edge. Converting a price that is not a whole number of ticks is an
error, never a silent rounding: an exchange that rounds your price for you is a bug report waiting.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

__all__ = ["OffLotError", "OffTickError", "SymbolSpec"]


class OffTickError(ValueError):
    """A decimal price that is not a whole number of ticks."""


class OffLotError(ValueError):
    """A decimal quantity that is not a whole number of lots."""


def _as_decimal(value: Decimal | str | int | float) -> Decimal:
    if isinstance(value, float):
        # repr() is the shortest string that round-trips: 0.1 stays 0.1, not 0.1000000000000000055
        value = repr(value)
    try:
        return Decimal(value)
    except (InvalidOperation, ValueError) as exc:
        raise ValueError(f"not a number: {value!r}") from exc


class SymbolSpec(BaseModel):
    """Static description of one tradable symbol.

    Bands and breakers are expressed in basis points of a reference price so that one spec reads
    the same for a 10-tick and a 10,000-tick instrument. A value of 0 disables the feature.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    symbol: str = Field(min_length=1, max_length=32, pattern=r"^[A-Za-z0-9._:/-]+$")
    tick_size: Decimal = Field(default=Decimal("0.01"), gt=0, description="price of one tick")
    lot_size: Decimal = Field(default=Decimal("1"), gt=0, description="units in one lot")
    reference_price: int = Field(
        default=10_000, gt=0, description="reference price in ticks (bands are centred on it)"
    )
    band_bps: int = Field(
        default=0,
        ge=0,
        description="static price band: limit orders further than this from the reference "
        "price are rejected (0 = no band)",
    )
    band_reference: Literal["static", "last", "auction"] = Field(
        default="static",
        description="what the band is centred on: the reference price (static), the last "
        "trade (last: the band follows the market, so a slow drift is followed while the "
        "breaker still halts a jump), or the last auction price (auction: opening, reopening "
        "and batch uncrosses move it)",
    )
    halt_move_bps: int = Field(
        default=0,
        ge=0,
        description="volatility breaker: a trade that would move the price more than this "
        "within halt_window_ns halts the symbol (0 = no breaker)",
    )
    halt_window_ns: int = Field(default=60_000_000_000, gt=0)
    halt_duration_ns: int = Field(default=30_000_000_000, ge=0)
    max_qty: int = Field(default=10**9, gt=0, description="largest order quantity in lots")
    opening_auction: bool = Field(
        default=False, description="start in a call auction that must be uncrossed to open"
    )
    batch_interval_ns: int = Field(
        default=0,
        ge=0,
        description="frequent batch auctions: collect orders and uncross every interval "
        "instead of continuous matching (0 = continuous)",
    )
    batch_clear_book: bool = Field(
        default=False,
        description="with batch_interval_ns: cancel every unexecuted order after each uncross "
        "(the period-based call market: an empty book each period)",
    )

    @field_validator("tick_size", "lot_size", mode="before")
    @classmethod
    def _decimal(cls, value: object) -> Decimal:
        if isinstance(value, Decimal):
            return value
        if isinstance(value, str | int | float):
            return _as_decimal(value)
        raise ValueError("expected a decimal number")

    @model_validator(mode="after")
    def _check(self) -> SymbolSpec:
        if self.band_bps and self.band_bps >= 10_000:
            raise ValueError("band_bps must be below 10000 (100%)")
        return self

    # -- edge conversions -------------------------------------------------------------------
    def price_to_ticks(self, price: Decimal | str | int | float) -> int:
        """Decimal price -> integer ticks; raises OffTickError unless it is a whole tick."""
        ticks, rem = divmod(_as_decimal(price), self.tick_size)
        if rem != 0:
            raise OffTickError(
                f"{self.symbol}: price {price} is not a multiple of tick {self.tick_size}"
            )
        return int(ticks)

    def ticks_to_price(self, ticks: int) -> Decimal:
        return self.tick_size * ticks

    def qty_to_lots(self, qty: Decimal | str | int | float) -> int:
        """Decimal quantity -> integer lots; raises OffLotError unless it is a whole lot."""
        lots, rem = divmod(_as_decimal(qty), self.lot_size)
        if rem != 0:
            raise OffLotError(
                f"{self.symbol}: quantity {qty} is not a multiple of lot {self.lot_size}"
            )
        return int(lots)

    def lots_to_qty(self, lots: int) -> Decimal:
        return self.lot_size * lots

    def band(self, reference: int | None = None) -> tuple[int, int]:
        """The static band [low, high] in ticks around `reference` (default: the spec's)."""
        ref = self.reference_price if reference is None else reference
        if not self.band_bps:
            return 1, 2**62
        return band_around(ref, self.band_bps)


def band_around(reference: int, bps: int) -> tuple[int, int]:
    """Inclusive integer band [low, high] within `bps` basis points of `reference` (>= 1 tick)."""
    low = -((-reference * (10_000 - bps)) // 10_000)  # ceil
    high = (reference * (10_000 + bps)) // 10_000  # floor
    return max(1, low), max(low, high)
