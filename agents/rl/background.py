"""Which market an environment trades in: `make_background` builds the configured one.

Both kinds answer the same small interface (`quote`, `step`, `view`, `mid`, `outcome`,
`queue`, `resting`, `fills_log`, `now_ns`, `sigma`, `regime`, `impact`, `step_s`), so the
environments do not know which one they drive: `flow` (`agents.rl.flow.FlowMarket`, the fast
generator) or `crowd` (`agents.rl.crowd.CrowdMarket`, a market file's agent population in
simulated time).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from agents.rl.config import EnvConfig

__all__ = ["make_background"]


def make_background(config: EnvConfig, rng: np.random.Generator, agents: int,
                    regime: str) -> Any:  # fmt: skip
    """A warmed-up background market for `agents` learning agents, drawing from `rng`."""
    if config.background == "crowd":
        from agents.rl.crowd import CrowdMarket

        return CrowdMarket(config, rng, agents, regime)
    from agents.rl.flow import FlowMarket

    return FlowMarket(config, rng, agents, regime)
