"""A learning agent's latency, drawn the way the simulated market draws everyone's.

`agents.config.LatencyConfig` is the market's latency model: a one-way network delay that is
fixed, uniform in [0.5, 1.5] x mean, or exponential, plus a decision time on every action.
Orders reach the book ``decision + network`` after the agent acts; market data reaches the
agent ``network`` after it was published. Draws come in blocks from the environment's own
Generator (cheap per step, and still a pure function of the seed).
"""

from __future__ import annotations

import numpy as np

from agents.config import LatencyConfig

__all__ = ["LatencyDraws"]

_BLOCK = 256


class LatencyDraws:
    def __init__(self, config: LatencyConfig, rng: np.random.Generator) -> None:
        self.kind = config.kind
        self.mean_s = config.network_us / 1e6
        self.decision_s = config.decision_us / 1e6
        self.rng = rng
        self._block: list[float] = []
        # (outbound, inbound) when every draw is the same, else None
        self.fixed: tuple[float, float] | None = (
            (self.decision_s + self.mean_s, self.mean_s)
            if self.kind == "fixed" or self.mean_s == 0 else None
        )

    def network_s(self) -> float:
        """One one-way network delay, seconds."""
        if self.kind == "fixed" or self.mean_s == 0:
            return self.mean_s
        if not self._block:
            if self.kind == "uniform":
                draws = self.rng.uniform(0.5 * self.mean_s, 1.5 * self.mean_s, _BLOCK)
            else:
                draws = self.rng.exponential(self.mean_s, _BLOCK)
            self._block = draws.tolist()[::-1]
        return self._block.pop()

    def outbound_s(self) -> float:
        """From the agent's decision to its order at the book."""
        return self.decision_s + self.network_s()

    def inbound_s(self) -> float:
        """From a publication to the agent."""
        return self.network_s()
