"""Statistical arbitrage on a pair: rolling OLS hedge ratio and a z-scored spread."""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Sequence
from typing import Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from agents.agent import Agent
from agents.strategies._common import market_price, resolve_symbol, trade_toward

__all__ = ["PairsTrader", "RollingOLS", "ols"]

_TIMER = "pairs.sample"


def ols(xs: Sequence[float], ys: Sequence[float]) -> tuple[float, float, float]:
    """Least squares y = a + b·x + e: returns (a, b, std of e) (population std)."""
    n = len(xs)
    if n != len(ys) or n < 2:
        raise ValueError("need two equally long series of at least two points")
    mx = sum(xs) / n
    my = sum(ys) / n
    sxx = sum((x - mx) ** 2 for x in xs) / n
    sxy = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / n
    syy = sum((y - my) ** 2 for y in ys) / n
    if sxx <= 0.0:
        raise ValueError("x has no variance")
    b = sxy / sxx
    return my - b * mx, b, math.sqrt(max(0.0, syy - b * sxy))


class RollingOLS:
    """`ols` over the last `size` (x, y) points, O(1) per point (running, shifted sums)."""

    __slots__ = ("_q", "_sx", "_sxx", "_sxy", "_sy", "_syy", "_x0", "_y0", "size")

    def __init__(self, size: int) -> None:
        self.size = size
        self._q: deque[tuple[float, float]] = deque()
        self._sx = self._sy = self._sxx = self._sxy = self._syy = 0.0
        self._x0: float | None = None
        self._y0 = 0.0

    def __len__(self) -> int:
        return len(self._q)

    def push(self, x: float, y: float) -> None:
        if self._x0 is None:
            self._x0, self._y0 = x, y
        x -= self._x0
        y -= self._y0
        self._q.append((x, y))
        self._add(x, y, 1.0)
        if len(self._q) > self.size:
            self._add(*self._q.popleft(), -1.0)

    def _add(self, x: float, y: float, sign: float) -> None:
        self._sx += sign * x
        self._sy += sign * y
        self._sxx += sign * x * x
        self._sxy += sign * x * y
        self._syy += sign * y * y

    def fit(self) -> tuple[float, float, float] | None:
        """(a, b, residual std) in the original units, None if x has (almost) no variance."""
        n = len(self._q)
        if n < 2 or self._x0 is None:
            return None
        mx, my = self._sx / n, self._sy / n
        vxx = self._sxx / n - mx * mx
        if vxx <= 1e-12 * (1.0 + self._sxx / n):
            return None
        cxy = self._sxy / n - mx * my
        b = cxy / vxx
        resid = math.sqrt(max(0.0, self._syy / n - my * my - b * cxy))
        a = my - b * mx + self._y0 - b * self._x0
        return a, b, resid


class PairsTrader(Agent):
    """Pairs trading on symbols A and B.

    Every `sample_interval_ns` it samples both prices (decimal: last trade, else mid) and fits
    A = a + β·B + e by OLS over the last `window` samples. The spread is s = A - a - β·B and its
    z-score z = s / std(e). The target position in A is -max_position when z > z_entry (A rich
    against B), +max_position when z < -z_entry, 0 once |z| < z_exit (kept in between); the
    hedge leg targets -round(β·target_A) lots of B (equal lot sizes assumed). Each sample sends
    at most one market order per leg toward its target (position plus working orders), of at
    most `order_size` lots for A and max(1, round(|β|·order_size)) for B.

    Sources: E. Gatev, W. Goetzmann and K. G. Rouwenhorst, "Pairs trading: performance of a
    relative-value arbitrage rule", Review of Financial Studies 19(3), 2006; G. Vidyamurthy,
    "Pairs Trading: Quantitative Methods and Analysis", Wiley, 2004 (regression hedge ratio).
    """

    class Params(BaseModel):
        model_config = ConfigDict(extra="forbid")

        symbol_a: str | None = Field(default=None, description="leg A (None: the first symbol)")
        symbol_b: str | None = Field(default=None, description="leg B (None: the second symbol)")
        sample_interval_ns: int = Field(
            default=1_000_000_000, gt=0, description="price sampling period (ns)"
        )
        window: int = Field(default=60, ge=3, description="samples in the rolling regression")
        z_entry: float = Field(default=2.0, gt=0.0, description="enter beyond this |z|")
        z_exit: float = Field(default=0.5, ge=0.0, description="flatten inside this |z|")
        order_size: int = Field(default=5, ge=1, description="largest A order per sample (lots)")
        max_position: int = Field(default=20, ge=1, description="absolute limit on A (lots)")

        @model_validator(mode="after")
        def _bands(self) -> Self:
            if self.z_exit >= self.z_entry:
                raise ValueError("z_exit must be below z_entry")
            return self

    def on_start(self) -> None:
        p = self.params
        ctx = self.ctx
        self.symbol_a = resolve_symbol(ctx, p.symbol_a)
        if p.symbol_b is not None:
            self.symbol_b = resolve_symbol(ctx, p.symbol_b)
        else:
            others = [s for s in ctx.symbols if s != self.symbol_a]
            if not others:
                raise ValueError("pairs trading needs a second symbol")
            self.symbol_b = others[0]
        if self.symbol_a == self.symbol_b:
            raise ValueError("symbol_a and symbol_b must differ")
        self._ols = RollingOLS(p.window)
        self.beta: float | None = None
        self.z: float | None = None
        self.target_a = 0
        self.target_b = 0
        ctx.set_timer(_TIMER, p.sample_interval_ns)

    def on_timer(self, name: str) -> None:
        if name != _TIMER:
            return
        ctx = self.ctx
        p = self.params
        ta = market_price(ctx, self.symbol_a)
        tb = market_price(ctx, self.symbol_b)
        if ta is None or tb is None:
            return
        pa = ctx.to_price(self.symbol_a, ta)
        pb = ctx.to_price(self.symbol_b, tb)
        reg = self._ols
        reg.push(pb, pa)
        if len(reg) < p.window:
            return
        fit = reg.fit()
        if fit is None:
            return
        a, beta, resid = fit
        self.beta = beta
        if resid <= 0.0:
            return
        z = self.z = (pa - a - beta * pb) / resid
        if z > p.z_entry:
            self.target_a = -p.max_position
        elif z < -p.z_entry:
            self.target_a = p.max_position
        elif abs(z) < p.z_exit:
            self.target_a = 0
        self.target_b = -round(beta * self.target_a)
        trade_toward(ctx, self.symbol_a, self.target_a, p.order_size)
        trade_toward(ctx, self.symbol_b, self.target_b, max(1, round(abs(beta) * p.order_size)))
