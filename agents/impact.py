"""Market impact: what trading a quantity costs and how far it moves the price.

One small module (numpy and the standard library only) shared by everything that needs a
number for impact: the reinforcement-learning environments (the cost of the agent's own
liquidity taking, the flow generator's reference price) and the execution agents (the
Almgren-Chriss and TWAP trajectories). Keeping the formulas in one place is what lets an
execution schedule, an environment's reward and a backtest's cost agree.

Units: prices in ticks, quantities in lots, time in seconds, so a volatility ``sigma`` is in
ticks per √s. A signed quantity ``v`` is positive for a buy and negative for a sell; an impact
is signed like the trade that caused it (a buy pushes the price up); a cost is never negative.

Models
------
* `AlmgrenChriss` (R. Almgren and N. Chriss, "Optimal execution of portfolio transactions",
  Journal of Risk 3(2), 2000; the sigma-scaled parametrisation of R. Almgren et al., "Direct
  estimation of equity market impact", Risk, 2005):
  temporary impact ``I_temp = η·sigma·|v|/√T`` for ``v`` traded over ``T`` seconds, which
  decays after the trade as ``I₀·e^(-λt)``; permanent impact ``I_perm = gamma·sigma·v``; the
  cost of the trade is ``V·(I_temp + |I_perm|/2)`` with ``V = |v|`` (the whole temporary
  concession, and half the permanent move, which builds up while the quantity trades).
* `SquareRoot` (the square-root law: J.-P. Bouchaud, "Price impact", Encyclopedia of
  Quantitative Finance, 2010): peak impact ``I = β·sigma·√(|v|/V_daily)·sign(v)`` with ``V_daily``
  the daily volume in lots; a fraction ``permanent_fraction`` of it stays in the price, the rest
  decays like the Almgren-Chriss temporary part; cost ``|v|·|I|``.

Trajectories: `twap_schedule` and the Almgren-Chriss optimal liquidation
(`almgren_chriss_kappa`, `almgren_chriss_holdings`, `almgren_chriss_schedule`), used by
`agents.strategies.execution` and by the execution environment's baselines.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol

import numpy as np

__all__ = [
    "AlmgrenChriss",
    "ImpactModel",
    "SquareRoot",
    "almgren_chriss_holdings",
    "almgren_chriss_kappa",
    "almgren_chriss_schedule",
    "decay",
    "twap_schedule",
]


class ImpactModel(Protocol):
    """What a consumer of an impact model asks of it (`AlmgrenChriss`, `SquareRoot`)."""

    decay_rate: float

    def temporary(self, v: float, sigma: float, horizon_s: float) -> float: ...
    def permanent(self, v: float, sigma: float, horizon_s: float) -> float: ...
    def cost(self, v: float, sigma: float, horizon_s: float) -> float: ...


def decay(initial: float, rate: float, t_s: float) -> float:
    """A temporary impact ``initial`` seen ``t_s`` seconds after it was made: I₀·e^(-λt)."""
    return float(initial * math.exp(-rate * t_s))


@dataclass(frozen=True)
class AlmgrenChriss:
    """Linear temporary and permanent impact, both scaled by volatility.

    ``eta`` (η) and ``gamma`` (gamma) are per lot; ``decay_rate`` (λ) is per second.
    """

    eta: float = 0.05
    gamma: float = 0.01
    decay_rate: float = 1.0

    def temporary(self, v: float, sigma: float, horizon_s: float) -> float:
        """Signed temporary impact η·sigma·|v|/√T (in the direction of the trade)."""
        if horizon_s <= 0:
            raise ValueError("the trading horizon must be positive")
        return float(np.sign(v) * self.eta * sigma * abs(v) / math.sqrt(horizon_s))

    def permanent(self, v: float, sigma: float, horizon_s: float = 1.0) -> float:
        """Signed permanent impact gamma·sigma·v (it does not depend on how fast v trades)."""
        return float(self.gamma * sigma * v)

    def cost(self, v: float, sigma: float, horizon_s: float) -> float:
        """V·(I_temp + |I_perm|/2), V = |v|: ticks x lots, never negative."""
        size = abs(v)
        temp = abs(self.temporary(v, sigma, horizon_s))
        return float(size * (temp + abs(self.permanent(v, sigma)) / 2.0))


@dataclass(frozen=True)
class SquareRoot:
    """The square-root law: impact grows with the square root of the traded share of volume."""

    beta: float = 0.5
    daily_volume: float = 100_000.0
    permanent_fraction: float = 0.5
    decay_rate: float = 1.0

    def impact(self, v: float, sigma: float) -> float:
        """Signed peak impact β·sigma·√(|v|/V_daily)·sign(v)."""
        if self.daily_volume <= 0:
            raise ValueError("the daily volume must be positive")
        return float(np.sign(v) * self.beta * sigma * math.sqrt(abs(v) / self.daily_volume))

    def temporary(self, v: float, sigma: float, horizon_s: float = 1.0) -> float:
        """The part of the peak impact that decays: (1 - permanent_fraction)·I."""
        return (1.0 - self.permanent_fraction) * self.impact(v, sigma)

    def permanent(self, v: float, sigma: float, horizon_s: float = 1.0) -> float:
        """The part of the peak impact that stays in the price: permanent_fraction·I."""
        return self.permanent_fraction * self.impact(v, sigma)

    def cost(self, v: float, sigma: float, horizon_s: float = 1.0) -> float:
        """|v|·|I|: ticks x lots, never negative (the horizon does not enter the law)."""
        return float(abs(v) * abs(self.impact(v, sigma)))


# ------------------------------------------------------------------ trajectories


def _round_half_up(x: float) -> int:
    # A tolerance far below one lot, so holdings that differ from TWAP's by float noise only
    # (risk aversion -> 0) round exactly as TWAP's do, half-lots included.
    return math.floor(x + 0.5 + 1e-9)


def _trades(holdings: list[float], total: int) -> list[int]:
    """Integer slice sizes from holdings x_0 = X > ... > x_N = 0; they sum to X exactly."""
    ints = [total] + [_round_half_up(x) for x in holdings[1:-1]] + [0]
    return [ints[j - 1] - ints[j] for j in range(1, len(ints))]


def twap_schedule(total: int, slices: int) -> list[int]:
    """Equal slices (holdings x_j = X·(1 - j/N), rounded): `slices` sizes summing to `total`."""
    if slices < 1 or total < 0:
        raise ValueError("need slices >= 1 and total >= 0")
    return _trades([total * (slices - j) / slices for j in range(slices + 1)], total)


def almgren_chriss_kappa(
    risk_aversion: float, sigma: float, eta: float, horizon: float, slices: int
) -> float:
    """κ of the discrete Almgren-Chriss solution: (2/τ²)(cosh κτ - 1) = λ·sigma²/η, τ = T/N.

    As τ -> 0 this is the continuous κ = √(λ·sigma²/η).
    """
    if eta <= 0:
        raise ValueError("eta (temporary impact) must be positive")
    tau = horizon / slices
    kt2 = risk_aversion * sigma * sigma / eta
    return math.acosh(1.0 + kt2 * tau * tau / 2.0) / tau


def almgren_chriss_holdings(
    total: float,
    slices: int,
    horizon: float,
    risk_aversion: float,
    sigma: float,
    eta: float,
) -> list[float]:
    """Optimal holdings x_j = X·sinh(κ(T - t_j)) / sinh(κT), t_j = j·T/N, j = 0..N.

    Linear (TWAP) when κT is negligible (risk neutrality, λ = 0).
    """
    if slices < 1 or horizon <= 0:
        raise ValueError("need slices >= 1 and horizon > 0")
    kappa = almgren_chriss_kappa(risk_aversion, sigma, eta, horizon, slices)
    kT = kappa * horizon
    if kT < 1e-9:
        return [total * (slices - j) / slices for j in range(slices + 1)]
    if kT > 700:  # sinh overflows; the ratio is then e^(-κ t_j) to double precision
        return [total * math.exp(-kappa * horizon * j / slices) for j in range(slices)] + [0.0]
    s = math.sinh(kT)
    dt = horizon / slices
    return [total * math.sinh(kappa * dt * (slices - j)) / s for j in range(slices + 1)]


def almgren_chriss_schedule(
    total: int,
    slices: int,
    horizon: float,
    risk_aversion: float,
    sigma: float,
    eta: float,
) -> list[int]:
    """Integer slice sizes n_j = x_{j-1} - x_j of the optimal trajectory; they sum to `total`.

    Holdings are rounded (half up), so the sizes telescope to exactly `total`; for positive
    risk aversion they are front-loaded (non-increasing up to rounding).
    """
    return _trades(
        almgren_chriss_holdings(total, slices, horizon, risk_aversion, sigma, eta), total
    )
