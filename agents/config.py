"""The market definition: one validated file for `agora up`, docker compose and `agora simulate`.

A market is its symbols, its fair-value process, the clearing house's terms and the agent
populations that trade it. The same file runs live (every population a runner process) and in
simulated time (every agent in one process), which is what makes "the same strategies trade in
both" testable.

Files are TOML (standard library, comments allowed); see `examples/market.toml` for every field.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from clearing.fees import FeeSchedule
from clearing.ledger import Limits
from exchange.errors import UserError, describe_validation
from exchange.symbols import SymbolSpec

__all__ = ["ClearingTerms", "LatencyConfig", "MarketConfig", "Population", "load_market"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class LatencyConfig(_Strict):
    """How late an agent hears and acts, in microseconds.

    `network_us` is one-way (exchange -> agent for market data and reports, agent -> exchange
    for orders); `kind` says how each message's delay is drawn: "fixed" (always the mean),
    "uniform" (in [0.5, 1.5] x mean) or "exponential" (with that mean). `decision_us` is the
    agent's computation time added to every action it takes.
    """

    kind: Literal["fixed", "uniform", "exponential"] = "fixed"
    network_us: float = Field(100.0, ge=0)
    decision_us: float = Field(0.0, ge=0)


class Population(_Strict):
    """`count` agents of one strategy, with shared parameters (each has its own random stream)."""

    name: str = Field(min_length=1, max_length=32, pattern=r"^[A-Za-z0-9_-]+$")
    strategy: str = Field(description="a registry name (see `agora agents list`) or module:Class")
    count: int = Field(1, ge=0, le=100_000)
    params: dict[str, Any] = Field(default_factory=dict)
    latency: LatencyConfig = Field(default_factory=LatencyConfig)
    cash: int | None = Field(None, ge=0, description="starting cash; default: the clearing's")
    positions: dict[str, int] | None = Field(None, description="starting positions (lots)")


class ClearingTerms(_Strict):
    """What every new account gets and pays (per-population overrides on `Population`)."""

    fees: FeeSchedule = Field(default_factory=FeeSchedule)
    starting_cash: int = Field(10_000_000, ge=0, description="cash units (cents by default)")
    starting_positions: dict[str, int] = Field(
        default_factory=lambda: {"*": 1_000},
        description='lots of each symbol every account starts with; "*": every symbol '
        "(without shares to sell, nobody could sell: short selling is off by default)",
    )
    leverage: float = Field(1.0, ge=1.0, le=100.0, description="1 = no borrowing")
    short_limit: int = Field(0, ge=0, description="lots an account may be short; 0 = no shorts")
    short_margin: float = Field(
        0.0, ge=0.0, le=10.0,
        description="initial margin on shorts, a fraction of short notional at the mark: a sell "
        "that opens or extends a short needs equity >= this x short notional after it "
        "(0 = off: only short_limit applies)",
    )  # fmt: skip
    maintenance_margin: float = Field(
        0.0, ge=0.0, le=10.0,
        description="below equity = this x short notional an account is in a margin call "
        "(0 = never); at most short_margin",
    )  # fmt: skip

    @model_validator(mode="after")
    def _margins(self) -> ClearingTerms:
        self.limits()  # the same rules as an account's limits (maintenance <= initial)
        return self

    def limits(self) -> Limits:
        """The limits every new account gets."""
        return Limits(leverage=self.leverage, short_limit=self.short_limit,
                      short_margin=self.short_margin,
                      maintenance_margin=self.maintenance_margin)  # fmt: skip


class MarketConfig(_Strict):
    """A whole market. Every field but the symbols has a default (a file must list its
    `[[symbols]]`: a market that silently trades a default symbol is a typo's result)."""

    name: str = "agora"
    seed: int = 1
    duration_s: float | None = Field(None, gt=0, description="None: run until stopped")
    symbols: list[SymbolSpec] = Field(
        min_length=1,
        default_factory=lambda: [
            SymbolSpec(symbol="AGR", reference_price=10_000, band_bps=1_000, halt_move_bps=500)
        ]
    )
    fundamental: dict[str, Any] = Field(
        default_factory=dict,
        description="the fair-value process (agents.fundamental.model.FundamentalConfig fields)",
    )
    fundamental_interval_s: float = Field(0.1, gt=0)
    clearing: ClearingTerms = Field(default_factory=ClearingTerms)
    populations: list[Population] = Field(default_factory=list)
    scenario: list[dict[str, Any]] = Field(
        default_factory=list,
        description="stress scenarios switched on (agents.stress: a name or a kind, and its "
        "parameters)",
    )

    @model_validator(mode="after")
    def _scenarios(self) -> MarketConfig:
        if self.scenario:
            from agents.stress.library import build

            # a ValueError naming the table and the field, or what this market lacks for it
            build(self.scenario).check([s.symbol for s in self.symbols], bool(self.fundamental))
        return self

    @model_validator(mode="after")
    def _unique_names(self) -> MarketConfig:
        every = self.clearing.starting_positions.pop("*", None)
        if every is not None:
            for spec in self.symbols:
                self.clearing.starting_positions.setdefault(spec.symbol, every)
        names = [p.name for p in self.populations]
        if len(set(names)) != len(names):
            raise ValueError(f"population names must be unique: {names}")
        symbols = [s.symbol for s in self.symbols]
        if len(set(symbols)) != len(symbols):
            raise ValueError(f"symbols must be unique: {symbols}")
        listed = ", ".join(symbols)
        unknown = sorted(set(self.clearing.starting_positions) - set(symbols))
        if unknown:
            raise ValueError(f"clearing.starting_positions names {', '.join(unknown)}, not a "
                             f"symbol of this market (its [[symbols]]: {listed})")  # fmt: skip
        for pop in self.populations:
            unknown = sorted(set(pop.positions or {}) - set(symbols))
            if unknown:
                raise ValueError(f"population {pop.name!r}: positions names "
                                 f"{', '.join(unknown)}, not a symbol of this market "
                                 f"(its [[symbols]]: {listed})")  # fmt: skip
            symbol = pop.params.get("symbol")
            if isinstance(symbol, str) and symbol not in symbols:
                raise ValueError(f"population {pop.name!r} trades {symbol!r}, not a symbol of "
                                 f"this market (its [[symbols]]: {listed})")  # fmt: skip
        return self

    def fundamental_model(self) -> dict[str, Any]:
        """The fair-value process's config (agents.fundamental.model.FundamentalConfig fields):
        `fundamental` with each symbol starting at its reference price unless given."""
        model = dict(self.fundamental)
        model.setdefault("symbols", {
            s.symbol: str(s.ticks_to_price(s.reference_price)) for s in self.symbols
        })  # fmt: skip
        model.setdefault("step_s", self.fundamental_interval_s)
        model.setdefault("seed", self.seed)
        return model

    @property
    def agent_count(self) -> int:
        return sum(p.count for p in self.populations)


def load_market(path: str | Path | None) -> MarketConfig:
    """Read and validate a market file (None: the built-in default market).

    A mistake in the file is a `UserError` naming the file and what is wrong with it (line and
    column of a syntax error; the field, or the nearest valid name of an unknown key).
    """
    if path is None:
        return MarketConfig()
    with open(path, "rb") as fh:
        try:
            data = tomllib.load(fh)
        except tomllib.TOMLDecodeError as exc:
            raise UserError(f"{path}: not valid TOML: {exc}") from None
    if not data.get("symbols"):
        raise UserError(f"{path}: the market lists no [[symbols]]; add one, e.g. "
                        '[[symbols]] symbol = "AGR" (`agora market-file` prints a whole market)')
    try:
        return MarketConfig.model_validate(data)
    except ValidationError as exc:
        raise UserError(f"{path}: {describe_validation(exc, MarketConfig)}") from None
