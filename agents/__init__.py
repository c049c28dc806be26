"""Agents: the agent SDK, client, runner, strategies and the simulated-time kernel (issues 3, 5, 7)."""
