"""Agents: the agent SDK, client, runner, strategies, simulated time (issues 3, 5, 7)."""
