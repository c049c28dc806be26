"""Where a scenario acts: the small interface a market offers to stress scenarios.

A scenario never reaches into a market. It asks its host for the time, to run something at a
given time, for the agents it hosts, to make the fundamental value jump, and to start one more
agent. Two kinds of host implement it: `SimHost` (a simulated market, virtual time, fully
deterministic) and the live hosts in `agents.stress.live` (an agent runner process, the
fundamental-value process), each of which does the part of a scenario that lives in it and
skips the rest (the fundamental process has no agents; a runner has no F(t) to move).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from agents.agent import Agent
    from agents.sim.market import SimMarket

__all__ = ["Hosted", "ScenarioHost", "SimHost"]

NS = 1_000_000_000


@dataclass(frozen=True)
class Hosted:
    """An agent a host runs: its name, its population (``{population}-{i}``) and the agent."""

    name: str
    population: str
    agent: Agent
    handle: Any = None  # the host's own context object


class ScenarioHost(Protocol):
    """What a scenario may ask of a market (see the module docstring)."""

    start_ns: int  # the time a scenario's ``at_s`` counts from
    symbols: list[str]

    def now(self) -> int: ...

    def at(self, ts_ns: int, fn: Callable[[], None]) -> None:
        """Run `fn` at time `ts_ns` (at once if it has passed)."""

    def agents(self) -> list[Hosted]: ...

    def act(self, hosted: Hosted, fn: Callable[..., Any], *args: Any) -> None:
        """Run ``fn(*args)`` as one of `hosted`'s handlers (its view up to date, its orders
        sent as if it had decided them now)."""

    def shock(self, pct: float, symbol: str | None) -> bool:
        """Make F(t) jump by `pct` percent; False: not this host's part."""

    def add_agent(self, agent: Agent, name: str, cash: int | None,
                  positions: Mapping[str, int] | None) -> bool:  # fmt: skip
        """Start one more agent now; False: not this host's part."""

    def traded_lots(self, symbol: str) -> int:
        """Lots of `symbol` traded so far (for sizing a program on the day's volume)."""


def population_of(name: str) -> str:
    head, sep, tail = name.rpartition("-")
    return head if sep and tail.isdigit() else name


class SimHost:
    """A `SimMarket` as a scenario host: every action is a kernel event (deterministic)."""

    def __init__(self, market: SimMarket, start_ns: int | None = None) -> None:
        """`start_ns`: the time ``at_s`` counts from (default: the market's start)."""
        self.market = market
        self.start_ns = market.start_ns if start_ns is None else start_ns
        self.symbols = list(market.symbols)

    def now(self) -> int:
        return self.market.now

    def at(self, ts_ns: int, fn: Callable[[], None]) -> None:
        self.market.schedule(ts_ns, fn)

    def agents(self) -> list[Hosted]:
        return [Hosted(c.name, population_of(c.name), c.agent, c) for c in self.market.agents]

    def act(self, hosted: Hosted, fn: Callable[..., Any], *args: Any) -> None:
        hosted.handle.refresh()
        fn(*args)

    def shock(self, pct: float, symbol: str | None) -> bool:
        self.market.fundamental.shock(pct, symbol)
        return True

    def can_shock(self) -> bool:
        return hasattr(self.market.fundamental, "shock")

    def add_agent(self, agent: Agent, name: str, cash: int | None,
                  positions: Mapping[str, int] | None) -> bool:  # fmt: skip
        taken = {c.name for c in self.market.agents}
        base, i = name, 1
        while name in taken:
            i += 1
            name = f"{base}{i}"
        self.market.add_agent(agent, name, cash=cash, positions=positions)
        return True

    def traded_lots(self, symbol: str) -> int:
        trades = self.market.trades
        return int(sum(q for s, q in zip(trades["symbol"], trades["qty"], strict=True)
                       if s == symbol))  # fmt: skip
