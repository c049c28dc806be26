"""The stress scenarios: typed parameters, what each models, and how it acts on a host.

Each scenario is a Pydantic model (unknown keys are errors, as in a market file) with a
``kind`` and an ``at_s``: seconds after the start of the run (or, live, after the market
receives it) at which it strikes. `install(host)` schedules it on a `ScenarioHost`;
``install(host, dry=True)`` schedules the same events doing nothing, so that a baseline run
and a stressed run on one seed stay identical, bit for bit, until the scenario strikes (the
simulated kernel's tie order depends on what is scheduled).

`window_s()` is the stretch of time the scenario's event covers (for the figures: spread and
depth "during the event").
"""

from __future__ import annotations

import math
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from agents.stress.host import NS, ScenarioHost

__all__ = [
    "SCENARIO_KINDS",
    "FatFinger",
    "FundamentalShock",
    "HerdingCascade",
    "LiquidityWithdrawal",
    "Scenario",
    "SellProgram",
    "parse_part",
]


class _Part(BaseModel):
    model_config = ConfigDict(extra="forbid")

    at_s: float = Field(10.0, gt=0, description="when it strikes: seconds after the start")

    def window_s(self) -> tuple[float, float]:
        return self.at_s, self.at_s + 10.0

    def install(self, host: ScenarioHost, dry: bool = False) -> None:
        when = host.start_ns + round(self.at_s * NS)
        host.at(when, _noop if dry else (lambda: self.apply(host)))

    def apply(self, host: ScenarioHost) -> None:
        raise NotImplementedError


def _noop() -> None:
    return None


class FundamentalShock(_Part):
    """News: the fair value F(t) jumps by `pct` percent at `at_s` (-10: a 10% fall) for
    `symbol` (None: every symbol). The jump is permanent (the process's anchor moves too); the
    informed agents hear it with the next published value and the price has to find F again."""

    kind: Literal["fundamental_shock"] = "fundamental_shock"
    pct: float = Field(-10.0, gt=-100.0, description="jump of F, percent")
    symbol: str | None = None
    window: float = Field(10.0, gt=0, description="seconds after the shock counted as the event")

    def window_s(self) -> tuple[float, float]:
        return self.at_s, self.at_s + self.window

    def apply(self, host: ScenarioHost) -> None:
        host.shock(self.pct, self.symbol)


class LiquidityWithdrawal(_Part):
    """A liquidity crisis: the market makers pull their quotes at `at_s` and quote nothing
    for `duration_s` seconds. Market makers are the agents that can withdraw their quotes
    (every `agents.strategies.market_maker` quoter), or only those of `populations`."""

    kind: Literal["liquidity_withdrawal"] = "liquidity_withdrawal"
    duration_s: float = Field(10.0, gt=0, description="seconds without quotes")
    populations: list[str] | None = Field(None, description="None: every market maker")

    def window_s(self) -> tuple[float, float]:
        return self.at_s, self.at_s + self.duration_s

    def apply(self, host: ScenarioHost) -> None:
        until = host.now() + round(self.duration_s * NS)
        for h in host.agents():
            withdraw = getattr(h.agent, "withdraw_quotes", None)
            if withdraw is None:
                continue
            if self.populations is not None and h.population not in self.populations:
                continue
            host.act(h, withdraw, until)


class SellProgram(_Part):
    """A large sell program: an execution agent (TWAP, market-order children) sells `adv_pct`
    percent of the average daily volume within `horizon_s` seconds, starting at `at_s`.

    The day's volume is `adv_lots` when given, else the volume the market traded before the
    program starts (the session so far counts as the day; a run with the same seed and start
    time sizes the program identically). `qty` overrides both. The seller starts with exactly
    the shares it sells (its own account, named ``stress-seller``).
    """

    kind: Literal["sell_program"] = "sell_program"
    adv_pct: float = Field(25.0, gt=0, le=1000, description="percent of the daily volume")
    adv_lots: int | None = Field(None, gt=0, description="the average daily volume, lots")
    qty: int | None = Field(None, gt=0, description="lots to sell (overrides adv_pct)")
    horizon_s: float = Field(10.0, gt=0, description="seconds to sell it in")
    slices: int = Field(20, ge=1, le=10_000, description="child orders")
    side: Literal["sell", "buy"] = "sell"
    symbol: str | None = None

    def window_s(self) -> tuple[float, float]:
        return self.at_s, self.at_s + self.horizon_s

    def size(self, host: ScenarioHost, symbol: str) -> int:
        if self.qty is not None:
            return self.qty
        adv = self.adv_lots if self.adv_lots is not None else host.traded_lots(symbol)
        return max(1, math.ceil(adv * self.adv_pct / 100.0))

    def apply(self, host: ScenarioHost) -> None:
        from agents.strategies.execution import TWAPExecutor

        symbol = self.symbol or host.symbols[0]
        qty = self.size(host, symbol)
        agent = TWAPExecutor(TWAPExecutor.Params(
            symbol=symbol, side=self.side, total_qty=qty, horizon_ns=round(self.horizon_s * NS),
            slices=self.slices, market=True,
        ))  # fmt: skip
        positions = {symbol: qty} if self.side == "sell" else None
        host.add_agent(agent, f"stress-{self.side}er", None, positions)


class FatFinger(_Part):
    """A fat finger: one huge order at `at_s`: a market order of `qty` lots, or, with
    `price_pct`, a limit order priced `price_pct` percent away from the last price (-20: a
    sell 20% below the market, which trades through the book or is refused by the price
    band). Sent by its own account, ``stress-fatfinger``, holding the shares it sells."""

    kind: Literal["fat_finger"] = "fat_finger"
    qty: int = Field(1_000, gt=0, description="lots")
    side: Literal["sell", "buy"] = "sell"
    price_pct: float | None = Field(None, gt=-100, description="None: a market order")
    symbol: str | None = None
    window: float = Field(5.0, gt=0, description="seconds after the order counted as the event")

    def window_s(self) -> tuple[float, float]:
        return self.at_s, self.at_s + self.window

    def apply(self, host: ScenarioHost) -> None:
        from agents.stress.agents import OneOrder

        symbol = self.symbol or host.symbols[0]
        agent = OneOrder(OneOrder.Params(symbol=symbol, side=self.side, qty=self.qty,
                                         price_pct=self.price_pct))  # fmt: skip
        positions = {symbol: self.qty} if self.side == "sell" else None
        host.add_agent(agent, "stress-fatfinger", None, positions)


class HerdingCascade(_Part):
    """Herding: at `at_s` every trend follower (or those of `populations`) lowers its signal
    threshold at once (new threshold = old x `threshold_factor`) and trades bigger (order size
    x `size_factor`), so they all act on the same small moves. (A threshold of exactly 0
    leaves a crossover follower *less* active than a small one: with no dead band its regime
    only flips on a full crossing.)"""

    kind: Literal["herding_cascade"] = "herding_cascade"
    threshold_factor: float = Field(0.25, ge=0, le=1)
    size_factor: float = Field(2.0, ge=1, le=100)
    populations: list[str] | None = Field(None, description="None: every trend follower")

    def apply(self, host: ScenarioHost) -> None:
        from agents.strategies.trend import TrendFollower

        for h in host.agents():
            if not isinstance(h.agent, TrendFollower):
                continue
            if self.populations is not None and h.population not in self.populations:
                continue
            p = h.agent.params
            h.agent.params = p.model_copy(update={
                "threshold_ticks": p.threshold_ticks * self.threshold_factor,
                "order_size": max(1, round(p.order_size * self.size_factor)),
            })  # fmt: skip


Scenario = Annotated[
    FundamentalShock | LiquidityWithdrawal | SellProgram | FatFinger | HerdingCascade,
    Field(discriminator="kind"),
]
SCENARIO_KINDS: dict[str, type[_Part]] = {
    c.model_fields["kind"].default: c
    for c in (FundamentalShock, LiquidityWithdrawal, SellProgram, FatFinger, HerdingCascade)
}
_ADAPTER: TypeAdapter = TypeAdapter(Scenario)


def parse_part(data: dict) -> _Part:
    """One scenario from a table with a ``kind`` (a ValidationError names what is wrong)."""
    return _ADAPTER.validate_python(data)
