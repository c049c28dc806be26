"""The environments' settings: one typed model, loadable from a TOML file.

`EnvConfig` is what every environment of `agents.rl` takes (``gymnasium.make(id,
config=EnvConfig(...))`` or a plain dict of the same fields). A training file keeps it under
an ``[env]`` table (`load_env_config(path)` reads that table, or the whole file when it has
none), so one file describes the task, the market behind it and, for `agora train`, the rest.

The volatility regime (`EnvConfig.regime`: "low", "medium", "high" or "switching") is the one
field a curriculum changes between episodes: call ``env.set_regime(name)`` on each
sub-environment (``vec_env.env_method("set_regime", name)`` for a Stable-Baselines3 VecEnv,
``vector_env.call("set_regime", name)`` for a gymnasium vector env). It takes effect at the
next ``reset``, so an episode never changes regime halfway unless the regime is "switching".
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from agents.config import LatencyConfig
from agents.impact import AlmgrenChriss, ImpactModel, SquareRoot
from exchange.errors import UserError, describe_validation

__all__ = [
    "REGIMES",
    "EnvConfig",
    "ExecutionTask",
    "FlowConfig",
    "ImpactConfig",
    "RegimeParams",
    "RewardConfig",
    "load_env_config",
]

Regime = Literal["low", "medium", "high", "switching"]
REGIMES: tuple[str, ...] = ("low", "medium", "high")  # the states of the switching chain


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RegimeParams(_Strict):
    """One volatility regime of the flow generator.

    `sigma` moves the reference price (ticks per √s); `market_rate_x` and `limit_rate_x`
    scale the arrival rates (busier flow in a nervous market); `spread_x` scales how far from
    the reference price limit orders are placed.
    """

    sigma: float = Field(gt=0, description="reference-price volatility, ticks per √s")
    market_rate_x: float = Field(1.0, gt=0)
    limit_rate_x: float = Field(1.0, gt=0)
    spread_x: float = Field(1.0, gt=0)


def _default_regimes() -> dict[str, RegimeParams]:
    return {
        "low": RegimeParams(sigma=0.5),
        "medium": RegimeParams(sigma=1.5, market_rate_x=1.3, limit_rate_x=1.1, spread_x=1.3),
        "high": RegimeParams(sigma=4.0, market_rate_x=1.8, limit_rate_x=1.3, spread_x=2.0),
    }


class FlowConfig(_Strict):
    """The `flow` background: Poisson order flow fed straight into a book (see `flow.py`).

    Rates are per second. A limit order rests ``half_spread + k`` ticks from the reference
    price on its side, ``k`` geometric with mean `depth_mean` (clustered near the best quotes);
    a market order buys with a probability that rises with how far the reference price is
    above the mid (so the book follows the reference); each resting lot is cancelled at
    `cancel_rate` per second (state-dependent: a deep book loses more). Sizes are
    ``1 + Poisson(size_mean - 1)``.
    """

    reference_price: int = Field(10_000, gt=100, description="starting reference price, ticks")
    limit_rate: float = Field(60.0, gt=0)
    market_rate: float = Field(15.0, gt=0)
    cancel_rate: float = Field(0.08, ge=0, description="per resting lot per second")
    size_mean: float = Field(3.0, ge=1.0)
    market_size_mean: float = Field(4.0, ge=1.0)
    half_spread: float = Field(1.0, ge=0.0, description="ticks from the reference price")
    depth_mean: float = Field(2.5, gt=0.0, description="mean distance behind the best, ticks")
    initial_depth: int = Field(10, ge=1, le=200, description="levels filled at reset")
    initial_qty: int = Field(8, ge=1, description="lots per level at reset")
    pull: float = Field(0.6, gt=0, description="how strongly market orders follow the reference")
    regimes: dict[str, RegimeParams] = Field(default_factory=_default_regimes)
    switch_rate: float = Field(
        0.02, ge=0, description="regime changes per second when the regime is 'switching'"
    )
    warmup_s: float = Field(2.0, ge=0, description="flow simulated before the first step")

    @model_validator(mode="after")
    def _all_regimes(self) -> FlowConfig:
        missing = [r for r in REGIMES if r not in self.regimes]
        if missing:
            raise ValueError(f"flow.regimes lacks {', '.join(missing)} (needs low, medium, high)")
        return self


class ImpactConfig(_Strict):
    """The impact model (`agents.impact`) priced into the agent's own liquidity taking."""

    model: Literal["almgren_chriss", "square_root"] = "almgren_chriss"
    eta: float = Field(0.05, ge=0, description="Almgren-Chriss temporary impact η (per lot)")
    gamma: float = Field(0.01, ge=0, description="Almgren-Chriss permanent impact gamma (per lot)")
    beta: float = Field(0.5, ge=0, description="square-root law β")
    daily_volume: float = Field(100_000.0, gt=0, description="square-root law V_daily, lots")
    permanent_fraction: float = Field(0.5, ge=0, le=1, description="square-root law")
    decay_rate: float = Field(1.0, ge=0, description="λ of the temporary impact's decay, per s")

    def build(self) -> ImpactModel:
        if self.model == "square_root":
            return SquareRoot(self.beta, self.daily_volume, self.permanent_fraction,
                              self.decay_rate)  # fmt: skip
        return AlmgrenChriss(self.eta, self.gamma, self.decay_rate)


class RewardConfig(_Strict):
    """R = ΔPnL - λ_I·I² - λ_V·sigma² - λ_Q·ImpactCost (each term is in ``info``).

    ΔPnL is the change of the agent's marked-to-mid PnL over the step (ticks x lots), I its
    inventory (lots), sigma the market's volatility estimate (ticks per √s, the observation's),
    ImpactCost the impact model's cost of the liquidity the agent took in the step.
    """

    inventory: float = Field(0.005, ge=0, description="λ_I")
    volatility: float = Field(0.0, ge=0, description="λ_V")
    impact: float = Field(1.0, ge=0, description="λ_Q")
    scale: float = Field(1.0, gt=0, description="the reward is divided by this")


class ExecutionTask(_Strict):
    """`Execution-v0`: trade `quantity` lots on `side` within the episode."""

    side: Literal["buy", "sell"] = "sell"
    quantity: int = Field(200, ge=1)
    risk_aversion: float = Field(1e-4, ge=0, description="Almgren-Chriss baseline λ")
    unfilled_penalty_ticks: float = Field(
        50.0, ge=0, description="cost per lot still to trade after the last step"
    )


class EnvConfig(_Strict):
    """Everything an environment of `agents.rl` needs; every field has a default."""

    background: Literal["flow", "crowd"] = "flow"
    market: str | None = Field(
        None, description="crowd: a market file (examples/*.toml); None: examples/market.toml"
    )
    symbol: str | None = Field(None, description="crowd: the symbol traded (default: the first)")
    step_ms: float = Field(100.0, gt=0, description="simulated time per step")
    episode_steps: int = Field(1_000, ge=2)
    regime: Regime = "medium"
    latency: LatencyConfig = Field(
        default_factory=lambda: LatencyConfig(kind="fixed", network_us=500.0),
        description="the agent's latency (orders out, market data in), the market's model",
    )
    max_offset_ticks: float = Field(10.0, gt=0, description="action: widest quote offset")
    min_offset_ticks: float = Field(-2.0, le=0, description="action: negative crosses the mid")
    max_quote_size: int = Field(10, ge=1, description="action: largest quote, lots")
    max_inventory: int = Field(100, ge=1, description="no quote adds to a position beyond this")
    quote_size: int = Field(5, ge=1, description="discrete variant: size of each quote")
    agents: int = Field(2, ge=1, le=16, description="multi-agent variant: market makers")
    flow: FlowConfig = Field(default_factory=FlowConfig)
    impact: ImpactConfig = Field(default_factory=ImpactConfig)
    reward: RewardConfig = Field(default_factory=RewardConfig)
    execution: ExecutionTask = Field(default_factory=ExecutionTask)
    # observation scales (see observation.py for what each value means)
    price_scale_ticks: float = Field(100.0, gt=0)
    inventory_scale_lots: float | None = Field(
        None, gt=0, description="observation: inventory divisor, lots (None: max_inventory)"
    )
    spread_scale_ticks: float = Field(10.0, gt=0)
    sigma_scale: float = Field(5.0, gt=0)
    pnl_scale: float = Field(100.0, gt=0)
    fills_scale: float = Field(10.0, gt=0)
    vol_halflife_steps: float = Field(20.0, gt=0)

    @property
    def step_ns(self) -> int:
        return round(self.step_ms * 1e6)

    @classmethod
    def coerce(cls, value: EnvConfig | dict[str, Any] | None) -> EnvConfig:
        """An `EnvConfig` from itself, a dict of its fields, or None (the defaults)."""
        if value is None:
            return cls()
        if isinstance(value, EnvConfig):
            return value
        return cls.model_validate(value)


def load_env_config(path: str | Path, table: str = "env") -> EnvConfig:
    """An `EnvConfig` from a TOML file: its ``[env]`` table, or the whole file without one.

    A mistake is a `UserError` naming the file and the field.
    """
    with open(path, "rb") as fh:
        try:
            data = tomllib.load(fh)
        except tomllib.TOMLDecodeError as exc:
            raise UserError(f"{path}: not valid TOML: {exc}") from None
    data = data.get(table, data)
    try:
        return EnvConfig.model_validate(data)
    except ValidationError as exc:
        raise UserError(f"{path}: {describe_validation(exc, EnvConfig)}") from None
