"""The typed result of `agents.metrics.compute`: one dataclass per theme, and `as_dict`.

Every field carries its unit in the docstring of its class; `Metrics.as_dict` returns plain
JSON-ready data (floats, ints, strings; a non-finite number, such as the Sharpe ratio of a flat
PnL or the profit factor of an account that never lost, becomes ``None``), with the sampling
interval and annualisation stated next to the ratios they apply to.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

from agents.metrics.inventory import InventoryStats

__all__ = ["Execution", "MarketMaking", "Metrics", "Profitability", "Risk", "Sampling", "clean"]


@dataclass(frozen=True, slots=True)
class Sampling:
    """How the PnL was sampled for the ratios: every `interval_s` seconds, `periods`
    increments, annualised by sqrt(`periods_per_year`) with a year of `year_s` seconds."""

    interval_s: float
    periods: int
    periods_per_year: float
    year_s: float

    @property
    def note(self) -> str:
        return (f"PnL increments every {self.interval_s:g} s ({self.periods:,} of them); "
                f"annualised x sqrt({self.periods_per_year:,.0f}) for a {self.year_s:,.0f} s "
                "trading year (252 x 6.5 h)")  # fmt: skip


@dataclass(frozen=True, slots=True)
class Profitability:
    """Cash units except the ratios: total = trading + inventory = realised + unrealised -
    fees; `notional` traded (cash units); `turnover` = notional / mean equity (NaN without an
    equity curve); Sharpe and Sortino annualised (see `Sampling`), profit factor a ratio."""

    total: float
    trading: float
    inventory: float
    realised: float
    unrealised: float
    fees: float
    fees_paid: float
    rebates: float
    sharpe: float
    sortino: float
    profit_factor: float
    notional: float
    turnover: float


@dataclass(frozen=True, slots=True)
class Risk:
    """Drawdown of the PnL curve (cash units; `max_drawdown_rel` a fraction of peak equity, NaN
    without equity), its duration (s, peak to recovery or to the end: `recovered`), the longest
    time under a peak (s); VaR/CVaR at `alpha` of the PnL over one sampling interval (cash
    units, losses positive), historical and parametric (normal); the parametric VaR/CVaR of the
    final inventory over `horizon_s` from the mid's return volatility (cash units)."""

    max_drawdown: float
    max_drawdown_rel: float
    drawdown_s: float
    recovered: bool
    longest_drawdown_s: float
    alpha: float
    var: float
    cvar: float
    var_parametric: float
    cvar_parametric: float
    horizon_s: float
    inventory_var: float
    inventory_cvar: float
    mid_sigma: float


@dataclass(frozen=True, slots=True)
class MarketMaking:
    """`fills` (count), `filled_qty` and `posted_qty` (lots), `fill_ratio` (filled / posted),
    spread captured per lot (ticks) and in total (cash units), markouts per horizon (ticks per
    lot, negative: adverse selection), `quote_time_at_top` (fraction of the time)."""

    fills: int
    filled_qty: float
    posted_qty: float | None
    fill_ratio: float
    spread_captured: float
    spread_captured_total: float
    markouts: dict[float, float]
    quote_time_at_top: float


@dataclass(frozen=True, slots=True)
class Execution:
    """Against the arrival price (the mid just before the first fill, ticks): shortfall (cash
    units, positive a cost) and in bps of the arrival notional; the fills' own VWAP, the
    market's VWAP and the mid's TWAP over the execution window (first to last fill, ticks),
    and the slippage against each (ticks per lot, positive a cost)."""

    arrival: float
    shortfall: float
    shortfall_bps: float
    fills_vwap: float
    market_vwap: float
    vwap_slippage: float
    twap: float
    twap_slippage: float


@dataclass(frozen=True, slots=True)
class Metrics:
    """Everything measured about one account, strategy class or market."""

    profitability: Profitability
    risk: Risk
    inventory: InventoryStats
    market_making: MarketMaking
    execution: Execution
    sampling: Sampling
    missing: tuple[str, ...] = field(default=())

    def as_dict(self) -> dict[str, Any]:
        """Nested plain data: sections as in the dataclass, non-finite numbers as None,
        markout horizons as ``"1s"`` keys, plus ``sampling.note`` in words."""
        out = {}
        for name in ("profitability", "risk", "inventory", "market_making", "execution",
                     "sampling"):  # fmt: skip
            out[name] = clean(asdict(getattr(self, name)))
        out["market_making"]["markouts"] = {
            f"{h:g}s": clean(v) for h, v in self.market_making.markouts.items()
        }
        out["sampling"]["note"] = self.sampling.note
        out["missing"] = list(self.missing)
        return out


def clean(x: Any) -> Any:
    """Non-finite floats to None, recursively (JSON has no NaN or infinity)."""
    if isinstance(x, float):
        return x if math.isfinite(x) else None
    if isinstance(x, dict):
        return {k: clean(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [clean(v) for v in x]
    return x
