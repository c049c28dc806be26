"""Stress scenarios: provoke a flash crash or a liquidity crisis on purpose, and measure it.

A scenario is a typed model of one event (`agents.stress.scenarios`): a fundamental shock, a
liquidity withdrawal, a large sell program, a fat finger, a herding cascade; named scenarios
and composites such as ``flash-crash`` are in `agents.stress.library`. A scenario acts on a
market only through a `ScenarioHost` (`agents.stress.host`): the simulated market in virtual
time, or, live, the agent runners and the fundamental-value process (`agents.stress.live`).

Switch one on from a market file (``[[scenario]]`` tables), from ``agora stress`` or from
Python::

    from agents import stress
    result = stress.run("examples/market.toml", "flash-crash", seeds=[1, 2])

`run` runs the market with and without the scenario on the same seeds and returns the
figures side by side (`agents.stress.compare`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from agents.stress.compare import run
from agents.stress.host import ScenarioHost, SimHost
from agents.stress.library import NAMED, Composite, build, named
from agents.stress.scenarios import (
    SCENARIO_KINDS,
    FatFinger,
    FundamentalShock,
    HerdingCascade,
    LiquidityWithdrawal,
    SellProgram,
)

__all__ = [
    "NAMED",
    "SCENARIO_KINDS",
    "Composite",
    "FatFinger",
    "FundamentalShock",
    "HerdingCascade",
    "LiquidityWithdrawal",
    "ScenarioHost",
    "SellProgram",
    "SimHost",
    "build",
    "install",
    "named",
    "run",
]


def install(market: Any, scenario: str | Composite | Sequence[Mapping[str, Any]]) -> Composite:
    """Schedule `scenario` (a name, scenario tables or a `Composite`) on a `SimMarket`."""
    comp = scenario if isinstance(scenario, Composite) else (
        named(scenario) if isinstance(scenario, str) else build(scenario))  # fmt: skip
    comp.install(SimHost(market))
    return comp
