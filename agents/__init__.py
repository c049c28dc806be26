"""Agora's traders: the agent API, the client SDK, the runner, strategies and the sim kernel."""

import accel  # noqa: F401  (first: compiled cores, when built; see accel)
from agents.agent import Agent, Context
from agents.events import Fill, OrderUpdate, Quote, TradeTick

__all__ = ["Agent", "Context", "Fill", "OrderUpdate", "Quote", "TradeTick"]
