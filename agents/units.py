"""How a person reads Agora's integers: ticks as prices, lots as shares, cash units as money.

Inside, prices are integer ticks, quantities integer lots, cash integer cash units and times
integer nanoseconds (ARCHITECTURE.md). Everything a person reads (the `agora up` panel and
leaderboard, `agora watch`, the CLI tables) goes through these few functions, so a price shows
with its symbol's tick decimals everywhere and nobody reads 10025 for 100.25.
"""

from __future__ import annotations

import time
from decimal import Decimal

from exchange.symbols import SymbolSpec

__all__ = ["CASH_UNIT", "money", "price", "shares", "spec_for", "timestamp"]

CASH_UNIT = Decimal("0.01")
"""The clearing house's cash unit (one cent): cash, fees and PnL are integers of it."""


def _decimals(step: Decimal) -> int:
    exponent = step.normalize().as_tuple().exponent
    return max(0, -exponent) if isinstance(exponent, int) else 0


def spec_for(symbol: str, specs: list[SymbolSpec] | None) -> SymbolSpec:
    """The spec of `symbol` among `specs`; a default spec (tick 0.01, lot 1) if unknown."""
    for spec in specs or ():
        if spec.symbol == symbol:
            return spec
    return SymbolSpec(symbol=symbol)


def price(spec: SymbolSpec, ticks: int | float | None) -> str:
    """``10025`` ticks of 0.01 -> ``"100.25"`` (thousands separated; ``-`` for none)."""
    if ticks is None:
        return "-"
    value = spec.tick_size * Decimal(round(ticks)) if isinstance(ticks, float) else (
        spec.ticks_to_price(ticks))  # fmt: skip
    return f"{value:,.{_decimals(spec.tick_size)}f}"


def shares(spec: SymbolSpec, lots: int) -> str:
    """A quantity in shares (lots x lot size), thousands separated."""
    return f"{spec.lot_size * lots:,.{_decimals(spec.lot_size)}f}"


def money(units: int | float, cash_unit: Decimal = CASH_UNIT) -> str:
    """Cash units as money with the unit's decimals: ``-123456`` -> ``"-1,234.56"``."""
    value = cash_unit * Decimal(round(units))
    return f"{value:,.{_decimals(cash_unit)}f}"


def timestamp(ns: int) -> str:
    """Nanoseconds since the epoch as this machine's local time of day, to the millisecond."""
    seconds, rest = divmod(ns, 1_000_000_000)
    return time.strftime("%H:%M:%S", time.localtime(seconds)) + f".{rest // 1_000_000:03d}"
