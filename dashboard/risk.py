"""Risk figures for the leaderboard, from each account's equity as the dashboard sampled it.

Placeholder: the figures come from the metrics module (`agents.metrics`) once it is in this
tree; until then the leaderboard shows none rather than a second implementation of them.
"""

from __future__ import annotations

from typing import Any

__all__ = ["risk_figures"]


def risk_figures(equity: list[tuple[int, int]]) -> dict[str, Any]:
    """Drawdown, volatility and VaR of an equity series ((ts ns, cash units), oldest first)."""
    return {}
