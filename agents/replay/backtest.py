"""One backtest: an agent class, its parameters, a tape, a replay configuration, a window."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from agents.agent import Agent
from agents.replay.config import ReplayConfig
from agents.replay.driver import Replay
from agents.replay.readers import Tape
from agents.replay.record import Record
from agents.replay.results import summary_of

__all__ = ["Run", "run_agent"]


@dataclass
class Run:
    """A finished backtest: its tables (`record`) and its summary (metrics included)."""

    record: Record
    summary: dict[str, Any]
    multipliers: dict[str, int]


def run_agent(
    cls: type[Agent],
    params: dict[str, Any] | None,
    tape: Tape,
    config: ReplayConfig,
    *,
    start_ns: int | None = None,
    end_ns: int | None = None,
    name: str = "backtest",
    seed: int = 1,
) -> Run:
    """Replay `tape` (or its ``[start_ns, end_ns)`` window) with an agent of class `cls`."""
    agent = cls(params or None)
    replay = Replay(agent, tape.symbols, config, tape.specs, name=name, seed=seed)
    t0 = time.perf_counter()
    record = replay.run(tape.chunks(start_ns, end_ns))
    wall = time.perf_counter() - t0
    mult = dict(replay.ctx.portfolio.multipliers)
    summary = summary_of(record, name=name, strategy=cls.__name__, config=config, tape=tape,
                         wall_s=wall, multipliers=mult, window=(start_ns, end_ns))  # fmt: skip
    summary["params"] = agent.params.model_dump(mode="json")
    return Run(record, summary, mult)
