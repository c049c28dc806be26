"""Execution algorithms for a parent order: TWAP and the Almgren-Chriss optimal schedule.

The trajectories themselves live in `agents.impact` (shared with the execution environment's
baselines); they are re-exported here.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from agents.agent import Agent
from agents.events import Fill
from agents.impact import (
    almgren_chriss_holdings,
    almgren_chriss_kappa,
    almgren_chriss_schedule,
    twap_schedule,
)
from agents.strategies._common import pending_signed, reference_ticks, resolve_symbol

__all__ = [
    "AlmgrenChrissExecutor",
    "TWAPExecutor",
    "almgren_chriss_holdings",
    "almgren_chriss_kappa",
    "almgren_chriss_schedule",
    "twap_schedule",
]

_START = "exec.start"
_SLICE = "exec.slice"


class _ExecParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    symbol: str | None = Field(default=None, description="symbol to trade (None: the first)")
    side: Literal["buy", "sell"] = Field(default="buy", description="side of the parent order")
    total_qty: int = Field(default=100, ge=1, description="parent order size X (lots)")
    horizon_ns: int = Field(default=60_000_000_000, gt=0, description="execution horizon T (ns)")
    slices: int = Field(default=10, ge=1, description="number of child orders N")
    start_delay_ns: int = Field(
        default=1, ge=1, description="delay from start to the first slice (the arrival time)"
    )
    market: bool = Field(default=True, description="market children, else aggressive IOC limits")
    aggressive_ticks: int = Field(
        default=0, ge=0, description="IOC limit this many ticks through the opposite best"
    )


class _Executor(Agent):
    """Slices a parent order on a timer and measures its implementation shortfall.

    The arrival price P₀ is the mid (else last trade, else the spec's reference price) in ticks
    when the first slice is due. Slice j (at t_j = j·T/N) sends a child order for what the
    schedule says should be done by then, less what is already filled or working, so a child
    that fills only partly is caught up by the next one.

    `shortfall` is the implementation shortfall per lot in ticks, positive for a cost:
    side·(average fill price - P₀), side = +1 for a buy and -1 for a sell (fees excluded);
    `shortfall_bps` the same in basis points of P₀, `shortfall_cash` the total in tick·lots
    (cash units for a multiplier of 1).
    """

    Params = _ExecParams

    def schedule_for(self) -> list[int]:
        raise NotImplementedError

    def on_start(self) -> None:
        p = self.params
        self.symbol = resolve_symbol(self.ctx, p.symbol)
        self.schedule = self.schedule_for()
        self._sign = 1 if p.side == "buy" else -1
        self.arrival_price: float | None = None
        self.filled = 0
        self.notional = 0
        self.slice_index = -1
        self.ctx.set_timer(_START, p.start_delay_ns, repeat=False)

    @property
    def done(self) -> bool:
        return self.filled >= self.params.total_qty

    @property
    def remaining(self) -> int:
        return self.params.total_qty - self.filled

    @property
    def avg_price(self) -> float | None:
        return self.notional / self.filled if self.filled else None

    @property
    def shortfall(self) -> float | None:
        avg = self.avg_price
        if avg is None or self.arrival_price is None:
            return None
        return self._sign * (avg - self.arrival_price)

    @property
    def shortfall_bps(self) -> float | None:
        s = self.shortfall
        if s is None or not self.arrival_price:
            return None
        return 1e4 * s / self.arrival_price

    @property
    def shortfall_cash(self) -> float | None:
        s = self.shortfall
        return None if s is None else s * self.filled

    def on_timer(self, name: str) -> None:
        p = self.params
        if name == _START:
            self.arrival_price = reference_ticks(self.ctx, self.symbol, ("mid", "last"))
            if p.slices > 1:
                self.ctx.set_timer(_SLICE, max(1, p.horizon_ns // p.slices))
            self._slice()
        elif name == _SLICE:
            self._slice()

    def _slice(self) -> None:
        p = self.params
        ctx = self.ctx
        self.slice_index += 1
        j = self.slice_index
        if j >= p.slices - 1:
            ctx.cancel_timer(_SLICE)
        if j >= p.slices:
            return
        due = sum(self.schedule[: j + 1])
        working = self._sign * pending_signed(ctx, self.symbol)
        qty = due - self.filled - max(0, working)
        if qty <= 0:
            return
        if p.market:
            ctx.submit(self.symbol, p.side, qty)
            return
        q = ctx.quote(self.symbol)
        if p.side == "buy":
            best = q.ask if q is not None else None
            price = None if best is None else best + p.aggressive_ticks
        else:
            best = q.bid if q is not None else None
            price = None if best is None else max(1, best - p.aggressive_ticks)
        if price is not None:
            ctx.submit(self.symbol, p.side, qty, price, tif="IOC")

    def on_fill(self, fill: Fill) -> None:
        if fill.symbol == self.symbol and fill.side == self.params.side:
            self.filled += fill.qty
            self.notional += fill.price * fill.qty


class TWAPExecutor(_Executor):
    """Time-weighted average price execution: N equal child orders over the horizon.

    The holdings fall linearly, x_j = X·(1 - j/N), rounded to lots (`twap_schedule`); this is
    the Almgren-Chriss optimum of a risk-neutral trader (λ = 0). Implementation shortfall as
    in the base executor: `shortfall` in ticks per lot (positive = cost), `shortfall_bps`.

    Source: R. Almgren and N. Chriss, "Optimal execution of portfolio transactions", Journal of
    Risk 3(2), 2000 (the λ = 0 case); R. Kissell and M. Glantz, "Optimal Trading Strategies",
    AMACOM, 2003.
    """

    def schedule_for(self) -> list[int]:
        return twap_schedule(self.params.total_qty, self.params.slices)


class AlmgrenChrissExecutor(_Executor):
    """Almgren-Chriss mean-variance optimal liquidation (or acquisition).

    With linear temporary impact η (price concession η·v for a trading rate v), volatility sigma
    and risk aversion λ, minimising E[cost] + λ·Var[cost] gives the holdings

        x_j = X · sinh(κ(T - t_j)) / sinh(κT),    t_j = j·T/N,
        (2/τ²)(cosh κτ - 1) = λ·sigma²/η  (τ = T/N; κ ≈ √(λ·sigma²/η) for small τ),

    front-loaded for λ > 0 and linear (TWAP) as λ -> 0. Child n_j = x_{j-1} - x_j is sent at
    t_{j-1} (`almgren_chriss_schedule`). Units: time in seconds, prices in ticks, so sigma is in
    ticks/√s, η in tick·s/lot and λ per tick·lot. Permanent impact does not change the
    trajectory with linear impact and is left out. Shortfall as in the base executor:
    `shortfall` in ticks per lot (positive = cost), `shortfall_bps`.

    Source: R. Almgren and N. Chriss, "Optimal execution of portfolio transactions", Journal of
    Risk 3(2), 2000.
    """

    class Params(_ExecParams):
        risk_aversion: float = Field(default=1e-4, ge=0.0, description="λ (per tick·lot)")
        sigma: float = Field(default=1.0, ge=0.0, description="sigma of the price (ticks per √s)")
        eta: float = Field(default=0.1, gt=0.0, description="temporary impact η (tick·s/lot)")

    def schedule_for(self) -> list[int]:
        p = self.params
        return almgren_chriss_schedule(
            p.total_qty, p.slices, p.horizon_ns / 1e9, p.risk_aversion, p.sigma, p.eta
        )
